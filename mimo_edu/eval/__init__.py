"""Evaluation: mask, answer and grounding metrics, per task and per modality."""

from mimo_edu.eval.evaluate import aggregate, evaluate, headline, score_sample
from mimo_edu.eval.metrics import (
    ciou,
    dice,
    exact_match,
    giou,
    grounding_hits,
    iou,
    normalize_answer,
    token_f1,
)

__all__ = [
    "aggregate", "ciou", "dice", "evaluate", "exact_match", "giou", "grounding_hits", "headline", "iou",
    "normalize_answer", "score_sample", "token_f1",
]
