"""Known, inferred, or the course's own: where each design choice of the `nano` and `paper` presets comes from.

MIMO's code is not released and its method section is only partly public, so many choices are inferences.
`provenance_table()` renders them as one markdown table, built from the configs so its numbers cannot drift;
README.md and notebook 03 show it word for word (tests/course/test_prose.py checks both).
"""

from mimo_edu.data.schema import MODALITIES, TASKS
from mimo_edu.model.config import nano_config, paper_config


def provenance_rows() -> list[tuple[str, str, str, str]]:
    """(choice, nano, paper, source) for each design choice; "[inferred]" where MIMO's paper is silent."""
    from mimo_edu.train.config import get_preset  # train imports model: import here, not at the top

    nano, paper = nano_config(), paper_config()
    tn, tp = get_preset("nano"), get_preset("paper")
    nv, pv = nano.vision, paper.vision

    def layer(i: int) -> str:
        return "last layer" if i == -1 else "second-to-last layer"

    def weights(c) -> str:
        return f"{c.ce_weight:.1f} / {c.bce_weight:.1f} / {c.dice_weight:.1f}"

    def lr(x: float) -> str:
        return f"{x:.0e}".replace("e-0", "e-")  # 3e-4

    def decay(t) -> str:
        floor = "0" if t.min_lr_ratio == 0 else f"{t.min_lr_ratio:g} x lr"
        return f"{t.warmup_steps} warmup steps, then {t.schedule} decay to {floor}"

    return [
        ("vision tower and layer",
         f"nano-CLIP, {layer(nv.select_layer)}, {nv.merge} x {nv.merge} patches merged per token",
         f"CLIP ViT-H/14, {layer(pv.select_layer)}",
         "tower: MIMO paper (ViT-H/14 as summaries of it report); layer: LLaVA, LISA [inferred]; "
         "nano's merge: this course"),
        ("projector and its start",
         "LLaVA-1.5's 2-layer MLP, trained from scratch",
         "LLaVA-1.5's 2-layer MLP, trained from scratch on text-only Vicuna v1.5",
         "LLaVA [inferred]. LISA starts from LLaVA with its trained projector; the paper names Vicuna-7B and "
         "LLaVA's projectors read CLIP ViT-L/14 features, not ViT-H/14's"),
        ("visual prompt encoder",
         f"{nano.tokens_per_prompt} tokens per prompt: a pooled region token + SAM's prompt tokens",
         f"{paper.tokens_per_prompt} tokens per prompt, as nano",
         "this course [inferred]; the region token after MedPLIB, the point tokens from SAM's prompt encoder"),
        ("Multi-modal Input Aligner",
         "gated cross-attention from the question to image and region tokens",
         "as nano",
         "its name and role: MIMO paper; its design: this course [inferred]"),
        ("answer syntax", "`<p>term</p> [SEG]`", "`<p>term</p> [SEG]`", "GLaMM [inferred]"),
        ("`[SEG]` feature",
         "mean hidden state over `<p>term</p>`",
         "the single hidden state that predicts `[SEG]`",
         "paper: LISA [inferred]; nano: this course (a tiny LLM's `</p>` state is nearly the same for every term)"),
        ("mask read back",
         "each `[SEG]`'s mask (its pieces, its half, small or large for its class) added to the LLM's input "
         "from that `[SEG]` to the next" if nano.mask_readout else "none",
         "none: the masks are decoded after the answer" if not paper.mask_readout else "as nano",
         "nano: this course (SegLLM feeds masks back into the LLM's input); MIMO's paper describes no path "
         "from the masks back to the LLM"),
        ("what the mask decoder sees",
         "SAM's image embedding, and a small CNN's features of the pixels added to its upscaled embedding"
         if nano.segmenter.pixel_features else "SAM's image embedding",
         "SAM's image embedding" if not paper.segmenter.pixel_features else "as nano",
         "SAM; nano's pixel features: this course (HQ-SAM adds early high-resolution features to SAM's "
         "mask features)"),
        ("loss of an empty target mask",
         "drawn area P costs P / (P + a lesion's least area)" if nano.empty_mask_loss else "LISA's Dice loss",
         "LISA's Dice loss: 1 whatever is drawn" if not paper.empty_mask_loss else "as nano",
         "paper: LISA [inferred]; nano: this course (a lesion found \"none\" has an empty mask)"),
        ("LoRA",
         f"rank {nano.lora_rank}, alpha {nano.lora_alpha:g}, on {' and '.join(nano.lora_targets)}",
         f"rank {paper.lora_rank}, alpha {paper.lora_alpha:g}, on {' and '.join(paper.lora_targets)}",
         "alpha: MIMO paper; rank and targets: LISA [inferred]"),
        ("loss weights (CE / BCE / Dice)", weights(nano), weights(paper),
         "paper: LISA [inferred]; nano: this course (BCE-heavy training settles on empty masks)"),
        ("optimiser and batch",
         f"AdamW lr {lr(tn.lr)}, batch {tn.batch_size}",
         f"AdamW lr {lr(tp.lr)}, global batch {tp.batch_size * tp.grad_accum * 4} on 4 GPUs, "
         f"betas {tp.betas[0]:g} / {tp.betas[1]:g}, clipping at {tp.grad_clip:g}",
         "lr and batch: MIMO paper; betas and clipping: LISA [inferred]"),
        ("learning-rate schedule",
         decay(tn),
         decay(tp),
         "paper: LISA's WarmupDecayLR [inferred]; nano: this course"),
        ("SAM input transform",
         f"stretched to {nano.segmenter.image_size} x {nano.segmenter.image_size} (the synthetic images are square)",
         f"longest side resized to {paper.segmenter.image_size}, padded; masks cropped back",
         "paper: SAM, LISA [inferred]; nano: this course"),
        ("frozen parts",
         "CLIP, SAM's image and prompt encoders, the LLM under LoRA",
         "as nano",
         "LISA [inferred] (LISA also freezes the projector, which here starts from scratch)"),
        ("data mix",
         f"MIMOSeg-synth: the {len(TASKS)} task perspectives in equal parts, {len(MODALITIES)} modalities",
         "MIMOSeg's samples in its 4 perspectives",
         "perspectives and sizes: MIMO paper; how they are mixed in training [inferred]; nano: this course"),
    ]


def provenance_table() -> str:
    """The rows as a markdown table."""
    lines = ["| design choice | `nano` | `paper` | source |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in provenance_rows()]
    return "\n".join(lines)
