"""Drawing masks and visual prompts, onto a NumPy image or a matplotlib Axes.

Colours follow the segment-anything notebooks: positive points green, negative
points red, boxes green; scribbles are yellow.
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


def _draw_on_array(image: np.ndarray, prompt: VisualPrompt) -> np.ndarray:
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


def _draw_on_axes(ax, prompt: VisualPrompt):
    from matplotlib.patches import Rectangle

    if prompt.kind == "box":
        x0, y0, x1, y1 = np.asarray(prompt.box).tolist()
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, edgecolor="lime", facecolor="none", linewidth=2))
    elif prompt.kind == "scribble":
        pts = np.asarray(prompt.points)
        ax.plot(pts[:, 0], pts[:, 1], color="yellow", linewidth=prompt.width, solid_capstyle="round")
    else:
        pts, labels = np.asarray(prompt.points), np.asarray(prompt.labels)
        for label, colour in ((1, "lime"), (0, "red")):
            sel = pts[labels == label]
            ax.scatter(sel[:, 0], sel[:, 1], color=colour, marker="*", s=200, edgecolor="white", linewidth=1.0)
    return ax


def draw_prompt(target, prompt: VisualPrompt):
    """Draw a visual prompt.

    target: an (H, W, 3) uint8 image, returned as a new image with the prompt
    painted in, or a matplotlib Axes (showing the image in pixel coordinates),
    drawn on and returned.
    """
    if isinstance(target, np.ndarray):
        validate_prompt(prompt, *target.shape[:2])
        return _draw_on_array(target, prompt)
    return _draw_on_axes(target, prompt)
