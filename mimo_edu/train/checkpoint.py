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

Reading is safe on files from anywhere: weights are safetensors, and the two
`.pt` files go through `torch.load(weights_only=True)`, which refuses, without
running it, any pickle that would build more than tensors and plain containers.
"""

import math
import os
import pickle  # only for its exception class: nothing here unpickles without weights_only
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
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
from mimo_edu.shipped import shipped_path

LATEST = "latest"
TRAINABLE, OPTIMIZER, STATE, MODEL_DIR = "trainable.safetensors", "optimizer.pt", "trainer_state.pt", "model"
STATE_KEYS = {"step", "config", "world_size", "frozen_fingerprint", "elapsed_s"}
CONFIG_KEYS = {"model_preset", "seed"}
WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)
"""What a failed write raises: OSError from Python, RuntimeError from torch.save, SafetensorError from save_file."""


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


def _unreadable(path: Path, err: Exception) -> CheckpointError:
    reason = ("a pickle that would build other objects than tensors, e.g. run code"
              if isinstance(err, pickle.UnpicklingError) else (str(err).splitlines() or [type(err).__name__])[0])
    return CheckpointError(
        f"checkpoint {path}: refused, unread ({reason}); it is truncated, was written by another program or was "
        "tampered with. Delete the checkpoint folder and resume from an earlier one, or start afresh in a new --out."
    )


def _torch_load(path: Path) -> object:
    """A `.pt` file of tensors and plain containers; any other pickle is refused unexecuted."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError for a foreign pickle, RuntimeError or EOFError for a truncated file
        raise _unreadable(path, err) from err


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError) as err:
        raise _unreadable(path, err) from err


def read_trainer_state(ckpt: Path) -> dict:
    """trainer_state.pt: step, config, world size, frozen-weight fingerprint and elapsed seconds."""
    state = _torch_load(ckpt / STATE)
    if not (isinstance(state, dict) and STATE_KEYS <= set(state) and isinstance(state["config"], dict)
            and CONFIG_KEYS <= set(state["config"])):
        raise _unreadable(ckpt / STATE, ValueError(f"it lacks some of {sorted(STATE_KEYS)} or config {CONFIG_KEYS}"))
    return state


def load_trainable(model: nn.Module, ckpt: Path) -> None:
    """Copy the trainable weights of `ckpt` into an unwrapped, unsharded model."""
    state = _read_safetensors(ckpt / TRAINABLE)
    _check_trainable_keys(model, state, ckpt / TRAINABLE)
    model.load_state_dict(state, strict=False)


def _check_trainable_keys(model: nn.Module, state: dict, path: Path) -> None:
    """CheckpointError unless `state` holds every trainable parameter of `model` and nothing it does not know."""
    trainable = {_fqn(n) for n, p in model.named_parameters() if p.requires_grad}
    known = {_fqn(k) for k in model.state_dict()}
    mismatch = sorted((trainable - set(state)) | (set(state) - known))
    if mismatch:
        raise CheckpointError(
            f"checkpoint {path}: weights {mismatch[:5]} are missing from it or unknown to the model. "
            "Build the model with the preset and overrides the checkpoint was trained with."
        )


def restore_state(model: nn.Module, optimizer: torch.optim.Optimizer, ckpt: Path) -> None:
    """Load trainable weights and optimizer state into a (possibly wrapped or sharded) model.

    Every rank reads the files itself, so no broadcast is needed; FSDP shards the full tensors.
    """
    trainable = _read_safetensors(ckpt / TRAINABLE)
    _check_trainable_keys(model, trainable, ckpt / TRAINABLE)
    optim_state = _torch_load(ckpt / OPTIMIZER)
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
        if _fqn(name) not in saved:
            optimizer.state.pop(param, None)


def _fqn(name: str) -> str:
    """A parameter's name as checkpoints store it: without the prefixes of DDP and torch.compile wrappers."""
    return name.removeprefix("module.").removeprefix("_orig_mod.")


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
    model = build_mimo(state["config"]["model_preset"], from_scratch=state["config"].get("from_scratch", False),
                       **state["config"].get("model_overrides", {}))
    if not math.isclose(frozen_fingerprint(model), state["frozen_fingerprint"], rel_tol=1e-9, abs_tol=1e-6):
        raise CheckpointError(
            f"checkpoint {ckpt}: rebuilding preset {state['config']['model_preset']!r} gave other frozen weights "
            "than it was trained with. Check that the base checkpoints ($MIMO_CHECKPOINTS) are the same files."
        )
    load_trainable(model, ckpt)
    return model


COURSE_CHECKPOINT_ENV = "MIMO_EDU_CHECKPOINT"
COURSE_CHECKPOINT = shipped_path("mimo-nano")
"""The trained nano the course ships (`make nano-checkpoint` remakes it): the clone's data/mimo-nano, or the copy
an installed wheel carries (mimo_edu/shipped.py)."""


def course_checkpoint() -> Path:
    """The checkpoint the notebooks load: $MIMO_EDU_CHECKPOINT, else data/mimo-nano (the clone's, or the installed
    package's copy), looked up at each call."""
    path = Path(os.environ.get(COURSE_CHECKPOINT_ENV) or shipped_path("mimo-nano"))
    if not path.is_dir():
        raise CheckpointError(
            f"checkpoint {path}: no such folder. Install mimo-edu from the course repository (`pip install .` or "
            f"`pip install git+https://github.com/mimo-edu/mimo-edu` carry data/mimo-nano), or train one "
            f"(`python -m mimo_edu train --preset nano --out runs/nano`) and set ${COURSE_CHECKPOINT_ENV} to its folder."
        )
    return path
