"""Batching samples for the model, and resizing a sample so that batches share one size."""

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from PIL import Image

from mimo_edu.data.schema import Sample, VisualPrompt
from mimo_edu.errors import DataError


def collate(samples: Sequence[Sample]) -> dict:
    """Stack samples into the batch dict that schema.BATCH_KEYS documents.

    images (B, 3, H, W) float in [0, 1]; masks a list of B bool tensors (K_i, H, W);
    the rest lists of length B. Every image must have the same size.
    """
    if not samples:
        raise DataError("cannot collate an empty list of samples; pass at least one Sample")
    sizes = {s.image.shape for s in samples}
    if len(sizes) != 1:
        raise DataError(
            f"samples have different image shapes {sorted(sizes)}; resize them first with resize_sample(sample, size)"
        )
    images = torch.from_numpy(np.stack([s.image for s in samples]))  # (B, H, W, 3) uint8
    return {
        "ids": [s.id for s in samples],
        "images": images.permute(0, 3, 1, 2).float().div_(255.0),  # (B, 3, H, W)
        "modalities": [s.modality for s in samples],
        "tasks": [s.task for s in samples],
        "questions": [s.question for s in samples],
        "answers": [s.answer for s in samples],
        "masks": [torch.from_numpy(np.asarray(s.masks, dtype=bool).copy()) for s in samples],  # (K_i, H, W)
        "visual_prompts": [list(s.visual_prompts) for s in samples],
        "terms": [list(s.terms) for s in samples],
    }


def _scale_points(points: np.ndarray, sx: float, sy: float, size: int) -> np.ndarray:
    """Pixel positions (N, 2) mapped centre to centre onto a size x size image."""
    scaled = (points + 0.5) * np.array([sx, sy], np.float32) - 0.5
    return np.clip(scaled, 0, size - 1).astype(np.float32)


def resize_prompt(prompt: VisualPrompt, h: int, w: int, size: int) -> VisualPrompt:
    """A prompt drawn on an H x W image, moved onto the same image stretched to size x size."""
    sx, sy = size / w, size / h
    if prompt.kind == "box":
        corners = _scale_points(np.asarray(prompt.box, np.float32).reshape(2, 2), sx, sy, size)
        return replace(prompt, box=corners.reshape(4))
    width = prompt.width * min(sx, sy) if prompt.kind == "scribble" else prompt.width
    return replace(prompt, points=_scale_points(np.asarray(prompt.points, np.float32), sx, sy, size), width=width)


def resize_sample(sample: Sample, size: int) -> Sample:
    """The sample stretched to size x size: bilinear image, nearest-neighbour masks, prompts moved along."""
    h, w = sample.image.shape[:2]
    if (h, w) == (size, size):
        return sample
    image = np.asarray(Image.fromarray(sample.image).resize((size, size), Image.Resampling.BILINEAR))
    masks = np.stack([
        np.asarray(Image.fromarray(m.astype(bool)).resize((size, size), Image.Resampling.NEAREST)) for m in sample.masks
    ]) if len(sample.masks) else np.zeros((0, size, size), bool)
    prompts = [resize_prompt(p, h, w, size) for p in sample.visual_prompts]
    return replace(sample, image=image, masks=masks, visual_prompts=prompts)
