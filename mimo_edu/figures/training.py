"""Figures for notebook 05: the learning-rate schedule, loss curves, validation curves, mask snapshots.

Each helper keeps a notebook cell short and reads only what training wrote (metrics.jsonl, snapshots).
"""

import numpy as np
from matplotlib.lines import Line2D

from mimo_edu.data.draw import overlay_masks
from mimo_edu.data.schema import TASKS, Sample
from mimo_edu.train.config import TrainConfig
from mimo_edu.train.trainer import lr_at

LOSS_STYLE = {"loss": ("total", "k"), "ce_loss": ("CE (answer tokens)", "tab:blue"),
              "bce_loss": ("BCE (masks)", "tab:orange"), "dice_loss": ("Dice (masks)", "tab:green")}


def plot_lr(ax, cfg: TrainConfig) -> None:
    """The learning rate at every step: linear warmup, then cfg.schedule's decay to min_lr_ratio * lr."""
    steps = np.arange(cfg.max_steps)
    ax.plot(steps + 1, [lr_at(int(s), cfg) for s in steps])
    ax.axvline(cfg.warmup_steps, ls=":", c="grey")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title(f"warmup {cfg.warmup_steps} steps, {cfg.schedule} to {cfg.min_lr_ratio:g} x lr")


def plot_losses(ax, records: list[dict]) -> None:
    """Training losses (kind "train" lines of metrics.jsonl) against step, log scale."""
    train = [r for r in records if r.get("kind") == "train"]
    steps = [r["step"] for r in train]
    for key, (label, colour) in LOSS_STYLE.items():
        ax.plot(steps, [r[key] for r in train], label=label, c=colour)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=9)


def samples_per_task(num: int, tasks: tuple[str, ...] = TASKS) -> dict[str, int]:
    """How many of the first `num` samples of a MIMOSeg-synth stream ask each task (sample i asks task i % 4)."""
    return {task: len(range(k, num, len(tasks))) for k, task in enumerate(tasks)}


def plot_val_metrics(ax, records: list[dict], eval_samples: int | None = None) -> None:
    """Validation answer accuracy (solid) and Dice (dashed) per task against step (kind "eval" lines).

    `eval_samples` (the run's `TrainConfig.eval_samples`) puts each task's n in the legend and the title:
    a rate over a handful of samples jumps from one evaluation to the next.
    """
    evals = [r for r in records if r.get("kind") == "eval"]
    steps = [r["step"] for r in evals]
    n = samples_per_task(eval_samples) if eval_samples else {}
    for k, task in enumerate(TASKS):
        colour = f"C{k}"
        for metric, style in (("answer_acc", "-"), ("dice", "--")):
            values = [r.get(f"{task}/{metric}", np.nan) for r in evals]
            if not np.all(np.isnan(values)):
                ax.plot(steps, values, style, c=colour, marker=".")
    handles = [Line2D([], [], c=f"C{k}", label=f"{task} (n = {n[task]})" if n else task) for k, task in enumerate(TASKS)]
    handles += [Line2D([], [], c="k", ls="-", label="answer accuracy"), Line2D([], [], c="k", ls="--", label="Dice")]
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("step")
    sizes = sorted(set(n.values()))
    each = f"n = {sizes[0]}" if len(sizes) == 1 else f"n = {sizes[0]}-{sizes[-1]}" if sizes else "n not given"
    ax.set_title(f"validation, {each} samples per task", fontsize=10)
    ax.legend(handles=handles, fontsize=9, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)


def show_snapshots(fig, snapshots: dict[int, dict], samples: list[Sample], max_steps_shown: int = 6) -> None:
    """One row per sample: its reference masks, then the predicted masks (p > 0.5) at several steps.

    Sized for a 10-inch-wide figure, about 2 in per row (`figsize=(10, 2 * rows)`): the text is 9 pt.
    """
    steps = sorted(snapshots)
    if len(steps) > max_steps_shown:
        steps = [steps[int(i)] for i in np.linspace(0, len(steps) - 1, max_steps_shown).round()]
    axes = fig.subplots(len(samples), len(steps) + 1, squeeze=False)
    for row, sample in enumerate(samples):
        axes[row, 0].imshow(overlay_masks(sample.image, sample.masks))
        axes[row, 0].set_title("reference", fontsize=9)
        axes[row, 0].set_ylabel("\n".join(sample.terms) or "(no mask)", fontsize=9)
        for col, step in enumerate(steps, start=1):
            probs = snapshots[step]["probs"][row]  # (K, S, S)
            axes[row, col].imshow(overlay_masks(sample.image, _resized(probs, sample.image.shape[:2]) > 0.5))
            axes[row, col].set_title(f"step {step}", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])


def _resized(probs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of (K, S, S) to (K, H, W)."""
    if probs.shape[1:] == shape:
        return probs
    rows = np.arange(shape[0]) * probs.shape[1] // shape[0]
    cols = np.arange(shape[1]) * probs.shape[2] // shape[1]
    return probs[:, rows][:, :, cols]
