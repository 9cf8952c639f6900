"""Where the weights the course ships live: in a clone, and in an installed wheel.

The repository keeps them in data/: the nano foundations (data/foundations, `make foundations` writes them)
and the trained nano model (data/mimo-nano, `make nano-checkpoint`). A wheel holds no data/ folder, so
pyproject.toml maps those two folders into the package as `mimo_edu/_shipped/` (package data):
`pip install .` (Binder's postBuild) and `pip install git+...` (Colab) carry them along, copied from data/
when the wheel is built. data/ stays the one source of truth; a clone and an editable install read it directly.
`course_checkpoint()` is the model the notebooks and the `ask` command load by default.
"""

import os
from pathlib import Path

from mimo_edu.errors import CheckpointError

REPO_DATA = Path(__file__).resolve().parents[1] / "data"
"""data/ of the clone this package runs from (absent in a wheel install: there it would be site-packages/data)."""
PACKAGED = Path(__file__).resolve().parent / "_shipped"
"""A wheel's copy of data/mimo-nano and data/foundations."""


def shipped_path(name: str) -> Path:
    """data/<name> ("mimo-nano", "foundations") of the clone when there is one, else the installed copy;
    when neither exists, the clone's path, which error messages then name."""
    for root in (REPO_DATA, PACKAGED):
        if (root / name).is_dir():
            return root / name
    return REPO_DATA / name


COURSE_CHECKPOINT_ENV = "MIMO_EDU_CHECKPOINT"


def course_checkpoint() -> Path:
    """The trained nano the notebooks load: $MIMO_EDU_CHECKPOINT, else data/mimo-nano (the clone's, or the installed
    package's copy; `make nano-checkpoint` remakes it), looked up at each call."""
    path = Path(os.environ.get(COURSE_CHECKPOINT_ENV) or shipped_path("mimo-nano"))
    if not path.is_dir():
        raise CheckpointError(
            f"checkpoint {path}: no such folder. Install mimo-edu from the course repository (`pip install .` or "
            f"`pip install git+https://github.com/mimo-edu/mimo-edu` carry data/mimo-nano), or train one "
            f"(`python -m mimo_edu train --preset nano --out runs/nano`) and set ${COURSE_CHECKPOINT_ENV} to its folder."
        )
    return path
