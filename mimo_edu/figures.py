"""Course-wide figures that are not tied to one stage (stage figures live beside their code)."""

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

# (key, label, x, y, colour): boxes of the MIMO data flow, on a 12 x 6 canvas. Grey: frozen in the MIMO stage
# (pretrained foundations, as in the paper and in nano); orange: trained in it.
_BOXES = (
    ("image", "image", 0.9, 5.0, "#dbe9f6"),
    ("prompt", "visual prompt\npoint | box | scribble", 0.9, 3.4, "#dbe9f6"),
    ("text", "question", 0.9, 1.8, "#dbe9f6"),
    ("clip", "CLIP vision\ntower (frozen)", 3.4, 5.0, "#e8e8e8"),
    ("proj", "projector", 6.0, 5.0, "#fde2c8"),
    ("penc", "visual prompt\nencoder", 3.4, 3.4, "#fde2c8"),
    ("tok", "tokenizer +\ntoken embeddings", 3.4, 1.8, "#fde2c8"),
    ("mia", "Multi-modal\nInput Aligner", 6.0, 3.4, "#fde2c8"),
    ("llm", "LLM (Llama, frozen)\n+ LoRA (trained)", 8.3, 3.4, "#fde2c8"),
    ("answer", 'answer text\n"The <p>cyst</p> [SEG]"', 10.8, 4.6, "#d5f0d5"),
    ("mlp", "[SEG] hidden\nMLP H\u2192256", 10.8, 2.6, "#fde2c8"),
    ("samenc", "SAM image\nencoder (frozen)", 6.0, 0.7, "#e8e8e8"),
    ("samdec", "SAM mask\ndecoder", 10.8, 0.7, "#fde2c8"),
)
_ARROWS = (
    ("image", "clip"), ("prompt", "penc"), ("text", "tok"), ("clip", "proj"), ("proj", "mia"), ("penc", "mia"),
    ("tok", "mia"), ("mia", "llm"), ("proj", "llm"), ("llm", "answer"), ("llm", "mlp"),
    ("mlp", "samdec"), ("samenc", "samdec"),
)
# image -> SAM encoder runs round the left margin, clear of the other inputs.
_DETOUR = ((-0.1, 5.0), (-0.35, 5.0), (-0.35, 0.7), (5.0, 0.7))


def _edge(a: tuple[float, float], b: tuple[float, float], half_w: float = 1.0, half_h: float = 0.5):
    """Where the segment from box centre `a` towards `b` leaves box `a`."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    t = min(half_w / abs(dx) if dx else float("inf"), half_h / abs(dy) if dy else float("inf"))
    return a[0] + t * dx, a[1] + t * dy


def draw_data_flow(ax: plt.Axes | None = None) -> plt.Axes:
    """Draw MIMO's data flow: inputs (blue), frozen parts (grey), parts the MIMO stage trains (orange), outputs (green).

    The LLM box is orange because LoRA trains, though its base weights stay frozen; the tokenizer is fixed,
    its token embeddings train (they hold the new tokens).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 6))
    centres = {}
    for key, label, x, y, colour in _BOXES:
        ax.add_patch(FancyBboxPatch((x - 0.95, y - 0.45), 1.9, 0.9, boxstyle="round,pad=0.05",
                                    facecolor=colour, edgecolor="#444444"))
        ax.text(x, y, label, ha="center", va="center", fontsize=9)
        centres[key] = (x, y)
    for a, b in _ARROWS:
        start, end = _edge(centres[a], centres[b]), _edge(centres[b], centres[a])
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="#555555"))
    xs, ys = zip(*_DETOUR, strict=True)
    ax.plot(xs[:-1], ys[:-1], color="#555555", lw=1)
    ax.add_patch(FancyArrowPatch(_DETOUR[-2], _DETOUR[-1], arrowstyle="-|>", mutation_scale=12, color="#555555"))
    ax.text(0.9, 5.85, "inputs", ha="center", fontsize=10, weight="bold")
    ax.text(10.8, 5.45, "outputs", ha="center", fontsize=10, weight="bold")
    ax.set_xlim(-0.5, 12)
    ax.set_ylim(0, 6)
    ax.axis("off")
    ax.set_title("MIMO: visual-referring input, pixel-grounded output")
    return ax
