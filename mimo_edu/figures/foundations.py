"""Figures for notebook 02: what the nano foundations learned before the MIMO stage.

nano-CLIP naming the structures of a scene, nano-SAM's masks from a box, a point and a scribble, the
pretraining losses. Each helper keeps a notebook cell short; none changes a foundation.
"""

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt

from mimo_edu.data.draw import overlay_masks
from mimo_edu.data.scenes import MODALITY_NAMES, Scene
from mimo_edu.data.schema import VisualPrompt
from mimo_edu.eval.metrics import dice
from mimo_edu.figures.data import colour, show_prompt
from mimo_edu.foundations.data import STRUCTURE_NAMES, image_tensor

if TYPE_CHECKING:  # transformers and segment-anything load only where a notebook loads a foundation
    from mimo_edu.foundations.clip import ClipObjective
    from mimo_edu.foundations.sam import SamObjective

WRONG = "#d62728"
PROMPT_TITLES = {"box": "box", "point": "one positive point", "scribble": "scribble"}


def _inside(mask: np.ndarray) -> tuple[int, int]:
    """(x, y) of the mask pixel farthest from its border: a place for a label that stays inside."""
    y, x = np.unravel_index(np.argmax(distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]), mask.shape)
    return int(x), int(y)


@torch.no_grad()
def name_regions(objective: "ClipObjective", scene: Scene) -> list[str]:
    """The name nano-CLIP gives each structure of a scene: the structure caption nearest to its region
    embedding (patch tokens pooled with the mask's coverage of each patch), as `evaluate_clip` scores it."""
    from mimo_edu.foundations.clip import patch_coverage

    objective.eval()
    vision = objective.clip.config.vision_config
    grid = vision.image_size // vision.patch_size
    coverage = torch.from_numpy(np.stack([patch_coverage(inst.mask, grid) for inst in scene.instances]))  # (R, N)
    _, patches = objective.image_and_patches(image_tensor(scene.image)[None])  # (1, N, C)
    regions = objective.region_embeddings(patches.expand(len(coverage), -1, -1), coverage)  # (R, P)
    nearest = (regions @ objective.text_embeddings("structure").T).argmax(-1)  # (R,)
    return [STRUCTURE_NAMES[i] for i in nearest.tolist()]


def show_region_names(ax, scene: Scene, predicted: list[str]) -> int:
    """Each structure outlined and numbered; under the image, per number its true name with a tick where
    nano-CLIP names it right, or an arrow to nano-CLIP's name in red where it does not. Returns the number of
    wrong names."""
    ax.imshow(scene.image)
    wrong = 0
    for k, (inst, name) in enumerate(zip(scene.instances, predicted, strict=True)):
        rgb = colour(k)
        ax.contour(inst.mask, levels=[0.5], colors=[rgb], linewidths=1.6)
        x, y = _inside(inst.mask)
        ax.text(x, y, str(k + 1), ha="center", va="center", fontsize=9, fontweight="bold", color="k",
                bbox={"boxstyle": "circle,pad=0.15", "facecolor": rgb, "edgecolor": "white", "linewidth": 0.8})
        ok = name == inst.name
        wrong += not ok
        line = f"{k + 1}. {inst.name} ✓" if ok else f"{k + 1}. {inst.name} → {name} ✗"
        ax.text(0.0, -0.03 - 0.07 * k, line, transform=ax.transAxes, va="top", fontsize=9,
                color="k" if ok else WRONG, fontweight="normal" if ok else "bold")
    ax.set_title(MODALITY_NAMES.get(scene.modality, scene.modality), fontsize=10)
    ax.axis("off")
    return wrong


@torch.no_grad()
def prompt_masks(objective: "SamObjective", scene: Scene, index: int,
                 prompts: dict[str, list[VisualPrompt]]) -> dict[str, tuple[VisualPrompt, np.ndarray]]:
    """nano-SAM's mask (logits > 0) for structure `index` of a scene from each kind of prompt;
    `prompts` is `eval_prompts(scene, rng)`: per kind, one prompt on every structure."""
    objective.eval()
    image = image_tensor(scene.image)[None]  # (1, 3, S, S)
    out = {}
    for kind, per_structure in prompts.items():
        logits = objective.predict(image, [per_structure[index]], torch.zeros(1, dtype=torch.long))  # (1, S, S)
        out[kind] = (per_structure[index], (logits[0] > 0).numpy())
    return out


def show_prompt_masks(axes, scene: Scene, index: int, masks: dict[str, tuple[VisualPrompt, np.ndarray]]) -> None:
    """One row: the true mask, then each prompt with nano-SAM's mask, titled with its Dice against the truth."""
    truth = scene.instances[index].mask
    axes[0].imshow(overlay_masks(scene.image, truth[None]))
    axes[0].set_title(f"{MODALITY_NAMES.get(scene.modality, scene.modality)}: true {scene.instances[index].name}",
                      fontsize=10)
    for ax, (kind, (prompt, mask)) in zip(axes[1:], masks.items(), strict=True):
        ax.imshow(overlay_masks(scene.image, mask[None]))
        ax.contour(truth, levels=[0.5], colors="white", linewidths=0.8, linestyles="dashed")
        show_prompt(ax, prompt)
        ax.set_title(f"{PROMPT_TITLES[kind]}: Dice {dice(mask, truth):.2f}", fontsize=10)
    for ax in axes:
        ax.set_xlim(-0.5, truth.shape[1] - 0.5)
        ax.set_ylim(truth.shape[0] - 0.5, -0.5)
        ax.axis("off")


def plot_pretraining(ax, records: list[dict], title: str) -> None:
    """Every loss of a pretraining run's metrics.jsonl ("train" lines) against step, log scale."""
    train = [r for r in records if r.get("kind") == "train"]
    keys = [k for k in train[0] if k.endswith("loss")]
    for key in keys:
        label = ("total" if len(keys) > 1 else "loss") if key == "loss" else key.replace("_", " ")
        ax.plot([r["step"] for r in train], [r[key] for r in train], label=label,
                c="k" if key == "loss" else None, lw=2 if key == "loss" else 1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=9)
