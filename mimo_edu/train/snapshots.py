"""Mask snapshots: what the model predicts for a few fixed samples as training goes on.

At every evaluation the training CLI writes OUT/snapshots/step-NNNNNNN.npz with the
teacher-forced mask probabilities for the same few validation samples; 05_training
draws them side by side to show the masks sharpening.
"""

from pathlib import Path

import numpy as np
import torch

from mimo_edu.data.collate import collate
from mimo_edu.data.schema import Sample

SNAPSHOT_DIR = "snapshots"


@torch.no_grad()
def mask_probabilities(model, samples: list[Sample]) -> list[np.ndarray]:
    """Teacher-forced mask probabilities, one (K_i, S, S) float32 array per sample."""
    out = model(collate(samples))
    return [m.sigmoid().float().cpu().numpy() for m in out.pred_masks]


def write_snapshot(out_dir: str | Path, step: int, model, samples: list[Sample]) -> Path:
    """OUT/snapshots/step-NNNNNNN.npz: probabilities as uint8 (0-255), one array per sample."""
    folder = Path(out_dir) / SNAPSHOT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{step:07d}.npz"
    arrays = {f"sample_{i}": np.round(p * 255).astype(np.uint8) for i, p in enumerate(mask_probabilities(model, samples))}
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, ids=np.array([s.id for s in samples]), **arrays)
    tmp.replace(path)
    return path


def read_snapshots(out_dir: str | Path) -> dict[int, dict]:
    """step -> {"ids": [...], "probs": [(K_i, S, S) float32 in [0, 1], ...]} for every snapshot in OUT."""
    steps = {}
    for path in sorted((Path(out_dir) / SNAPSHOT_DIR).glob("step-*.npz")):
        if path.name.endswith(".tmp.npz"):
            continue
        with np.load(path, allow_pickle=False) as data:
            ids = [str(i) for i in data["ids"]]
            probs = [data[f"sample_{i}"].astype(np.float32) / 255 for i in range(len(ids))]
        steps[int(path.stem.split("-")[1])] = {"ids": ids, "probs": probs}
    return steps
