"""Checks for notebook 02 (foundations): pooling a region, as nano-CLIP's region-text loss does."""

from typing import TYPE_CHECKING

import torch

from mimo_edu.exercises.registry import NotYet, call, register

if TYPE_CHECKING:
    from mimo_edu.foundations.clip import ClipObjective


def _clip_objective():
    from mimo_edu.foundations.paths import foundations_root
    from mimo_edu.foundations.run import load_objective

    return load_objective("clip", foundations_root() / "clip")


@register("02.1", "pool a region",
          "Write `pool_region(patches, coverage)`: the coverage-weighted mean of the patch rows, shape (C,).")
@torch.no_grad()
def verify_pool_region(pool_region, objective: "ClipObjective | None" = None, seed: int = 0) -> str:
    """`pool_region(patches (N, C), coverage (N,)) -> (C,)` against the pooling step of
    `ClipObjective.region_embeddings` (its output before the layer norm, read with a hook) on random inputs."""
    objective = objective if objective is not None else _clip_objective()
    layer_norm = objective.clip.vision_model.post_layernorm
    g = torch.Generator().manual_seed(seed)
    n, c = 64, layer_norm.normalized_shape[0]
    patches = torch.randn(n, c, generator=g)  # (N, C)
    coverage = torch.rand(n, generator=g) * (torch.rand(n, generator=g) < 0.3)  # (N,): a region over a few patches
    seen: list[torch.Tensor] = []
    hook = layer_norm.register_forward_pre_hook(lambda module, args: seen.append(args[0][0]))
    try:
        objective.region_embeddings(patches[None], coverage[None])
    finally:
        hook.remove()
    pooled = call(pool_region, patches.clone(), coverage.clone())
    if not isinstance(pooled, torch.Tensor):
        raise NotYet(f"pool_region returned {type(pooled).__name__}; return a tensor of shape (C,) = ({c},).")
    if tuple(pooled.shape) != (c,):
        raise NotYet(f"the result has shape {tuple(pooled.shape)}; sum over the patches to get ({c},).")
    if not torch.allclose(pooled.float(), seen[0], atol=1e-5):
        raise NotYet("weight each patch row by its coverage, sum over patches, divide by the total coverage.")
    empty = call(pool_region, patches.clone(), torch.zeros(n))
    if not (isinstance(empty, torch.Tensor) and torch.isfinite(empty).all()):
        raise NotYet("a region that covers nothing divides by zero; clamp the total coverage at 1e-6.")
    return "nano-CLIP's region embedding starts from this coverage-weighted mean of the patch tokens."
