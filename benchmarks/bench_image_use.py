"""Does a trained MIMO read its image tokens? The answers of QA with segmentation, with another image.

    python benchmarks/bench_image_use.py [--checkpoint data/mimo-nano] [--num 400]

QA with segmentation ("Is there a cyst in the liver?", "How many polyps ...?") is the one task whose answer
text needs the image tokens: perception and prompt-assisted QA read the <region> tokens, segmentation answers
"Sure, [SEG]". Each test-split qa_seg question is asked twice, about its own image and about the image of
another qa_seg sample of the same modality; a model that reads its image tokens changes many answers. The
same is done for prompt-assisted QA with the prompt kept (the region changes with the image).
Also prints a probe's ceiling: how well a small MLP on the frozen CLIP patch tokens (per patch, max over the
image) tells which lesion classes an image holds, trained on 2,000 train-split images (30 epochs) and scored
on 600 test-split images, beside the share of "present" among them.
"""

import argparse
import json

import numpy as np
import torch
from torch import nn

from mimo_edu.checkpoints import load_model
from mimo_edu.data import MIMOSegSynth, split_seed
from mimo_edu.data.scenes import STRUCTURES
from mimo_edu.eval.metrics import normalize_answer
from mimo_edu.foundations.data import image_tensor, scene
from mimo_edu.model.vision import merge_patches
from mimo_edu.shipped import course_checkpoint

LESIONS = sorted({s.name for specs in STRUCTURES.values() for s in specs if s.lesion})


@torch.no_grad()
def swapped_answers(model, num: int) -> dict:
    """Per task: how many answers stay the same, and how many are right, when the image is swapped."""
    samples = list(MIMOSegSynth(num, seed=split_seed("test"), image_size=model.config.image_size))
    report = {}
    for task in ("qa_seg", "prompt_qa"):
        group = [s for s in samples if s.task == task]
        same = right = right_swapped = 0
        for i, s in enumerate(group):
            other = next(o for o in group[i + 1 :] + group[:i] if o.modality == s.modality and o is not s)
            own = model.generate(s.image, s.question, s.visual_prompts).text
            swapped = model.generate(other.image, s.question, s.visual_prompts).text
            same += own == swapped
            right += normalize_answer(own) == normalize_answer(s.answer)
            right_swapped += normalize_answer(swapped) == normalize_answer(s.answer)
        report[task] = {
            "n": len(group),
            "same_answer": same,
            "right": right,
            "right_with_other_image": right_swapped,
        }
    return report


def lesion_features(model, stream: int, num: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frozen CLIP patch tokens (num, N, C), lesion classes present (num, L), classes the modality has (num, L)."""
    feats, present, possible = [], [], []
    for start in range(0, num, 64):
        scenes = [scene(stream, i) for i in range(start, min(num, start + 64))]
        with torch.no_grad():
            feats.append(model.vision(torch.stack([image_tensor(s.image) for s in scenes])))
        for s in scenes:
            present.append([float(any(i.name == name and i.host for i in s.instances)) for name in LESIONS])
            names = {spec.name for spec in STRUCTURES[s.modality] if spec.lesion}
            possible.append([float(name in names) for name in LESIONS])
    return torch.cat(feats), torch.tensor(present), torch.tensor(possible)


def presence_probe(model, merged: bool, epochs: int = 30) -> float:
    """Accuracy of a per-token MLP + max over tokens at telling each possible lesion class present or absent."""
    torch.manual_seed(0)
    xs, ys, ms = lesion_features(model, split_seed("train"), 2000)
    xt, yt, mt = lesion_features(model, split_seed("test"), 600)
    merge = model.config.vision.merge if merged else 1
    dim = xs.shape[-1] * merge**2
    net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 256), nn.GELU(), nn.Linear(256, len(LESIONS)))

    def logits(x: torch.Tensor) -> torch.Tensor:
        return net(merge_patches(x, merge)).amax(1)  # (B, L)

    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(xs)).split(64):
            loss = nn.functional.binary_cross_entropy_with_logits(logits(xs[idx]), ys[idx], reduction="none")
            loss = (loss * ms[idx]).sum() / ms[idx].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float((((logits(xt) > 0).float() == yt).float() * mt).sum() / mt.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None, help="default: the shipped data/mimo-nano")
    ap.add_argument("--num", type=int, default=400, help="test samples to draw (a quarter per task)")
    ap.add_argument("--no-probe", action="store_true", help="skip the CLIP presence probe (about 4 minutes)")
    args = ap.parse_args()
    model = load_model(args.checkpoint or course_checkpoint()).eval()
    report = {"swapped_image": swapped_answers(model, args.num)}
    if not args.no_probe:
        _, present, possible = lesion_features(model, split_seed("test"), 600)
        report["presence_probe"] = {
            "present_share": float((present * possible).sum() / possible.sum()),
            "per_patch": presence_probe(model, merged=False),
            "per_llm_image_token": presence_probe(model, merged=True),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
