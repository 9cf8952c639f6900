"""nano-SAM: segment-anything's image encoder, prompt encoder and mask decoder at nano size, pretrained for
promptable segmentation from points, boxes and scribbles.

As SAM (Kirillov et al., 2023) is trained: an image is encoded once, several prompts on it are
decoded against that embedding, and each mask is scored by a per-pixel loss plus Dice (SAM: focal
20 : Dice 1; here BCE 1 : Dice 1 [course choice]). Each train-split scene gives up to
`PROMPTS_PER_IMAGE` structures, each with a random prompt kind: a box (jittered by up to 10 % of its
side), one positive point (with up to two negatives half the time), or a scribble, which enters
segment-anything's prompt encoder as positive points spaced along the stroke. SAM's single-mask output
is the one trained and used (MIMO's [SEG] prompts use it too); SAM's iterative re-prompting and
ambiguity-aware multi-mask outputs are left out [course choice]: trained here with SAM's min-over-three
loss and its IoU head choosing, point Dice fell from 0.41 to 0.28 after 500 steps (the IoU head preferred
the large background structure round every point).
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mimo_edu.data.prompts import PROMPT_KINDS, point_prompt, prompt_from_mask
from mimo_edu.data.schema import MODALITIES, VisualPrompt
from mimo_edu.eval.metrics import dice
from mimo_edu.foundations.data import SceneDataset, image_tensor, scene
from mimo_edu.foundations.paths import SAM_FILE
from mimo_edu.model.config import SegmenterConfig
from mimo_edu.model.grounding import mask_bce_loss, mask_dice_loss
from mimo_edu.model.prompts import sparse_embeddings
from mimo_edu.model.segmenter import Segmenter

PROMPTS_PER_IMAGE = 4
PROMPT_SLOTS = 4  # point slots per prompt, as MIMOConfig.prompt_points
CONFIG_FILE = "config.json"


def sam_item(s, rng: np.random.Generator) -> dict:
    """Scene -> the image and up to PROMPTS_PER_IMAGE (prompt, mask) pairs on distinct structures."""
    chosen = rng.choice(len(s.instances), min(PROMPTS_PER_IMAGE, len(s.instances)), replace=False)
    prompts, masks = [], []
    for i in chosen:
        mask = s.instances[int(i)].mask
        kind = PROMPT_KINDS[int(rng.integers(len(PROMPT_KINDS)))]
        single = kind == "point" and rng.random() < 0.5
        prompts.append(point_prompt(mask, rng, max_negatives=0) if single else prompt_from_mask(mask, kind, rng))
        masks.append(mask)
    return {"image": image_tensor(s.image), "prompts": prompts, "masks": np.stack(masks)}


def collate_sam(items: list[dict]) -> dict:
    return {
        "images": torch.stack([it["image"] for it in items]),  # (B, 3, S, S)
        "prompts": [p for it in items for p in it["prompts"]],  # K
        "masks": torch.from_numpy(np.concatenate([it["masks"] for it in items])),  # (K, S, S) bool
        "image_index": torch.tensor([b for b, it in enumerate(items) for _ in it["prompts"]]),  # (K,)
    }


@dataclass
class SamOutput:
    loss: torch.Tensor
    bce_loss: torch.Tensor
    dice_loss: torch.Tensor


class SamObjective(nn.Module):
    """nano-SAM with its loss; `save_pretrained` writes sam.pth (segment-anything's format) and config.json."""

    def __init__(self, config: SegmenterConfig) -> None:
        super().__init__()
        self.config = config
        self.segmenter = Segmenter(config)

    def predict(self, images: torch.Tensor, prompts: list[VisualPrompt], image_index: torch.Tensor,
                embeddings: torch.Tensor | None = None) -> torch.Tensor:
        """images (B, 3, S, S) in [0, 1], K prompts on them -> mask logits (K, S, S).

        `embeddings` (B, D, h, w): the images' SAM embeddings, when already computed.
        """
        if embeddings is None:
            embeddings = self.segmenter.image_embeddings(images)  # (B, D, h, w)
        sparse = sparse_embeddings(self.segmenter.sam.prompt_encoder, prompts, PROMPT_SLOTS)  # (K, slots + 1, D)
        return self.segmenter.decode(embeddings, sparse, images.shape[-1], image_index.to(embeddings.device))

    def forward(self, batch: dict) -> SamOutput:
        logits = self.predict(batch["images"], batch["prompts"], batch["image_index"])
        target = batch["masks"].to(logits).float()
        bce, dice_loss = mask_bce_loss(logits, target) / len(logits), mask_dice_loss(logits, target) / len(logits)
        return SamOutput(bce + dice_loss, bce, dice_loss)

    def save_pretrained(self, path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        torch.save(self.segmenter.sam.state_dict(), path / SAM_FILE)
        (path / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2))


def sam_dataset(num: int, config: SegmenterConfig) -> SceneDataset:
    """`num` train-split scenes as nano-SAM items."""
    return SceneDataset(num, sam_item, config.image_size)


def eval_prompts(s, rng: np.random.Generator) -> dict[str, list[VisualPrompt]]:
    """Per kind, one prompt on every structure of a scene: a box, one positive point, a scribble."""
    return {
        "box": [prompt_from_mask(inst.mask, "box", rng) for inst in s.instances],
        "point": [point_prompt(inst.mask, rng, max_negatives=0) for inst in s.instances],
        "scribble": [prompt_from_mask(inst.mask, "scribble", rng) for inst in s.instances],
    }


@torch.no_grad()
def evaluate_sam(objective: SamObjective, num: int, stream: int) -> dict:
    """Mean Dice per prompt kind over every structure of `num` scenes of a stream (masks: logits > 0)."""
    objective.eval()
    size = objective.config.image_size
    dices: dict[str, list[float]] = {k: [] for k in ("box", "point", "scribble")}
    lesion: dict[str, list[float]] = {k: [] for k in dices}
    per_modality = {m: [] for m in MODALITIES}
    for i in range(num):
        s = scene(stream, i, size)
        rng = np.random.default_rng([stream, i, 4])
        image = image_tensor(s.image)[None]
        embedding = objective.segmenter.image_embeddings(image)  # once per image, for every prompt kind
        for kind, prompts in eval_prompts(s, rng).items():
            logits = objective.predict(image, prompts, torch.zeros(len(prompts), dtype=torch.long), embedding)
            for inst, pred in zip(s.instances, (logits > 0).numpy(), strict=True):
                d = dice(pred, inst.mask)
                dices[kind].append(d)
                per_modality[s.modality].append(d)
                if inst.host:
                    lesion[kind].append(d)
    return {
        "kind": "sam", "seed": stream, "num_images": num, "num_masks": len(dices["box"]),
        "dice": {k: float(np.mean(v)) for k, v in dices.items()},
        "dice_lesions": {k: float(np.mean(v)) for k, v in lesion.items() if v},
        "dice_per_modality": {m: float(np.mean(v)) for m, v in per_modality.items() if v},
    }
