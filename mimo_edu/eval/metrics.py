"""Metrics for grounded answers: mask overlap, answer text, and term grounding.

Pure functions on NumPy arrays or torch tensors. Conventions (as in LISA):
a mask pair that is empty on both sides scores Dice = IoU = 1; gIoU is the mean
of per-sample IoU, cIoU the total intersection over the total union.

Answers are compared after `normalize_answer`: the grounding markers `[SEG]`,
`<p>`, `</p>` are removed, the text is lower-cased, punctuation becomes space
and runs of space collapse. So "Yes, a <p>cyst</p> [SEG]." matches "yes a cyst".
"""

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from mimo_edu.data.schema import PHRASE_END, PHRASE_START, SEG_TOKEN
from mimo_edu.errors import DataError

MarkerRE = re.compile("|".join(re.escape(m) for m in (SEG_TOKEN, PHRASE_START, PHRASE_END)))


def as_bool_mask(mask: np.ndarray | torch.Tensor, name: str = "mask") -> np.ndarray:
    """A boolean NumPy array from a bool/0-1 array or tensor."""
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise DataError(f"{name}: values must be boolean or 0/1, got {np.unique(mask)[:5]}. Threshold it first.")
        mask = mask.astype(bool)
    return mask


def intersection_union(pred, target) -> tuple[int, int]:
    """|pred & target| and |pred | target| of two masks of the same shape."""
    pred, target = as_bool_mask(pred, "predicted mask"), as_bool_mask(target, "target mask")
    if pred.shape != target.shape:
        raise DataError(
            f"predicted mask has shape {pred.shape} but its target has {target.shape}; "
            "resize the prediction to the image size before scoring."
        )
    return int(np.logical_and(pred, target).sum()), int(np.logical_or(pred, target).sum())


def iou(pred, target) -> float:
    """Intersection over union; 1.0 when both masks are empty."""
    inter, union = intersection_union(pred, target)
    return 1.0 if union == 0 else inter / union


def dice(pred, target) -> float:
    """2|A&B| / (|A|+|B|); 1.0 when both masks are empty."""
    inter, union = intersection_union(pred, target)
    total = inter + union  # |A| + |B| = |A&B| + |A|B|
    return 1.0 if total == 0 else 2 * inter / total


def giou(preds: Sequence, targets: Sequence) -> float:
    """Mean of per-pair IoU (LISA's gIoU)."""
    return float(np.mean([iou(p, t) for p, t in zip(preds, targets, strict=True)]))


def ciou(preds: Sequence, targets: Sequence) -> float:
    """Cumulative IoU: total intersection over total union; 1.0 when all are empty."""
    inter = union = 0
    for p, t in zip(preds, targets, strict=True):
        i, u = intersection_union(p, t)
        inter, union = inter + i, union + u
    return 1.0 if union == 0 else inter / union


def normalize_answer(text: str) -> str:
    """Answer text without grounding markers, lower-case, punctuation-free, single-spaced."""
    text = MarkerRE.sub(" ", text).lower()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def exact_match(pred: str, reference: str) -> float:
    """1.0 when the normalised answers are equal, else 0.0."""
    return float(normalize_answer(pred) == normalize_answer(reference))


def token_f1(pred: str, reference: str) -> float:
    """F1 of the normalised answers' word multisets (SQuAD style); 1.0 when both are empty."""
    p, r = normalize_answer(pred).split(), normalize_answer(reference).split()
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def grounding_hits(terms: Sequence[str], masks: Sequence, ref_terms: Sequence[str], ref_masks: Sequence,
                   min_iou: float = 0.5) -> list[bool]:
    """For each predicted (term, mask): does the mask cover the structure the term names?

    A term counts as grounded when a reference term has the same normalised name
    and the two masks overlap with IoU >= min_iou. Each reference is used once.
    An empty term (a bare `[SEG]`, as in "Sure, [SEG].") names nothing and is skipped.
    """
    unused = list(range(len(ref_terms)))
    hits = []
    for term, mask in zip(terms, masks, strict=True):
        if not normalize_answer(term):
            continue
        match = next((j for j in unused if normalize_answer(ref_terms[j]) == normalize_answer(term)), None)
        hit = match is not None and iou(mask, ref_masks[match]) >= min_iou
        if match is not None:
            unused.remove(match)
        hits.append(hit)
    return hits


Z95 = 1.959964  # standard normal quantile of a two-sided 95 % interval


def wilson_interval(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion hits / n (sound near 0 and 1, unlike mean +- 2 SE)."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def mean_interval(values: Sequence[float], z: float = Z95) -> tuple[float, float]:
    """95 % normal-approximation interval of a mean: mean +- z * SD / sqrt(n) (n >= 2)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return (float("nan"), float("nan"))
    half = z * v.std(ddof=1) / np.sqrt(len(v))
    return (float(v.mean() - half), float(v.mean() + half))
