"""MIMO: a pixel-grounded medical vision-language model, top to bottom.

image ─► CLIP ─► patch tokens ─► projector ─────────────┐  at the <image> tokens
  (nano: + one object token per proposed region, objects.py) ┤
visual prompts ─► VisualPromptEncoder ──────────────────┤  at the <region> tokens
question ─► tokenizer ─► token embeddings ──────────────┤
              Multi-modal Input Aligner (question reads image + prompts)
                             ─► Llama (+ LoRA) ─► answer with [SEG] after each grounded term
each [SEG]'s feature ─► GroundingHead ─► SAM mask decoder ─► one mask per [SEG]
image ─► SAM image encoder ─► image embedding ─────┘              │
  (nano) each mask ─► MaskReadout: pieces, side, size ─► added to the inputs from its [SEG] to the next

A [SEG]'s feature (`config.seg_feature`): nano and lite average the hidden states over the
phrase `<p>term</p>` it follows [course choice]; paper reads the single hidden state that
predicts [SEG], as LISA (see grounding.py).

The stages are public methods, so the Predictor and the figures call the model's own code (as segment-anything
exposes `preprocess` and `postprocess_masks`): `image_tensor` and `to_frame` (preprocess), `visual_tokens`,
`embed_inputs`, the LLM, `seg_features`, `grounding`, `decode_masks`, `frame_to_image` (postprocess); and, for SAM
alone, `embed_image` and `sam_mask`. Requests pass the gate in requests.py before `generate` runs them.
"""

import copy
import functools
import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from segment_anything.utils.transforms import ResizeLongestSide
from torch import nn
from transformers import CLIPVisionModel, DynamicCache, LlamaForCausalLM, PreTrainedTokenizerBase

from mimo_edu.data.real import check_image_tensor, to_rgb
from mimo_edu.data.scenes import min_area
from mimo_edu.data.schema import SEG_TOKEN, VisualPrompt
from mimo_edu.data.templates import grounded_terms
from mimo_edu.errors import CheckpointError, DataError, PromptError
from mimo_edu.model.aligner import InputAligner
from mimo_edu.model.config import MIMOConfig
from mimo_edu.model.conversation import IGNORE_INDEX, ConversationTemplate
from mimo_edu.model.grounding import (
    READ_PROBABILITY,
    GroundingHead,
    carry_readout,
    empty_mask_loss,
    mask_bce_loss,
    mask_dice_loss,
    seg_positions,
)
from mimo_edu.model.grounding import seg_features as gather_seg_features
from mimo_edu.model.language import add_lora, build_llm, checkpoint_layers, is_embedding_param, is_lora_param
from mimo_edu.model.objects import object_weights
from mimo_edu.model.prompts import VisualPromptEncoder, scale_prompt, sparse_embeddings
from mimo_edu.model.requests import check_prompts, check_request
from mimo_edu.model.segmenter import Segmenter
from mimo_edu.model.tokenizer import ANSWER_MARKERS, load_tokenizer
from mimo_edu.model.vision import VisionTower, merge_patches, projector
from mimo_edu.utils import state_mismatch

CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_DIR = "config.json", "model.safetensors", "tokenizer"


@dataclass
class MIMOOutput:
    """What `MIMO.forward` returns: the weighted total loss, its parts, and the predictions."""

    loss: torch.Tensor  # ce_weight * ce + bce_weight * bce + dice_weight * dice
    ce_loss: torch.Tensor  # answer tokens only
    bce_loss: torch.Tensor  # averaged over the batch's masks
    dice_loss: torch.Tensor
    pred_masks: list[torch.Tensor]  # B mask-logit tensors (K_i, S, S) over the model's frame, S = config.image_size
    logits: torch.Tensor  # (B, L, V)


@dataclass
class VisualTokens:
    """What `MIMO.visual_tokens` returns: the tokens the LLM reads at `<image>` and `<region>`, and their sources."""

    patches: torch.Tensor  # (B, N, C_clip) CLIP patch tokens of each sample's image
    image_tokens: torch.Tensor  # (B, N / merge^2 + O, H) for the <image> positions: projected patches, O objects
    object_weights: torch.Tensor | None  # (B, O, N) coverage of each proposed region (zeros: a free slot); None: O = 0
    region_weights: torch.Tensor | None  # (P, N) coverage of SAM's mask per prompt; None: the prompt's own region
    region_tokens: torch.Tensor  # (P * T, H) for the <region> positions, prompt by prompt


@dataclass
class GroundedAnswer:
    """What `MIMO.generate` returns: the answer and one mask per grounded term, at the input image's size."""

    text: str  # with <p>, </p> and [SEG] as generated
    terms: list[str]  # the term each [SEG] grounds, in order
    masks: np.ndarray  # (K, H, W) bool
    mask_probs: np.ndarray  # (K, H, W) float32

    @property
    def plain_text(self) -> str:
        """The answer without markers, as a reader would see it."""
        return " ".join(ANSWER_MARKERS.sub(" ", self.text).split()).replace(" .", ".").replace(" ,", ",")


def unique_images(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """images (B, 3, H, W) -> the distinct ones (U, 3, H, W) and the index of each sample's image (B,)."""
    kept: list[torch.Tensor] = []
    index = []
    for image in images:
        same = next((u for u, k in enumerate(kept) if torch.equal(image, k)), None)
        if same is None:
            same = len(kept)
            kept.append(image)
        index.append(same)
    return torch.stack(kept), torch.tensor(index, device=images.device)


def under_autocast(method: Callable) -> Callable:
    """Run a MIMO method under `MIMO.autocast()`, so a model holding bf16 frozen weights runs on its own."""

    @functools.wraps(method)
    def run(self: "MIMO", *args, **kwargs):
        with self.autocast():
            return method(self, *args, **kwargs)

    return run


class MIMO(nn.Module):
    """The whole model. Parts are built from `config` unless given (pretrained CLIP, Llama or SAM)."""

    def __init__(
        self,
        config: MIMOConfig,
        tokenizer: PreTrainedTokenizerBase | None,
        clip: CLIPVisionModel | None = None,
        llm: LlamaForCausalLM | None = None,
        sam: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer  # None only for structure-only builds (meta device)
        H = config.llm.hidden_size
        self.vision = VisionTower(config.vision, clip)
        self.projector = projector(config.vision.hidden_size * config.vision.merge**2, H)
        self.prompt_encoder = VisualPromptEncoder(
            config.vision.hidden_size, H, config.image_size, config.vision.grid, config.prompt_points,
            config.object_tokens,
        )
        self.aligner = (
            InputAligner(H, config.aligner_dim, config.aligner_heads) if config.use_aligner else None
        )
        self.llm = llm if llm is not None else build_llm(config.llm)
        if config.lora_rank > 0:
            add_lora(self.llm, config.lora_rank, config.lora_alpha, config.lora_dropout, config.lora_targets)
        self.segmenter = Segmenter(config.segmenter, sam)
        # Regions are pooled over the masks SAM predicts as pretrained, not over those of the decoder MIMO
        # trains for [SEG]: trained, it drifts away from point and box prompts (zero-shot naming of the
        # pooled region fell from 0.91 to 0.45 over 1300 steps) [course choice]
        self.region_decoder = (
            copy.deepcopy(self.segmenter.sam.mask_decoder) if config.region_source == "sam" else None
        )
        self.grounding = GroundingHead(H, config.segmenter.prompt_dim, config.mask_readout)
        if self.grounding.readout is not None and tokenizer is not None:
            self.grounding.readout.start_as_words(self.llm.get_input_embeddings(), tokenizer)
        self.template = (
            ConversationTemplate(
                tokenizer, config.image_tokens, config.tokens_per_prompt, config.system_prompt
            )
            if tokenizer is not None
            else None
        )
        self.set_trainable()
        self.hold_weights()

    # ---- parts -------------------------------------------------------------------------------

    def part_modules(self) -> dict[str, nn.Module]:
        """Part name (see config.PARTS) -> module."""
        sam = self.segmenter.sam
        parts = {
            "vision_tower": self.vision.clip,
            "projector": self.projector,
            "prompt_encoder": self.prompt_encoder,
            "aligner": self.aligner,
            "llm": self.llm,
            "sam_image_encoder": sam.image_encoder,
            "sam_prompt_encoder": sam.prompt_encoder,
            "region_decoder": self.region_decoder,
            "mask_decoder": sam.mask_decoder if self.segmenter.pixel_features is None
            else nn.ModuleList([sam.mask_decoder, self.segmenter.pixel_features]),  # trained together
            "seg_head": self.grounding,
        }
        return {name: module for name, module in parts.items() if module is not None}

    def set_trainable(self) -> None:
        """requires_grad from `config.trainable`; with LoRA on, "llm" trains only LoRA, embeddings and LM head."""
        lora = self.config.lora_rank > 0
        for part, module in self.part_modules().items():
            on = part in self.config.trainable
            for name, p in module.named_parameters():
                if part == "llm" and lora:
                    p.requires_grad = on and (is_lora_param(name) or is_embedding_param(name))
                else:
                    p.requires_grad = on

    def hold_weights(self) -> None:
        """Trained weights in fp32 (AdamW's master copies), frozen ones in `config.frozen_dtype`; gradient
        checkpointing of the LLM's layers when `config.gradient_checkpointing` (active in training mode only)."""
        frozen = torch.bfloat16 if self.config.frozen_dtype == "bf16" else torch.float32
        for p in self.parameters():
            p.data = p.data.to(torch.float32 if p.requires_grad else frozen)
        if self.config.gradient_checkpointing:
            checkpoint_layers(self.llm)

    def parameter_counts(self) -> dict[str, tuple[int, int]]:
        """Part -> (total, trainable) parameter counts; LoRA adapters get their own row."""
        counts: dict[str, tuple[int, int]] = {}
        for part, module in self.part_modules().items():
            for name, p in module.named_parameters():
                row = "lora" if part == "llm" and is_lora_param(name) else part
                total, trainable = counts.get(row, (0, 0))
                counts[row] = (total + p.numel(), trainable + (p.numel() if p.requires_grad else 0))
        return counts

    @property
    def device(self) -> torch.device:
        return self.grounding.mlp[0].weight.device

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast on the model's device when the frozen weights are held in bf16 (`config.frozen_dtype`):
        they meet fp32 activations and trained weights, so the matmuls need one compute dtype. A no-op with fp32
        frozen weights (nano, lite). `forward` and `generate` run under it, so such a model computes in bf16
        even where the caller asks for no autocast (evaluation, the Predictor, a trainer at fp32 precision)."""
        if self.config.frozen_dtype == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    # ---- the data flow -----------------------------------------------------------------------

    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """SAM image embeddings (B, D, h, w) of images (B, 3, H, W) in [0, 1]; cache them when SAM is frozen."""
        return self.segmenter.image_embeddings(images.to(self.device), self.config.sam_chunk)

    def visual_tokens(
        self,
        images: torch.Tensor,
        prompts: list[list[VisualPrompt]],
        image_of: torch.Tensor | None = None,
        sam_embeddings: torch.Tensor | None = None,
    ) -> VisualTokens:
        """Stage 1: images (U, 3, S, S) in the frame and B lists of prompts (frame pixels) -> `VisualTokens`.

        `image_of` (B,) says which of the U images each sample reads (default: image b). `sam_embeddings`
        (B, D, h, w): SAM's image embedding of each sample, used when regions come from SAM's masks
        (`region_source="sam"`); computed here when not given.
        """
        patches = self.vision(images)  # (U, N, C_clip)
        if image_of is not None:
            patches = patches[image_of]  # (B, N, C_clip)
        image_tokens = self.projector(merge_patches(patches, self.config.vision.merge))  # (B, N / merge^2, H)
        objects = None
        if self.config.object_tokens:
            objects = object_weights(images, self.config.vision.grid, self.config.object_tokens)  # (U, O, N)
            if image_of is not None:
                objects = objects[image_of]  # (B, O, N)
            image_tokens = torch.cat([image_tokens, self.prompt_encoder.objects(patches, objects)], dim=1)
        weights = None
        if self.config.region_source == "sam" and any(prompts):
            if sam_embeddings is None:
                sam_embeddings = self.image_embeddings(images)[image_of if image_of is not None else slice(None)]
            weights = self.sam_region_weights(sam_embeddings, prompts)
        return VisualTokens(patches, image_tokens, objects, weights, self.prompt_encoder(patches, prompts, weights))

    def embed_inputs(
        self, input_ids: torch.Tensor, instruction: torch.Tensor, visual: VisualTokens, align: bool = True
    ) -> torch.Tensor:
        """Stage 2: the LLM's input embeddings (B, L, H): the text's, the visual tokens in place of `<image>` and
        `<region>`, then the aligner over the instruction (`instruction` (B, L) bool, the question's tokens).
        `align=False` returns what the aligner receives."""
        embeds = self.llm.get_input_embeddings()(input_ids)  # (B, L, H)
        image_mask = input_ids == self.template.image_id
        region_mask = input_ids == self.template.region_id
        embeds = embeds.masked_scatter(image_mask[..., None], visual.image_tokens.to(embeds.dtype))
        embeds = embeds.masked_scatter(region_mask[..., None], visual.region_tokens.to(embeds.dtype))
        if self.aligner is not None and align:
            embeds = self.aligner(embeds, image_mask | region_mask, instruction)
        return embeds

    @torch.no_grad()
    def sam_region_weights(self, sam_embeddings: torch.Tensor, prompts: list[list[VisualPrompt]]) -> torch.Tensor:
        """How much of each CLIP patch the mask SAM predicts for each prompt covers: (P_total, N).

        sam_embeddings (B, D, h, w); B lists of prompts in the model's frame. SAM's pretrained, frozen mask
        decoder (`region_decoder`) decodes each prompt from its points or box (single-mask output); a prompt
        whose predicted mask is empty falls back to its own rasterised region.
        """
        flat = [(b, p) for b, ps in enumerate(prompts) for p in ps]
        g = self.config.vision.grid
        sparse = self.sam_prompt_tokens([p for _, p in flat])  # (P, n + 1, D)
        index = torch.tensor([b for b, _ in flat], device=self.device)
        logits = self.segmenter.decode(
            sam_embeddings.to(sparse.dtype), sparse, 4 * g, index, decoder=self.region_decoder
        )  # (P, 4g, 4g)
        weights = (logits > 0).float().view(len(flat), g, 4, g, 4).mean(dim=(2, 4)).flatten(1)  # (P, N)
        for i, (_, p) in enumerate(flat):
            if weights[i].sum() == 0:
                weights[i] = self.prompt_encoder.region_weights(p).to(weights)
        return weights

    def sam_prompt_tokens(self, prompts: list[VisualPrompt]) -> torch.Tensor:
        """P prompts in the model's frame -> SAM's sparse tokens (P, prompt_points + 1, D) from its prompt
        encoder, in the segmenter's frame."""
        c = self.config
        ratio = c.segmenter.image_size / c.image_size
        prompts = [p if ratio == 1 else scale_prompt(p, ratio, ratio) for p in prompts]
        return sparse_embeddings(self.segmenter.sam.prompt_encoder, prompts, c.prompt_points)

    def decode_masks(
        self,
        image_embeddings: torch.Tensor,
        seg: torch.Tensor,
        prompts: list[list[VisualPrompt]],
        out_size: int,
        image_index: torch.Tensor | None = None,
        fine: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """SAM's mask decoder on each [SEG]'s prompt seg (K, 1, D) -> mask logits (K, out_size, out_size).

        `prompts`: K lists, the visual prompts (model frame) of each [SEG]'s sample. With `prompt_masks` a
        [SEG] whose sample has a visual prompt is decoded together with that sample's first prompt, encoded by
        SAM's frozen prompt encoder, so that a term about the marked structure is segmented where the user
        pointed [course choice; MIMO's paper does not say how its decoder reads the visual prompt]. A [SEG]
        without one is decoded from its own prompt alone, exactly as without `prompt_masks`. `fine`: the
        segmenter's `fine_features` of the images, in the order of `image_embeddings` (nano).
        """
        c = self.config
        K = len(seg)
        if image_index is None:
            image_index = torch.zeros(K, dtype=torch.long, device=seg.device)
        marked = [i for i, ps in enumerate(prompts) if ps] if c.prompt_masks else []
        plain = sorted(set(range(K)) - set(marked))
        out = seg.new_zeros(K, out_size, out_size, dtype=torch.float32)  # fp32 logits for the losses (bf16 under autocast)
        if plain:
            out[plain] = self.segmenter.decode(
                image_embeddings, seg[plain], out_size, image_index[plain], fine=fine
            ).float()
        if marked:
            extra = self.sam_prompt_tokens([prompts[i][0] for i in marked])  # (M, n + 1, D)
            tokens = torch.cat([seg[marked], extra.to(seg.dtype)], dim=1)  # (M, 1 + n + 1, D)
            out[marked] = self.segmenter.decode(
                image_embeddings, tokens, out_size, image_index[marked], fine=fine
            ).float()
        return out

    def frame_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) an image of (height, width) fills in the model's S x S frame: all of it when stretched; with
        `segmenter.resize="longest_side"` the longest side is S (segment-anything's ResizeLongestSide)."""
        S = self.config.image_size
        if self.config.segmenter.resize == "longest_side":
            return ResizeLongestSide.get_preprocess_shape(height, width, S)
        return S, S

    def to_frame(self, images: torch.Tensor, prompts: list[list[VisualPrompt]]) -> tuple:
        """Preprocess: resize images (B, 3, H, W) into the model's frame (B, 3, S, S) and scale the prompts with them.

        Longest-side frames are padded bottom and right with SAM's pixel mean, which SAM's normalisation turns
        into the zeros `Sam.preprocess` pads with. (Not `ResizeLongestSide.apply_image_torch`: it reads the
        size from a BCHW tensor's first two dimensions.)
        """
        S = self.config.image_size
        h, w = images.shape[-2:]
        fh, fw = self.frame_size(h, w)
        if (h, w) != (fh, fw):
            images = F.interpolate(images, size=(fh, fw), mode="bilinear", align_corners=False, antialias=True)
            prompts = [[scale_prompt(p, fw / w, fh / h) for p in ps] for ps in prompts]
        if (fh, fw) != (S, S):
            mean = images.new_tensor(self.config.segmenter.pixel_mean).view(1, 3, 1, 1) / 255
            images = torch.cat([images, mean.expand(len(images), 3, S - fh, fw)], dim=2)  # (B, 3, S, fw)
            images = torch.cat([images, mean.expand(len(images), 3, S, S - fw)], dim=3)  # (B, 3, S, S)
        return images, prompts

    def frame_to_image(self, masks: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Mask logits (K, s, s) over the model's frame -> (K, height, width), as `Sam.postprocess_masks`:
        brought to the frame's side S, the padding cropped, the rest resized to the image."""
        S = self.config.image_size
        fh, fw = self.frame_size(height, width)
        if (fh, fw) != (S, S):
            if masks.shape[-2:] != (S, S):
                masks = F.interpolate(masks[None], size=(S, S), mode="bilinear", align_corners=False)[0]
            masks = masks[:, :fh, :fw]
        return F.interpolate(masks[None], size=(height, width), mode="bilinear", align_corners=False)[0]

    def seg_features(self, hidden: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Stage 3: the LLM's hidden states (B, L, H) over input_ids (B, L) -> (K, H), one grounding feature per
        [SEG] in reading order (`config.seg_feature`); the grounding head turns each into a SAM prompt."""
        t = self.template
        return gather_seg_features(hidden, input_ids, t.seg_id, t.open_id, t.close_id, self.config.seg_feature)

    @under_autocast
    def forward(self, batch: dict, image_embeddings: torch.Tensor | None = None) -> MIMOOutput:
        """Teacher-forced losses on a collated batch (see mimo_edu.data.schema.BATCH_KEYS).

        `image_embeddings` (B, D, h, w) skips the SAM image encoder (e.g. cached LiteMedSAM embeddings).
        The batch's prompts are not checked again: data is checked once, when it is loaded or generated.
        """
        c = self.config
        images = batch["images"].to(self.device, torch.float32)  # (B, 3, H, W); each encoder casts to its dtype
        prompts = batch.get("visual_prompts") or [[] for _ in batch["questions"]]
        height, width = images.shape[-2:]
        images, prompts = self.to_frame(images, prompts)
        enc = self.template.encode_batch(batch["questions"], batch["answers"], [len(ps) for ps in prompts])
        input_ids, labels = enc.input_ids.to(self.device), enc.labels.to(self.device)

        images, image_of = unique_images(images)  # (U, 3, S, S), (B,): a shared image is encoded once
        seg_at = seg_positions(input_ids, self.template.seg_id)  # (B, L)
        counts = seg_at.sum(1).tolist()
        for i, (k, target) in enumerate(zip(counts, batch["masks"], strict=True)):
            if k != len(target):
                raise DataError(
                    f"sample {batch['ids'][i] if 'ids' in batch else i}: its answer has {k} {SEG_TOKEN} "
                    f"but {len(target)} masks; give one mask per {SEG_TOKEN}, in order."
                )
        needs_sam = seg_at.any() or (c.region_source == "sam" and any(prompts))
        if image_embeddings is None and needs_sam:
            image_embeddings = self.image_embeddings(images)[image_of]  # (B, D, h, w)
        visual = self.visual_tokens(images, prompts, image_of, sam_embeddings=image_embeddings)
        embeds = self.embed_inputs(input_ids, enc.instruction_mask.to(self.device), visual)
        if self.grounding.readout is not None and seg_at.any():  # the true masks are read back (teacher forcing)
            terms = [term for answer in batch["answers"] for term in grounded_terms(answer)]
            read = self.grounding.readout(torch.cat(list(batch["masks"])).bool(), terms)  # (K, H)
            embeds = embeds + carry_readout(input_ids == self.template.seg_id, read).to(embeds.dtype)
        hidden = self.llm.model(
            inputs_embeds=embeds, attention_mask=enc.attention_mask.to(self.device)
        ).last_hidden_state
        logits = self.llm.lm_head(hidden)  # (B, L, V)
        ce = F.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX
        )

        sparse = self.grounding(self.seg_features(hidden, input_ids))  # (K, 1, D), K = all [SEG] of the batch
        pred = logits.new_zeros(0, c.image_size, c.image_size)
        bce, dice = logits.new_zeros(()), logits.new_zeros(())
        if len(sparse):
            image_index = torch.arange(len(counts), device=self.device).repeat_interleave(seg_at.sum(1))  # (K,)
            fine = self.segmenter.fine_features(images)  # (U, D / 8, 4h, 4w) or None
            pred = self.decode_masks(
                image_embeddings.to(self.device, sparse.dtype), sparse, [prompts[i] for i in image_index.tolist()],
                c.image_size, image_index, None if fine is None else fine[image_of],
            )  # (K, S, S), fp32
            target = torch.cat([t.to(self.device) for t in batch["masks"]]).float()  # (K, H, W)
            fh, fw = self.frame_size(height, width)  # the image's part of the frame; the rest is padding
            if target.shape[-2:] != (fh, fw):
                target = (F.interpolate(target[:, None], size=(fh, fw), mode="bilinear")[:, 0] > 0.5).float()
            bce = mask_bce_loss(pred[:, :fh, :fw], target) / len(pred)
            if c.empty_mask_loss:  # LISA's Dice where the target has pixels, empty_mask_loss where it has none
                empty = target.flatten(1).sum(1) == 0  # (K,)
                dice = mask_dice_loss(pred[~empty, :fh, :fw], target[~empty])
                dice = (dice + empty_mask_loss(pred[empty, :fh, :fw], min_area(fh))) / len(pred)
            else:
                dice = mask_dice_loss(pred[:, :fh, :fw], target) / len(pred)
        pred_masks = list(pred.split(counts))  # B x (K_i, S, S)
        loss = c.ce_weight * ce + c.bce_weight * bce + c.dice_weight * dice
        return MIMOOutput(loss, ce, bce, dice, pred_masks, logits)

    @torch.no_grad()
    @under_autocast
    def generate(
        self,
        image: np.ndarray | torch.Tensor,
        question: str,
        visual_prompts: VisualPrompt | Sequence[VisualPrompt] = (),
        max_new_tokens: int = 48,
        image_embedding: torch.Tensor | None = None,
    ) -> GroundedAnswer:
        """Greedy answer with the KV cache, and one mask per generated `[SEG]` at the input image's size, decoded
        as soon as the `[SEG]` is written (with `mask_readout`, its reading joins the inputs from that `[SEG]` on).

        image: (H, W, 3) uint8 array (other arrays are converted, see `to_rgb`) or (3, H, W) float tensor
        in [0, 1]; prompts (one or a list) in its pixels. The request passes the gate first (`check_request`:
        the policy is in model/requests.py).
        image_embedding: (1, D, h, w) precomputed by `embed_image`, to skip the SAM image encoder.
        """
        pixels = self.image_tensor(image)  # (1, 3, H, W)
        height, width = pixels.shape[-2:]
        request = check_request(
            self.template, question, visual_prompts, height, width, max_new_tokens, self.config.llm.max_position_embeddings
        )
        images, prompts = self.to_frame(pixels, [request.prompts])
        ids, instruction = self.template.encode_prompt(request.question, len(prompts[0]))
        input_ids = torch.tensor([ids], device=self.device)
        if image_embedding is None and self.config.region_source == "sam" and prompts[0]:
            image_embedding = self.image_embeddings(images)
        visual = self.visual_tokens(images, prompts, sam_embeddings=image_embedding)
        embeds = self.embed_inputs(input_ids, torch.tensor([instruction], device=self.device), visual)

        t = self.template
        banned = sorted({t.image_id, t.region_id, t.pad_id, t.bos_id} - {t.eos_id})
        cache = DynamicCache(config=self.llm.config)  # keys and values of every position so far
        out = self.llm.model(inputs_embeds=embeds, cache=cache, use_cache=True)
        generated: list[int] = []
        states: list[torch.Tensor] = []  # states[i] predicts generated[i]
        masks: list[torch.Tensor] = []  # (H, W) logits of each [SEG] so far, decoded as soon as it is written
        carried = 0  # the latest [SEG]'s mask read-out, added to each input from that [SEG] on
        for _ in range(max_new_tokens):
            h = out.last_hidden_state[:, -1]  # (1, H): the state that predicts the next token
            logits = self.llm.lm_head(h)
            logits[:, banned] = float("-inf")
            token = int(logits.argmax(-1))
            if token == t.eos_id:
                break
            states.append(h)
            generated.append(token)
            next_embed = self.llm.get_input_embeddings()(torch.tensor([[token]], device=self.device))  # (1, 1, H)
            if token == t.seg_id:
                if image_embedding is None:
                    image_embedding = self.image_embeddings(images)
                if not masks:  # the first [SEG]: the pixel features, once per answer
                    fine = self.segmenter.fine_features(images)
                answer_ids = torch.tensor([ids[-1:] + generated], device=self.device)  # input token of each state
                hidden = torch.cat([*states, torch.zeros_like(h)])[None]  # (1, n + 1, H); the last predicts nothing
                sparse = self.grounding(self.seg_features(hidden, answer_ids)[-1:])  # (1, 1, D): this [SEG]
                mask = self.decode_masks(
                    image_embedding.to(self.device, sparse.dtype), sparse, [prompts[0]], self.config.image_size,
                    fine=fine,
                )
                masks.append(self.frame_to_image(mask, height, width)[0])  # (H, W)
                if self.grounding.readout is not None:  # the mask it has just drawn, read back
                    term = grounded_terms(t.decode_answer(generated))[-1]
                    sure = masks[-1][None].sigmoid() >= READ_PROBABILITY  # (1, H, W)
                    carried = self.grounding.readout(sure, [term]).to(next_embed.dtype)[None]  # (1, 1, H)
            out = self.llm.model(inputs_embeds=next_embed + carried, cache=cache, use_cache=True)

        text = t.decode_answer(generated)
        probs = np.zeros((0, height, width), np.float32)
        if masks:
            probs = torch.stack(masks).sigmoid().cpu().numpy()  # (K, H, W)
        return GroundedAnswer(text, grounded_terms(text), probs > 0.5, probs)

    def image_tensor(self, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Preprocess: an image array (see `to_rgb`) or a (3, H, W) float tensor in [0, 1], checked, -> (1, 3, H, W)
        on the model's device; `to_frame` then brings it into the model's frame."""
        if isinstance(image, torch.Tensor):
            check_image_tensor(image)
        else:
            image = torch.tensor(to_rgb(image, "image")).permute(2, 0, 1).float() / 255  # a copy: arrays may be shared
        return image[None].to(self.device, torch.float32)  # each encoder casts to the dtype it is held in

    @torch.no_grad()
    @under_autocast
    def embed_image(self, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        """SAM's image embedding (1, D, h, w) of one image in the model's frame, as `generate` computes it; give it
        to `generate(image_embedding=...)` or `sam_mask` to skip the SAM image encoder."""
        frame, _ = self.to_frame(self.image_tensor(image), [[]])  # (1, 3, S, S)
        return self.image_embeddings(frame)

    @torch.no_grad()
    @under_autocast
    def sam_mask(
        self,
        image_embedding: torch.Tensor,
        height: int,
        width: int,
        box: Sequence[float] | None = None,
        points: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> torch.Tensor:
        """SAM alone, as `SamPredictor.predict(multimask_output=False)`: mask logits (height, width) for a box and/or
        points (image pixels, checked by the request gate) on the image whose `embed_image` is `image_embedding`.

        box: (x0, y0, x1, y1); points: (N, 2) as (x, y) with labels (N,), 1 positive and 0 negative (default all 1).
        """
        if box is None and points is None:
            raise PromptError("segment: give a box (x0, y0, x1, y1) and/or points with labels; both are missing.")
        prompts = [] if box is None else [VisualPrompt("box", box=np.asarray(box, np.float32))]
        if points is not None:
            prompts.append(VisualPrompt("point", points=np.asarray(points, np.float32), labels=labels))
        checked = {p.kind: p for p in check_prompts(prompts, height, width)}
        sam = self.segmenter.sam
        fh, fw = self.frame_size(height, width)  # the image's part of the model's S x S frame
        side_ratio = self.segmenter.config.image_size / self.config.image_size  # frame -> SAM's input
        scale = torch.tensor([fw / width * side_ratio, fh / height * side_ratio], device=self.device)
        sam_points = sam_box = None
        if "point" in checked:
            coords = torch.as_tensor(checked["point"].points, device=self.device)[None] * scale  # (1, N, 2)
            sam_points = (coords, torch.as_tensor(np.asarray(checked["point"].labels), device=self.device)[None])
        if "box" in checked:
            sam_box = (torch.as_tensor(checked["box"].box, device=self.device).view(2, 2) * scale).view(1, 4)
        sparse, dense = sam.prompt_encoder(points=sam_points, boxes=sam_box, masks=None)
        low_res, _ = sam.mask_decoder(
            image_embeddings=image_embedding,
            image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )  # (1, 1, 4h, 4w) over the frame
        return self.frame_to_image(low_res[0].float(), height, width)[0]

    # ---- save and load -----------------------------------------------------------------------

    def save_pretrained(self, path: str | Path) -> None:
        """Write config.json, model.safetensors (all weights) and the tokenizer folder to `path`."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=2))
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(path / WEIGHTS_FILE), metadata={"preset": self.config.preset})
        self.tokenizer.save_pretrained(str(path / TOKENIZER_DIR))

    @classmethod
    def from_pretrained(cls, path: str | Path, preset: str | None = None) -> "MIMO":
        """Load a `save_pretrained` folder; with `preset`, refuse a checkpoint saved from another preset."""
        path = Path(path)
        if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
            raise CheckpointError(
                f"MIMO checkpoint {path}: {CONFIG_FILE} or {WEIGHTS_FILE} is missing; "
                "point at a folder written by MIMO.save_pretrained (or train one: python -m mimo_edu train; "
                "load a training --out folder with mimo_edu.train.load_model)."
            )
        damaged = (  # .format(file name, reason)
            f"MIMO checkpoint {path}: {{}} cannot be read ({{}}); it is truncated or was not written by "
            "MIMO.save_pretrained. Copy the folder again or re-save the model."
        )
        try:
            raw = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))  # plain data, never code
        except ValueError as err:  # not JSON, or not UTF-8
            raise CheckpointError(damaged.format(CONFIG_FILE, err)) from err
        if not isinstance(raw, dict):
            raise CheckpointError(damaged.format(CONFIG_FILE, f"it holds a {type(raw).__name__}, not an object"))
        config = MIMOConfig.from_dict(raw)
        if preset is not None and config.preset != preset:
            raise CheckpointError(
                f"MIMO checkpoint {path}: saved from preset {config.preset!r}, not {preset!r}; "
                f"load it with preset={config.preset!r} or pick a {preset!r} checkpoint."
            )
        model = cls(config, load_tokenizer(path / TOKENIZER_DIR))
        try:
            state = load_file(str(path / WEIGHTS_FILE))  # safetensors: tensors only, nothing to execute
        except SafetensorError as err:
            raise CheckpointError(damaged.format(WEIGHTS_FILE, err)) from err
        model.load_weights(state, source=str(path))
        return model

    def load_weights(self, state: dict[str, torch.Tensor], source: str) -> None:
        """Load a full state dict strictly; a missing, extra or misshapen key raises CheckpointError."""
        missing, unexpected, wrong = state_mismatch(self.state_dict(), state)
        if missing or unexpected or wrong:
            raise CheckpointError(
                f"MIMO checkpoint {source}: weights do not match a {self.config.preset!r} model "
                f"({len(missing)} missing, e.g. {missing[:3]}; {len(unexpected)} unexpected, e.g. {unexpected[:3]}; "
                f"{len(wrong)} with the wrong shape, e.g. {wrong[:3]}). The file is truncated or was saved by "
                "another model; re-save it with MIMO.save_pretrained."
            )
        self.load_state_dict(state, strict=True)
