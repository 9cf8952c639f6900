"""Grounding: the hidden state that predicts each `[SEG]` becomes a SAM prompt; mask losses (LISA's)."""

import torch
import torch.nn.functional as F
from torch import nn

from mimo_edu.model.segmenter import PROMPT_DIM


class GroundingHead(nn.Module):
    """LISA's text_hidden_fcs: Linear(H, H) - ReLU - Linear(H, 256), one sparse SAM prompt per `[SEG]`."""

    def __init__(self, llm_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(llm_dim, llm_dim), nn.ReLU(), nn.Linear(llm_dim, PROMPT_DIM))

    def forward(self, seg_hidden: torch.Tensor) -> torch.Tensor:
        return self.mlp(seg_hidden)[:, None]  # (K, H) -> (K, 1, 256)


def seg_positions(input_ids: torch.Tensor, seg_id: int) -> torch.Tensor:
    """(B, L) bool: True at the positions whose next token is `[SEG]`, whose hidden state predicts it."""
    pred = torch.zeros_like(input_ids, dtype=torch.bool)
    pred[:, :-1] = input_ids[:, 1:] == seg_id
    return pred


def mask_bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-pixel BCE, averaged per mask, summed over the K masks: (K, H, W) -> ()."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(1).mean(1).sum()


def mask_dice_loss(
    logits: torch.Tensor, targets: torch.Tensor, scale: float = 1000.0, eps: float = 1e-6
) -> torch.Tensor:
    """LISA's soft Dice loss, summed over the K masks: (K, H, W) -> ()."""
    probs = logits.sigmoid().flatten(1)
    targets = targets.flatten(1)
    numerator = 2 * (probs / scale * targets).sum(-1)
    denominator = (probs / scale).sum(-1) + (targets / scale).sum(-1)
    return (1 - (numerator + eps) / (denominator + eps)).sum()
