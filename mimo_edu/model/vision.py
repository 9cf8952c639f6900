"""Vision tower: CLIP ViT patch tokens, the merge of neighbouring patches (MiniGPT-v2), and the projector
into the LLM width (LLaVA-1.5's 2-layer MLP).

MIMO's paper names the CLIP tower; the layer read (second-to-last in the paper preset) and the projector are
LLaVA's and LISA's [inferred]. The paper preset trains the projector from scratch on text-only Vicuna v1.5:
LLaVA's trained projector reads CLIP ViT-L/14 features, not the ViT-H/14 ones the paper preset uses [inferred].
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionModel

from mimo_edu.model.config import CLIP_MEAN, CLIP_STD, VisionConfig


class VisionTower(nn.Module):
    """Images in [0, 1] -> CLIP patch tokens (without CLS) from `config.select_layer`."""

    def __init__(self, config: VisionConfig, clip: CLIPVisionModel | None = None) -> None:
        super().__init__()
        self.config = config
        self.clip = clip if clip is not None else CLIPVisionModel(config.to_hf())
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # images: (B, 3, H, W) in [0, 1]
        size = self.config.image_size
        if images.shape[-2:] != (size, size):
            images = F.interpolate(
                images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        pixels = ((images - self.mean) / self.std).to(self.clip.dtype)
        trains = any(p.requires_grad for p in self.clip.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and trains):
            out = self.clip(pixel_values=pixels, output_hidden_states=True)
        return out.hidden_states[self.config.select_layer][:, 1:]  # (B, N, C_clip)


def merge_patches(patches: torch.Tensor, merge: int) -> torch.Tensor:
    """(B, N, C) patch tokens on a square grid -> (B, N / merge^2, merge^2 * C): each merge x merge block
    of neighbouring patches becomes one token, its features concatenated (nothing is averaged away)."""
    if merge == 1:
        return patches
    B, N, C = patches.shape
    g = int(N**0.5)
    blocks = patches.view(B, g // merge, merge, g // merge, merge, C).permute(0, 1, 3, 2, 4, 5)
    return blocks.reshape(B, N // merge**2, merge**2 * C)


def projector(in_dim: int, out_dim: int) -> nn.Sequential:
    """LLaVA-1.5's `mlp2x_gelu`: Linear - GELU - Linear."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
