"""Checks for notebook 04 (visual prompts and the aligner): the patches a box covers, the aligner's
forward pass, the aligner's size."""

import math

import numpy as np
import torch

from mimo_edu.exercises.registry import NotYet, call, register

# Boxes (x0, y0, x1, y1) in the 128 px frame. Edges on a multiple of 8 are left out: there the rasteriser's
# sub-pixel cells reach half a pixel into the neighbouring patch, a detail this exercise does not ask about.
BOXES = ((37, 21, 70, 58), (3, 90, 20, 121), (50, 5, 61, 12), (0, 0, 127, 127), (101, 66, 126, 69))


def _nano_prompt_encoder():
    from mimo_edu.model.prompts import VisualPromptEncoder

    return VisualPromptEncoder(vision_dim=128, llm_dim=256, image_size=128, grid=16, prompt_points=4)


@register("04.1", "which patches does a box cover?",
          "Write `covered_patches(x0, y0, x1, y1)`: the (row, col) of every 8 x 8 patch the box touches, row by row.")
def verify_covered_patches(covered_patches, model=None) -> str:
    from mimo_edu.data import VisualPrompt

    encoder = model.prompt_encoder if model is not None else _nano_prompt_encoder()
    grid = encoder.grid
    sizes = []
    for box in BOXES:
        weights = encoder.region_weights(VisualPrompt("box", box=np.array(box, np.float32))).view(grid, grid)
        want = [tuple(rc) for rc in np.argwhere(weights.numpy() > 0).tolist()]
        got = [tuple(int(v) for v in rc) for rc in call(covered_patches, *box)]
        if got != want:
            raise NotYet(f"for the box {box} you listed {len(got)} patches, the model pools {len(want)}: a pixel at "
                         "(x, y) lies in patch (y // 8, x // 8); list the rows in order, and in each row the columns.")
        sizes.append(len(want))
    return f"Right for {len(BOXES)} boxes; the first, {BOXES[0]}, covers {sizes[0]} patches."


def _reference(aligner, embeds, visual_mask, instruction_mask, scale=True, mask=True, only_instruction=True):
    """The aligner's forward written out, with switches for the usual slips (to name them in the hint)."""
    b, L, _ = embeds.shape
    heads = aligner.num_heads

    def split(x):  # (B, L, dim) -> (B, heads, L, d)
        return x.view(b, L, heads, -1).transpose(1, 2)

    q = split(aligner.q_proj(aligner.norm_q(embeds)))
    kv = aligner.norm_kv(embeds)
    k, v = split(aligner.k_proj(kv)), split(aligner.v_proj(kv))
    scores = q @ k.transpose(-1, -2) / (math.sqrt(q.shape[-1]) if scale else 1.0)  # (B, heads, L, L)
    if mask:
        scores = scores.masked_fill(~visual_mask[:, None, None, :], float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, L, -1)  # (B, L, dim)
    out = aligner.out_proj(out)
    if only_instruction:
        out = out * instruction_mask[..., None].to(out.dtype)
    return embeds + torch.tanh(aligner.gate) * out


def _random_aligner(g: torch.Generator):
    from mimo_edu.model.aligner import InputAligner

    aligner = InputAligner(llm_dim=32, dim=16, num_heads=4)
    with torch.no_grad():
        for p in aligner.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        aligner.gate.fill_(0.8)  # open: at 0 the block is the identity and every answer would pass
    return aligner.eval()


@register("04.2", "the aligner's forward pass",
          "Write `aligner_forward(aligner, embeds, visual_mask, instruction_mask)` step by step as the text describes, with the aligner's own layers.")
@torch.no_grad()
def verify_aligner_forward(aligner_forward) -> str:
    g = torch.Generator().manual_seed(4)
    aligner = _random_aligner(g)
    b, L = 2, 12
    embeds = torch.randn(b, L, 32, generator=g)
    visual_mask = torch.zeros(b, L, dtype=torch.bool)
    visual_mask[0, 1:6], visual_mask[1, 2:9] = True, True  # image + region tokens
    instruction_mask = torch.zeros(b, L, dtype=torch.bool)
    instruction_mask[0, 7:11], instruction_mask[1, 9:12] = True, True  # the question
    want = aligner(embeds, visual_mask, instruction_mask)
    got = call(aligner_forward, aligner, embeds.clone(), visual_mask.clone(), instruction_mask.clone())
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape):
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise NotYet(f"return a tensor of the input's shape (B, L, H) = {tuple(want.shape)}, not {shape}.")
    if torch.allclose(got, want, atol=1e-5):
        return ("Your forward pass equals InputAligner's on random weights with the gate open: the question tokens "
                "gather the image and region tokens they attend to.")
    if torch.allclose(got, embeds, atol=1e-6):
        raise NotYet("your output equals the input. The check opens the gate (tanh(0.8) = 0.66): add "
                     "tanh(gate) * out_proj(attention) to the question tokens.")
    slips = {
        "scale the scores by 1 / sqrt(d), d = dim / num_heads, the width of one head": dict(scale=False),
        "mask the scores: a question token may attend to visual tokens only (visual_mask), -inf elsewhere": dict(mask=False),
        "only question tokens change: multiply the update by instruction_mask": dict(only_instruction=False),
    }
    for hint, switch in slips.items():
        if torch.allclose(got, _reference(aligner, embeds, visual_mask, instruction_mask, **switch), atol=1e-5):
            raise NotYet(hint + ".")
    wrong = (got - want).abs().amax(-1) > 1e-5  # (B, L)
    where = "only on question tokens" if not (wrong & ~instruction_mask).any() else "also outside the question"
    raise NotYet(f"your output differs from InputAligner's at {int(wrong.sum())} of {b * L} positions ({where}). "
                 "Check each step: norm_q for queries, norm_kv for keys and values, the head split "
                 "view(B, L, heads, d).transpose(1, 2), softmax over the keys, and the merge back before out_proj.")


@register("04.3", "count the aligner's parameters",
          "Write `aligner_params(H, dim)`: add up the parameters of the layers the text lists.")
def verify_aligner_params(aligner_params) -> str:
    from mimo_edu.model.aligner import InputAligner

    def size(H: int, dim: int) -> int:
        with torch.device("meta"):  # shapes only, no memory
            return sum(p.numel() for p in InputAligner(H, dim).parameters())

    for H, dim in ((256, 256), (4096, 1024), (48, 32)):
        want = size(H, dim)
        got = call(aligner_params, H, dim)
        if got != want:
            raise NotYet(f"aligner_params({H}, {dim}) gave {got!r}; InputAligner({H}, {dim}) has {want:,}. "
                         "Linear(a, b) has a * b + b parameters; LayerNorm(H) has 2 * H.")
    return f"nano's aligner has {size(256, 256):,} parameters, the paper's {size(4096, 1024):,}."
