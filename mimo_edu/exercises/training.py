"""Checks for notebook 05 (training): the learning-rate schedule, the Dice loss, LoRA's merged weight,
the paper's global batch."""

import math

import torch
from torch import nn

from mimo_edu.exercises.registry import NotYet, call, register


@register("05.1", "the learning rate at a step",
          "Write `my_lr_at(step, cfg)`: the warmup formula before cfg.warmup_steps, the cosine one from there on.")
def verify_lr_at(my_lr_at, cfg=None) -> str:
    from mimo_edu.train import get_preset, lr_at

    # the paper preset's warmup and length, under the cosine decay asked for (the preset itself decays linearly)
    for c in (cfg or get_preset("nano"), get_preset("paper", schedule="cosine")):
        w, m = c.warmup_steps, c.max_steps
        for step in sorted({0, w // 2, w - 1, w, (w + m) // 2, 240 % m, m - 1}):
            got, want = call(my_lr_at, step, c), lr_at(step, c)
            if not math.isclose(float(got), want, rel_tol=1e-6):
                phase = "warmup" if step < w else "cosine decay"
                raise NotYet(f"at step {step} ({phase}, warmup_steps {w}, max_steps {m}) you have {float(got):.4e}, "
                             f"the trainer uses {want:.4e}; re-read the formula for this phase.")
    c = cfg or get_preset("nano")
    return f"your schedule matches lr_at; nano's lr at step 240 is {lr_at(240, c):.2e}."


def _dice(logits: torch.Tensor, targets: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    probs, targets = logits.flatten(1), targets.flatten(1)
    return (1 - (2 * (probs * targets).sum(-1) + eps) / (probs.sum(-1) + targets.sum(-1) + eps)).sum()


@register("05.2", "the Dice loss",
          "Write `dice_loss(logits, targets)`: the soft Dice loss of the text, one number for all K masks.")
def verify_dice_loss(dice_loss) -> str:
    from mimo_edu.model.grounding import mask_dice_loss

    g = torch.Generator().manual_seed(5)
    for k, side in ((3, 16), (1, 64), (5, 8)):
        logits = torch.randn(k, side, side, generator=g) * 3
        targets = (torch.rand(k, side, side, generator=g) > 0.6).float()
        targets[:, side // 2, side // 2] = 1.0  # never an empty mask
        want = mask_dice_loss(logits, targets)
        got = call(dice_loss, logits.clone(), targets.clone())
        got = torch.as_tensor(got, dtype=torch.float32)
        if got.numel() != 1:
            raise NotYet(f"the loss must be one number, not a tensor of shape {tuple(got.shape)}: sum over the masks.")
        if torch.allclose(got, want, atol=1e-4):
            continue
        if k > 1 and torch.allclose(got, want / k, atol=1e-4):
            raise NotYet("you averaged over the masks; MIMO's loss sums over them (each [SEG] counts once).")
        if torch.allclose(got, _dice(logits, targets), atol=1e-4):
            raise NotYet("the Dice loss compares probabilities with the masks: apply logits.sigmoid() first.")
        if torch.allclose(got, k - want, atol=1e-4):
            raise NotYet("that is the Dice score; the loss is 1 - Dice per mask.")
        raise NotYet(f"for {k} masks of {side} x {side} you have {got.item():.5f}, mask_dice_loss gives {want.item():.5f}: "
                     "per mask, sum over its pixels only (flatten(1), then .sum(-1)).")
    return ("your Dice loss equals mimo_edu.model.grounding.mask_dice_loss on random masks "
            "(LISA's, which divides by 1000 inside to keep half-precision sums in range).")


class _OneLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def _peft_case(r: int, alpha: int, seed: int):
    """(W, A, B, peft's merged weight) of a Linear(12, 10) with a LoRA of rank r whose B is random."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    model = get_peft_model(_OneLayer(), LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"], lora_dropout=0.0))
    layer = model.base_model.model.proj
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_()  # B starts at zero; a trained B is not
    W = layer.base_layer.weight.detach().clone()
    A, B = layer.lora_A["default"].weight.detach().clone(), layer.lora_B["default"].weight.detach().clone()
    merged = model.merge_and_unload().proj.weight.detach()
    return W, A, B, merged


@register("05.3", "LoRA's merged weight",
          "Write `merge_lora(W, A, B, alpha, r)`: the weight the adapted layer computes with, as one matrix.")
@torch.no_grad()
def verify_merge_lora(merge_lora) -> str:
    for seed, (r, alpha) in enumerate(((4, 8), (8, 8), (2, 16))):
        W, A, B, merged = _peft_case(r, alpha, seed)
        got = call(merge_lora, W.clone(), A.clone(), B.clone(), alpha, r)
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(W.shape):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise NotYet(f"return a weight of W's shape {tuple(W.shape)} (out x in), not {shape}.")
        if torch.allclose(got, merged, atol=1e-5):
            continue
        if torch.allclose(got, W + B @ A, atol=1e-5):
            raise NotYet(f"peft scales the update by alpha / r ({alpha} / {r} here); you left the scale out.")
        if torch.allclose(got, W + (r / alpha) * (B @ A), atol=1e-5):
            raise NotYet("the scale is alpha / r, not r / alpha.")
        raise NotYet(f"at rank {r}, alpha {alpha} your weight differs from peft's merged one: W + (alpha / r) * B @ A, "
                     "with B (out x r) first.")
    return ("your merge equals peft's merge_and_unload() at three ranks: after training, LoRA folds into W and "
            "costs nothing at inference.")


@register("05.4", "the paper's global batch",
          "Write `global_batch_and_steps(batch_size, grad_accum, gpus, samples)`: the pair (samples per optimiser step, steps per pass).")
def verify_global_batch(global_batch_and_steps, paper=None) -> str:
    from mimo_edu.train import get_preset

    paper = paper or get_preset("paper")
    cases = ((paper.batch_size, paper.grad_accum, 4, 895_000), (8, 2, 2, 1000), (4, 3, 8, 50))
    for bs, accum, gpus, samples in cases:
        got = call(global_batch_and_steps, bs, accum, gpus, samples)
        want = (bs * accum * gpus, math.ceil(samples / (bs * accum * gpus)))
        try:
            got = tuple(int(v) for v in got)
        except (TypeError, ValueError) as err:
            raise NotYet(f"return two numbers (global batch, steps), got {got!r}.") from err
        if got != want:
            raise NotYet(f"for batch {bs}, accumulation {accum}, {gpus} GPUs and {samples:,} samples you have {got}; "
                         "multiply the three factors, then divide the samples by it and round up.")
    global_batch = paper.batch_size * paper.grad_accum * 4
    steps = math.ceil(895_000 / global_batch)
    return f"{global_batch} samples per step, {steps:,} steps per pass (the paper preset's max_steps is {paper.max_steps:,})."
