"""Visual prompt encoder: points, boxes and scribbles -> `<region>` tokens.

The course's own design [inferred]: MIMO's paper says the model takes visual
prompts, not how it encodes them. The region token follows MedPLIB, the sparse
tokens reuse SAM's prompt encoder; the six tokens per prompt (nano and paper:
`prompt_points=4`) are this course's choice.

Each prompt becomes `tokens_per_prompt` tokens in the LLM input:

1. one *region* token (MedPLIB): CLIP patch tokens mean-pooled over a region,
   weighted by how much of each patch the region covers, and projected to the
   LLM width. The region is either the prompt itself, rasterised (box -> its
   area, points -> a disk round each positive point, scribble -> the stroke;
   `region_source="prompt"`), or the mask the pretrained nano-SAM predicts for
   the prompt (`region_source="sam"`, the nano default), so that a box over a
   kidney pools the kidney and not its neighbours (Osprey and MedPLIB pool
   region features over a mask) [course choice]. The region's size and centroid
   (`geometry`) join the pooled feature, since pooling keeps what and loses how big;
2. `prompt_points + 1` *sparse* tokens from segment-anything's `PromptEncoder`
   (random-Fourier positional encoding + a learned embedding per point kind):
   points as they are, a box as its two corners, a scribble as points sampled
   along the stroke; unused slots hold SAM's "not a point" embedding. They say
   *where* the prompt is; the region token says *what* is there.

Several prompts in one question give one group of tokens each, in order.

With `objects > 0` each region a segmentation proposes is pooled the same way into an object token
(`objects`, see objects.py), through its own projector; an image with fewer regions fills its free slots
with a learned "no object" embedding, as SAM fills a free point slot with "not a point" [course choice].
"""

import numpy as np
import torch
from segment_anything.modeling import PromptEncoder
from torch import nn

from mimo_edu.data.schema import VisualPrompt
from mimo_edu.model.vision import projector

SPARSE_DIM = 256  # segment-anything's prompt embedding width
GEOMETRY = ("sqrt_area", "centroid_x", "centroid_y")  # appended to the pooled CLIP feature of a region


def scale_prompt(prompt: VisualPrompt, sx: float, sy: float) -> VisualPrompt:
    """The same prompt with x scaled by `sx` and y by `sy` (e.g. into the model's frame)."""
    factor = np.array([sx, sy], dtype=np.float32)
    return VisualPrompt(
        kind=prompt.kind,
        points=None if prompt.points is None else np.asarray(prompt.points, np.float32) * factor,
        labels=prompt.labels,
        box=None if prompt.box is None else np.asarray(prompt.box, np.float32) * np.tile(factor, 2),
        width=prompt.width * float(np.sqrt(sx * sy)),
    )


def rasterize_prompt(prompt: VisualPrompt, size: int, image_size: int, point_radius: float) -> torch.Tensor:
    """The prompt's region on a (size, size) grid over an (image_size, image_size) image; never empty."""
    cell = image_size / size
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) * cell
    y, x = torch.meshgrid(centres, centres, indexing="ij")  # (size, size)
    pix = torch.stack([x, y], dim=-1)  # (size, size, 2)
    if prompt.kind == "box":
        x0, y0, x1, y1 = (float(v) for v in prompt.box)
        region = (x >= x0 - cell / 2) & (x <= x1 + cell / 2) & (y >= y0 - cell / 2) & (y <= y1 + cell / 2)
        anchor = torch.tensor([(x0 + x1) / 2, (y0 + y1) / 2])
    else:
        pts = torch.as_tensor(np.asarray(prompt.points), dtype=torch.float32)  # (N, 2)
        if prompt.kind == "point":
            labels = np.ones(len(pts)) if prompt.labels is None else np.asarray(prompt.labels)
            pts = pts[torch.from_numpy(labels == 1)] if (labels == 1).any() else pts
            region = torch.cdist(pix.view(-1, 2), pts).min(dim=1).values.view(size, size) <= point_radius
        else:
            region = _stroke_distance(pix.view(-1, 2), pts).view(size, size) <= prompt.width / 2 + cell * 0.71
        anchor = pts.mean(dim=0)
    if not region.any():
        col, row = (anchor / cell).long().clamp(0, size - 1).tolist()
        region[row, col] = True
    return region


def _stroke_distance(pix: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """Distance of each pixel (M, 2) to the polyline through `pts` (N, 2)."""
    a, b = (pts[:-1], pts[1:]) if len(pts) > 1 else (pts, pts)  # (S, 2) segment ends
    ab = b - a
    t = ((pix[:, None] - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-6)  # (M, S)
    nearest = a + t.clamp(0, 1)[..., None] * ab  # (M, S, 2)
    return (pix[:, None] - nearest).norm(dim=-1).min(dim=1).values  # (M,)


class VisualPromptEncoder(nn.Module):
    """Visual prompts -> `<region>` token embeddings in the LLM width."""

    def __init__(
        self, vision_dim: int, llm_dim: int, image_size: int, grid: int, prompt_points: int, objects: int = 0
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.llm_dim = llm_dim
        self.grid = grid  # CLIP patch grid side
        self.prompt_points = prompt_points
        self.sam_prompt_encoder = PromptEncoder(
            embed_dim=SPARSE_DIM,
            image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        )
        self.region_proj = projector(vision_dim + len(GEOMETRY), llm_dim)
        self.sparse_proj = projector(SPARSE_DIM, llm_dim)
        self.object_proj = projector(vision_dim + len(GEOMETRY), llm_dim) if objects else None
        self.no_object = nn.Parameter(torch.zeros(llm_dim)) if objects else None

    @property
    def tokens_per_prompt(self) -> int:
        return 1 + self.prompt_points + 1

    def forward(
        self, patch_tokens: torch.Tensor, prompts: list[list[VisualPrompt]], weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """patch_tokens (B, N, C) from CLIP and B lists of prompts in the model's frame
        -> (P_total * tokens_per_prompt, H), image by image and prompt by prompt.

        `weights` (P_total, N): how much each patch counts in each region token (e.g. the coverage of the
        mask SAM predicts for the prompt); default: the coverage of the prompt's own region.
        """
        flat = [(b, p) for b, ps in enumerate(prompts) for p in ps]
        if not flat:
            return patch_tokens.new_zeros(0, self.llm_dim)
        if weights is None:
            weights = torch.stack([self.region_weights(p) for _, p in flat])
        weights = weights.to(patch_tokens)  # (P, N)
        rows = patch_tokens[torch.tensor([b for b, _ in flat], device=patch_tokens.device)]  # (P, N, C)
        region = self.region_tokens(rows, weights)[:, None]  # (P, 1, H)
        sparse = self.sparse_proj(self._sparse_embeddings([p for _, p in flat]))  # (P, points + 1, H)
        return torch.cat([region, sparse], dim=1).flatten(0, 1)  # (P * tokens_per_prompt, H)

    def region_tokens(self, patch_tokens: torch.Tensor, weights: torch.Tensor, proj: nn.Module | None = None) -> torch.Tensor:
        """patch_tokens (..., N, C) and weights (..., N) -> (..., H): the patches pooled over the region,
        weighted by coverage, with the region's geometry, projected to the LLM width (by `proj`, default
        `region_proj`)."""
        pooled = (weights[..., None] * patch_tokens).sum(-2) / weights.sum(-1, keepdim=True).clamp_min(1e-6)
        return (proj or self.region_proj)(torch.cat([pooled, self.geometry(weights)], dim=-1))

    def objects(self, patch_tokens: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """patch_tokens (B, N, C) and the coverage of B x K proposed regions (B, K, N) -> object tokens (B, K, H);
        a row of zero weights (no region) gets the "no object" embedding."""
        weights = weights.to(patch_tokens)
        tokens = self.region_tokens(patch_tokens[:, None], weights, self.object_proj)  # (B, K, H)
        empty = (weights.sum(-1) == 0)[..., None]  # (B, K, 1)
        return torch.where(empty, self.no_object.to(tokens.dtype), tokens)

    def geometry(self, weights: torch.Tensor) -> torch.Tensor:
        """Where the region lies and how big it is, from its patch weights (..., N): (..., 3) = GEOMETRY.

        Mean pooling keeps what the region looks like and loses its size; these three numbers give it back
        (is the marked lesion large or small?) [course choice].
        """
        g = self.grid
        centres = (torch.arange(g, dtype=weights.dtype, device=weights.device) + 0.5) / g  # (g,) in (0, 1)
        w = weights.unflatten(-1, (g, g))  # (..., g, g)
        total = w.sum((-2, -1)).clamp_min(1e-6)  # (...,)
        x = (w.sum(-2) * centres).sum(-1) / total
        y = (w.sum(-1) * centres).sum(-1) / total
        area = total / (g * g)
        return torch.stack([area.sqrt(), x, y], dim=-1)

    def region_weights(self, prompt: VisualPrompt) -> torch.Tensor:
        """Fraction of each CLIP patch the prompt's region covers, (N,)."""
        sub = 4  # rasterise at 4x4 sub-cells per patch
        region = rasterize_prompt(prompt, self.grid * sub, self.image_size, point_radius=self.image_size / 16)
        return region.float().view(self.grid, sub, self.grid, sub).mean(dim=(1, 3)).flatten()

    def _sparse_embeddings(self, prompts: list[VisualPrompt]) -> torch.Tensor:
        """segment-anything's sparse embeddings, `prompt_points + 1` per prompt: (P, points + 1, 256)."""
        return sparse_embeddings(self.sam_prompt_encoder, prompts, self.prompt_points)


def sparse_embeddings(encoder: PromptEncoder, prompts: list[VisualPrompt], slots: int) -> torch.Tensor:
    """segment-anything's `PromptEncoder` on P prompts of mixed kinds -> (P, slots + 1, D).

    Points as they are (a scribble: `slots` points spaced along its stroke, all positive), then SAM's
    padding slot; a box: `slots - 1` empty point slots ("not a point") and its two corners. One layout
    for every kind, so prompts of all kinds batch together.
    """
    n = slots
    coords = torch.zeros(len(prompts), n, 2)
    labels = -torch.ones(len(prompts), n)  # -1: "not a point"
    boxes = torch.zeros(len(prompts), 4)
    is_box = torch.tensor([p.kind == "box" for p in prompts])
    for i, p in enumerate(prompts):
        if p.kind == "box":
            boxes[i] = torch.as_tensor(np.asarray(p.box, np.float32))
            continue
        pts = np.asarray(p.points, np.float32)
        keep = np.unique(np.linspace(0, len(pts) - 1, min(n, len(pts))).round().astype(int))
        coords[i, : len(keep)] = torch.from_numpy(pts[keep])
        point_labels = np.ones(len(pts)) if p.labels is None or p.kind == "scribble" else np.asarray(p.labels)
        labels[i, : len(keep)] = torch.from_numpy(point_labels[keep].astype(np.float32))
    weight = encoder.point_embeddings[0].weight
    coords, labels, boxes, is_box = (t.to(weight.device) for t in (coords, labels, boxes, is_box))
    out = torch.empty(len(prompts), n + 1, encoder.embed_dim, device=weight.device, dtype=weight.dtype)
    # the encoder's positional encoding is an fp32 buffer: with bf16 weights its output is fp32, cast back
    if (~is_box).any():  # n point slots + SAM's padding slot
        out[~is_box] = encoder((coords[~is_box], labels[~is_box]), None, None)[0].to(out.dtype)
    if is_box.any():  # n - 1 empty point slots + the box's two corners
        out[is_box] = encoder((coords[is_box, : n - 1], labels[is_box, : n - 1]), boxes[is_box], None)[0].to(out.dtype)
    return out
