"""Damaged or tampered training checkpoints are refused with a message that says how to fix it (issue 8),
a tampered pickle is never run, and the package never unpickles unsafely. Training that survives
interruption: test_resume.py.
"""

import ast
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hostile import Exploit, _exploit
from safetensors.torch import load_file, save_file
from torch import nn

import mimo_edu
from mimo_edu.errors import CheckpointError
from mimo_edu.train.checkpoint import OPTIMIZER, STATE, TRAINABLE, save_checkpoint
from mimo_edu.train.config import TrainConfig
from mimo_edu.train.trainer import Trainer

# ----------------------------------------------------------------------------------------------- checkpoints


def test_the_exploit_payload_is_live(tmp_path):
    """Unpickled without protection, the payload used below does run (so its refusal means something)."""
    pickle.loads(pickle.dumps(Exploit(tmp_path / "ran")))
    assert (tmp_path / "ran").exists()



@dataclass
class ToyOutput:
    loss: torch.Tensor


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(4, 1)

    def forward(self, batch: dict) -> ToyOutput:
        return ToyOutput(((self.head(batch["x"]) - batch["y"]) ** 2).mean())


TOY_DATA = [{"x": torch.full((4,), float(i)), "y": torch.tensor([float(i)])} for i in range(8)]


def toy_collate(samples: list[dict]) -> dict:
    return {k: torch.stack([s[k] for s in samples]) for k in ("x", "y")}


def toy_trainer(out: Path, **config) -> Trainer:
    cfg = TrainConfig(**{"max_steps": 2, "batch_size": 2, "warmup_steps": 1, "ckpt_every": 1, "progress": False,
                         **config})
    return Trainer(Toy(), TOY_DATA, cfg, out, toy_collate)


@pytest.mark.parametrize("as_torch", [True, False], ids=["torch.save", "plain-pickle"])
@pytest.mark.parametrize("name", [OPTIMIZER, STATE])
def test_a_tampered_pickle_in_a_checkpoint_is_refused_unrun(tmp_path, name, as_torch):
    toy_trainer(tmp_path / "run").train()
    marker = tmp_path / "pwned"
    _exploit(tmp_path / "run" / "step-0000002" / name, marker, as_torch)
    with pytest.raises(CheckpointError, match=rf"{name}: refused, unread \(a pickle that would build other objects"):
        toy_trainer(tmp_path / "run", max_steps=3)
    assert not marker.exists()



@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / TRAINABLE).write_bytes((d / TRAINABLE).read_bytes()[:100]), rf"{TRAINABLE}: refused, unread"),
        (lambda d: (d / OPTIMIZER).write_bytes((d / OPTIMIZER).read_bytes()[:100]), rf"{OPTIMIZER}: refused, unread"),
        (lambda d: torch.save({"step": 2}, d / STATE), rf"{STATE}: refused, unread \(it lacks some of"),
        (lambda d: torch.save({"state": {}, "param_groups": "?"}, d / OPTIMIZER), r"do not fit this model"),
        (lambda d: (d / OPTIMIZER).unlink(), r"missing \['optimizer.pt'\], so it cannot be resumed"),
        (lambda d: save_file({"head.bias": torch.zeros(1)}, d / TRAINABLE), r"weights \['head.weight'\] are missing"),
    ],
    ids=["truncated-weights", "truncated-optimizer", "foreign-state", "foreign-optimizer", "missing-file",
         "missing-weight"],
)
def test_damaged_training_checkpoints(tmp_path, damage, message):
    toy_trainer(tmp_path).train()
    damage(tmp_path / "step-0000002")
    with pytest.raises(CheckpointError, match=message):
        toy_trainer(tmp_path, max_steps=3)


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    toy_trainer(tmp_path).train()
    with pytest.raises(CheckpointError, match=r"different settings for \['model_preset'\]"):
        toy_trainer(tmp_path, model_preset="paper")


# ---------------------------------------------------------------------------------------------- safe loading


def _calls(tree: ast.AST, dotted: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == dotted]


def test_the_package_never_unpickles_unsafely_or_runs_config_code():
    """Every torch.load passes weights_only=True; no pickle.load, eval, exec, yaml.load or remote code."""
    root = Path(mimo_edu.__file__).parent
    loads = 0
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for call in _calls(tree, "torch.load"):
            loads += 1
            flags = {k.arg: ast.unparse(k.value) for k in call.keywords}
            assert flags.get("weights_only") == "True", f"{path}:{call.lineno}"
        for name in ("pickle.load", "pickle.loads", "eval", "exec", "yaml.load"):
            assert not _calls(tree, name), f"{path}: {name}"
        for call in _calls(tree, "np.load"):  # .npz arrays only, never pickled objects
            flags = {k.arg: ast.unparse(k.value) for k in call.keywords}
            assert flags.get("allow_pickle") == "False", f"{path}:{call.lineno}"
        assert "trust_remote_code=True" not in path.read_text(), path
    assert loads >= 2  # checkpoint.py (optimizer and trainer state) and segmenter.py (SAM)


def test_save_checkpoint_writes_safetensors_weights(tmp_path):
    save_checkpoint(tmp_path, 1, {"w": torch.ones(3)}, {"state": {}, "param_groups": []}, {"step": 1})
    assert load_file(tmp_path / "step-0000001" / TRAINABLE)["w"].tolist() == [1.0, 1.0, 1.0]
