"""Checks for notebook 03 (the model): the [SEG] feature, LoRA's size in the paper model, what stays frozen."""

import torch

from mimo_edu.exercises.registry import NotYet, call, register

SEG, OPEN, CLOSE = 1, 2, 3  # token ids of [SEG], <p>, </p> in the random sequences; words are 4..29


def _random_answers(g: torch.Generator, n: int = 8) -> list[torch.Tensor]:
    """Token id sequences shaped like MIMO's conversations: words, grounded phrases "<p> w.. </p> [SEG]",
    and bare "[SEG]"s as in "Sure, [SEG]."."""

    def words(lo: int, hi: int) -> list[int]:
        return torch.randint(4, 30, (int(torch.randint(lo, hi + 1, (1,), generator=g)),), generator=g).tolist()

    out = []
    for _ in range(n):
        ids = words(1, 4)
        for _ in range(int(torch.randint(1, 4, (1,), generator=g))):
            if torch.rand(1, generator=g) < 0.75:
                ids += [OPEN, *words(1, 3), CLOSE, SEG]
            else:
                ids += [*words(0, 2), SEG]
            ids += words(0, 3)
        out.append(torch.tensor(ids))
    return out


@register("03.1", "the `[SEG]` feature",
          "Write `seg_feature(hidden, ids, seg_id, open_id, close_id)`: one row per `[SEG]`, the mean hidden state of the phrase it grounds, shape (K, H).")
def verify_seg_feature(seg_feature) -> str:
    from mimo_edu.model.grounding import seg_features

    g = torch.Generator().manual_seed(3)
    for ids in _random_answers(g):
        hidden = torch.randn(len(ids), 16, generator=g)  # (L, H)
        want = seg_features(hidden[None], ids[None], SEG, OPEN, CLOSE)  # (K, H)
        got = call(seg_feature, hidden.clone(), ids.clone(), SEG, OPEN, CLOSE)
        if not isinstance(got, torch.Tensor):
            raise NotYet(f"return a tensor of shape (K, H) = {tuple(want.shape)}, not a {type(got).__name__}.")
        if tuple(got.shape) != tuple(want.shape):
            raise NotYet(f"for ids {ids.tolist()} (1 = [SEG], 2 = <p>, 3 = </p>) the result has shape "
                         f"{tuple(got.shape)}, not (K, H) = {tuple(want.shape)}: one row per [SEG].")
        if not torch.allclose(got.float(), want.float(), atol=1e-5):
            before = hidden[torch.nonzero(ids[1:] == SEG).flatten()]  # LISA's rule: the state before [SEG]
            hint = ("that is LISA's rule, the state just before [SEG]; MIMO's nano averages the whole phrase. "
                    if torch.allclose(got.float(), before, atol=1e-5) else "")
            raise NotYet(f"the features differ for ids {ids.tolist()} (1 = [SEG], 2 = <p>, 3 = </p>); {hint}"
                         "average from the phrase's <p> through the </p> just before [SEG], both included.")
    return ("Your [SEG] features equal mimo_edu.model.grounding.seg_features on 8 random answers: "
            "this mean is what the grounding MLP turns into SAM's prompt.")


@register("03.2", "counting LoRA parameters",
          "Write `lora_params(r)`: count the entries of A and B, per layer and per adapted projection.")
def verify_lora_params(lora_params, paper_counts=None) -> str:
    if paper_counts is None:
        from mimo_edu.model import build_mimo

        paper_counts = build_mimo("paper", device="meta").parameter_counts()
    lora = paper_counts["lora"][0]
    for r, want in ((8, lora), (16, 2 * lora), (1, lora // 8)):
        got = call(lora_params, r)
        if got != want:
            raise NotYet(f"lora_params({r}) gave {got!r}, the paper model has {want:,} at rank {r}: "
                         "per layer and target, A has r * in and B has out * r parameters.")
    return f"rank 8 adds {lora:,} parameters, {lora / 6.74e9:.2%} of the LLM."


@register("03.3", "what stays frozen?",
          "Write `frozen_parts(counts)`: the parts whose trainable count is 0, in the order of `counts`.")
def verify_frozen_parts(frozen_parts, paper_counts=None) -> str:
    if paper_counts is None:
        from mimo_edu.model import build_mimo

        paper_counts = build_mimo("paper", device="meta").parameter_counts()
    toy = {"a": (10, 0), "b": (5, 5), "c": (7, 3), "d": (2, 0)}
    for counts in (paper_counts, toy):
        want = [part for part, (_, trainable) in counts.items() if trainable == 0]
        got = call(frozen_parts, counts)
        if list(got) != want:
            raise NotYet(f"for {dict(counts)} you listed {list(got)}; a part is frozen when its trainable "
                         "count is 0 (a partly trained part is not frozen).")
    return "CLIP and SAM's encoders are frozen; the decoder, the new modules and LoRA train."
