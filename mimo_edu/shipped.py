"""Where the weights the course ships live: in a clone, and in an installed wheel.

The repository keeps them in data/: the nano foundations (data/foundations, `make foundations` writes them)
and the trained nano model (data/mimo-nano, `make nano-checkpoint`). A wheel holds no data/ folder, so
pyproject.toml maps those two folders into the package as `mimo_edu/_shipped/` (package data):
`pip install .` (Binder's postBuild) and `pip install git+...` (Colab) carry them along, copied from data/
when the wheel is built. data/ stays the one source of truth; a clone and an editable install read it directly.
"""

from pathlib import Path

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
