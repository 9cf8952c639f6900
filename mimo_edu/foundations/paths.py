"""Where the nano foundations live: data/foundations/{clip,sam,llm}, or $MIMO_EDU_FOUNDATIONS."""

import os
from pathlib import Path

from mimo_edu.shipped import shipped_path

KINDS = ("clip", "sam", "llm")
FOUNDATIONS_ENV = "MIMO_EDU_FOUNDATIONS"
FOUNDATIONS_DIR = shipped_path("foundations")
"""The shipped foundations (`make foundations` remakes them): the clone's data/foundations or a wheel's copy."""
SAM_FILE = "sam.pth"  # segment-anything's format: a state dict, as sam_vit_h_4b8939.pth


def foundations_root() -> Path:
    return Path(os.environ.get(FOUNDATIONS_ENV) or FOUNDATIONS_DIR)


def foundation_paths(root: str | Path | None = None) -> tuple[Path, Path, Path]:
    """(CLIP folder, LLM folder, SAM .pth) under `root` (default: $MIMO_EDU_FOUNDATIONS or data/foundations)."""
    root = Path(root) if root is not None else foundations_root()
    return root / "clip", root / "llm", root / "sam" / SAM_FILE
