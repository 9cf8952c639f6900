"""Evaluate a MIMO on a dataset: answers, masks and grounding, per task and per modality.

    report = evaluate(model, MIMOSegSynth(200, seed=split_seed("test")))
    report["per_task"]["seg"]["dice"]

Each sample is answered with `model.generate(image, question, visual_prompts)`.
The k-th predicted mask is scored against the k-th reference mask (the order of
`[SEG]` in the answer); a missing prediction counts as an empty mask, extra
predictions lower `mask_count_acc`. Metrics a group cannot have (no masks in
it) are None, i.e. null in JSON.

Per group: answer_acc (exact match after `normalize_answer`: markers, case and
punctuation ignored), token_f1, dice and iou (mean over reference masks), giou
(mean per-sample IoU), ciou (pooled), grounding_acc (share of named predicted
terms whose mask has IoU >= min_iou with the reference mask of that term) and
mask_count_acc (one predicted mask per reference mask). answer_acc_ci95 is the 95 % Wilson interval of
answer_acc, dice_ci95 the 95 % normal-approximation interval of the mean Dice over reference masks.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mimo_edu.data.scenes import STRUCTURES
from mimo_edu.data.schema import Sample
from mimo_edu.eval.metrics import (
    as_bool_mask,
    dice,
    exact_match,
    grounding_hits,
    intersection_union,
    iou,
    mean_interval,
    token_f1,
    wilson_interval,
)


@dataclass
class SampleScore:
    """The scores of one answered sample."""

    task: str
    modality: str
    exact: float
    f1: float
    dices: list[float] = field(default_factory=list)  # per reference mask
    ious: list[float] = field(default_factory=list)
    inter: int = 0  # summed over the reference masks, for cIoU
    union: int = 0
    grounded: list[bool] = field(default_factory=list)  # per predicted term
    count_ok: bool = True


def _resize(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a (H, W) mask to `shape`."""
    if mask.shape == shape:
        return mask
    t = torch.from_numpy(mask)[None, None].float()
    return F.interpolate(t, size=shape, mode="nearest")[0, 0].bool().numpy()


def score_sample(sample: Sample, text: str, terms: Sequence[str], masks, min_iou: float = 0.5) -> SampleScore:
    """Score one generated answer (text, terms, masks (K', H', W')) against its reference sample."""
    refs = as_bool_mask(sample.masks, f"sample {sample.id} masks")  # (K, H, W)
    preds = [_resize(m, refs.shape[1:]) for m in as_bool_mask(masks, f"prediction for {sample.id}")]  # K' x (H, W)
    score = SampleScore(sample.task, sample.modality, exact_match(text, sample.answer), token_f1(text, sample.answer),
                        count_ok=len(preds) == len(refs))
    for k, ref in enumerate(refs):
        pred = preds[k] if k < len(preds) else np.zeros_like(ref)
        score.dices.append(dice(pred, ref))
        score.ious.append(iou(pred, ref))
        inter, union = intersection_union(pred, ref)
        score.inter, score.union = score.inter + inter, score.union + union
    n = min(len(terms), len(preds))
    score.grounded = grounding_hits(terms[:n], preds[:n], sample.terms, list(refs), min_iou)
    return score


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return float(np.mean(values)) if values else None


def aggregate(scores: Sequence[SampleScore]) -> dict:
    """Answer accuracy, token F1, Dice, IoU, gIoU, cIoU and grounding over a group of samples."""
    ious = [v for s in scores for v in s.ious]
    total_union = sum(s.union for s in scores)
    hits = [h for s in scores for h in s.grounded]
    dices = [v for s in scores for v in s.dices]
    return {
        "n": len(scores),
        "answer_acc": _mean(s.exact for s in scores),
        "answer_acc_ci95": wilson_interval(int(sum(s.exact for s in scores)), len(scores)) if scores else None,
        "dice_ci95": mean_interval(dices) if len(dices) > 1 else None,
        "token_f1": _mean(s.f1 for s in scores),
        "dice": _mean(v for s in scores for v in s.dices),
        "iou": _mean(ious),
        "giou": _mean(np.mean(s.ious) for s in scores if s.ious),  # per-sample IoU, averaged
        "ciou": None if not ious else sum(s.inter for s in scores) / total_union if total_union else 1.0,
        "grounding_acc": _mean(hits),
        "mask_count_acc": _mean(s.count_ok for s in scores),
    }


@torch.no_grad()
def evaluate(model, dataset, max_samples: int | None = None, progress: bool = False, min_iou: float = 0.5,
             use_prompts: bool = True, per_sample: bool = False) -> dict:
    """Generate an answer for each sample and report metrics overall, per task and per modality.

    `use_prompts=False` is the ablation without visual prompts: questions stay, prompts are dropped.
    `per_sample=True` adds "samples": each sample's index, task, modality, exact match and mean Dice.
    """
    n = len(dataset) if max_samples is None else min(max_samples, len(dataset))
    was_training = model.training
    model.eval()
    scores = []
    for i in tqdm(range(n), desc="evaluate", disable=not progress):
        sample = dataset[i]
        answer = model.generate(sample.image, sample.question, sample.visual_prompts if use_prompts else ())
        scores.append(score_sample(sample, answer.text, answer.terms, answer.masks, min_iou))
    model.train(was_training)
    by_task, by_modality = defaultdict(list), defaultdict(list)
    for s in scores:
        by_task[s.task].append(s)
        by_modality[s.modality].append(s)
    report = {
        "num_samples": n,
        "overall": aggregate(scores),
        "per_task": {k: aggregate(v) for k, v in sorted(by_task.items())},
        "per_modality": {k: aggregate(v) for k, v in sorted(by_modality.items())},
    }
    if per_sample:
        report["samples"] = [
            {"index": i, "task": s.task, "modality": s.modality, "exact": s.exact, "dice": _mean(s.dices)}
            for i, s in enumerate(scores)
        ]
    return report


def headline(report: dict) -> dict[str, float]:
    """The few numbers worth a line in the training log: per-task answer accuracy and Dice."""
    out = {}
    for task, m in report["per_task"].items():
        for key in ("answer_acc", "dice"):
            if m[key] is not None:
                out[f"{task}/{key}"] = round(m[key], 4)
    return out


@torch.no_grad()
def named_without_prompts(model, samples: Iterable[Sample]) -> dict:
    """What the model names when each sample's visual prompts are dropped (as `evaluate(use_prompts=False)`):
    the term before each answer's first [SEG] ("(none)" without one), counted, with how many are the
    sample's first true term and how many are not a structure of the sample's modality at all."""
    was_training = model.training
    model.eval()
    named, right, foreign, n = Counter(), 0, 0, 0
    for sample in samples:
        terms = model.generate(sample.image, sample.question, ()).terms
        term = terms[0] if terms else "(none)"
        named[term] += 1
        right += term == sample.terms[0]
        foreign += term not in {s.name for s in STRUCTURES[sample.modality]}
        n += 1
    model.train(was_training)
    return {"n": n, "right": right, "not_in_modality": foreign, "named": named}
