"""The figure of notebook 00: MIMO's data flow, boxes coloured by what the MIMO stage trains."""

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

# What each kind of box means, and how it is drawn: (face colour, hatch, legend label).
KINDS = {
    "input": ("#dbe9f6", "", "input"),
    "frozen": ("#e8e8e8", "", "frozen in the MIMO stage (pretrained foundation)"),
    "trained": ("#fdd0a2", "", "trained in the MIMO stage"),
    "partly": ("#e8e8e8", "////", "frozen base weights, trained LoRA, embeddings and LM head"),
    "output": ("#d5f0d5", "", "output"),
}
# (key, label, x, y, kind): the boxes of MIMO's data flow on a 12.5 x 7 canvas. The kinds follow what the
# nano model trains (MIMOConfig.trainable, MIMO.parameter_counts); the paper freezes and trains the same
# parts. tests/figures/test_figures.py checks the kinds against nano's parameter counts through DATA_FLOW_PARTS.
_BOXES = (
    ("image", "image", 0.9, 6.2, "input"),
    ("question", "question", 0.9, 4.7, "input"),
    ("prompt", "visual prompt\npoint | box | scribble", 0.9, 3.2, "input"),
    ("clip", "CLIP vision\ntower", 3.4, 6.2, "frozen"),
    ("tok", "tokenizer \u2192\ntoken embeddings", 3.4, 4.7, "trained"),
    ("penc", "visual prompt\nencoder \u2192\n<region> tokens", 3.4, 3.2, "trained"),
    ("regmask", "SAM prompt\nencoder + region\ndecoder", 3.4, 1.85, "frozen"),
    ("proj", "projector", 6.0, 6.2, "trained"),
    ("mia", "Multi-modal\nInput Aligner", 6.0, 4.7, "trained"),
    ("samenc", "SAM image\nencoder", 6.0, 0.7, "frozen"),
    ("llm", "LLM (Llama)\n+ LoRA", 8.5, 4.7, "partly"),
    ("seg", "[SEG] MLP on the\nphrase's mean\nhidden state", 11.0, 3.2, "trained"),
    ("maskdec", "SAM mask\ndecoder", 8.5, 0.7, "trained"),
    ("answer", 'answer text\n"The <p>cyst</p> [SEG]"', 11.0, 6.2, "output"),
    ("masks", "one mask\nper [SEG]", 11.0, 0.7, "output"),
)
DATA_FLOW_PARTS = {
    "clip": ("vision_tower",), "tok": ("llm.embed_tokens",), "penc": ("prompt_encoder",),
    "regmask": ("sam_prompt_encoder", "region_decoder"), "proj": ("projector",), "mia": ("aligner",),
    "samenc": ("sam_image_encoder",), "llm": ("llm", "lora"), "seg": ("seg_head",), "maskdec": ("mask_decoder",),
}
"""Box -> the parts of MIMO (config.PARTS, the rows of MIMO.parameter_counts) it stands for."""
_ARROWS = (
    ("image", "clip"), ("clip", "proj"), ("proj", "mia"), ("question", "tok"), ("tok", "mia"), ("prompt", "penc"),
    ("prompt", "regmask"), ("regmask", "penc"), ("samenc", "regmask"), ("penc", "mia"), ("mia", "llm"),
    ("llm", "answer"), ("llm", "seg"), ("seg", "maskdec"), ("samenc", "maskdec"), ("maskdec", "masks"),
)
# nano's prompt_masks: a prompted question's [SEG] is decoded together with the prompt's SAM tokens. Drawn from
# the SAM prompt encoder's box, above the SAM image encoder, into the mask decoder's top-left corner.
PROMPT_TO_DECODER = ((4.35, 1.85), (7.65, 1.17))
# image -> SAM image encoder runs round the left margin, clear of the other inputs.
_DETOUR = ((-0.05, 6.2), (-0.3, 6.2), (-0.3, 0.7), (5.05, 0.7))
_W, _H = 0.95, 0.45  # half width and half height of a box


def box_kinds() -> dict[str, str]:
    """Box key -> its kind ("input", "frozen", "trained", "partly", "output")."""
    return {key: kind for key, _, _, _, kind in _BOXES}


def _edge(a: tuple[float, float], b: tuple[float, float], half_w: float = _W, half_h: float = _H):
    """Where the segment from box centre `a` towards `b` leaves box `a`."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    t = min(half_w / abs(dx) if dx else float("inf"), half_h / abs(dy) if dy else float("inf"))
    return a[0] + t * dx, a[1] + t * dy


def draw_data_flow(ax: plt.Axes | None = None) -> plt.Axes:
    """Draw MIMO's data flow: inputs (blue), frozen parts (grey), parts the MIMO stage trains (orange),
    the LLM hatched (its base weights frozen, LoRA, token embeddings and LM head trained), outputs (green).

    Drawn for a 10-inch-wide figure (`figsize=(10, 5.8)`): every text is at least 9 pt at 1000 px.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 5.8))
    centres = {}
    for key, label, x, y, kind in _BOXES:
        colour, hatch, _ = KINDS[kind]
        ax.add_patch(FancyBboxPatch((x - _W, y - _H), 2 * _W, 2 * _H, boxstyle="round,pad=0.05",
                                    facecolor=colour, edgecolor="#444444", hatch=hatch))
        ax.text(x, y, label, ha="center", va="center", fontsize=9,
                bbox={"facecolor": colour, "edgecolor": "none", "pad": 1} if hatch else None)
        centres[key] = (x, y)
    for a, b in _ARROWS:
        start, end = _edge(centres[a], centres[b]), _edge(centres[b], centres[a])
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="#555555"))
    ax.add_patch(FancyArrowPatch(*PROMPT_TO_DECODER, arrowstyle="-|>", mutation_scale=12, color="#555555"))
    xs, ys = zip(*_DETOUR, strict=True)
    ax.plot(xs[:-1], ys[:-1], color="#555555", lw=1)
    ax.add_patch(FancyArrowPatch(_DETOUR[-2], _DETOUR[-1], arrowstyle="-|>", mutation_scale=12, color="#555555"))
    handles = [Patch(facecolor=c, edgecolor="#444444", hatch=h, label=label) for c, h, label in KINDS.values()]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=9, frameon=False)
    ax.set_xlim(-0.5, 12.1)
    ax.set_ylim(0.1, 6.8)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("MIMO: visual-referring input, pixel-grounded output", fontsize=11)
    return ax
