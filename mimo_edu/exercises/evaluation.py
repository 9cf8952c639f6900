"""Checks for notebook 06 (evaluation): Dice from IoU, the Wilson interval, chance level."""

import math

import numpy as np

from mimo_edu.exercises.registry import NotYet, call, register


def _mask_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    pred = np.zeros((6, 6), bool)
    pred[1:4, 1:4] = True
    ref = np.zeros((6, 6), bool)
    ref[2:5, 2:5] = True
    rng = np.random.default_rng(6)
    pairs = [(pred, ref), (pred, pred), (pred, ~pred)]
    pairs += [(rng.random((16, 16)) > 0.5, rng.random((16, 16)) > 0.3) for _ in range(4)]
    return pairs


@register("06.1", "Dice and IoU are tied",
          "Write `dice_from_iou(j)`: Dice expressed through IoU, using |A| + |B| = I + U.")
def verify_dice_from_iou(dice_from_iou) -> str:
    from mimo_edu.eval.metrics import dice, iou

    for p, r in _mask_pairs():
        j, want = iou(p, r), dice(p, r)
        got = call(dice_from_iou, j)
        if not np.isclose(float(got), want):
            raise NotYet(f"for IoU {j:.3f} you have {float(got):.3f}, the masks' Dice is {want:.3f}: "
                         "substitute |A| + |B| = I + U.")
    return "Dice = 2 IoU / (1 + IoU), so ranking by either is the same."


@register("06.2", "an interval round a rate",
          "Write `wilson(hits, n, z)`: Wilson's interval from the formula in the text, as (low, high).")
def verify_wilson(wilson) -> str:
    from mimo_edu.eval.metrics import Z95, wilson_interval

    for hits, n in ((0, 5), (5, 5), (3, 10), (45, 50), (120, 200), (1, 1), (0, 48), (30, 48)):
        want = wilson_interval(hits, n, Z95)
        got = call(wilson, hits, n, Z95)
        try:
            lo, hi = (float(v) for v in got)
        except (TypeError, ValueError) as err:
            raise NotYet(f"return the interval as two numbers (low, high), got {got!r}.") from err
        if math.isclose(lo, want[0], abs_tol=1e-9) and math.isclose(hi, want[1], abs_tol=1e-9):
            continue
        p, half = hits / n, Z95 * math.sqrt(hits / n * (1 - hits / n) / n)
        if math.isclose(lo, p - half, abs_tol=1e-9) and math.isclose(hi, p + half, abs_tol=1e-9):
            raise NotYet(f"that is the normal (Wald) interval p ± z SE; at {hits}/{n} it is "
                         f"[{p - half:.3f}, {p + half:.3f}], too narrow near 0 and 1. Use Wilson's centre and width.")
        raise NotYet(f"for {hits} right of {n} you have [{lo:.4f}, {hi:.4f}], wilson_interval gives "
                     f"[{want[0]:.4f}, {want[1]:.4f}]: check the centre (it moves towards 1/2) and the half-width.")
    lo, hi = wilson_interval(3, 10, Z95)
    return (f"your interval equals mimo_edu.eval.metrics.wilson_interval; 3 right of 10 is [{lo:.2f}, {hi:.2f}], "
            "so six test samples a cell say little.")


@register("06.3", "chance level",
          "Write `chance_accuracy(modalities)`: the mean chance of naming the right structure, one modality per sample.")
def verify_chance(chance_accuracy, modalities=None) -> str:
    from mimo_edu.data.scenes import STRUCTURES

    cases = [["ct"], ["fundus", "ct", "ct"], list(STRUCTURES)]
    if modalities:
        cases.insert(0, list(modalities))
    for ms in cases:
        want = float(np.mean([1 / len(STRUCTURES[m]) for m in ms]))
        got = call(chance_accuracy, list(ms))
        if not np.isclose(float(got), want):
            raise NotYet(f"for the modalities {ms[:4]}{' ...' if len(ms) > 4 else ''} you have {float(got):.3f}; "
                         "average 1 / len(STRUCTURES[m]) over the list, one term per sample.")
    if modalities:
        here = float(np.mean([1 / len(STRUCTURES[m]) for m in modalities]))
        return f"chance on these {len(modalities)} perception samples is {here:.2f}."
    return "chance is the mean of 1 / n over the samples."
