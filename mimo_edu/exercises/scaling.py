"""Checks for notebook 08 (scaling): the sequence length, AdamW under ZeRO-2, the utilisation behind 11 days."""

import math

from mimo_edu.exercises.registry import NotYet, call, register


def _paper(counts=None, shape=None, setup=None):
    from mimo_edu.scaling import paper_model_counts, paper_setup

    if counts is None or shape is None:
        counts, shape = paper_model_counts()
    return counts, shape, setup if setup is not None else paper_setup()


@register("08.1", "the sequence length",
          "Write `sequence_len(image_size, patch_size, prompts, text_tokens)`: image tokens + `<region>` tokens + text tokens.")
def verify_sequence_len(sequence_len, counts=None, shape=None, setup=None) -> str:
    from mimo_edu.scaling import sequence_length

    counts, shape, setup = _paper(counts, shape, setup)
    for prompts, text in ((1, setup.text_tokens), (0, 128), (3, 64)):
        want = sequence_length(shape, setup.with_(prompts_per_sample=prompts, text_tokens=text))
        got = call(sequence_len, 224, 14, prompts, text)
        if got != want:
            raise NotYet(f"with {prompts} prompt(s) and {text} text tokens you have {got!r}, the calculator {want}: "
                         "a 224 px side in 14 px patches gives 16 x 16 image tokens, plus 6 per prompt.")
    s = sequence_length(shape, setup)
    return f"s = {s} tokens per sample ({shape.image_tokens} of them image tokens)."


@register("08.2", "what ZeRO-2 leaves of AdamW",
          "Write `adam_gib(trainable, num_gpus)`: AdamW's state on one GPU, in GiB.")
def verify_adam_gib(adam_gib, counts=None, shape=None, setup=None) -> str:
    from mimo_edu.scaling import GIB, estimate_memory

    counts, shape, setup = _paper(counts, shape, setup)
    for gpus in (setup.num_gpus, 1, 8):
        want = estimate_memory(counts, shape, setup.with_(zero2=True, num_gpus=gpus)).optimizer / GIB
        got = call(adam_gib, counts.trainable(), gpus)
        if not math.isclose(float(got), want, rel_tol=1e-6):
            raise NotYet(f"on {gpus} GPU(s) you have {float(got):.3f} GiB, the calculator {want:.3f}: 8 bytes per "
                         "trained parameter, divided by the number of GPUs and by 2**30.")
    one = estimate_memory(counts, shape, setup.with_(zero2=True)).optimizer / GIB
    return f"{one:.2f} GiB per GPU instead of {one * setup.num_gpus:.2f} on {setup.num_gpus} GPUs."


@register("08.3", "the utilisation the paper's days imply",
          "Write `mfu_for_days(mfu, days, target_days)`: the MFU at which one pass takes target_days.")
def verify_mfu_for_days(mfu_for_days, counts=None, shape=None, setup=None, mfu: float = 0.35) -> str:
    from mimo_edu.scaling import A800, estimate_step

    counts, shape, setup = _paper(counts, shape, setup)
    ckpt = setup.with_(checkpointing=True)
    days = estimate_step(counts, shape, ckpt, A800, mfu).days()
    for target in (11.0, 10.0, 12.0, days * 2):
        got = float(call(mfu_for_days, mfu, days, target))
        if not 0 < got <= 1:
            raise NotYet(f"an MFU is a fraction in (0, 1]; you have {got:.3g} for {target:g} days.")
        reached = estimate_step(counts, shape, ckpt, A800, got).days()
        if not math.isclose(reached, target, rel_tol=1e-6):
            raise NotYet(f"at your MFU {got:.4f} one pass takes {reached:.2f} days, not {target:g}: days scale as "
                         "1 / MFU, so MFU_new = MFU_old * days_old / days_new.")
    m11 = mfu * days / 11
    return f"one pass in 11 days means an MFU of {m11:.3f}, {m11 / mfu:.0%} of the assumed {mfu}."
