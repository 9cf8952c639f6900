"""Region proposals for object tokens: how many true structures does some proposal cover, and at what cost?

    python benchmarks/bench_proposals.py                  # 100 test scenes, felzenszwalb vs nano-SAM 8 x 8 grid
    python benchmarks/bench_proposals.py --grid 12 --out benchmarks/results/proposals.json

A structure instance counts as found when some proposal covers it with mask IoU >= 0.5 (lesions and
anatomy apart). Two sources, on the same test scenes:

- `felzenszwalb`: the nano preset's object proposals (`mimo_edu.model.objects.propose_regions`, at most
  `--max` regions);
- `sam-grid`: nano-SAM's frozen pretrained decoder (`MIMO.region_decoder`, the one `<region>` tokens pool
  over) prompted with one positive point at each cell of a `--grid` x `--grid` grid, the masks deduplicated
  smallest first at mask IoU 0.6 (segment-anything's automatic mask generator prompts a grid the same
  way), at most `--max` of them.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mimo_edu.data import split_seed
from mimo_edu.data.scenes import structure
from mimo_edu.data.schema import VisualPrompt
from mimo_edu.foundations.data import image_tensor, scene
from mimo_edu.model import build_mimo
from mimo_edu.model.objects import propose_regions


def sam_grid(model, image: np.ndarray, grid: int, max_regions: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (K, S, S) bool: nano-SAM's masks for a grid of point prompts, deduplicated."""
    S = model.config.image_size
    step = S / grid
    prompts = [VisualPrompt(kind="point", points=np.array([[(i + 0.5) * step, (j + 0.5) * step]], np.float32),
                            labels=np.array([1])) for j in range(grid) for i in range(grid)]
    with torch.no_grad():
        embedding = model.image_embeddings(image_tensor(image)[None])  # (1, D, h, w)
        logits = model.segmenter.decode(embedding, model.sam_prompt_tokens(prompts), S,
                                        decoder=model.region_decoder)  # (G^2, S, S)
    masks = (logits > 0).flatten(1).float()  # (G^2, S * S)
    area = masks.sum(1)
    inter = masks @ masks.T
    overlap = inter / (area[:, None] + area[None] - inter).clamp_min(1)  # (G^2, G^2) mask IoU
    keep: list[int] = []
    for k in torch.argsort(area).tolist():  # small first: a lesion before the organ around it
        if area[k] >= 12 and (not keep or overlap[k, keep].max() <= 0.6):
            keep.append(k)
    return masks[keep[:max_regions]].view(-1, S, S).bool().numpy()


def recall(scenes, propose) -> dict:
    """Share of lesion and of anatomy instances some proposal covers at IoU >= 0.5; proposals an image; seconds."""
    found = {True: [], False: []}
    counts, seconds = [], 0.0
    for s in scenes:
        t0 = time.perf_counter()
        regions = propose(s.image)
        seconds += time.perf_counter() - t0
        counts.append(len(regions))
        for inst in s.instances:
            best = max((float((inst.mask & r).sum() / (inst.mask | r).sum()) for r in regions), default=0.0)
            found[structure(s.modality, inst.name).lesion].append(best >= 0.5)
    return {"lesion_recall": round(float(np.mean(found[True])), 3), "lesions": len(found[True]),
            "anatomy_recall": round(float(np.mean(found[False])), 3), "anatomy": len(found[False]),
            "regions_per_image": round(float(np.mean(counts)), 1),
            "ms_per_image": round(1000 * seconds / len(counts), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=100)
    ap.add_argument("--grid", type=int, default=8)
    ap.add_argument("--max", type=int, default=12, help="at most this many regions an image (nano: object tokens)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    model = build_mimo("nano").eval()
    scenes = [scene(split_seed("test"), i) for i in range(args.scenes)]
    report = {
        "scenes": args.scenes, "max_regions": args.max,
        "felzenszwalb": recall(scenes, lambda image: propose_regions(image, args.max)),
        f"sam_grid_{args.grid}": recall(scenes, lambda image: sam_grid(model, image, args.grid, args.max)),
    }
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
