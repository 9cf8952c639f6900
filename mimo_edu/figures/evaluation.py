"""Figures for notebooks 06 and 07: metric tables, modality x task maps, graded answers, ablations.

Each helper keeps a notebook cell short and reads evaluate's report or the model's answers; the graded
panels put the generator's truth beside what the model said.
"""

import re

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from mimo_edu.data.draw import overlay_masks
from mimo_edu.data.schema import TASKS, Sample
from mimo_edu.figures.data import colour, show_prompt, show_sample, wrap_text


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
    grid, _, modalities = _grid(samples, key)
    return grid, modalities


def modality_task_counts(samples: list[dict], key: str) -> np.ndarray:
    """(modality x task) number of samples behind each cell of `modality_task_grid` (those with a `key` value)."""
    return _grid(samples, key)[1]


def _grid(samples: list[dict], key: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    modalities = sorted({s["modality"] for s in samples})
    grid = np.full((len(modalities), len(TASKS)), np.nan)
    counts = np.zeros((len(modalities), len(TASKS)), int)
    for i, modality in enumerate(modalities):
        for j, task in enumerate(TASKS):
            values = [s[key] for s in samples if s["modality"] == modality and s["task"] == task and s[key] is not None]
            counts[i, j] = len(values)
            if values:
                grid[i, j] = np.mean(values)
    return grid, counts, modalities


def plot_modality_task_grid(ax, grid: np.ndarray, modalities: list[str], title: str,
                            counts: np.ndarray | None = None):
    """A (modality x task) heat map with a colorbar, the value and (with `counts`) the n of each cell written in it.

    NaN cells (no sample) are grey. Returns the image. Sized for two maps side by side in a 10-inch-wide figure.
    """
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#cccccc")
    im = ax.imshow(np.ma.masked_invalid(grid), vmin=0, vmax=1, cmap=cmap, aspect="auto")
    ax.figure.colorbar(im, ax=ax, fraction=0.08, pad=0.03).ax.tick_params(labelsize=9)
    ax.set_xticks(range(len(TASKS)), TASKS, rotation=30, fontsize=9)
    ax.set_yticks(range(len(modalities)), modalities, fontsize=9)
    for (i, j), v in np.ndenumerate(grid):
        text = "-" if np.isnan(v) else f"{v:.2f}"
        if counts is not None:
            text += f"\nn={counts[i, j]}"
        ax.text(j, i, text, ha="center", va="center", fontsize=9, color="w" if np.isnan(v) or v < 0.6 else "k")
    if counts is not None:
        per_cell = counts[counts > 0]
        span = f"{per_cell.min()}-{per_cell.max()}" if len(per_cell) and per_cell.min() != per_cell.max() else str(
            per_cell.max() if len(per_cell) else 0)
        title = f"{title}\n{counts.sum()} samples, n = {span} per cell"
    ax.set_title(title, fontsize=10)
    return im


def show_failure(ax, sample: Sample, answer, dice: float) -> None:
    """A sample with the model's masks instead of the reference ones, the answer it gave underneath."""
    shown = Sample(sample.id, sample.image, sample.modality, sample.task, sample.question,
                   f"{answer.plain_text}  (ref: {sample.answer})", answer.masks, sample.visual_prompts, answer.terms)
    show_sample(ax, shown, title=f"{sample.task} · {sample.modality} · Dice {dice:.2f}")


def show_graded(ax, sample: Sample, answer, right: bool | None = None) -> bool:
    """The model's answer graded against the generator's truth, in one panel; returns whether it is right.

    Predicted masks are filled (one colour per term the model named), the true masks are outlined in white,
    the title says RIGHT or WRONG, and the model's words stand above the truth. `right` defaults to the exact
    match of the words (as `evaluate` scores them); pass your own verdict to grade otherwise.
    `show_graded_pair` draws the truth in a panel of its own, beside the prediction.
    """
    right, dice = _grade(sample, answer, right)
    ax.imshow(overlay_masks(sample.image, answer.masks))
    _outline(ax, sample)
    for prompt in sample.visual_prompts:
        show_prompt(ax, prompt)
    ax.set_title(f"{'RIGHT' if right else 'WRONG'} · {sample.task} · {sample.modality} · Dice {dice:.2f}",
                 fontsize=9, color="tab:green" if right else "tab:red", weight="bold")
    said = _plain(answer.plain_text) or "(nothing)"
    ax.set_xlabel(f"Q: {wrap_text(sample.question)}\nmodel: {wrap_text(said)}\ntruth: {wrap_text(_plain(sample.answer))}",
                  fontsize=9, loc="left")
    ax.set_xticks([])
    ax.set_yticks([])
    handles = [Patch(color=colour(k), label=f"model: {t}") for k, t in enumerate(answer.terms)]
    handles.append(Line2D([], [], color="white", ls="--", label="true mask (outline)"))
    _legend(ax, handles)
    return right


def show_graded_pair(axes, sample: Sample, answer, right: bool | None = None, wrap: int = 30) -> bool:
    """The truth (left: the reference masks filled, the prompt drawn) beside the model's answer (right: its masks
    filled, the true outline dashed in white); returns whether the answer is right (as `show_graded`)."""
    right, dice = _grade(sample, answer, right)
    truth_ax, model_ax = axes
    truth_ax.imshow(overlay_masks(sample.image, sample.masks))
    model_ax.imshow(overlay_masks(sample.image, answer.masks))
    _outline(model_ax, sample)
    for ax in axes:
        for prompt in sample.visual_prompts:
            show_prompt(ax, prompt)
        ax.set_xticks([])
        ax.set_yticks([])
    truth_ax.set_title(f"truth · {sample.task} · {sample.modality}", fontsize=9)
    model_ax.set_title(f"model: {'RIGHT' if right else 'WRONG'} · Dice {dice:.2f}", fontsize=9, weight="bold",
                       color="tab:green" if right else "tab:red")
    said = _plain(answer.plain_text) or "(nothing)"
    truth_ax.set_xlabel(f"Q: {wrap_text(sample.question, wrap)}\nA: {wrap_text(_plain(sample.answer), wrap)}", fontsize=9,
                        loc="left")
    model_ax.set_xlabel(f"model: {wrap_text(said, wrap)}", fontsize=9, loc="left")
    _legend(truth_ax, [Patch(color=colour(k), label=t) for k, t in enumerate(sample.terms)])
    _legend(model_ax, [Patch(color=colour(k), label=t) for k, t in enumerate(answer.terms)])
    return right


def graded_gallery(model, dataset, groups: dict[str, list[dict]], pairs_per_row: int = 2) -> dict[str, int]:
    """Truth-and-answer pairs (`show_graded_pair`) for the samples of each group, groups side by side.

    `groups` maps a heading to scores from `evaluate(..., per_sample=True)["samples"]` (each with an
    "index" into `dataset`); the model answers each sample again. Each group takes
    `pairs_per_row // len(groups)` (at least 1) pairs per row of a 10-inch-wide figure. Returns, per group,
    how many of the shown answers are right.
    """
    per_row = max(1, pairs_per_row // len(groups))
    rows = max(1, *(-(-len(scores) // per_row) for scores in groups.values()))
    fig = plt.figure(figsize=(10, 3.7 * rows + 0.4), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(1, len(groups)))
    right = {}
    for subfig, (heading, scores) in zip(subfigs, groups.items(), strict=True):
        axes = subfig.subplots(rows, 2 * per_row, squeeze=False)
        right[heading] = 0
        for k, ax in enumerate(axes.reshape(rows * per_row, 2)):
            if k >= len(scores):
                ax[0].axis("off")
                ax[1].axis("off")
                continue
            sample = dataset[scores[k]["index"]]
            answer = model.generate(sample.image, sample.question, sample.visual_prompts)
            right[heading] += show_graded_pair(ax, sample, answer)
        subfig.suptitle(f"{heading}: {right[heading]} of {len(scores)} right", fontsize=10, weight="bold")
    plt.show()
    return right


def plot_ablations(ax, rows: dict[str, dict]) -> None:
    """Answer accuracy per task with 95 % intervals, one bar per model (`rows`: name -> an evaluate report
    with per-task "answer_acc" and "answer_acc_ci95"); n per task in the title."""
    width = 0.8 / len(rows)
    for k, (name, r) in enumerate(rows.items()):
        acc = np.array([r["per_task"][t]["answer_acc"] for t in TASKS])
        ci = np.array([r["per_task"][t]["answer_acc_ci95"] for t in TASKS])  # (tasks, 2)
        ax.bar(np.arange(len(TASKS)) + k * width, acc, width, yerr=[acc - ci[:, 0], ci[:, 1] - acc], capsize=2, label=name)
    ax.set_xticks(np.arange(len(TASKS)) + width * (len(rows) - 1) / 2, TASKS, fontsize=9)
    ax.set_ylabel("answer accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    first = next(iter(rows.values()))
    n = sorted({first["per_task"][t]["n"] for t in TASKS})
    ax.set_title(f"ablations: {first['num_samples']} test samples, n = {'-'.join(map(str, n))} per task, "
                 "bars 95 % intervals", fontsize=10)


def _grade(sample: Sample, answer, right: bool | None) -> tuple[bool, float]:
    from mimo_edu.eval.evaluate import score_sample

    score = score_sample(sample, answer.text, answer.terms, answer.masks)
    right = bool(score.exact) if right is None else bool(right)
    return right, float(np.mean(score.dices)) if score.dices else float("nan")


def _outline(ax, sample: Sample) -> None:
    for ref in sample.masks:
        if ref.any():
            ax.contour(ref, levels=[0.5], colors="white", linewidths=1.2, linestyles="--")


def _legend(ax, handles: list) -> None:
    if not handles:
        return
    leg = ax.legend(handles=handles, loc="upper right", fontsize=9, framealpha=0.8, facecolor="#555555",
                    handlelength=1.0, borderpad=0.3, labelspacing=0.2)
    for text in leg.get_texts():
        text.set_color("white")


def _plain(text: str) -> str:
    """An answer without its <p>, </p> and [SEG] markers."""
    words = " ".join(text.replace("<p>", "").replace("</p>", "").replace("[SEG]", "").split())
    return re.sub(r" ([.,;:?!])", r"\1", words)
