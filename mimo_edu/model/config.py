"""Configuration dataclasses: one per part, one `MIMOConfig` per preset.

A preset is a `Preset` in `PRESETS`: a function returning a fresh `MIMOConfig` and where its pretrained
weights come from; every size the model needs lives here, so the same code builds nano and the paper.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal

from transformers import CLIPVisionConfig, LlamaConfig

from mimo_edu.errors import CheckpointError, MimoError

PARTS = (
    "vision_tower",  # CLIP ViT
    "projector",  # CLIP patch tokens -> LLM width
    "prompt_encoder",  # visual prompts -> <region> tokens
    "aligner",  # Multi-modal Input Aligner
    "llm",  # Llama; with LoRA on: LoRA adapters + token embeddings + LM head
    "sam_image_encoder",
    "sam_prompt_encoder",
    "region_decoder",  # frozen copy of the pretrained SAM mask decoder; only with region_source="sam"
    "mask_decoder",
    "seg_head",  # [SEG] hidden state -> SAM sparse prompt
)
"""The parts of MIMO, in data-flow order. `MIMOConfig.trainable` lists the ones that train."""
ALL_TRAINABLE = tuple(p for p in PARTS if p != "region_decoder")  # the region decoder is SAM as pretrained

REGION_SOURCES = ("prompt", "sam")
FROZEN_DTYPES = ("fp32", "bf16")
SEG_FEATURES = ("phrase_mean", "seg_state")  # see grounding.seg_features
SAM_RESIZES = ("stretch", "longest_side")  # see SegmenterConfig.resize
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SAM_MEAN = (123.675, 116.28, 103.53)  # ImageNet, in 0-255 units
SAM_STD = (58.395, 57.12, 57.375)
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


@dataclass
class VisionConfig:
    """The CLIP ViT vision tower (fields of transformers' `CLIPVisionConfig`)."""

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 512
    patch_size: int = 16
    image_size: int = 128  # CLIP input side; images are resized to it
    select_layer: int = -1  # hidden state whose patch tokens feed the LLM (LLaVA/LISA use -2)
    merge: int = 1  # each LLM image token concatenates merge x merge neighbouring patches (MiniGPT-v2); 1: LLaVA

    def __post_init__(self) -> None:
        if self.merge < 1 or self.grid % self.merge:
            raise MimoError(f"VisionConfig.merge {self.merge} must be a positive divisor of the patch grid {self.grid}.")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid**2

    @property
    def image_tokens(self) -> int:
        """<image> tokens in the LLM input: one per merge x merge block of patches."""
        return (self.grid // self.merge) ** 2

    def to_hf(self) -> CLIPVisionConfig:
        return CLIPVisionConfig(
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            patch_size=self.patch_size,
            image_size=self.image_size,
            hidden_act="quick_gelu",
        )

    @classmethod
    def from_hf(cls, hf: CLIPVisionConfig, select_layer: int, merge: int = 1) -> "VisionConfig":
        return cls(
            hf.hidden_size,
            hf.num_hidden_layers,
            hf.num_attention_heads,
            hf.intermediate_size,
            hf.patch_size,
            hf.image_size,
            select_layer,
            merge,
        )


@dataclass
class LLMConfig:
    """The Llama language model (fields of transformers' `LlamaConfig`)."""

    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 4
    intermediate_size: int = 688
    vocab_size: int = 1024  # set from the tokenizer when the model is built
    max_position_embeddings: int = 512
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0

    def to_hf(self) -> LlamaConfig:
        return LlamaConfig(
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_kv_heads,
            intermediate_size=self.intermediate_size,
            vocab_size=self.vocab_size,
            max_position_embeddings=self.max_position_embeddings,
            rms_norm_eps=self.rms_norm_eps,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            tie_word_embeddings=False,
        )

    @classmethod
    def from_hf(cls, hf: LlamaConfig) -> "LLMConfig":
        rope = getattr(hf, "rope_parameters", None) or {}
        return cls(
            hf.hidden_size,
            hf.num_hidden_layers,
            hf.num_attention_heads,
            hf.num_key_value_heads,
            hf.intermediate_size,
            hf.vocab_size,
            hf.max_position_embeddings,
            hf.rms_norm_eps,
            float(rope.get("rope_theta", 10000.0)),
        )


@dataclass
class SegmenterConfig:
    """The SAM segmenter: a ViT (`vit`, SAM's own) or TinyViT (`tiny_vit`, LiteMedSAM) image encoder,
    segment-anything's prompt encoder and mask decoder."""

    encoder: str = "vit"  # "vit" | "tiny_vit"
    image_size: int = 128  # SAM input side; images are resized to it
    # how an image enters the model's square frame (and so SAM's input): "stretch" to the square [course
    # choice: MIMOSeg-synth's images are square, so nothing is distorted], or "longest_side": resize the longest
    # side to the frame and pad bottom and right, as SAM and LISA do (segment-anything's ResizeLongestSide and
    # Sam.preprocess); masks are cropped back and resized to the image (Sam.postprocess_masks)
    resize: str = "stretch"
    patch_size: int = 8  # image side / embedding side
    encoder_dim: int = 128
    encoder_depth: int = 2
    encoder_heads: int = 4
    global_attn_indexes: tuple[int, ...] = ()
    window_size: int = 0  # 0: global attention in every block
    decoder_mlp_dim: int = 512
    prompt_dim: int = 256  # width of SAM's prompts, image embedding and mask decoder (SAM and LiteMedSAM: 256)
    prompt_to_mask_token: bool = False  # also add each sparse prompt to the decoder's mask token (nano)
    pixel_features: bool = False  # a small CNN's features of the pixels join the decoder's upscaled embedding (nano)
    pixel_mean: tuple[float, float, float] = SAM_MEAN
    pixel_std: tuple[float, float, float] = SAM_STD

    def __post_init__(self) -> None:
        if self.resize not in SAM_RESIZES:
            raise MimoError(f"SegmenterConfig.resize {self.resize!r}: choose one of {SAM_RESIZES}.")

    @property
    def embedding_size(self) -> int:
        return self.image_size // self.patch_size

    @classmethod
    def from_dict(cls, d: dict) -> "SegmenterConfig":
        """Rebuild from `asdict` output (JSON turns its tuples into lists)."""
        return cls(**{**d, **{k: tuple(d[k]) for k in ("global_attn_indexes", "pixel_mean", "pixel_std")}})


@dataclass
class MIMOConfig:
    """Everything that defines one MIMO: sizes, which parts train, loss weights, the chat template."""

    preset: str = "nano"
    image_size: int = 128  # the model's frame: prompts and predicted masks live at this side
    vision: VisionConfig = field(default_factory=VisionConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    prompt_points: int = 4  # point slots per visual prompt in segment-anything's prompt encoder
    region_source: str = "prompt"  # what a <region> token pools CLIP patches over: "prompt" | "sam" (see prompts.py)
    prompt_masks: bool = False  # a [SEG] is decoded with its sample's first visual prompt (see MIMO.decode_masks)
    object_tokens: int = 0  # at most this many object tokens after the patch tokens (see objects.py); 0: none, as MIMO
    # what the [SEG] head reads: "phrase_mean", the mean hidden state over `<p>term</p>` [course choice], or
    # "seg_state", the single hidden state that predicts [SEG], as LISA (see grounding.seg_features)
    seg_feature: str = "phrase_mean"
    mask_readout: bool = False  # each [SEG]'s mask read back into the LLM (see grounding.MaskReadout); MIMO: no
    empty_mask_loss: bool = False  # an empty target's Dice term is grounding.empty_mask_loss, not LISA's (nano)
    use_aligner: bool = True  # False: the ablation without the Multi-modal Input Aligner
    aligner_dim: int = 256
    aligner_heads: int = 4
    lora_rank: int = 0  # 0: no LoRA; presets use 8, LISA's [inferred: MIMO reports only alpha]
    lora_alpha: int = 8  # MIMO's paper
    lora_dropout: float = 0.05  # LISA's [inferred]
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")  # LISA's [inferred]
    trainable: tuple[str, ...] = ALL_TRAINABLE
    ce_weight: float = 1.0  # 1.0 / 2.0 / 0.5: LISA's weights [inferred: MIMO's are not public]
    bce_weight: float = 2.0
    dice_weight: float = 0.5
    system_prompt: str = ""
    # how training holds and runs the model (memory, not maths; `python -m mimo_edu plan` estimates each):
    frozen_dtype: str = "fp32"  # dtype of the frozen weights ("fp32" | "bf16"); trained ones stay fp32 (AdamW's masters)
    gradient_checkpointing: bool = False  # recompute each LLM layer's activations in backward instead of keeping them
    sam_chunk: int = 0  # images per call of the frozen SAM image encoder; 0: the whole batch at once

    @property
    def image_tokens(self) -> int:
        """`<image>` positions in the LLM input: the merged patch tokens, then the object-token slots."""
        return self.vision.image_tokens + self.object_tokens

    @property
    def tokens_per_prompt(self) -> int:
        """One pooled region token, `prompt_points` point slots and segment-anything's padding slot."""
        return 1 + self.prompt_points + 1

    def __post_init__(self) -> None:
        unknown = sorted(set(self.trainable) - set(PARTS))
        if unknown:
            raise MimoError(f"MIMOConfig.trainable: unknown parts {unknown}; choose from {list(ALL_TRAINABLE)}.")
        if "region_decoder" in self.trainable:
            raise MimoError(
                "MIMOConfig.trainable: 'region_decoder' is SAM's mask decoder as pretrained, kept frozen so "
                "that regions keep their meaning; train 'mask_decoder' instead."
            )
        if self.region_source not in REGION_SOURCES:
            raise MimoError(f"MIMOConfig.region_source {self.region_source!r}: choose one of {REGION_SOURCES}.")
        if self.frozen_dtype not in FROZEN_DTYPES:
            raise MimoError(f"MIMOConfig.frozen_dtype {self.frozen_dtype!r}: choose one of {FROZEN_DTYPES}.")
        if self.sam_chunk < 0:
            raise MimoError(f"MIMOConfig.sam_chunk {self.sam_chunk}: must be 0 (the whole batch) or a positive number "
                            "of images per SAM image-encoder call, e.g. 1.")
        if self.object_tokens < 0:
            raise MimoError(f"MIMOConfig.object_tokens {self.object_tokens}: must be 0 (none) or a positive count.")
        if self.seg_feature not in SEG_FEATURES:
            raise MimoError(f"MIMOConfig.seg_feature {self.seg_feature!r}: choose one of {SEG_FEATURES}.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MIMOConfig":
        """Rebuild a config from `to_dict()` output (e.g. a checkpoint's config.json)."""
        try:
            d = dict(d)
            d["vision"] = VisionConfig(**d["vision"])
            d["llm"] = LLMConfig(**d["llm"])
            d["segmenter"] = SegmenterConfig.from_dict(d["segmenter"])
            d["lora_targets"] = tuple(d["lora_targets"])
            d["trainable"] = tuple(d["trainable"])
            return cls(**d)
        except (KeyError, TypeError) as err:
            raise CheckpointError(
                f"MIMO config: cannot read it ({err}); it was not written by this version of "
                "mimo_edu's save_pretrained. Re-save the model with MIMO.save_pretrained."
            ) from err

    def with_overrides(self, **overrides) -> "MIMOConfig":
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise MimoError(f"MIMOConfig: unknown fields {unknown}; known fields are {sorted(known)}.")
        return replace(self, **overrides)


def nano_config() -> MIMOConfig:
    """Tiny CLIP, tiny Llama, tiny SAM, built from the nano foundations (`make foundations`); the MIMO stage
    trains on a CPU in minutes.

    Frozen as in the paper: the vision tower, SAM's image encoder and prompt encoder, and the LLM's base
    weights under LoRA (alpha 8, as MIMO; rank 8 on q/v, as LISA). Trained: projector, visual prompt
    encoder, aligner, LoRA, token embeddings and LM head, mask decoder, [SEG] head.

    CLIP patch 8 with 4 x 4 patches merged into each of 16 image tokens (the feasibility probe: patch 8
    features named a marked structure better than patch 16). Each <region> token pools CLIP patches over
    the mask nano-SAM predicts for the prompt (`region_source="sam"`, as Osprey pools region features over
    a mask) [course choice]: named zero-shot by nano-CLIP on 200 prompted test samples, the pooled region
    was right 0.91 of the time over SAM's mask, 0.84 over the prompt itself and 0.995 over the true mask
    (benchmarks/bench_region_source.py).

    Two parts keep the prompt's location in reach of the masks [course choice]: the pooling masks come from a
    frozen copy of nano-SAM's pretrained decoder (`region_decoder`; the decoder MIMO trains for [SEG] drifts
    away from point and box prompts), and a [SEG] of a prompted question is decoded together with the
    prompt's SAM tokens (`prompt_masks`, see `MIMO.decode_masks`).

    Mask losses 0.5 BCE + 2.0 Dice instead of LISA's 2.0 + 0.5 [course choice]: BCE-heavy training settles
    on empty masks (most pixels are background) before the [SEG] prompts mean anything.

    The [SEG] head reads the mean hidden state over `<p>term</p>` (`seg_feature="phrase_mean"`), not LISA's
    single state [course choice]: the term's own tokens are in the mean, so each term gets a distinct prompt
    from the first step, while a tiny language model's `</p>` state is nearly the same for every term.
    Images are stretched to the square frame (`resize="stretch"`): MIMOSeg-synth's images are square.

    Each [SEG]'s mask is read back into the LLM (`mask_readout`, see grounding.MaskReadout) [course choice]:
    how many lesions an organ holds, on which side and how big one is are said after the [SEG] that segments
    them, read from the mask nano-SAM's decoder draws rather than from the 16 image tokens.

    The mask decoder also sees the pixels (`segmenter.pixel_features`, see segmenter.PixelFeatures) [course
    choice; HQ-SAM adds early high-resolution features to SAM's mask features]: nano-SAM's embedding has one
    token per 8 x 8 pixels, and a lesion may cover as few as 40 pixels. A target mask with no pixels (a lesion
    found "none") is scored by `grounding.empty_mask_loss` (`empty_mask_loss`) [course choice]: LISA's Dice
    loss is 1 there whatever is drawn, so nothing taught the decoder to draw nothing.
    """
    return MIMOConfig(
        preset="nano",
        vision=VisionConfig(patch_size=8, merge=4),
        segmenter=SegmenterConfig(prompt_dim=128, pixel_features=True),
        region_source="sam",
        prompt_masks=True,
        mask_readout=True,
        empty_mask_loss=True,
        lora_rank=8,
        trainable=("projector", "prompt_encoder", "aligner", "llm", "mask_decoder", "seg_head"),
        bce_weight=0.5,
        dice_weight=2.0,
    )


def scratch_config(config: MIMOConfig) -> MIMOConfig:
    """The ablation without foundations: every part random and trained, no LoRA (a random base is not worth
    freezing), regions pooled over the prompt itself (a random SAM predicts no useful mask).

    Each [SEG] prompt is also added to the mask decoder's mask token: a random-init decoder otherwise
    learns one mask per image whatever the prompt says (benchmarks/bench_seg_probe.py: with ideal
    per-term prompts, 300 steps gave Dice 0.51 without and 0.55 with it).
    """
    return replace(
        config,
        segmenter=replace(config.segmenter, prompt_to_mask_token=True),
        region_source="prompt",
        lora_rank=0,
        trainable=ALL_TRAINABLE,
    )


def lite_config() -> MIMOConfig:
    """nano with LiteMedSAM (pretrained TinyViT at 256 px, frozen) as the segmenter."""
    return MIMOConfig(
        preset="lite",
        vision=VisionConfig(merge=2),
        segmenter=SegmenterConfig(
            encoder="tiny_vit",
            image_size=256,
            patch_size=4,
            decoder_mlp_dim=2048,
            pixel_mean=(0.0, 0.0, 0.0),
            pixel_std=(255.0, 255.0, 255.0),
        ),
        trainable=tuple(p for p in ALL_TRAINABLE if p not in ("sam_image_encoder", "sam_prompt_encoder")),
    )


def paper_config() -> MIMOConfig:
    """CLIP ViT-H/14, Vicuna-7B (+ LoRA, alpha 8) and SAM ViT-H, as in the MIMO paper; the rest follows LISA.

    From MIMO's paper: the three foundations, LoRA alpha 8. From LISA, where the paper is silent [inferred]:
    LoRA rank 8 on q_proj/v_proj, loss weights 1.0 / 2.0 / 0.5, the [SEG] head reading the single hidden state
    that predicts [SEG] (`seg_feature="seg_state"`), SAM's input resized on its longest side to 1024 and padded
    (`resize="longest_side"`), CLIP's second-to-last layer (LLaVA's), frozen CLIP and SAM image and prompt
    encoders. The course's own [inferred]: the visual prompt encoder, the Multi-modal Input Aligner's design,
    and a projector trained from scratch on text-only Vicuna v1.5 (LLaVA's trained projector reads CLIP
    ViT-L/14 features, not ViT-H/14's). README.md's table "Known, inferred, or the course's own" lists them all.

    Held to fit 4x A800 80 GB (`python -m mimo_edu plan --preset paper`) [course choice]: frozen weights in bf16,
    gradient checkpointing of Vicuna's layers, SAM's image encoder one image at a time (as LISA's `get_visual_embs`).
    """
    return MIMOConfig(
        preset="paper",
        image_size=1024,
        vision=VisionConfig(1280, 32, 16, 5120, patch_size=14, image_size=224, select_layer=-2),
        # Vicuna's 32000 tokens + MIMO's 5; rms_norm_eps as in Llama 2, which Vicuna v1.5 is
        llm=LLMConfig(
            4096, 32, 32, 32, 11008, vocab_size=32005, max_position_embeddings=4096, rms_norm_eps=1e-5
        ),
        segmenter=SegmenterConfig(
            encoder="vit",
            image_size=1024,
            resize="longest_side",
            patch_size=16,
            encoder_dim=1280,
            encoder_depth=32,
            encoder_heads=16,
            global_attn_indexes=(7, 15, 23, 31),
            window_size=14,
            decoder_mlp_dim=2048,
        ),
        seg_feature="seg_state",
        aligner_dim=1024,
        aligner_heads=8,
        lora_rank=8,
        trainable=("projector", "prompt_encoder", "aligner", "llm", "mask_decoder", "seg_head"),
        system_prompt=VICUNA_SYSTEM,
        frozen_dtype="bf16",
        gradient_checkpointing=True,
        sam_chunk=1,
    )


Weights = Literal["foundations", "random", "checkpoints"]


@dataclass(frozen=True)
class Preset:
    """A model preset: `config()` builds a fresh `MIMOConfig`; `weights` says where its pretrained parts come from.

    "foundations": CLIP, Llama and SAM from the nano foundations (data/foundations), which `from_scratch=True`
    leaves out; "random": CLIP and Llama random with the nano tokenizer, SAM as its `SegmenterConfig` says
    (LiteMedSAM's weights for a TinyViT encoder); "checkpoints": CLIP, Llama with its own tokenizer, and SAM
    from `PaperPaths` or $MIMO_CHECKPOINTS.
    """

    config: Callable[[], MIMOConfig]
    weights: Weights


PRESETS: dict[str, Preset] = {
    "nano": Preset(nano_config, "foundations"),
    "lite": Preset(lite_config, "random"),
    "paper": Preset(paper_config, "checkpoints"),
}
"""Preset name -> `Preset`; `build_mimo(name)` builds it."""
