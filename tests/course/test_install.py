"""The course runs from an installed wheel, as Binder's postBuild (`pip install --no-deps .`) and Colab's
`pip install git+...` install it: no clone beside the package, the shipped weights inside it."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import nbformat
import pytest

from mimo_edu import shipped
from mimo_edu.train import course_checkpoint

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT_NOTEBOOKS = ("05_training", "06_evaluation", "07_interactive")  # they load the shipped nano model


def test_pyproject_lists_every_package_and_ships_the_weights():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "mimo_edu").rglob("__init__.py")}
    assert set(config["packages"]) == on_disk | {"mimo_edu._shipped"}
    assert config["package-dir"] == {"mimo_edu._shipped": "data"}
    assert config["package-data"]["mimo_edu._shipped"] == ["mimo-nano/**/*", "foundations/**/*"]


def test_shipped_path_prefers_the_clone_then_the_installed_copy(monkeypatch, tmp_path):
    assert shipped.shipped_path("mimo-nano") == ROOT / "data" / "mimo-nano" == course_checkpoint()
    repo, packaged = tmp_path / "data", tmp_path / "_shipped"
    monkeypatch.setattr(shipped, "REPO_DATA", repo)
    monkeypatch.setattr(shipped, "PACKAGED", packaged)
    assert shipped.shipped_path("mimo-nano") == repo / "mimo-nano"  # neither: the clone's path, for the message
    (packaged / "mimo-nano").mkdir(parents=True)
    assert shipped.shipped_path("mimo-nano") == packaged / "mimo-nano"
    (repo / "mimo-nano").mkdir(parents=True)
    assert shipped.shipped_path("mimo-nano") == repo / "mimo-nano"


def _run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
@pytest.mark.notebooks
def test_wheel_installed_outside_the_repository_runs_the_checkpoint_notebooks(tmp_path):
    # Build from a copy of what the wheel needs, so that the build leaves nothing (build/, *.egg-info) in the repo.
    src = tmp_path / "src"
    shutil.copytree(ROOT / "mimo_edu", src / "mimo_edu", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("mimo-nano", "foundations"):
        shutil.copytree(ROOT / "data" / name, src / "data" / name)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", tmp_path / "dist", src])
    wheel = next((tmp_path / "dist").glob("mimo_edu-*.whl"))

    # A fresh environment that reuses this one's packages (nothing to download), then the wheel as postBuild installs it.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", venv])
    python = venv / "bin" / "python"
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    Path(site, "reuse-test-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # after the venv's own
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel])

    env = {k: v for k, v in os.environ.items()
           if k not in ("MIMO_EDU_CHECKPOINT", "MIMO_EDU_FOUNDATIONS", "PYTHONPATH", "JUPYTER_PATH")}
    env.update(JUPYTER_DATA_DIR=str(tmp_path / "jupyter"), MIMO_EDU_SMOKE="1", HF_HUB_OFFLINE="1")
    work = tmp_path / "course"  # not the repository: Colab runs in /content
    work.mkdir()
    where = json.loads(_run([python, "-c", "import json, mimo_edu; from mimo_edu.train import course_checkpoint; "
                                          "print(json.dumps([mimo_edu.__file__, str(course_checkpoint())]))"],
                            cwd=work, env=env).stdout)
    assert all(p.startswith(str(venv)) for p in where), where  # the installed package and the weights it carries

    for stem in CHECKPOINT_NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / f"{stem}.ipynb", work)
        _run([python, "-m", "papermill", f"{stem}.ipynb", f"{stem}.out.ipynb", "-k", "python3", "--cwd", work,
              "-p", "smoke", "True", "-p", "solutions", "True", "--no-progress-bar"], cwd=work, env=env)
        executed = nbformat.read(work / f"{stem}.out.ipynb", as_version=4)
        text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
        assert "CheckpointError" not in text and "Not yet" not in text
        if stem == "05_training":  # the kernel ran the installed package: the shipped run lies inside it
            assert str(venv) in text and "_shipped/mimo-nano" in text
