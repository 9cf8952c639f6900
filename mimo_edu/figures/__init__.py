"""The course's figures, one module per group of notebooks; the only place that imports matplotlib.

    welcome      00  MIMO's data flow (`draw_data_flow`)
    data         01  samples, scenes and visual prompts on an Axes; shared by the modules below
    foundations  02  what the nano foundations learned: nano-CLIP's names, nano-SAM's masks, pretraining losses
    model        03, 04  token layouts, forward traces, prompt pooling, the aligner's attention
    training     05  learning rate, losses, validation curves, mask snapshots
    evaluation   06, 07  metric tables, modality x task maps, graded answers, ablations
    scaling      08  memory and step-time bars of the estimates in `mimo_edu.scaling`

Each helper keeps a notebook cell short and changes nothing it draws. Every figure keeps its text at
9 pt or more when shown 1000 px wide (a notebook column): `smallest_text_pt` measures it, and
tests/figures/test_figures.py checks it.
"""

import matplotlib.pyplot as plt


def smallest_text_pt(fig: plt.Figure, width_px: int = 1000) -> float:
    """The smallest font size (pt) of any visible text in `fig` once the figure is shown `width_px` wide.

    A figure `w` inches wide is drawn at `w * dpi` pixels; shown `width_px` wide, its text scales by
    `width_px / (w * dpi)`. The course asks for at least 9 pt at 1000 px (a notebook column).
    """
    fig.canvas.draw()  # lay out legends, tick labels and titles
    scale = width_px / (fig.get_figwidth() * fig.dpi)
    sizes = [t.get_fontsize() for t in fig.findobj(plt.Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes) * min(scale, 1.0) if sizes else float("inf")
