"""Checks for notebook 01 (MIMOSeg-synth): [SEG] counts, where structures live, the region a click marks."""

import numpy as np

from mimo_edu.exercises.registry import NotYet, call, register


def _samples(samples):
    if samples is None:
        from mimo_edu.data import generate_samples, split_seed

        samples = generate_samples(16, split_seed("train"))
    return samples


@register("01.1", "one mask per `[SEG]`",
          "Write `count_seg(answer)`: the number of `[SEG]` tokens in the answer string (SEG_TOKEN holds the token).")
def verify_count_seg(count_seg, samples=None) -> str:
    for s in _samples(samples):
        got = call(count_seg, s.answer)
        if got != len(s.masks):
            raise NotYet(f"count_seg gave {got!r} for {s.answer!r}, which has {len(s.masks)} masks; "
                         "count the string SEG_TOKEN in the answer.")
    if call(count_seg, "No, there is none.") != 0:
        raise NotYet("an answer without [SEG] must give 0.")
    return "Every answer has exactly one [SEG] per mask."


@register("01.2", "where does a structure live?",
          "Write `modalities_of(name)`: the modalities, in MODALITIES order, whose structure_names include `name`.")
def verify_modalities_of(modalities_of) -> str:
    from mimo_edu.data import MODALITIES, structure_names

    names = sorted({n for m in MODALITIES for n in structure_names(m)})
    for name in names:
        want = [m for m in MODALITIES if name in structure_names(m)]
        got = call(modalities_of, name)
        if list(got) != want:
            raise NotYet(f"modalities_of({name!r}) gave {list(got)}; it should list {len(want)} modalit"
                         f"{'y' if len(want) == 1 else 'ies'}, in MODALITIES order.")
    shared = [n for n in names if len([m for m in MODALITIES if n in structure_names(m)]) > 1]
    return f"Right for all {len(names)} structures; {len(shared)} of them ({', '.join(shared[:3])}, ...) occur in several modalities."


def _point_prompts(n: int = 12):
    """Point prompts (positives and negatives) on the masks of a few generated samples."""
    from mimo_edu.data import generate_samples, prompt_from_mask, split_seed

    rng = np.random.default_rng(7)
    masks = [m for s in generate_samples(6, split_seed("val")) for m in s.masks if m.any()][:n]  # "none": empty
    return [prompt_from_mask(m, "point", rng) for m in masks], masks[0].shape


@register("01.3", "the region a click marks",
          "Write `point_region(points, labels, h, w)`: a (h, w) bool array, True where a positive click's 5 px disc covers the pixel.")
def verify_point_region(point_region) -> str:
    from mimo_edu.data import prompt_region

    prompts, (h, w) = _point_prompts()
    for p in prompts:
        got = call(point_region, np.array(p.points), np.array(p.labels), h, w)
        want = prompt_region(p, h, w)
        got = np.asarray(got)
        if got.shape != (h, w):
            raise NotYet(f"the region has shape {got.shape}; return one value per pixel, shape ({h}, {w}).")
        if got.dtype != bool:
            raise NotYet(f"return a bool array (got {got.dtype}): True where the click marks the pixel.")
        if not np.array_equal(got, want):
            extra, missed = int((got & ~want).sum()), int((want & ~got).sum())
            hint = ("negative points (label 0) mark nothing. " if extra and (np.asarray(p.labels) == 0).any() else "")
            raise NotYet(f"{extra} pixels too many and {missed} missing for points {p.points.tolist()} with labels "
                         f"{p.labels.tolist()}; {hint}a pixel (x = column, y = row) is marked when "
                         "(x - px)**2 + (y - py)**2 <= 2.5**2 for a positive point (px, py).")
    return f"Your regions match prompt_region on {len(prompts)} point prompts: a 5 px disc per positive click."
