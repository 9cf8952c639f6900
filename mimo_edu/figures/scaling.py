"""Figures for notebook 08: the memory and step-time estimates of `mimo_edu.scaling` as bar charts."""

import textwrap

from mimo_edu.scaling import A800, GPU, MemoryEstimate, StepEstimate

MEMORY_COLOURS = {
    "frozen_weights": "#9aa5b1", "trainable_weights": "#3e7cb1", "autocast_copies": "#81a4cd",
    "gradients": "#f0a202", "optimizer": "#f18805", "llm_activations": "#d95d39",
    "logits": "#a23b72", "other_activations": "#c287a8", "encoder_transient": "#4c956c",
}


def plot_memory(ax, estimates: dict[str, MemoryEstimate], gpu: GPU = A800) -> None:
    """Stacked bars of memory per GPU (GiB) by kind, one bar per scenario, and the GPU's memory line."""
    labels = list(estimates)
    bottom = [0.0] * len(labels)
    for kind, colour in MEMORY_COLOURS.items():
        values = [estimates[k].gib()[kind] for k in labels]
        ax.bar([textwrap.fill(k, 18) for k in labels], values, bottom=bottom, color=colour,
               label=kind.replace("_", " "))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    for i, total in enumerate(bottom):
        ax.text(i, total + 1, f"{total:.0f}", ha="center", fontsize=9)
    ax.axhline(gpu.memory_gib, color="black", ls="--", lw=1)
    ax.text(len(labels) - 0.5, gpu.memory_gib + 1, f"{gpu.name}: {gpu.memory_gib:.0f} GiB", ha="right", fontsize=9)
    ax.set_ylabel("GiB per GPU (estimate)")
    handles, names = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], names[::-1], fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1))  # stack order


def plot_step_time(ax, step: StepEstimate) -> None:
    """Horizontal bars: seconds per step by component."""
    parts = {k: v for k, v in step.seconds_by_component().items() if v > 0}
    ax.barh(list(parts), list(parts.values()), color="#3e7cb1")
    for i, v in enumerate(parts.values()):
        ax.text(v, i, f" {v:.2f} s", va="center", fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.2 * max(parts.values()))
    ax.set_xlabel(f"seconds per step on one {step.gpu.name} at MFU {step.mfu:.2f} (estimate)")
