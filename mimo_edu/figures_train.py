"""Figures for notebooks 05-06: loss curves, the learning-rate schedule, mask snapshots, metric tables.

Each helper keeps a notebook cell short and reads only what training and
evaluation wrote (metrics.jsonl, snapshots, evaluate's report).
"""

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from mimo_edu.data.draw import PALETTE, draw_prompt, overlay_masks
from mimo_edu.data.schema import Sample
from mimo_edu.figures_model import TASK_TITLES, _wrap, show_sample
from mimo_edu.train.config import TrainConfig
from mimo_edu.train.trainer import lr_at

LOSS_STYLE = {"loss": ("total", "k"), "ce_loss": ("CE (answer tokens)", "tab:blue"),
              "bce_loss": ("BCE (masks)", "tab:orange"), "dice_loss": ("Dice (masks)", "tab:green")}
TASKS = tuple(TASK_TITLES)


def plot_lr(ax, cfg: TrainConfig) -> None:
    """The learning rate at every step: linear warmup, then cosine decay to min_lr_ratio * lr."""
    steps = np.arange(cfg.max_steps)
    ax.plot(steps + 1, [lr_at(int(s), cfg) for s in steps])
    ax.axvline(cfg.warmup_steps, ls=":", c="grey")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title(f"warmup {cfg.warmup_steps} steps, cosine to {cfg.min_lr_ratio:g} x lr")


def plot_losses(ax, records: list[dict]) -> None:
    """Training losses (kind "train" lines of metrics.jsonl) against step, log scale."""
    train = [r for r in records if r.get("kind") == "train"]
    steps = [r["step"] for r in train]
    for key, (label, colour) in LOSS_STYLE.items():
        ax.plot(steps, [r[key] for r in train], label=label, c=colour)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)


def plot_val_metrics(ax, records: list[dict]) -> None:
    """Validation answer accuracy (solid) and Dice (dashed) per task against step (kind "eval" lines)."""
    evals = [r for r in records if r.get("kind") == "eval"]
    steps = [r["step"] for r in evals]
    for k, task in enumerate(TASKS):
        colour = f"C{k}"
        for metric, style in (("answer_acc", "-"), ("dice", "--")):
            values = [r.get(f"{task}/{metric}", np.nan) for r in evals]
            if not np.all(np.isnan(values)):
                ax.plot(steps, values, style, c=colour, marker=".", label=f"{task} {metric}")
    ax.set_ylim(0, 1)
    ax.set_xlabel("step")
    ax.set_title("validation: accuracy (solid), Dice (dashed)")
    ax.legend(fontsize=7, ncol=2)


def show_snapshots(fig, snapshots: dict[int, dict], samples: list[Sample], max_steps_shown: int = 6) -> None:
    """One row per sample: its reference masks, then the predicted masks (p > 0.5) at several steps."""
    steps = sorted(snapshots)
    if len(steps) > max_steps_shown:
        steps = [steps[int(i)] for i in np.linspace(0, len(steps) - 1, max_steps_shown).round()]
    axes = fig.subplots(len(samples), len(steps) + 1, squeeze=False)
    for row, sample in enumerate(samples):
        axes[row, 0].imshow(overlay_masks(sample.image, sample.masks))
        axes[row, 0].set_title("reference", fontsize=9)
        axes[row, 0].set_ylabel("\n".join(sample.terms) or "(no mask)", fontsize=8)
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


def metrics_table(report: dict, group: str = "per_task") -> str:
    """evaluate()'s report as a text table: one row per task (or modality), then overall."""
    keys = ("answer_acc", "token_f1", "dice", "iou", "giou", "ciou", "grounding_acc")
    lines = [f"{'':<16}{'n':>5} " + " ".join(f"{k.replace('answer_', '').replace('_acc', ''):>9}" for k in keys)]
    for name, m in {**report[group], "overall": report["overall"]}.items():
        cells = " ".join("        -" if m[k] is None else f"{m[k]:9.3f}" for k in keys)
        lines.append(f"{name:<16}{m['n']:>5} {cells}")
    return "\n".join(lines)


def modality_task_grid(samples: list[dict], key: str) -> tuple[np.ndarray, list[str]]:
    """(modality x task) means of `key` ("exact" or "dice") over evaluate(..., per_sample=True)["samples"]."""
    modalities = sorted({s["modality"] for s in samples})
    grid = np.full((len(modalities), len(TASKS)), np.nan)
    for i, modality in enumerate(modalities):
        for j, task in enumerate(TASKS):
            values = [s[key] for s in samples if s["modality"] == modality and s["task"] == task and s[key] is not None]
            if values:
                grid[i, j] = np.mean(values)
    return grid, modalities


def plot_modality_task_grid(ax, grid: np.ndarray, modalities: list[str], title: str) -> None:
    """A (modality x task) heat map with the values written in the cells (NaN: no sample)."""
    ax.imshow(np.nan_to_num(grid, nan=-1), vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(TASKS)), TASKS, rotation=30)
    ax.set_yticks(range(len(modalities)), modalities)
    for (i, j), v in np.ndenumerate(grid):
        ax.text(j, i, "-" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=8,
                color="w" if np.isnan(v) or v < 0.6 else "k")
    ax.set_title(title)


def show_failure(ax, sample: Sample, answer, dice: float) -> None:
    """A sample with the model's masks instead of the reference ones, the answer it gave underneath."""
    shown = Sample(sample.id, sample.image, sample.modality, sample.task, sample.question,
                   f"{answer.plain_text}  (ref: {sample.answer})", answer.masks, sample.visual_prompts, answer.terms)
    show_sample(ax, shown, title=f"{sample.task} · {sample.modality} · Dice {dice:.2f}")


def show_graded(ax, sample: Sample, answer, right: bool | None = None) -> bool:
    """The model's answer graded against the generator's truth; returns whether it is right.

    Predicted masks are filled (one colour per term the model named), the true masks are outlined in white,
    the title says RIGHT or WRONG, and the model's words stand above the truth. `right` defaults to the exact
    match of the words (as `evaluate` scores them); pass your own verdict to grade otherwise.
    """
    from mimo_edu.eval.evaluate import score_sample

    score = score_sample(sample, answer.text, answer.terms, answer.masks)
    right = bool(score.exact) if right is None else bool(right)
    dice = float(np.mean(score.dices)) if score.dices else float("nan")
    ax.imshow(overlay_masks(sample.image, answer.masks))
    for ref in sample.masks:
        if ref.any():
            ax.contour(ref, levels=[0.5], colors="white", linewidths=1.2, linestyles="--")
    for prompt in sample.visual_prompts:
        draw_prompt(ax, prompt)
    ax.set_title(f"{'RIGHT' if right else 'WRONG'} · {sample.task} · {sample.modality} · Dice {dice:.2f}",
                 fontsize=9, color="tab:green" if right else "tab:red", weight="bold")
    said = _plain(answer.plain_text) or "(nothing)"
    ax.set_xlabel(f"Q: {_wrap(sample.question)}\nmodel: {_wrap(said)}\ntruth: {_wrap(_plain(sample.answer))}",
                  fontsize=8, loc="left")
    ax.set_xticks([])
    ax.set_yticks([])
    handles = [Patch(color=PALETTE[k % len(PALETTE)] / 255.0, label=f"model: {t}") for k, t in enumerate(answer.terms)]
    handles.append(Line2D([], [], color="white", ls="--", label="true mask (outline)"))
    leg = ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.8, facecolor="#555555")
    for text in leg.get_texts():
        text.set_color("white")
    return right


def _plain(text: str) -> str:
    """An answer without its <p>, </p> and [SEG] markers."""
    return " ".join(text.replace("<p>", "").replace("</p>", "").replace("[SEG]", "").split())
