"""Hostile-input helpers shared by the reliability cases (moved from tests/test_reliability_inputs.py).

`rgb` makes a test image; `Exploit` and `_exploit` write a pickle that would run code when unpickled.
"""

import pickle
from pathlib import Path

import numpy as np
import torch


def rgb(h: int = 32, w: int = 48) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)



class Exploit:
    """A pickle that creates `marker` when it is unpickled: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _exploit(path: Path, marker: Path, as_torch: bool) -> None:
    if as_torch:
        torch.save(Exploit(marker), path)
    else:
        path.write_bytes(pickle.dumps(Exploit(marker), protocol=2))  # torch.load's own protocol
