"""Grounding: each `[SEG]` becomes a SAM prompt from the LLM's hidden states; mask losses.

Answers write every grounded term as `<p>term</p> [SEG]` (GLaMM's syntax [inferred: MIMO's
answer format is not public]). What the MLP reads is `MIMOConfig.seg_feature`:

- "seg_state" (paper): the single last-layer hidden state that predicts `[SEG]`, as LISA
  [inferred: MIMO's decoder is not public].
- "phrase_mean" (nano, lite) [course choice]: the mean hidden state over the phrase, `<p>`
  through `</p>` (whose state predicts `[SEG]`). The term's own tokens are in that mean, so
  even an untrained language model gives each term a distinct prompt; a tiny random-init
  model learns masks from it, while the `</p>` state alone stays nearly the same for every
  term. A `[SEG]` without a phrase ("Sure, [SEG].") uses the state that predicts it, as LISA.
"""

import torch
import torch.nn.functional as F
from torch import nn


class GroundingHead(nn.Module):
    """LISA's text_hidden_fcs: Linear(H, H) - ReLU - Linear(H, D), one sparse SAM prompt per `[SEG]`
    (D = SAM's prompt width, 256 in SAM)."""

    def __init__(self, llm_dim: int, prompt_dim: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(llm_dim, llm_dim), nn.ReLU(), nn.Linear(llm_dim, prompt_dim))

    def forward(self, seg_hidden: torch.Tensor) -> torch.Tensor:
        return self.mlp(seg_hidden)[:, None]  # (K, H) -> (K, 1, D)


def seg_positions(input_ids: torch.Tensor, seg_id: int) -> torch.Tensor:
    """(B, L) bool: True at the positions whose next token is `[SEG]`, whose hidden state predicts it."""
    pred = torch.zeros_like(input_ids, dtype=torch.bool)
    pred[:, :-1] = input_ids[:, 1:] == seg_id
    return pred


def seg_features(
    hidden: torch.Tensor,
    input_ids: torch.Tensor,
    seg_id: int,
    open_id: int,
    close_id: int,
    mode: str = "phrase_mean",
) -> torch.Tensor:
    """One feature per `[SEG]`, in reading order: hidden (B, L, H), input_ids (B, L) -> (K, H).

    "seg_state": the hidden state at the position that predicts `[SEG]` (LISA). "phrase_mean": the mean of
    the hidden states from the phrase's `<p>` to that position; that position alone when it is not a `</p>`.
    """
    at = seg_positions(input_ids, seg_id)  # (B, L)
    if mode == "seg_state":
        return hidden[at]  # (K, H), row-major: reading order
    pos = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)  # (B, L)
    last_open = torch.where(input_ids == open_id, pos, -1).cummax(1).values  # (B, L): latest <p> so far
    start = torch.where((input_ids == close_id) & (last_open >= 0), last_open, pos)  # (B, L)
    csum = F.pad(hidden.float().cumsum(1), (0, 0, 1, 0))  # (B, L + 1, H): csum[:, t] = sum of hidden[:, :t]
    b, j = at.nonzero(as_tuple=True)  # (K,), (K,) in reading order
    s = start[b, j]
    return ((csum[b, j + 1] - csum[b, s]) / (j + 1 - s)[:, None]).to(hidden.dtype)


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
