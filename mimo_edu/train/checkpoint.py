"""Atomic training checkpoints that resume exactly.

Layout of an output folder:

    OUT/
      latest                   name of the newest complete checkpoint, e.g. "step-0000200"
      metrics.jsonl            one JSON object per log or eval event
      step-0000200/
        trainable.safetensors  every parameter with requires_grad (LoRA, decoder, ...) and the buffers
        optimizer.pt           AdamW state keyed by parameter name
        trainer_state.pt       step, config, world size, frozen-weight fingerprint
        model/                 model.save_pretrained(...) (when the model can save itself unsharded)

A checkpoint is written into a hidden temporary folder, flushed to disk and
renamed into place; only then is `latest` replaced (write, fsync, os.replace).
A crash at any moment leaves the previous checkpoint intact. Frozen weights are
not stored: they come from the preset (seeded init or base checkpoints) and a
fingerprint checks that they match. The data position and every random stream
are functions of (seed, step), so `step` is all the state they need.
"""

import math
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from mimo_edu.errors import CheckpointError

LATEST = "latest"
TRAINABLE, OPTIMIZER, STATE, MODEL_DIR = "trainable.safetensors", "optimizer.pt", "trainer_state.pt", "model"


def step_dir_name(step: int) -> str:
    return f"step-{step:07d}"


def frozen_fingerprint(model: nn.Module) -> float:
    """A cheap checksum of the frozen weights (call on the unwrapped, unsharded model)."""
    with torch.no_grad():
        return float(sum(p.detach().double().abs().sum() for p in model.parameters() if not p.requires_grad))


def gather_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Full (unsharded) trainable weights and optimizer state on the CPU.

    A collective under torch.distributed: every rank must call it; with FSDP only
    rank 0 receives the tensors, the others get empty dicts.
    """
    opts = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    return get_model_state_dict(model, options=opts), get_optimizer_state_dict(model, optimizer, options=opts)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file():
            with open(path, "rb+") as f:
                os.fsync(f.fileno())
    _fsync_dir(root)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` by `text` so that readers see the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def save_checkpoint(out_dir: Path, step: int, trainable: dict, optim_state: dict, trainer_state: dict,
                    model: nn.Module | None = None) -> Path:
    """Write OUT/step-NNNNNNN atomically, point `latest` at it, delete older ones (rank 0 only)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / step_dir_name(step)
    if not final.exists():  # folders appear only by rename, so an existing one is complete: same step, same state
        tmp = out_dir / f".tmp-{final.name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        save_file({k: v.contiguous() for k, v in trainable.items()}, tmp / TRAINABLE)
        torch.save(optim_state, tmp / OPTIMIZER)
        torch.save(trainer_state, tmp / STATE)
        if model is not None and hasattr(model, "save_pretrained"):
            model.save_pretrained(tmp / MODEL_DIR)
        _fsync_tree(tmp)
        os.replace(tmp, final)
        _fsync_dir(out_dir)
    write_text_atomic(out_dir / LATEST, final.name + "\n")
    for old in out_dir.glob("step-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    for stale in out_dir.glob(".tmp-step-*"):  # left by a crash mid-write
        shutil.rmtree(stale, ignore_errors=True)
    return final


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The folder `latest` names, or None when OUT holds no checkpoint yet."""
    pointer = Path(out_dir) / LATEST
    if not pointer.exists():
        return None
    ckpt = Path(out_dir) / pointer.read_text().strip()
    missing = [name for name in (TRAINABLE, OPTIMIZER, STATE) if not (ckpt / name).is_file()]
    if missing:
        raise CheckpointError(
            f"checkpoint {ckpt}: missing {missing}, so it cannot be resumed. "
            f"Delete {pointer} to start afresh, or point `latest` at a complete step-* folder."
        )
    return ckpt


def read_trainer_state(ckpt: Path) -> dict:
    try:
        return torch.load(ckpt / STATE, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"checkpoint {ckpt / STATE}: unreadable ({err}). Delete it and resume from an earlier run.") from err


def load_trainable(model: nn.Module, ckpt: Path) -> None:
    """Copy the trainable weights of `ckpt` into an unwrapped, unsharded model."""
    state = load_file(ckpt / TRAINABLE)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    mismatch = sorted((trainable - set(state)) | (set(state) - set(model.state_dict())))
    if mismatch:
        raise CheckpointError(
            f"checkpoint {ckpt / TRAINABLE}: weights {mismatch[:5]} are missing from it or unknown to the "
            "model. Build the model with the preset and overrides the checkpoint was trained with."
        )
    model.load_state_dict(state, strict=False)


def restore_state(model: nn.Module, optimizer: torch.optim.Optimizer, ckpt: Path) -> None:
    """Load trainable weights and optimizer state into a (possibly wrapped or sharded) model.

    Every rank reads the files itself, so no broadcast is needed; FSDP shards the full tensors.
    """
    try:
        trainable = load_file(ckpt / TRAINABLE)
        optim_state = torch.load(ckpt / OPTIMIZER, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"checkpoint {ckpt}: unreadable ({err}). Delete it and resume from an earlier run.") from err
    opts = StateDictOptions(full_state_dict=True, ignore_frozen_params=True)
    set_model_state_dict(model, trainable, options=opts)
    # Not strict: a trainable parameter that never got a gradient (unused by forward) has no AdamW state yet.
    set_optimizer_state_dict(model, optimizer, optim_state, options=StateDictOptions(full_state_dict=True, strict=False))


def load_model(path: str | Path):
    """A MIMO from a training output folder, one of its step-* folders, or a save_pretrained folder.

    A checkpoint without an exported `model/` (written under FSDP) is rebuilt from
    its preset and seed, and its trainable weights are loaded on top.
    """
    from mimo_edu.model import MIMO, build_mimo
    from mimo_edu.utils import seed_everything

    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path}: no such folder. Pass the --out folder of `python -m mimo_edu train`.")
    ckpt = latest_checkpoint(path) or path
    if (ckpt / MODEL_DIR).is_dir():
        return MIMO.from_pretrained(ckpt / MODEL_DIR)
    if not (ckpt / TRAINABLE).is_file():
        return MIMO.from_pretrained(ckpt)
    state = read_trainer_state(ckpt)
    seed_everything(state["config"]["seed"])
    model = build_mimo(state["config"]["model_preset"])
    if not math.isclose(frozen_fingerprint(model), state["frozen_fingerprint"], rel_tol=1e-9, abs_tol=1e-6):
        raise CheckpointError(
            f"checkpoint {ckpt}: rebuilding preset {state['config']['model_preset']!r} gave other frozen weights "
            "than it was trained with. Check that the base checkpoints ($MIMO_CHECKPOINTS) are the same files."
        )
    load_trainable(model, ckpt)
    return model
