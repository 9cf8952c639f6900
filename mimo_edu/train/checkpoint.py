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
A crash at any moment leaves the previous checkpoint intact; a failed write (a
full disk) removes its temporary files and raises CheckpointError. Frozen
weights are not stored: they come from the preset (seeded init or base
checkpoints) and a fingerprint checks that they match. The data position and
every random stream are functions of (seed, step), so `step` is all the state
they need.

Reading lives in mimo_edu/checkpoints.py (safe on files from anywhere), so that
inference loads a run's model without the training package.
"""

import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from mimo_edu.checkpoints import (
    LATEST,
    MODEL_DIR,
    OPTIMIZER,
    STATE,
    TRAINABLE,
    check_trainable_keys,
    fqn,
    read_pt,
    read_safetensors,
)
from mimo_edu.errors import CheckpointError

WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)
"""What a failed write raises: OSError from Python, RuntimeError from torch.save, SafetensorError from save_file."""


def step_dir_name(step: int) -> str:
    return f"step-{step:07d}"


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
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _write_folder(folder: Path, trainable: dict, optim_state: dict, trainer_state: dict,
                  model: nn.Module | None) -> None:
    """Write the checkpoint files into a fresh `folder` and flush them to disk."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in trainable.items()}, folder / TRAINABLE)
    torch.save(optim_state, folder / OPTIMIZER)
    torch.save(trainer_state, folder / STATE)
    if model is not None and hasattr(model, "save_pretrained"):
        model.save_pretrained(folder / MODEL_DIR)
    _fsync_tree(folder)


def _write_failed(final: Path, err: Exception) -> CheckpointError:
    """The error for a checkpoint that could not be written; the previous one is untouched."""
    out_dir = final.parent
    previous = (out_dir / LATEST).read_text().strip() if (out_dir / LATEST).is_file() else None
    kept = f"the previous checkpoint {out_dir / previous} is intact and `latest` names it" if previous else (
        "there is no earlier checkpoint")
    return CheckpointError(
        f"checkpoint {final}: cannot be written ({str(err).strip()}). The disk holding {out_dir} is full or not "
        f"writable: free space (`df -h {out_dir}`) or choose another --out. The partial files were removed; "
        f"{kept}. Run the same command again to resume."
    )


def save_checkpoint(out_dir: Path, step: int, trainable: dict, optim_state: dict, trainer_state: dict,
                    model: nn.Module | None = None) -> Path:
    """Write OUT/step-NNNNNNN atomically, point `latest` at it, delete older ones (rank 0 only).

    A failed write (a full disk, no permission) removes the temporary files and raises CheckpointError.
    """
    final = out_dir / step_dir_name(step)
    tmp = out_dir / f".tmp-{final.name}-{os.getpid()}"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not final.exists():  # folders appear only by rename, so an existing one is complete: same step, same state
            _write_folder(tmp, trainable, optim_state, trainer_state, model)
            os.replace(tmp, final)
            _fsync_dir(out_dir)
        write_text_atomic(out_dir / LATEST, final.name + "\n")
    except WRITE_ERRORS as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_failed(final, err) from err
    for old in out_dir.glob("step-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    for stale in out_dir.glob(".tmp-step-*"):  # left by a crash mid-write
        shutil.rmtree(stale, ignore_errors=True)
    return final


def restore_state(model: nn.Module, optimizer: torch.optim.Optimizer, ckpt: Path) -> None:
    """Load trainable weights and optimizer state into a (possibly wrapped or sharded) model.

    Every rank reads the files itself, so no broadcast is needed; FSDP shards the full tensors.
    """
    trainable = read_safetensors(ckpt / TRAINABLE)
    check_trainable_keys(model, trainable, ckpt / TRAINABLE)
    optim_state = read_pt(ckpt / OPTIMIZER)
    # Not strict: frozen weights are not in the file (a DDP wrapper would count them missing), and a trainable
    # parameter that never got a gradient has no AdamW state yet.
    loose = StateDictOptions(full_state_dict=True, ignore_frozen_params=True, strict=False)
    try:
        set_model_state_dict(model, trainable, options=loose)
        set_optimizer_state_dict(model, optimizer, optim_state, options=loose)
        _drop_states_not_saved(model, optimizer, set(optim_state["state"]))
    except (AttributeError, KeyError, RuntimeError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"checkpoint {ckpt}: its weights or optimizer state do not fit this model ({err}). Build the model "
            "with the preset and overrides the checkpoint was trained with, or start afresh in a new --out."
        ) from err


def _drop_states_not_saved(model: nn.Module, optimizer: torch.optim.Optimizer, saved: set[str]) -> None:
    """Forget the AdamW state of parameters that had none when the checkpoint was written.

    set_optimizer_state_dict first gives every parameter a state (a step with zero gradients, so step = 1);
    left in place, a parameter's first real update would use step 2's bias correction, unlike the
    uninterrupted run.
    """
    for name, param in model.named_parameters():
        if fqn(name) not in saved:
            optimizer.state.pop(param, None)
