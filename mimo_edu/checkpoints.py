"""Reading a training run's checkpoints: the folder layout, the trainer state and the model's weights.

`load_model` gives a MIMO for inference from a `python -m mimo_edu train` output folder, one of its step-*
folders or a save_pretrained folder, without importing the training package, which writes these folders
(mimo_edu/train/checkpoint.py describes the layout and how it is written atomically).

Reading is safe on files from anywhere: weights are safetensors, and the two `.pt` files go through
`torch.load(weights_only=True)`, which refuses, without running it, any pickle that would build more than
tensors and plain containers.
"""

import math
import pickle  # only for its exception class: nothing here unpickles without weights_only
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from mimo_edu.errors import CheckpointError

if TYPE_CHECKING:
    from mimo_edu.model import MIMO

LATEST = "latest"
TRAINABLE, OPTIMIZER, STATE, MODEL_DIR = "trainable.safetensors", "optimizer.pt", "trainer_state.pt", "model"
STATE_KEYS = {"step", "config", "world_size", "frozen_fingerprint", "elapsed_s"}
CONFIG_KEYS = {"model_preset", "seed"}


def frozen_fingerprint(model: nn.Module) -> float:
    """A cheap checksum of the frozen weights (call on the unwrapped, unsharded model)."""
    with torch.no_grad():
        return float(sum(p.detach().double().abs().sum() for p in model.parameters() if not p.requires_grad))


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


def unreadable(path: Path, err: Exception) -> CheckpointError:
    """The error for a checkpoint file that is refused unread."""
    reason = ("a pickle that would build other objects than tensors, e.g. run code"
              if isinstance(err, pickle.UnpicklingError) else (str(err).splitlines() or [type(err).__name__])[0])
    return CheckpointError(
        f"checkpoint {path}: refused, unread ({reason}); it is truncated, was written by another program or was "
        "tampered with. Delete the checkpoint folder and resume from an earlier one, or start afresh in a new --out."
    )


def read_pt(path: Path) -> object:
    """A `.pt` file of tensors and plain containers; any other pickle is refused unexecuted."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError for a foreign pickle, RuntimeError or EOFError for a truncated file
        raise unreadable(path, err) from err


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; CheckpointError when it cannot be read."""
    try:
        return load_file(path)
    except (SafetensorError, OSError) as err:
        raise unreadable(path, err) from err


def read_trainer_state(ckpt: Path) -> dict:
    """trainer_state.pt: step, config, world size, frozen-weight fingerprint and elapsed seconds."""
    state = read_pt(ckpt / STATE)
    if not (isinstance(state, dict) and STATE_KEYS <= set(state) and isinstance(state["config"], dict)
            and CONFIG_KEYS <= set(state["config"])):
        raise unreadable(ckpt / STATE, ValueError(f"it lacks some of {sorted(STATE_KEYS)} or config {CONFIG_KEYS}"))
    return state


def load_trainable(model: nn.Module, ckpt: Path) -> None:
    """Copy the trainable weights of `ckpt` into an unwrapped, unsharded model."""
    state = read_safetensors(ckpt / TRAINABLE)
    check_trainable_keys(model, state, ckpt / TRAINABLE)
    model.load_state_dict(state, strict=False)


def check_trainable_keys(model: nn.Module, state: dict, path: Path) -> None:
    """CheckpointError unless `state` holds every trainable parameter of `model` and nothing it does not know."""
    trainable = {fqn(n) for n, p in model.named_parameters() if p.requires_grad}
    known = {fqn(k) for k in model.state_dict()}
    mismatch = sorted((trainable - set(state)) | (set(state) - known))
    if mismatch:
        raise CheckpointError(
            f"checkpoint {path}: weights {mismatch[:5]} are missing from it or unknown to the model. "
            "Build the model with the preset and overrides the checkpoint was trained with."
        )


def fqn(name: str) -> str:
    """A parameter's name as checkpoints store it: without the prefixes of DDP and torch.compile wrappers."""
    return name.removeprefix("module.").removeprefix("_orig_mod.")


def load_model(path: str | Path) -> "MIMO":
    """A MIMO from a training output folder, one of its step-* folders, or a save_pretrained folder.

    A checkpoint without an exported `model/` (written under FSDP) is rebuilt from
    its preset and seed, and its trainable weights are loaded on top.
    """
    # imported here: the training package reads its checkpoints through this module without loading the model's
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
