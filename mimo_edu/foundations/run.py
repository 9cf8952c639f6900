"""Pretrain, load and evaluate the nano foundations with the MIMO stage's Trainer.

    trainer = pretrain("clip", "runs/clip")            # resumes when runs/clip holds a checkpoint
    report = evaluate_foundation("clip", "runs/clip", num=200, stream=split_seed("test"))

Every foundation trains on train-split scenes only (`SceneDataset`, `TextDataset` on split_seed("train"));
validation during training reads the val split, the reports the test split.
"""

import json
from dataclasses import replace
from pathlib import Path

from torch import nn
from transformers import CLIPModel, LlamaForCausalLM

from mimo_edu.checkpoints import MODEL_DIR, latest_checkpoint
from mimo_edu.data.synth import split_seed
from mimo_edu.errors import CheckpointError, MimoError
from mimo_edu.foundations.clip import (
    ClipObjective,
    build_nano_clip,
    clip_dataset,
    collate_clip,
    evaluate_clip,
)
from mimo_edu.foundations.llm import LMObjective, TextCollator, TextDataset, evaluate_llm
from mimo_edu.foundations.paths import KINDS, SAM_FILE
from mimo_edu.foundations.sam import CONFIG_FILE, SamObjective, collate_sam, evaluate_sam, sam_dataset
from mimo_edu.model.config import SegmenterConfig, nano_config
from mimo_edu.model.language import build_llm
from mimo_edu.model.segmenter import load_sam_state
from mimo_edu.model.tokenizer import load_tokenizer
from mimo_edu.train.config import TrainConfig
from mimo_edu.train.trainer import Trainer
from mimo_edu.utils import quiet_transformers, seed_everything

VAL_NUM = {"clip": 64, "sam": 16, "llm": 256}  # val-split items scored at each evaluation during pretraining
REMAKE = "Remake the foundations with `make foundations` (or `python -m mimo_edu pretrain {kind} --out DIR`)."


def pretrain_config(kind: str, **overrides) -> TrainConfig:
    """A fresh training config for one foundation (steps sized for `make foundations` on 2 CPU cores)."""
    presets = {
        # AdamW 1e-3, wd 0.01, 50 warmup steps, cosine: the feasibility probe's recipe; 32 fresh scenes a step
        "clip": TrainConfig(model_preset="nano-clip", lr=1e-3, weight_decay=0.01, warmup_steps=50, max_steps=400,
                            batch_size=32, eval_every=200, ckpt_every=100),
        # 8 scenes x up to 4 prompts a step; the longest of the three (about 0.5 s a step)
        "sam": TrainConfig(model_preset="nano-sam", lr=1e-3, weight_decay=0.01, warmup_steps=100, max_steps=3000,
                           batch_size=8, eval_every=500, ckpt_every=250),
        "llm": TrainConfig(model_preset="nano-llm", lr=1e-3, weight_decay=0.01, warmup_steps=50, max_steps=1000,
                           batch_size=32, eval_every=500, ckpt_every=250),
    }
    check_kind(kind)
    return replace(presets[kind], **overrides)


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise MimoError(f"foundation {kind!r} is unknown; choose one of {list(KINDS)}.")


def build_objective(kind: str) -> nn.Module:
    """A randomly initialised foundation with its training objective (seed first for a repeatable init)."""
    check_kind(kind)
    config = nano_config()
    tokenizer = load_tokenizer()
    if kind == "clip":
        return ClipObjective(build_nano_clip(config.vision, tokenizer), tokenizer)
    if kind == "sam":
        return SamObjective(sam_config())
    return LMObjective(build_llm(replace(config.llm, vocab_size=len(tokenizer))), tokenizer)


def sam_config() -> SegmenterConfig:
    """nano's segmenter, pretrained without MIMO's extras (no [SEG] prompt added to the mask token)."""
    return replace(nano_config().segmenter, prompt_to_mask_token=False)


def datasets(kind: str, cfg: TrainConfig) -> tuple:
    """(train dataset, collate function) of a foundation: one fresh train-split item per draw."""
    num = cfg.max_steps * cfg.samples_per_step
    if kind == "clip":
        return clip_dataset(num, nano_config().vision), collate_clip
    if kind == "sam":
        return sam_dataset(num, sam_config()), collate_sam
    return TextDataset(num, split_seed("train")), TextCollator(load_tokenizer())


def evaluate_objective(kind: str, objective: nn.Module, num: int, stream: int) -> dict:
    """The foundation's own evaluation on `num` items (images or texts) of a MIMOSeg-synth stream."""
    fn = {"clip": evaluate_clip, "sam": evaluate_sam, "llm": evaluate_llm}[kind]
    was_training = objective.training
    report = fn(objective, num, stream)
    objective.train(was_training)
    return report


def headline(report: dict) -> dict:
    """The numbers of a foundation report worth a line in metrics.jsonl."""
    if report["kind"] == "clip":
        return {k: round(report[k], 4) for k in ("modality_acc", "structure_acc")}
    if report["kind"] == "sam":
        return {f"dice/{k}": round(v, 4) for k, v in report["dice"].items()}
    return {"perplexity": round(report["perplexity"], 4)}


def pretrain(kind: str, out: str | Path, cfg: TrainConfig | None = None) -> Trainer:
    """Pretrain foundation `kind` into `out` (checkpoints every cfg.ckpt_every steps; resumes); returns the Trainer."""
    cfg = cfg or pretrain_config(kind)
    seed_everything(cfg.seed)
    objective = build_objective(kind)
    train_set, collate = datasets(kind, cfg)

    def evaluate_fn(model) -> dict:
        return headline(evaluate_objective(kind, model, VAL_NUM[kind], split_seed("val")))

    trainer = Trainer(objective, train_set, cfg, out, collate, evaluate_fn if cfg.eval_samples else None)
    trainer.train()
    return trainer


def resolve(path: str | Path) -> Path:
    """A foundation folder: `path` itself, or the model/ folder of the latest checkpoint of a pretrain --out."""
    path = Path(path)
    ckpt = latest_checkpoint(path) if path.is_dir() else None
    return ckpt / MODEL_DIR if ckpt is not None else path


def load_objective(kind: str, path: str | Path) -> nn.Module:
    """A saved foundation (a pretrain --out folder or a data/foundations/{kind} folder) with its objective."""
    check_kind(kind)
    path = resolve(path)
    if not path.is_dir():
        raise CheckpointError(f"nano-{kind.upper()} foundation {path}: no such folder. " + REMAKE.format(kind=kind))
    try:
        if kind == "sam":
            objective = SamObjective(SegmenterConfig.from_dict(json.loads((path / CONFIG_FILE).read_text())))
            load_sam_state(objective.segmenter.sam, path / SAM_FILE, REMAKE.format(kind=kind))
            return objective
        tokenizer = load_tokenizer(path)
        with quiet_transformers():
            if kind == "clip":
                return ClipObjective(CLIPModel.from_pretrained(str(path)), tokenizer)
            return LMObjective(LlamaForCausalLM.from_pretrained(str(path)), tokenizer)
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise CheckpointError(
            f"nano-{kind.upper()} foundation {path}: cannot be read ({str(err).splitlines()[0]}). "
            + REMAKE.format(kind=kind)
        ) from err


def evaluate_foundation(kind: str, path: str | Path, num: int, stream: int) -> dict:
    """Load a foundation and score it (see `evaluate_objective`)."""
    return evaluate_objective(kind, load_objective(kind, path), num, stream)
