"""Which region should a <region> token pool CLIP patches over? Measured with the foundations alone.

    python benchmarks/bench_region_source.py [--num 400] [--foundations data/foundations]

On the test split's visual-prompt samples (perception and prompt-assisted QA), nano-CLIP's patch tokens are
pooled over (a) the prompt's own rasterised region (`region_source="prompt"`), (b) the mask nano-SAM
predicts for the prompt (`region_source="sam"`), (c) the true mask (an upper bound), and the pooled
feature is named zero-shot by its nearest structure caption. Accuracy per source and prompt kind, with
the share of patches the region covers outside the true mask. No MIMO training is involved.
"""

import argparse
import json

import numpy as np
import torch

from mimo_edu.data import MIMOSegSynth, split_seed
from mimo_edu.foundations.clip import patch_coverage
from mimo_edu.foundations.data import STRUCTURE_NAMES, image_tensor
from mimo_edu.foundations.paths import foundation_paths
from mimo_edu.foundations.run import load_objective
from mimo_edu.model.config import nano_config
from mimo_edu.model.prompts import VisualPromptEncoder, sparse_embeddings


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num", type=int, default=400, help="test samples to draw (half carry a visual prompt)")
    ap.add_argument("--foundations", default=None, help="default: data/foundations or $MIMO_EDU_FOUNDATIONS")
    args = ap.parse_args()
    clip_dir, _, sam_path = foundation_paths(args.foundations)
    clip, sam = load_objective("clip", clip_dir), load_objective("sam", sam_path.parent)
    config = nano_config()
    g = config.vision.grid
    rasterise = VisualPromptEncoder(config.vision.hidden_size, 8, config.image_size, g, config.prompt_points)
    names = clip.text_embeddings("structure")
    hits = {s: {} for s in ("prompt", "sam", "true")}
    outside = {s: [] for s in hits}
    for sample in MIMOSegSynth(args.num, seed=split_seed("test")):
        if not sample.visual_prompts:
            continue
        prompt, mask = sample.visual_prompts[0], sample.masks[0]
        image = image_tensor(sample.image)[None]
        _, patches = clip.image_and_patches(image)
        embedding = sam.segmenter.image_embeddings(image)
        sparse = sparse_embeddings(sam.segmenter.sam.prompt_encoder, [prompt], config.prompt_points)
        predicted = (sam.segmenter.decode(embedding, sparse, config.image_size)[0] > 0).numpy()
        weights = {
            "prompt": rasterise.region_weights(prompt),
            "sam": torch.from_numpy(patch_coverage(predicted, g)) if predicted.any() else rasterise.region_weights(prompt),
            "true": torch.from_numpy(patch_coverage(mask, g)),
        }
        truth = torch.from_numpy(patch_coverage(mask, g)) > 0
        target = STRUCTURE_NAMES.index(sample.terms[0])
        for source, w in weights.items():
            region = clip.region_embeddings(patches, w[None])
            hits[source].setdefault(prompt.kind, []).append(int((region @ names.T).argmax()) == target)
            outside[source].append(float(w[~truth].sum() / w.sum()))
    report = {
        s: {"acc": float(np.mean([h for v in by_kind.values() for h in v])),
            **{f"acc/{k}": float(np.mean(v)) for k, v in sorted(by_kind.items())},
            "weight_outside_true_mask": float(np.mean(outside[s]))}
        for s, by_kind in hits.items()
    }
    report["n"] = len(outside["true"])
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
