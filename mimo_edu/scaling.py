"""Memory and compute of one MIMO training step, estimated from the model's own sizes (notebook 08).

    plan = plan_launch(get_preset("paper"), num_gpus=4)    # exactly what `train --preset paper` runs
    plan.memory.gib(), plan.step.days(), plan.passes_in(PAPER_DAYS)

`plan_launch` builds the launch's model on the meta device (no memory) from the same `TrainConfig`
the launch uses, and derives the calculator's `Setup` from it and the model's `MIMOConfig`
(`Setup.from_launch`): batch, accumulation and strategy from the one, frozen weights' dtype,
gradient checkpointing and SAM's chunking from the other. `python -m mimo_edu plan` prints it.
The pieces also work alone, for what-ifs the configs do not express:

    counts, shape = ParamCounts.from_model(model), ModelShape.from_config(model.config)
    memory = estimate_memory(counts, shape, Setup(per_gpu_batch=10, checkpointing=True))
    step = estimate_step(counts, shape, Setup(per_gpu_batch=10), A800, mfu=0.35)

Every number here is an ESTIMATE from the formulas below. The formulas are written out in each
function's docstring so that a learner can redo them by hand; the assumptions they rest on are
fields of `Setup` with their defaults stated. tests/model/test_scaling.py checks the memory estimate
against the peak measured in a training step of the paper's code path at reduced width, and
`benchmarks/paper_gpu_smoke.py` measures the full-size model on a GPU.

The bar charts of notebook 08 (`plot_memory`, `plot_step_time`) are in `mimo_edu.figures.scaling`.

Units: bytes for memory (GiB = 2**30 bytes in tables), floating-point operations (FLOPs) for compute.
Symbols: s = sequence length, b = samples per GPU, h = LLM width, a = attention heads, L = layers,
V = vocabulary, N = parameters, T = tokens an encoder sees.
"""

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

from torch import nn

from mimo_edu.errors import MimoError
from mimo_edu.model.config import PARTS, MIMOConfig
from mimo_edu.train.config import TrainConfig

GIB = 2**30
SECONDS_PER_DAY = 86_400
MIMOSEG_SAMPLES = 895_000  # MIMOSeg, as the paper reports it
PAPER_DAYS = (10.0, 12.0)  # "10-12 days on 4 A800" (MIMO paper)
FORWARD_ONLY_WHEN_FROZEN = ("vision_tower", "sam_image_encoder", "sam_prompt_encoder")
"""Parts that see only the image (or nothing): when frozen, no gradient flows through them."""


@dataclass(frozen=True)
class GPU:
    """An accelerator: dense bf16 peak (datasheet, without sparsity) and memory."""

    name: str
    peak_tflops: float
    memory_gib: float


A800 = GPU("A800 80GB", 312.0, 80.0)  # an A100 with slower NVLink: same 312 TFLOPS bf16 dense
H100 = GPU("H100 SXM 80GB", 989.0, 80.0)
H200 = GPU("H200 141GB", 989.0, 131.0)
GPUS = {"A800": A800, "H100": H100, "H200": H200}


@dataclass(frozen=True)
class ParamCounts:
    """Parameters per group, as (total, trainable); the LLM is split into its roles in training."""

    groups: dict[str, tuple[int, int]]

    @classmethod
    def from_model(cls, model: nn.Module) -> "ParamCounts":
        """Counts from a built MIMO (on the meta device is enough: only shapes are read).

        Groups are `MIMO.parameter_counts()`'s parts, with "llm" split into "embed_tokens",
        "lm_head" and "llm_layers" (the decoder layers and final norm); "lora" is its own group.
        """
        counts = dict(model.parameter_counts())
        embed, head = model.llm.get_input_embeddings().weight, model.llm.lm_head.weight
        llm_total, llm_trainable = counts.pop("llm")
        body_total = llm_total - embed.numel() - head.numel()
        body_trainable = llm_trainable - embed.numel() * embed.requires_grad - head.numel() * head.requires_grad
        groups = {
            "embed_tokens": (embed.numel(), embed.numel() * embed.requires_grad),
            "llm_layers": (body_total, body_trainable),
            "lm_head": (head.numel(), head.numel() * head.requires_grad),
            **counts,
        }
        return cls(groups)

    def total(self, *names: str) -> int:
        """Parameters of the named groups (all groups when none is named)."""
        return sum(t for n, (t, _) in self.groups.items() if not names or n in names)

    def trainable(self, *names: str) -> int:
        return sum(tr for n, (_, tr) in self.groups.items() if not names or n in names)

    def frozen(self, *names: str) -> int:
        return self.total(*names) - self.trainable(*names)

    @property
    def llm(self) -> int:
        """The language model without LoRA, as `python -m mimo_edu params` counts it."""
        return self.total("embed_tokens", "llm_layers", "lm_head")


@dataclass(frozen=True)
class ModelShape:
    """The sizes the activation and FLOP formulas need, read from a `MIMOConfig`."""

    llm_width: int  # h
    llm_layers: int  # L
    llm_heads: int  # a
    vocab: int  # V
    lora_targets: int  # adapted projections per layer (q_proj, v_proj: 2); 0 without LoRA
    image_tokens: int  # <image> positions in the LLM input (patch tokens, and object tokens where the preset has them)
    tokens_per_prompt: int  # <region> tokens per visual prompt
    aligner_dim: int  # d of the aligner's attention
    clip_tokens: int  # patches + CLS
    clip_width: int
    clip_layers: int
    sam_grid: int  # SAM image embedding side (1024 / 16 = 64)
    sam_width: int
    sam_heads: int
    sam_depth: int
    sam_window: int  # 0: global attention in every block
    sam_global_blocks: int
    frame: int  # side of the predicted masks (the model's frame)
    sam_prompt_dim: int = 256  # D: width of SAM's prompts and mask decoder

    @classmethod
    def from_config(cls, c: MIMOConfig) -> "ModelShape":
        s = c.segmenter
        if s.encoder != "vit":
            raise MimoError(f"ModelShape: segmenter {s.encoder!r} is not a ViT; the calculator models SAM's ViT.")
        return cls(
            llm_width=c.llm.hidden_size,
            llm_layers=c.llm.num_layers,
            llm_heads=c.llm.num_heads,
            vocab=c.llm.vocab_size,
            lora_targets=len(c.lora_targets) if c.lora_rank > 0 else 0,
            image_tokens=c.image_tokens,
            tokens_per_prompt=c.tokens_per_prompt,
            aligner_dim=c.aligner_dim if c.use_aligner else 0,
            clip_tokens=c.vision.num_patches + 1,
            clip_width=c.vision.hidden_size,
            clip_layers=c.vision.num_layers,
            sam_grid=s.embedding_size,
            sam_width=s.encoder_dim,
            sam_heads=s.encoder_heads,
            sam_depth=s.encoder_depth,
            sam_window=s.window_size,
            sam_global_blocks=len(s.global_attn_indexes) if s.window_size else s.encoder_depth,
            frame=c.image_size,
            sam_prompt_dim=s.prompt_dim,
        )


@dataclass(frozen=True)
class Setup:
    """What one training run does per GPU, and the assumptions the estimates rest on."""

    per_gpu_batch: int = 10  # samples per GPU per forward and backward (paper: 10)
    grad_accum: int = 1  # forwards and backwards per optimiser step (paper: 1)
    num_gpus: int = 4  # paper: 4 A800
    text_tokens: int = 128  # ASSUMED: system prompt (~35 Llama tokens) + USER/ASSISTANT + question + answer
    prompts_per_sample: int = 1  # visual prompts per sample (6 <region> tokens each)
    masks_per_sample: float = 1.2  # ASSUMED: [SEG] masks per sample (MIMOSeg-synth averages 1.16)
    checkpointing: bool = False  # full gradient (activation) checkpointing of the LLM's layers
    zero2: bool = False  # ZeRO-2: gradients and AdamW state sharded over num_gpus
    frozen_dtype: Literal["bf16", "fp32"] = "bf16"  # how the frozen weights are held (see estimate_memory)
    sam_chunk: int = 0  # images per SAM image-encoder call; 0: the whole batch at once
    attention_scores_saved: bool = False  # True: eager attention (s x s scores kept); False: SDPA kernels

    def __post_init__(self) -> None:
        checks = {
            "per_gpu_batch": (self.per_gpu_batch >= 1, "a positive number of samples per GPU, e.g. 10"),
            "grad_accum": (self.grad_accum >= 1, "a positive number of micro-steps per optimiser step, e.g. 1"),
            "num_gpus": (self.num_gpus >= 1, "a positive number of GPUs, e.g. 4"),
            "text_tokens": (self.text_tokens >= 1, "a positive number of text tokens, e.g. 128"),
            "prompts_per_sample": (self.prompts_per_sample >= 0, "0 or more visual prompts per sample"),
            "masks_per_sample": (self.masks_per_sample >= 0, "0 or more masks per sample, e.g. 1.2"),
            "sam_chunk": (self.sam_chunk >= 0, "0 (whole batch) or a positive number of images per call"),
            "frozen_dtype": (self.frozen_dtype in ("bf16", "fp32"), "'bf16' or 'fp32'"),
        }
        for name, (ok, want) in checks.items():
            if not ok:
                raise MimoError(f"Setup.{name}={getattr(self, name)!r}: must be {want}.")

    @classmethod
    def from_launch(cls, train: TrainConfig, model: MIMOConfig, num_gpus: int, **assumed) -> "Setup":
        """The Setup of the run `train` launches on `num_gpus` GPUs, whose model is built from `model`.

        From `train`: per_gpu_batch = batch_size, grad_accum, zero2 = (strategy == "fsdp": FSDP2 sharding
        gradients and AdamW state). From `model`: frozen_dtype, checkpointing (gradient_checkpointing) and
        sam_chunk. `assumed`: the fields no config holds (text_tokens, prompts_per_sample, masks_per_sample,
        attention_scores_saved). The estimate assumes bf16 autocast (precision "bf16", or "auto" on a GPU).
        """
        launch = {"per_gpu_batch": train.batch_size, "grad_accum": train.grad_accum, "num_gpus": num_gpus,
                  "zero2": train.strategy == "fsdp", "frozen_dtype": model.frozen_dtype,
                  "checkpointing": model.gradient_checkpointing, "sam_chunk": model.sam_chunk}
        if fixed := sorted(set(assumed) & set(launch)):
            raise MimoError(f"Setup.from_launch: {fixed} come from the launch's configs; change them there "
                            "(TrainConfig, or MIMOConfig through TrainConfig.model_overrides), not here.")
        return cls(**launch, **assumed)

    def with_(self, **changes) -> "Setup":
        """A copy with some fields changed, e.g. setup.with_(checkpointing=True)."""
        known = {f.name for f in fields(self)}
        if unknown := sorted(set(changes) - known):
            raise MimoError(f"Setup: unknown fields {unknown}; known fields are {sorted(known)}.")
        return Setup(**{**asdict(self), **changes})

    @property
    def samples_per_step(self) -> int:
        """Samples one GPU consumes per optimiser step."""
        return self.per_gpu_batch * self.grad_accum

    @property
    def global_batch(self) -> int:
        return self.samples_per_step * self.num_gpus


def sequence_length(shape: ModelShape, setup: Setup) -> int:
    """LLM tokens per sample: s = image tokens + <region> tokens x prompts + text tokens.

    Paper: (224 / 14)**2 = 256 image tokens + 6 x 1 region tokens + 128 text tokens (assumed) = 390.
    """
    return shape.image_tokens + shape.tokens_per_prompt * setup.prompts_per_sample + setup.text_tokens


# ---- memory -----------------------------------------------------------------------------------


def layer_activation_bytes(s: int, b: int, h: int, a: int, scores_saved: bool, lora_targets: int = 0) -> float:
    """Activations one transformer layer keeps for its backward, in bytes (16-bit activations).

    Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models":
        s * b * h * (34 + 5 * a * s / h)
    where 5 * a * s / h is the attention score matrix (scores, softmax, dropout mask). PyTorch's SDPA
    kernels (transformers' default for Llama) never store it, so it is dropped unless `scores_saved`.
    The formula is for a GPT layer (4h MLP, dropout); Llama's SwiGLU MLP (11008 = 2.7h, three matrices)
    and absent dropout land close to it. LoRA adds 3 * s * b * h per adapted projection
    (its dropout keeps a masked 16-bit copy of the input, 2 bytes, and the mask, 1 byte).
    """
    return s * b * h * (34 + (5 * a * s / h if scores_saved else 0) + 3 * lora_targets)


def llm_activation_bytes(shape: ModelShape, s: int, b: int, checkpointing: bool, scores_saved: bool) -> float:
    """The LLM's saved activations: L layers' worth, or with full checkpointing
    L * 2 * s * b * h (each layer's 16-bit input) + one layer's worth (recomputed during backward)."""
    layer = layer_activation_bytes(s, b, shape.llm_width, shape.llm_heads, scores_saved, shape.lora_targets)
    if checkpointing:
        return shape.llm_layers * 2 * s * b * shape.llm_width + layer
    return shape.llm_layers * layer


def logits_bytes(shape: ModelShape, s: int, b: int) -> float:
    """s * b * V * 10: bf16 logits (2), their fp32 copy for the loss (4), cross-entropy's log-softmax (4)."""
    return s * b * shape.vocab * 10


def aligner_bytes(shape: ModelShape, s: int, b: int) -> float:
    """s * b * (16 * h + 10 * d): width-h copies around the two LayerNorms (fp32 under autocast) and the
    gated residual, and q, k, v, attention output and its projection input in the aligner width d."""
    return s * b * (16 * shape.llm_width + 10 * shape.aligner_dim) if shape.aligner_dim else 0.0


def mask_decoder_bytes(shape: ModelShape, masks: float) -> float:
    """Per mask: 2 two-way blocks x ~12 tensors of (g*g, D) in bf16 (g = SAM grid, D = 256 in SAM), the
    upscaling path ~6 tensors of (D/8, 4g, 4g) in bf16, and ~6 fp32 (frame, frame) tensors for the
    upsampled logits, sigmoid, BCE and Dice: 2*12*g*g*D*2 + 6*(D/8)*(4g)**2*2 + 6*frame**2*4 bytes."""
    g, d = shape.sam_grid, shape.sam_prompt_dim
    per_mask = 2 * 12 * g * g * d * 2 + 6 * (d // 8) * (4 * g) ** 2 * 2 + 6 * shape.frame**2 * 4
    return masks * per_mask


def sam_encoder_transient_bytes(shape: ModelShape, images: int) -> float:
    """Peak of the frozen SAM image encoder's no-grad forward for `images` images at once.

    segment-anything's attention builds the full score matrix: bf16 scores (2 bytes), the copy with
    relative positions added (2), then softmax, which autocast runs in fp32 (4 in, 4 out): ~10 bytes per
    score live at once. A global block has heads * T**2 scores (T = grid**2 = 4096 tokens at 1024 px);
    a windowed block heads * windows * w**4. Plus ~16 bytes per token and channel (qkv, MLP, residual).
    Nothing is kept for backward (no parameter of it trains), so this is freed block by block.
    """
    T, w = shape.sam_grid**2, shape.sam_window
    global_scores = shape.sam_heads * T**2 if shape.sam_global_blocks else 0
    windows = math.ceil(shape.sam_grid / w) ** 2 if w else 0
    window_scores = shape.sam_heads * windows * w**4 if w else 0
    return images * (10 * max(global_scores, window_scores) + 16 * T * shape.sam_width)


def clip_transient_bytes(shape: ModelShape, images: int) -> float:
    """The frozen CLIP tower's no-grad forward: all L + 1 hidden states are returned
    (output_hidden_states=True) plus ~8 width-sized tensors of the running block, in bf16:
    images * T * width * 2 * (L + 9) bytes. It runs before the LLM, so it is never the peak."""
    return images * shape.clip_tokens * shape.clip_width * 2 * (shape.clip_layers + 9)


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated memory of one GPU at the peak of a training step, in bytes, by kind."""

    frozen_weights: float
    trainable_weights: float
    autocast_copies: float
    gradients: float
    optimizer: float
    llm_activations: float
    logits: float
    other_activations: float
    encoder_transient: float

    @property
    def total(self) -> float:
        return sum(asdict(self).values())

    def gib(self) -> dict[str, float]:
        """Each kind and the total in GiB."""
        return {**{k: v / GIB for k, v in asdict(self).items()}, "total": self.total / GIB}

    def fits(self, gpu: GPU) -> bool:
        return self.total <= gpu.memory_gib * GIB


def estimate_memory(counts: ParamCounts, shape: ModelShape, setup: Setup) -> MemoryEstimate:
    """Memory per GPU for one training step under bf16 autocast (mimo_edu.train.Trainer), an ESTIMATE.

    Weights. The trainer does bf16 with torch.autocast: weights keep the dtype they are held in and
    matmuls run in bf16. MIMO holds trained weights in fp32 (AdamW's master copies, 4 bytes) and frozen
    weights in `MIMOConfig.frozen_dtype` (bf16: 2 bytes, the paper preset; fp32: 4). Autocast caches a bf16 copy of each trained weight used in a matmul (every trained group
    except the embedding lookup) and autograd keeps it for backward: 2 bytes each. Frozen fp32 LLM
    weights are cast on every use and the copy is kept for backward too: 2 bytes each (one layer's
    worth with checkpointing).
    Gradients: fp32, 4 bytes per trained parameter. AdamW: two fp32 moments, 8 bytes. With ZeRO-2 both
    are divided by the number of GPUs.
    Activations: the LLM (`llm_activation_bytes`), logits (`logits_bytes`), the aligner and the mask
    decoder with its losses; the frozen encoders keep nothing, and their transient peak
    (`sam_encoder_transient_bytes` for `sam_chunk` images at a time, or CLIP's) is added on top.
    Simple upper bound: everything is added, although gradients grow as activations are freed and
    `MIMO.forward` runs SAM's encoder before the LLM (tests/model/test_scaling.py measures how close it is).
    """
    s, b, n = sequence_length(shape, setup), setup.per_gpu_batch, setup.num_gpus
    trainable = counts.trainable()
    frozen_bytes = 2 if setup.frozen_dtype == "bf16" else 4
    copies = 2 * (trainable - counts.trainable("embed_tokens"))
    if setup.frozen_dtype == "fp32":
        llm_frozen = counts.frozen("llm_layers")
        copies += 2 * (llm_frozen / shape.llm_layers if setup.checkpointing else llm_frozen)
    shard = n if setup.zero2 else 1
    chunk = setup.sam_chunk or b
    return MemoryEstimate(
        frozen_weights=frozen_bytes * counts.frozen(),
        trainable_weights=4 * trainable,
        autocast_copies=copies,
        gradients=4 * trainable / shard,
        optimizer=8 * trainable / shard,
        llm_activations=llm_activation_bytes(shape, s, b, setup.checkpointing, setup.attention_scores_saved),
        logits=logits_bytes(shape, s, b),
        other_activations=aligner_bytes(shape, s, b) + mask_decoder_bytes(shape, b * setup.masks_per_sample),
        encoder_transient=max(sam_encoder_transient_bytes(shape, min(chunk, b)), clip_transient_bytes(shape, b)),
    )


def max_batch_that_fits(counts: ParamCounts, shape: ModelShape, setup: Setup, gpu: GPU, limit: int = 1024) -> int:
    """The largest per-GPU batch whose estimated memory fits in `gpu` (0 if not even 1 fits)."""
    best = 0
    for b in range(1, limit + 1):
        if not estimate_memory(counts, shape, setup.with_(per_gpu_batch=b)).fits(gpu):
            break
        best = b
    return best


# ---- compute ----------------------------------------------------------------------------------


def tokens_per_group(shape: ModelShape, setup: Setup) -> dict[str, float]:
    """Tokens each parameter group processes per sample (each parameter: 2 FLOPs per token forward)."""
    s = sequence_length(shape, setup)
    return {
        "vision_tower": shape.clip_tokens,
        "projector": shape.image_tokens,
        "prompt_encoder": setup.prompts_per_sample * shape.tokens_per_prompt,  # an upper bound
        "aligner": s,
        "embed_tokens": 0,  # a lookup, no matmul
        "llm_layers": s,
        "lora": s,
        "lm_head": s,
        "sam_image_encoder": shape.sam_grid**2,
        "sam_prompt_encoder": 0,  # only its "no mask" embedding is read
        "mask_decoder": setup.masks_per_sample * shape.sam_grid**2,  # an upper bound: its MLP sees few tokens
        "seg_head": setup.masks_per_sample,
    }


def flops_per_sample(counts: ParamCounts, shape: ModelShape, setup: Setup) -> dict[str, float]:
    """Training FLOPs per sample by component, an ESTIMATE.

    Matmuls: a parameter costs 2 FLOPs per token forward. Trained: 6 (forward 2, gradient of the input 2,
    gradient of the weight 2). Frozen but between trained parts (the LLM's layers: the aligner and the
    embeddings below them train): 4 (forward 2 + input gradient 2, i.e. 2x the forward). Frozen encoders
    that see only the image (CLIP, SAM's image encoder): 2, forward only.
    Attention scores add 4 * s**2 * h per layer forward (QK^T and AV): x3 for training.
    Gradient checkpointing repeats the LLM layers' forward during backward: + 2 * N * s + 4 * L * s**2 * h.
    SAM's attention: 4 * T**2 * width per global block, 4 * windows * w**4 * width per windowed block.
    Approximate: position embeddings count as matmul parameters (~1 % too many for SAM).
    """
    s = sequence_length(shape, setup)
    tokens = tokens_per_group(shape, setup)

    def cost(group: str) -> float:
        total, trainable = counts.groups.get(group, (0, 0))
        frozen_factor = 2 if group in FORWARD_ONLY_WHEN_FROZEN else 4
        return tokens.get(group, 0) * (6 * trainable + frozen_factor * (total - trainable))

    llm_attn_fwd = 4 * shape.llm_layers * s**2 * shape.llm_width
    T, w = shape.sam_grid**2, shape.sam_window
    windows = math.ceil(shape.sam_grid / w) ** 2 if w else 0
    sam_attn = 4 * shape.sam_width * (
        shape.sam_global_blocks * T**2 + (shape.sam_depth - shape.sam_global_blocks) * windows * w**4
    )
    clip_attn = 4 * shape.clip_layers * shape.clip_tokens**2 * shape.clip_width
    recompute = 0.0
    if setup.checkpointing:
        recompute = 2 * s * counts.total("llm_layers", "lora") + llm_attn_fwd
    return {
        "LLM forward + backward": sum(cost(g) for g in ("llm_layers", "lora", "lm_head")) + 3 * llm_attn_fwd,
        "LLM recompute (checkpointing)": recompute,
        "CLIP forward": cost("vision_tower") + clip_attn,
        "SAM image encoder forward": cost("sam_image_encoder") + sam_attn,
        "aligner, projector, heads, mask decoder": sum(
            cost(g) for g in ("projector", "prompt_encoder", "aligner", "mask_decoder", "seg_head")
        ),
    }


@dataclass(frozen=True)
class StepEstimate:
    """Time of one optimiser step on every GPU at once, from FLOPs and an assumed utilisation."""

    flops: dict[str, float]  # per sample, by component
    gpu: GPU
    mfu: float  # model FLOPs utilisation: achieved / peak
    setup: Setup

    @property
    def flops_per_sample(self) -> float:
        return sum(self.flops.values())

    @property
    def seconds_per_step(self) -> float:
        """samples per GPU and step * FLOPs per sample / (peak * MFU); communication is not counted."""
        return self.setup.samples_per_step * self.flops_per_sample / (self.gpu.peak_tflops * 1e12 * self.mfu)

    def seconds_by_component(self) -> dict[str, float]:
        scale = self.setup.samples_per_step / (self.gpu.peak_tflops * 1e12 * self.mfu)
        return {k: v * scale for k, v in self.flops.items()}

    @property
    def samples_per_second(self) -> float:
        """Over all GPUs."""
        return self.setup.global_batch / self.seconds_per_step

    def steps(self, samples: int = MIMOSEG_SAMPLES) -> int:
        return math.ceil(samples / self.setup.global_batch)

    def days(self, samples: int = MIMOSEG_SAMPLES) -> float:
        """Days for one pass over `samples` (MIMOSeg's 895K by default)."""
        return self.steps(samples) * self.seconds_per_step / SECONDS_PER_DAY

    def days_for_steps(self, steps: int) -> float:
        return steps * self.seconds_per_step / SECONDS_PER_DAY


def estimate_step(counts: ParamCounts, shape: ModelShape, setup: Setup, gpu: GPU = A800,
                  mfu: float = 0.35) -> StepEstimate:
    """Step time at utilisation `mfu` (0 < mfu <= 1; 0.3-0.5 is typical of well-tuned bf16 training)."""
    if not (isinstance(mfu, int | float) and 0 < mfu <= 1):
        raise MimoError(f"mfu={mfu!r}: must be a fraction of the GPU's peak in (0, 1], e.g. 0.35.")
    return StepEstimate(flops_per_sample(counts, shape, setup), gpu, float(mfu), setup)


# ---- the paper run ----------------------------------------------------------------------------


def paper_model_counts() -> tuple[ParamCounts, ModelShape]:
    """Parameter counts and shapes of the `paper` preset, built on the meta device (no memory)."""
    from mimo_edu.model import build_mimo

    model = build_mimo("paper", device="meta")
    return ParamCounts.from_model(model), ModelShape.from_config(model.config)


def paper_setup(train: TrainConfig | None = None, num_gpus: int = 4, **overrides) -> Setup:
    """`Setup.from_launch` of the paper training preset (or `train`) and the paper model on `num_gpus` GPUs,
    with some fields replaced for a what-if, e.g. paper_setup(checkpointing=False)."""
    from mimo_edu.model.config import paper_config
    from mimo_edu.train.config import get_preset

    return Setup.from_launch(train or get_preset("paper"), paper_config(), num_gpus).with_(**overrides)


@dataclass(frozen=True)
class Plan:
    """One launch, estimated: its configs, the Setup derived from them, and the memory and time per GPU."""

    train: TrainConfig  # the launch's config, as given
    model: MIMOConfig  # the config of the model that `train` builds
    setup: Setup
    counts: ParamCounts
    shape: ModelShape
    memory: MemoryEstimate
    step: StepEstimate

    def passes_in(self, days: tuple[float, ...] = PAPER_DAYS, samples: int = MIMOSEG_SAMPLES) -> tuple[float, ...]:
        """Passes over `samples` that fit in each of `days` (the paper's 10 and 12 by default)."""
        return tuple(d / self.step.days(samples) for d in days)

    def to_dict(self) -> dict:
        """Everything `python -m mimo_edu plan --json` prints (memory in GiB, time in seconds and days)."""
        gpu, memory = self.step.gpu, self.memory.gib()
        return {
            "preset": self.train.model_preset,
            "gpu": asdict(gpu),
            "num_gpus": self.setup.num_gpus,
            "setup": asdict(self.setup),
            "sequence_length": sequence_length(self.shape, self.setup),
            "memory_gib": memory,
            "fits": self.memory.fits(gpu),
            "headroom_gib": gpu.memory_gib - memory["total"],
            "flops_per_sample": {**self.step.flops, "total": self.step.flops_per_sample},
            "mfu": self.step.mfu,
            "seconds_per_step": self.step.seconds_per_step,
            "samples_per_second": self.step.samples_per_second,
            "days_per_pass": self.step.days(),
            "samples_per_pass": MIMOSEG_SAMPLES,
            "paper_days": list(PAPER_DAYS),
            "passes_in_paper_days": list(self.passes_in()),
        }

    def format(self) -> str:
        """The plan as plain text: the setup, memory by kind, FLOPs by component, time."""
        d, st = self.to_dict(), self.setup
        lines = [
            f"ESTIMATE for `train --preset {d['preset']}` on {st.num_gpus} x {self.step.gpu.name} "
            f"({self.step.gpu.memory_gib:g} GiB, {self.step.gpu.peak_tflops:g} TFLOPS bf16):",
            f"  batch {st.per_gpu_batch} per GPU x {st.grad_accum} accumulation x {st.num_gpus} GPUs = "
            f"{st.global_batch}; s = {d['sequence_length']} tokens; {'ZeRO-2 (fsdp)' if st.zero2 else 'DDP'}; "
            f"frozen weights {st.frozen_dtype}; gradient checkpointing {'on' if st.checkpointing else 'off'}; "
            f"SAM encoder {st.sam_chunk or 'the whole batch'} image(s) per call",
            "",
            format_table([(k, f"{v:.2f}") for k, v in d["memory_gib"].items()], ("memory per GPU", "GiB")),
            f"{'fits' if d['fits'] else 'DOES NOT FIT'}: {d['headroom_gib']:.2f} GiB to spare of "
            f"{self.step.gpu.memory_gib:g}",
            "",
            format_table([(k, f"{v / 1e12:.3f}") for k, v in d["flops_per_sample"].items()],
                         ("FLOPs per sample", "TFLOP")),
            "",
            f"at MFU {d['mfu']}: {d['seconds_per_step']:.2f} s per step, {d['samples_per_second']:.1f} samples/s, "
            f"{d['days_per_pass']:.2f} days per pass over {MIMOSEG_SAMPLES:,} samples; the paper's "
            f"{PAPER_DAYS[0]:g}-{PAPER_DAYS[1]:g} days hold {d['passes_in_paper_days'][0]:.0f}-"
            f"{d['passes_in_paper_days'][1]:.0f} passes",
        ]
        return "\n".join(lines)


def plan_launch(train: TrainConfig, num_gpus: int = 4, gpu: GPU = A800, mfu: float = 0.35, **assumed) -> Plan:
    """Memory and time of the run `train` launches on `num_gpus` GPUs: its model is built on the meta device
    the way `train_run` builds it (same preset, from_scratch and overrides), and `Setup.from_launch` reads
    the switches from `train` and that model's config. `assumed`: Setup fields no config holds."""
    from mimo_edu.model import build_mimo

    model = build_mimo(train.model_preset, from_scratch=train.from_scratch, device="meta", **train.model_overrides)
    counts, shape = ParamCounts.from_model(model), ModelShape.from_config(model.config)
    setup = Setup.from_launch(train, model.config, num_gpus, **assumed)
    return Plan(train, model.config, setup, counts, shape, estimate_memory(counts, shape, setup),
                estimate_step(counts, shape, setup, gpu, mfu))


def memory_scenarios(base: Setup) -> dict[str, Setup]:
    """The memory figure's bars: each adds one saving to the one before."""
    ckpt = base.with_(zero2=False, checkpointing=True, sam_chunk=0)
    return {
        "no checkpointing": base.with_(zero2=False, checkpointing=False, sam_chunk=0),
        "+ gradient checkpointing": ckpt,
        f"+ ZeRO-2 over {base.num_gpus} GPUs": ckpt.with_(zero2=True),
        "+ SAM encoder one image at a time": ckpt.with_(zero2=True, sam_chunk=1),
    }


def launch_command(num_gpus: int = 4, data: str = "/data/MIMOSeg", out: str = "runs/paper",
                   checkpoints: str = "/data/checkpoints") -> str:
    """The paper launch on one node (README, "Training the paper configuration"; a test keeps them equal)."""
    if num_gpus < 1:
        raise MimoError(f"num_gpus={num_gpus}: must be a positive number of GPUs on the node, e.g. 4.")
    return (
        f"export MIMO_CHECKPOINTS={checkpoints}\n"
        f"torchrun --standalone --nproc_per_node={num_gpus} -m mimo_edu train \\\n"
        f"    --preset paper --data {data} --out {out}"
    )


def evaluate_command(checkpoint: str = "runs/paper", data: str = "/data/MIMOSeg-test") -> str:
    """Evaluate the latest checkpoint of the paper run (README, same section)."""
    return f"python -m mimo_edu evaluate --checkpoint {checkpoint} --data {data} --json"


def gpu_from_name(name: str) -> GPU:
    """The GPU entry for a CUDA device name such as "NVIDIA H100 80GB HBM3"."""
    for key, gpu in (("H200", H200), ("H100", H100), ("A800", A800), ("A100", A800)):
        if key in name.upper():
            return gpu
    raise MimoError(f"GPU {name!r}: no peak FLOPs known; pass a GPU(name, peak_tflops, memory_gib) yourself.")


def smoke_comparison(report: dict, counts: ParamCounts, shape: ModelShape) -> list[tuple[str, str, str]]:
    """(quantity, estimate, measured) rows for the JSON report of benchmarks/paper_gpu_smoke.py.

    The benchmark runs the paper model on ONE GPU without FSDP, with the launch's switches (the report's
    frozen_dtype and sam_chunk), so the estimate uses num_gpus=1, zero2=False and the measured sequence length. The step time becomes
    a measured utilisation: FLOPs per step (estimated) / (measured seconds * the GPU's peak).
    """
    gpu = gpu_from_name(report["device"])
    weights = estimate_memory(counts, shape, Setup(per_gpu_batch=1, num_gpus=1))
    rows = [("device", gpu.name, report["device"]),
            ("weights (GiB)", f"{(weights.frozen_weights + weights.trainable_weights) / GIB:.1f}",
             f"{report['weights_gib']:.1f}")]
    for run in report["runs"]:
        text = run["sequence_length"] - shape.image_tokens - shape.tokens_per_prompt
        setup = Setup(per_gpu_batch=report["per_gpu_batch"], num_gpus=1, text_tokens=max(1, text),
                      checkpointing=run["gradient_checkpointing"], frozen_dtype=report.get("frozen_dtype", "bf16"),
                      sam_chunk=report.get("sam_chunk", 0))
        tag = "checkpointing" if setup.checkpointing else "no checkpointing"
        step = estimate_step(counts, shape, setup, gpu, mfu=1.0)
        rows += [(f"peak memory, {tag} (GiB)", f"{estimate_memory(counts, shape, setup).total / GIB:.1f}",
                  f"{run['peak_gib']:.1f}"),
                 (f"step time, {tag} (s)", f"{step.seconds_per_step:.2f} at MFU 1", f"{run['step_s_median']:.2f}"),
                 (f"MFU, {tag}", "-", f"{step.seconds_per_step / run['step_s_median']:.2f}")]
    return rows


SMOKE_REPORT = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "paper_gpu_smoke.json"
"""Where the course keeps the report of benchmarks/paper_gpu_smoke.py once it has run on a GPU."""


def smoke_report(path: str | Path = SMOKE_REPORT) -> dict | None:
    """The JSON report of benchmarks/paper_gpu_smoke.py at `path`, or None when nothing was measured."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(v) -> str:
    text = ", ".join(map(str, v)) if isinstance(v, tuple) else str(v)
    text = text or "(none)"
    return text if len(text) <= 40 else text[:37] + "..."


def preset_differences(nano: MIMOConfig, paper: MIMOConfig, nano_train: TrainConfig,
                       paper_train: TrainConfig) -> list[tuple[str, str, str]]:
    """(setting, nano, paper) for every model and training field that differs between the presets."""
    rows = []
    for prefix, a, b in (("model", nano.to_dict(), paper.to_dict()), ("train", nano_train.to_dict(),
                                                                        paper_train.to_dict())):
        fa, fb = _flat(a), _flat(b)
        rows += [(f"{prefix}.{k}", _short(fa[k]), _short(fb[k])) for k in fa if k != "preset" and fa[k] != fb[k]]

    def frozen(c: MIMOConfig) -> str:  # `trainable` is long; the parts it leaves out say the same
        parts = [p for p in PARTS if p not in c.trainable and (p != "region_decoder" or c.region_source == "sam")]
        return ", ".join(parts) or "(none)"

    return [("model.frozen parts", frozen(nano), frozen(paper)) if k == "model.trainable" else (k, a, b)
            for k, a, b in rows]


def format_table(rows: list[tuple], header: tuple[str, ...]) -> str:
    """A plain-text table with the first column left-aligned and the others right-aligned."""
    cells = [tuple(map(str, header)), *[tuple(map(str, r)) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
