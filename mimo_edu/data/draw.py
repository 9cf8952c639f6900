"""Masks and visual prompts painted into a NumPy image (no matplotlib: `mimo_edu.figures` draws on Axes).

Colours follow the segment-anything notebooks: positive points green, negative
points red, boxes green; scribbles are yellow. The CLI's overlay.png and the App's
view use these; `mimo_edu.figures.data.show_prompt` draws the same colours on an Axes.
"""

import numpy as np

from mimo_edu.data.prompts import scribble_mask, validate_prompt
from mimo_edu.data.schema import VisualPrompt
from mimo_edu.data.shapes import stroke

GREEN, RED, YELLOW = (0, 200, 0), (230, 20, 20), (255, 220, 0)
PALETTE = np.array(
    [(30, 144, 255), (255, 99, 71), (50, 205, 50), (255, 215, 0), (186, 85, 211), (0, 206, 209), (255, 140, 0)],
    np.float32,
)
"""Mask colours, reused in turn."""


def overlay_masks(image: np.ndarray, masks: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image with each mask (K, H, W) tinted in its own PALETTE colour; (H, W, 3) uint8."""
    out = image.astype(np.float32)  # (H, W, 3)
    for k, mask in enumerate(np.asarray(masks, bool)):
        out[mask] = (1 - alpha) * out[mask] + alpha * PALETTE[k % len(PALETTE)]
    return out.round().astype(np.uint8)


def draw_prompt(image: np.ndarray, prompt: VisualPrompt) -> np.ndarray:
    """A new (H, W, 3) uint8 image: `image` with the visual prompt painted in.

    `mimo_edu.figures.data.show_prompt` draws a prompt on a matplotlib Axes instead.
    """
    validate_prompt(prompt, *image.shape[:2])
    h, w = image.shape[:2]
    out = image.copy()
    if prompt.kind == "box":
        x0, y0, x1, y1 = np.round(prompt.box).astype(int).tolist()
        out[y0:y1 + 1, [x0, x1]] = GREEN
        out[[y0, y1], x0:x1 + 1] = GREEN
    elif prompt.kind == "scribble":
        out[scribble_mask(prompt, h, w)] = YELLOW
    else:
        for point, label in zip(np.asarray(prompt.points), np.asarray(prompt.labels), strict=True):
            out[stroke(h, w, point[None].astype(np.float32), 5.0)] = GREEN if label == 1 else RED
    return out

