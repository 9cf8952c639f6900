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

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from mimo_edu.data.scenes import INSIDE_HOST, lesion_named, min_area
from mimo_edu.data.tasks import side_of, size_of


class GroundingHead(nn.Module):
    """LISA's text_hidden_fcs: Linear(H, H) - ReLU - Linear(H, D), one sparse SAM prompt per `[SEG]`
    (D = SAM's prompt width, 256 in SAM); with `readout`, also the way back (`MaskReadout`)."""

    def __init__(self, llm_dim: int, prompt_dim: int = 256, readout: bool = False) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(llm_dim, llm_dim), nn.ReLU(), nn.Linear(llm_dim, prompt_dim))
        self.readout = MaskReadout(llm_dim) if readout else None

    def forward(self, seg_hidden: torch.Tensor) -> torch.Tensor:
        return self.mlp(seg_hidden)[:, None]  # (K, H) -> (K, 1, D)


MAX_COUNT = 4  # pieces counted; more read as 4
READ_PROBABILITY = 0.9  # `MIMO.generate` reads the pixels its decoder gives at least this probability
SIDES = (None, "left", "right")  # tasks.side_of's answers, in the read-out's order
SIZES = (None, "small", "large")  # None: not a lesion, or nothing drawn


def mask_summary(mask: np.ndarray, term: str = "") -> tuple[int, int, int]:
    """What a mask (H, W) bool of `term` shows, as three small integers: (pieces, side, size).

    pieces: 8-connected components of at least the least area a lesion has inside its host (`INSIDE_HOST` x
    `min_area`; smaller specks are not read), at most MAX_COUNT; side: the index in SIDES of where those
    pieces lie (`tasks.side_of`); size: the index in SIZES of their area against the size split of the
    lesion class `term` names (`tasks.size_of`), 0 for anatomy.
    """
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]  # (n,)
    keep = np.flatnonzero(sizes >= INSIDE_HOST * min_area(mask.shape[0])) + 1
    kept = np.isin(labels, keep)
    if not kept.any():
        return 0, 0, 0
    spec = lesion_named(term)
    size = SIZES.index(size_of(kept, spec)) if spec else 0
    return min(len(keep), MAX_COUNT), SIDES.index(side_of(kept)), size


class MaskReadout(nn.Module):
    """The way back from a mask to the LLM [course choice]: what each `[SEG]`'s mask shows (`mask_summary`:
    how many pieces, which half, how big for its class) becomes a vector added to the input embedding of that
    `[SEG]` and of every token after it up to the next `[SEG]` (`carry_readout`), so the words after it can
    say it. MIMO decodes its masks only after the answer; SegLLM feeds masks back into the LLM's input.
    Training reads the true masks (teacher forcing, as for the words), `MIMO.generate` the masks it has just
    predicted, where the decoder is sure (probability >= READ_PROBABILITY; with 0.5 and half a lesion's area
    as the least piece, its reading counted the lesions of 0.47 of 273 validation questions right, with these
    rules 0.60). The measuring is not learned: counting pieces, the centroid's half and the area against the
    class's size split are the rules MIMOSeg-synth's answers are written by; what the model learns is to draw
    the right mask and to say what its reading holds."""

    WORDS = {"pieces": [" 0", " 1", " 2", " 3", " 4"], "side": ["", " left", " right"], "size": ["", " small", " large"]}

    def __init__(self, llm_dim: int) -> None:
        super().__init__()
        self.pieces = nn.Embedding(MAX_COUNT + 1, llm_dim)
        self.side = nn.Embedding(len(SIDES), llm_dim)
        self.size = nn.Embedding(len(SIZES), llm_dim)
        for table in (self.pieces, self.side, self.size):
            nn.init.zeros_(table.weight)

    @torch.no_grad()
    def start_as_words(self, embeddings: nn.Embedding, tokenizer) -> None:
        """Each row starts as the mean token embedding of the word that says it (" 2", " left", " small"),
        the empty readings at zero [course choice]: the answer then has only to repeat a word it already
        reads, as new tokens are often started from related words' embeddings."""
        for name, words in self.WORDS.items():
            table = getattr(self, name)
            for row, word in enumerate(words):
                if word:
                    ids = torch.tensor(tokenizer.encode(word, add_special_tokens=False), device=table.weight.device)
                    table.weight[row] = embeddings(ids).mean(0).to(table.weight.dtype)

    def forward(self, masks: torch.Tensor, terms: list[str]) -> torch.Tensor:
        """masks (K, H, W) bool and the K terms they ground -> (K, H_llm), one vector per mask."""
        summary = [mask_summary(m, t) for m, t in zip(masks.cpu().numpy(), terms, strict=True)]
        index = torch.tensor(summary, dtype=torch.long, device=self.pieces.weight.device).view(-1, 3)  # (K, 3)
        return self.pieces(index[:, 0]) + self.side(index[:, 1]) + self.size(index[:, 2])


def carry_readout(is_seg: torch.Tensor, read: torch.Tensor) -> torch.Tensor:
    """is_seg (B, L) bool, read (K, H) one read-out per `[SEG]` in reading order -> (B, L, H): at each position the
    read-out of the latest `[SEG]` at or before it in its row, zero before the row's first `[SEG]`."""
    if not len(read):
        return read.new_zeros(*is_seg.shape, read.shape[-1])
    seen = is_seg.long().cumsum(1)  # (B, L): [SEG]s so far in the row, this one included
    before = F.pad(is_seg.sum(1).cumsum(0), (1, 0))[:-1]  # (B,): [SEG]s in the rows above
    index = (before[:, None] + seen - 1).clamp(min=0)  # (B, L)
    return torch.where((seen > 0)[..., None], read[index], 0.0)


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


def empty_mask_loss(logits: torch.Tensor, area: float) -> torch.Tensor:
    """The Dice term of masks whose target is empty (a lesion found "none"), summed over them: (K, H, W) -> ().

    Dice is undefined there, and LISA's loss is 1 whatever is drawn, so nothing teaches the decoder to draw
    nothing. Here a drawn soft area of P pixels costs P / (P + area): 0 for an empty drawing, 0.5 for a piece
    of `area` pixels (a Dice of 0.5), towards 1 for more [course choice].
    """
    drawn = logits.sigmoid().flatten(1).sum(-1)  # (K,)
    return (drawn / (drawn + area)).sum()
