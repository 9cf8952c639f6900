"""Figures for notebook 01: samples, scenes and visual prompts drawn on a matplotlib Axes.

The later figure modules draw their samples and prompts with these helpers too.
"""

import textwrap

import numpy as np
from matplotlib.patches import Patch, Rectangle

from mimo_edu.data.draw import PALETTE, overlay_masks
from mimo_edu.data.scenes import MODALITY_NAMES, Scene
from mimo_edu.data.schema import Sample, VisualPrompt

TASK_TITLES = {
    "seg": "1 · language-guided segmentation",
    "perception": "2 · visual-prompt perception",
    "qa_seg": "3 · QA with segmentation",
    "prompt_qa": "4 · visual-prompt-assisted QA",
}


def colour(k: int) -> np.ndarray:
    """Mask k's colour as matplotlib takes it (RGB in 0-1): `PALETTE[k]`, as `overlay_masks` paints it."""
    return PALETTE[k % len(PALETTE)] / 255.0


def wrap_text(text: str, width: int = 34) -> str:
    """`text` broken into lines of at most `width` characters, for a title or an axis label."""
    return "\n".join(textwrap.wrap(text, width))


def show_prompt(ax, prompt: VisualPrompt):
    """Draw a visual prompt on an Axes that shows the image in pixel coordinates; returns the Axes.

    Colours follow the segment-anything notebooks: positive points green, negative points red, boxes
    green; scribbles are yellow (as `mimo_edu.data.draw_prompt` paints them into an image).
    """
    if prompt.kind == "box":
        x0, y0, x1, y1 = np.asarray(prompt.box).tolist()
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, edgecolor="lime", facecolor="none", linewidth=2))
    elif prompt.kind == "scribble":
        pts = np.asarray(prompt.points)
        ax.plot(pts[:, 0], pts[:, 1], color="yellow", linewidth=prompt.width, solid_capstyle="round")
    else:
        pts, labels = np.asarray(prompt.points), np.asarray(prompt.labels)
        for label, shade in ((1, "lime"), (0, "red")):
            sel = pts[labels == label]
            ax.scatter(sel[:, 0], sel[:, 1], color=shade, marker="*", s=200, edgecolor="white", linewidth=1.0)
    return ax


def show_sample(ax, sample: Sample, title: str | None = None) -> None:
    """Image with its masks (one colour per grounded term) and prompts; question and answer underneath."""
    ax.imshow(overlay_masks(sample.image, sample.masks))
    for prompt in sample.visual_prompts:
        show_prompt(ax, prompt)
    ax.set_title(title or TASK_TITLES.get(sample.task, sample.task), fontsize=10)
    ax.set_xlabel(f"Q: {wrap_text(sample.question, 30)}\nA: {wrap_text(sample.answer, 30)}", fontsize=9, loc="left")
    ax.set_xticks([])
    ax.set_yticks([])
    handles = [Patch(color=colour(k), label=term) for k, term in enumerate(sample.terms)]
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=9, framealpha=0.8)


def show_scene(ax, scene: Scene, title: str | None = None) -> None:
    """Every structure of a rendered scene, one colour per class, with a legend."""
    names = list(dict.fromkeys(inst.name for inst in scene.instances))
    masks = np.stack([np.logical_or.reduce([i.mask for i in scene.of(n)]) for n in names])
    ax.imshow(overlay_masks(scene.image, masks, alpha=0.45))
    ax.set_title(title or MODALITY_NAMES.get(scene.modality, scene.modality), fontsize=10)
    ax.axis("off")
    handles = [Patch(color=colour(k), label=n) for k, n in enumerate(names)]
    # a figure legend under the axes: drawn after every axes, so the next row never hides it
    ax.figure.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), bbox_transform=ax.transAxes,
                     ncol=2, fontsize=9, frameon=False, handlelength=1.2, columnspacing=1.0)
