"""Damaged or tampered model folders and SAM checkpoints are refused with a message that says how to fix it
(issue 8); a tampered pickle is never run.
"""

import shutil
from pathlib import Path

import pytest
from hostile import _exploit
from safetensors.torch import load_file, save_file

from mimo_edu.errors import CheckpointError
from mimo_edu.model import MIMO
from mimo_edu.model.segmenter import build_sam, load_sam_state

# ----------------------------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def saved(nano, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("saved") / "nano"
    nano.save_pretrained(path)
    return path


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "model.safetensors").write_bytes((p / "model.safetensors").read_bytes()[:1000]),
         r"model\.safetensors cannot be read \(.*\); it is truncated or was not written by MIMO\.save_pretrained"),
        (lambda p: (p / "config.json").write_text("{'preset': 'nano'"), r"config\.json cannot be read"),
        (lambda p: (p / "config.json").write_text("[1, 2]"), r"config\.json cannot be read \(it holds a list"),
        (lambda p: (p / "config.json").write_text('{"preset": "nano", "__class__": "os.system"}'),
         r"MIMO config: cannot read it .*Re-save the model"),
        (lambda p: shutil.rmtree(p / "tokenizer"), r"tokenizer folder .*no tokenizer_config\.json"),
        (lambda p: (p / "model.safetensors").unlink(), r"config\.json or model\.safetensors is missing"),
    ],
    ids=["truncated-weights", "config-not-json", "config-a-list", "config-unknown-key", "no-tokenizer", "no-weights"],
)
def test_damaged_pretrained_folders(saved, tmp_path, damage, message):
    folder = shutil.copytree(saved, tmp_path / "copy")
    damage(folder)
    with pytest.raises(CheckpointError, match=message):
        MIMO.from_pretrained(folder)


def test_pretrained_from_another_preset_or_with_missing_keys(saved, tmp_path):
    with pytest.raises(CheckpointError, match="saved from preset 'nano', not 'paper'; load it with preset='nano'"):
        MIMO.from_pretrained(saved, preset="paper")
    folder = shutil.copytree(saved, tmp_path / "copy")
    state = load_file(folder / "model.safetensors")
    del state["projector.0.weight"]
    save_file(state, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"1 missing, e.g. \['projector.0.weight'\].*re-save it"):
        MIMO.from_pretrained(folder)



def test_a_tampered_sam_checkpoint_is_refused_unrun(nano, tmp_path):
    _exploit(tmp_path / "sam.pth", tmp_path / "pwned", as_torch=True)
    with pytest.raises(CheckpointError, match=r"(?s)SAM checkpoint .*sam\.pth: cannot be read.*Fetch the original"):
        load_sam_state(build_sam(nano.config.segmenter), tmp_path / "sam.pth", "Fetch the original.")
    assert not (tmp_path / "pwned").exists()
