"""The course's solutions, one function per exercise id (see mimo_edu/exercises).

Try each exercise before you read its solution here. A notebook run with the parameter `solutions = True`
puts these functions in place of the learner's (`@exercise(id, solutions)`), which is how the tests run
the course solved.
"""

import math
from collections.abc import Callable

import numpy as np
import torch

SOLUTIONS: dict[str, Callable | str] = {}  # a function per exercise, a letter per quiz question


def solves(exercise_id: str) -> Callable[[Callable], Callable]:
    def wrap(fn: Callable) -> Callable:
        if exercise_id in SOLUTIONS:
            raise ValueError(f"two solutions for exercise {exercise_id}")
        SOLUTIONS[exercise_id] = fn
        return fn

    return wrap


# ---- 01 MIMOSeg-synth -------------------------------------------------------------------------------


@solves("01.1")
def count_seg(answer: str) -> int:
    from mimo_edu.data import SEG_TOKEN

    return answer.count(SEG_TOKEN)


@solves("01.2")
def modalities_of(name: str) -> list[str]:
    from mimo_edu.data import MODALITIES, structure_names

    return [m for m in MODALITIES if name in structure_names(m)]


@solves("01.3")
def point_region(points: np.ndarray, labels: np.ndarray, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]  # (h, w) row and column of every pixel
    region = np.zeros((h, w), bool)
    for (px, py), label in zip(points, labels, strict=True):
        if label == 1:
            region |= (xx - px) ** 2 + (yy - py) ** 2 <= 2.5**2
    return region


# ---- 02 foundations ---------------------------------------------------------------------------------


@solves("02.1")
def pool_region(patches: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
    return (coverage[:, None] * patches).sum(0) / coverage.sum().clamp_min(1e-6)


# ---- 03 the model -----------------------------------------------------------------------------------


@solves("03.1")
def seg_feature(hidden: torch.Tensor, ids: torch.Tensor, seg_id: int, open_id: int, close_id: int) -> torch.Tensor:
    rows, start = [], None  # start: position of the latest <p>
    for j in range(len(ids) - 1):
        if ids[j] == open_id:
            start = j
        if ids[j + 1] == seg_id:  # hidden[j] predicts [SEG]
            s = start if ids[j] == close_id and start is not None else j
            rows.append(hidden[s:j + 1].mean(0))
    return torch.stack(rows)  # (K, H)


@solves("03.2")
def lora_params(r: int, layers: int = 32, width: int = 4096, targets: int = 2) -> int:
    return layers * targets * (r * width + width * r)  # A (r x in) and B (out x r) per layer and target


@solves("03.3")
def frozen_parts(counts: dict) -> list[str]:
    return [part for part, (_, trainable) in counts.items() if trainable == 0]


# ---- 04 visual prompts and the aligner --------------------------------------------------------------


@solves("04.1")
def covered_patches(x0: int, y0: int, x1: int, y1: int, patch: int = 8) -> list[tuple[int, int]]:
    return [(r, c) for r in range(y0 // patch, y1 // patch + 1) for c in range(x0 // patch, x1 // patch + 1)]


@solves("04.2")
def aligner_forward(aligner, embeds: torch.Tensor, visual_mask: torch.Tensor,
                    instruction_mask: torch.Tensor) -> torch.Tensor:
    b, L, _ = embeds.shape
    heads = aligner.num_heads

    def split(x):  # (B, L, dim) -> (B, heads, L, d)
        return x.view(b, L, heads, -1).transpose(1, 2)

    q = split(aligner.q_proj(aligner.norm_q(embeds)))
    kv = aligner.norm_kv(embeds)
    k, v = split(aligner.k_proj(kv)), split(aligner.v_proj(kv))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, heads, L, L)
    scores = scores.masked_fill(~visual_mask[:, None, None, :], float("-inf"))  # keys: visual tokens only
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, L, -1)  # (B, L, dim)
    out = aligner.out_proj(out) * instruction_mask[..., None].to(embeds.dtype)  # only question tokens change
    return embeds + torch.tanh(aligner.gate) * out


@solves("04.3")
def aligner_params(H: int, dim: int) -> int:
    return 2 * (2 * H) + 3 * (H * dim + dim) + (dim * H + H) + 1


# ---- 05 training ------------------------------------------------------------------------------------


@solves("05.1")
def my_lr_at(step: int, cfg) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / (cfg.max_steps - cfg.warmup_steps)
    r = cfg.min_lr_ratio
    return cfg.lr * (r + (1 - r) * (1 + math.cos(math.pi * t)) / 2)


@solves("05.2")
def dice_loss(logits: torch.Tensor, targets: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    p, t = logits.sigmoid().flatten(1), targets.flatten(1)  # (K, pixels)
    return (1 - (2 * (p * t).sum(-1) + eps) / (p.sum(-1) + t.sum(-1) + eps)).sum()


@solves("05.3")
def merge_lora(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float, r: int) -> torch.Tensor:
    return W + (alpha / r) * (B @ A)


@solves("05.4")
def global_batch_and_steps(batch_size: int, grad_accum: int, gpus: int, samples: int) -> tuple[int, int]:
    global_batch = batch_size * grad_accum * gpus
    return global_batch, math.ceil(samples / global_batch)


# ---- 06 evaluation ----------------------------------------------------------------------------------


@solves("06.1")
def dice_from_iou(j: float) -> float:
    return 2 * j / (1 + j)


@solves("06.2")
def wilson(hits: int, n: int, z: float) -> tuple[float, float]:
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@solves("06.3")
def chance_accuracy(modalities: list[str]) -> float:
    from mimo_edu.data.scenes import STRUCTURES

    return float(np.mean([1 / len(STRUCTURES[m]) for m in modalities]))


# ---- 07 interactive prompting -----------------------------------------------------------------------


@solves("07.1")
def to_image_box(bbox: dict, scale: float) -> tuple[float, float, float, float]:
    x, y = bbox["x"] / scale, bbox["y"] / scale
    return x, y, x + bbox["width"] / scale, y + bbox["height"] / scale


@solves("07.2")
def count_encoder_runs(encoder, ask, questions) -> int:
    runs = []
    hook = encoder.register_forward_hook(lambda module, inputs, output: runs.append(1))
    try:
        for question in questions:
            ask(question)
    finally:
        hook.remove()
    return len(runs)


@solves("07.3")
def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())


# ---- 08 scaling -------------------------------------------------------------------------------------


@solves("08.1")
def sequence_len(image_size: int, patch_size: int, prompts: int, text_tokens: int) -> int:
    return (image_size // patch_size) ** 2 + 6 * prompts + text_tokens


@solves("08.2")
def adam_gib(trainable: int, num_gpus: int) -> float:
    return 2 * 4 * trainable / num_gpus / 2**30


@solves("08.3")
def mfu_for_days(mfu: float, days: float, target_days: float) -> float:
    return mfu * days / target_days


# ---- 09 recap: the self-check's letters (mimo_edu/exercises/quiz.py derives each from the package) -----------

SOLUTIONS.update({"09.1": "b", "09.2": "b", "09.3": "c", "09.4": "b", "09.5": "b"})
