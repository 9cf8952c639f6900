"""nano-CLIP: the nano vision tower with a text tower, pretrained so that patch features name what they cover.

CLIP (Radford et al., 2021) learns from image-caption pairs with a contrastive loss. nano-CLIP is a real
transformers `CLIPModel` at nano size, trained on train-split scenes with two contrastive objectives:

- image-text: the image embedding (the CLS token, as in CLIP) against the captions of the eight
  modalities ("a CT image"): cross-entropy over the caption set;
- region-text (as RegionCLIP and the course's feasibility probe): for every structure in the image,
  the patch tokens are averaged with weights equal to how much of each patch its mask covers, then
  projected; cross-entropy over the captions of every structure name ("the left kidney").

The patch tokens pooled here are the ones MIMO's vision tower hands on (the last layer's, without CLS),
so the region objective shapes exactly the features MIMO reads. Patch 8 rather than 16: a frozen readout
of a contrastively pretrained tower named a prompt-marked structure at 0.905 with patch 8 and 0.858 with
patch 16 (shared/reference/foundations_feasibility.md; both 16 LLM image tokens after merging).
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, PreTrainedTokenizerBase

from mimo_edu.data.schema import MODALITIES
from mimo_edu.foundations.data import (
    STRUCTURE_NAMES,
    SceneDataset,
    image_tensor,
    modality_caption,
    scene,
    structure_caption,
)
from mimo_edu.model.config import CLIP_MEAN, CLIP_STD, VisionConfig
from mimo_edu.model.tokenizer import encode_user_text
from mimo_edu.utils import quiet_transformers


@dataclass
class TextConfig:
    """nano-CLIP's text tower (fields of transformers' `CLIPTextConfig`)."""

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 512
    max_length: int = 16
    projection_dim: int = 128


def build_nano_clip(vision: VisionConfig, tokenizer: PreTrainedTokenizerBase, text: TextConfig | None = None) -> CLIPModel:
    """A randomly initialised `CLIPModel`: nano's vision tower and a tiny text tower on the nano tokenizer."""
    text = text or TextConfig()
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=text.hidden_size,
        intermediate_size=text.intermediate_size,
        num_hidden_layers=text.num_layers,
        num_attention_heads=text.num_heads,
        max_position_embeddings=text.max_length,
        hidden_act="quick_gelu",
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,  # CLIP's text embedding is the state at the first end token
    )
    config = CLIPConfig(
        text_config=text_config.to_dict(),
        vision_config=vision.to_hf().to_dict(),
        projection_dim=text.projection_dim,
    )
    return CLIPModel(config)


def encode_texts(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Texts -> right-padded ids ending in </s> (T, L) and their attention mask (T, L)."""
    rows = [[tokenizer.bos_token_id, *encode_user_text(tokenizer, t), tokenizer.eos_token_id] for t in texts]
    length = max(map(len, rows))
    ids = torch.full((len(rows), length), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
    return ids, mask


def patch_coverage(mask: np.ndarray, grid: int) -> np.ndarray:
    """The fraction of each of grid x grid patches that an (S, S) mask covers, flattened: (grid * grid,)."""
    s = mask.shape[0]
    return mask.reshape(grid, s // grid, grid, s // grid).mean(axis=(1, 3)).ravel().astype(np.float32)


def clip_item(grid: int):
    """Scene -> the image, its modality index, and per structure its patch coverage and name index."""

    def item(s, rng) -> dict:
        return {
            "image": image_tensor(s.image),
            "modality": MODALITIES.index(s.modality),
            "coverage": np.stack([patch_coverage(inst.mask, grid) for inst in s.instances]),  # (R, N)
            "names": [STRUCTURE_NAMES.index(inst.name) for inst in s.instances],
        }

    return item


def collate_clip(items: list[dict]) -> dict:
    return {
        "images": torch.stack([it["image"] for it in items]),  # (B, 3, S, S)
        "modalities": torch.tensor([it["modality"] for it in items]),  # (B,)
        "coverage": torch.from_numpy(np.concatenate([it["coverage"] for it in items])),  # (R, N)
        "region_image": torch.tensor([b for b, it in enumerate(items) for _ in it["names"]]),  # (R,)
        "names": torch.tensor([n for it in items for n in it["names"]]),  # (R,)
    }


@dataclass
class ClipOutput:
    loss: torch.Tensor
    image_loss: torch.Tensor
    region_loss: torch.Tensor


class ClipObjective(nn.Module):
    """nano-CLIP with its two losses; `save_pretrained` writes the CLIPModel folder and its tokenizer."""

    def __init__(self, clip: CLIPModel, tokenizer: PreTrainedTokenizerBase) -> None:
        super().__init__()
        self.clip, self.tokenizer = clip, tokenizer
        for name, texts in (("modality", [modality_caption(m) for m in MODALITIES]),
                            ("structure", [structure_caption(n) for n in STRUCTURE_NAMES])):
            ids, mask = encode_texts(tokenizer, texts)
            self.register_buffer(f"{name}_ids", ids, persistent=False)
            self.register_buffer(f"{name}_mask", mask, persistent=False)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def text_embeddings(self, kind: str) -> torch.Tensor:
        """L2-normalised embeddings of the modality or structure captions: (T, P)."""
        ids, mask = getattr(self, f"{kind}_ids"), getattr(self, f"{kind}_mask")
        return F.normalize(self.clip.get_text_features(input_ids=ids, attention_mask=mask).pooler_output, dim=-1)

    def image_and_patches(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (B, 3, S, S) in [0, 1] -> normalised image embeddings (B, P) and patch tokens (B, N, C)."""
        out = self.clip.vision_model(pixel_values=(images - self.mean) / self.std)
        image = F.normalize(self.clip.visual_projection(out.pooler_output), dim=-1)  # (B, P)
        return image, out.last_hidden_state[:, 1:]  # patch tokens as MIMO's vision tower hands them on

    def region_embeddings(self, patches: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
        """patches (R, N, C) pooled with coverage (R, N) -> normalised region embeddings (R, P)."""
        pooled = (coverage[..., None] * patches).sum(1) / coverage.sum(1, keepdim=True).clamp_min(1e-6)  # (R, C)
        pooled = self.clip.vision_model.post_layernorm(pooled)
        return F.normalize(self.clip.visual_projection(pooled), dim=-1)

    def scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp().clamp(max=100.0)

    def forward(self, batch: dict) -> ClipOutput:
        image, patches = self.image_and_patches(batch["images"])
        region = self.region_embeddings(patches[batch["region_image"]], batch["coverage"])
        image_loss = F.cross_entropy(self.scale() * image @ self.text_embeddings("modality").T, batch["modalities"])
        region_loss = F.cross_entropy(self.scale() * region @ self.text_embeddings("structure").T, batch["names"])
        return ClipOutput(image_loss + region_loss, image_loss, region_loss)

    def save_pretrained(self, path) -> None:
        with quiet_transformers():
            self.clip.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))


def clip_dataset(num: int, vision: VisionConfig) -> SceneDataset:
    """`num` train-split scenes as nano-CLIP items."""
    return SceneDataset(num, clip_item(vision.grid), vision.image_size)


@torch.no_grad()
def evaluate_clip(objective: ClipObjective, num: int, stream: int, batch_size: int = 32) -> dict:
    """Zero-shot accuracy by similarity to text embeddings on `num` scenes of a stream (e.g. the test split's).

    modality_acc: the image's nearest modality caption; structure_acc: each structure's mask-pooled
    region's nearest structure caption, among all names of all modalities.
    """
    objective.eval()
    grid = objective.clip.config.vision_config.image_size // objective.clip.config.vision_config.patch_size
    size = objective.clip.config.vision_config.image_size
    modality_text, structure_text = objective.text_embeddings("modality"), objective.text_embeddings("structure")
    hits_m, hits_s, per_modality = [], [], {m: [] for m in MODALITIES}
    for start in range(0, num, batch_size):
        batch = collate_clip([clip_item(grid)(scene(stream, i, size), None) for i in range(start, min(num, start + batch_size))])
        image, patches = objective.image_and_patches(batch["images"])
        hits_m += ((image @ modality_text.T).argmax(-1) == batch["modalities"]).tolist()
        region = objective.region_embeddings(patches[batch["region_image"]], batch["coverage"])
        hits = ((region @ structure_text.T).argmax(-1) == batch["names"]).tolist()
        hits_s += hits
        for b, h in zip(batch["region_image"].tolist(), hits, strict=True):
            per_modality[MODALITIES[int(batch["modalities"][b])]].append(h)
    return {
        "kind": "clip", "seed": stream, "num_images": num, "num_regions": len(hits_s),
        "modality_acc": float(np.mean(hits_m)), "structure_acc": float(np.mean(hits_s)),
        "structure_acc_per_modality": {m: float(np.mean(v)) for m, v in per_modality.items() if v},
    }
