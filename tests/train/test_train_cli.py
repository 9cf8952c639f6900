"""`python -m mimo_edu train` and `evaluate` on the real nano MIMO, a few steps and samples."""

import json
import shutil

import pytest

from mimo_edu.checkpoints import MODEL_DIR, load_model
from mimo_edu.cli import main
from mimo_edu.data import TASKS
from mimo_edu.errors import CheckpointError
from mimo_edu.model import MIMO


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("nano")
    argv = ["train", "--preset", "nano", "--out", str(out), "--max-steps", "2", "--batch-size", "2",
            "--eval-samples", "6", "--no-progress"]
    assert main(argv) == 0
    return out


def test_train_writes_a_checkpoint_and_a_metrics_log(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert train[-1]["step"] == 2 and {"loss", "ce_loss", "bce_loss", "dice_loss", "lr", "samples_per_s"} <= set(train[-1])
    assert [r["step"] for r in records if r["kind"] == "eval"] == [2]
    assert isinstance(load_model(run_dir), MIMO)


def test_evaluate_prints_one_json_object_per_task_and_modality(run_dir, capsys):
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run_dir), "--num", "4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_samples"] == 4 and set(report["per_task"]) == set(TASKS)  # synth cycles through the tasks
    assert sum(m["n"] for m in report["per_modality"].values()) == 4
    assert 0.0 <= report["overall"]["token_f1"] <= 1.0


def test_a_checkpoint_without_exported_model_is_rebuilt_from_its_preset(run_dir, tmp_path):
    step = tmp_path / "step"
    shutil.copytree(run_dir / (run_dir / "latest").read_text().strip(), step)
    shutil.rmtree(step / MODEL_DIR)  # as FSDP writes it
    rebuilt, exported = load_model(step), load_model(run_dir)
    assert all((a == b).all() for a, b in zip(rebuilt.state_dict().values(), exported.state_dict().values(), strict=True))


def test_evaluate_reports_a_missing_checkpoint(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path / "nope"), "--num", "1", "--json"]) == 2
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="config.json or model.safetensors is missing"):
        load_model(tmp_path)


def test_train_writes_mask_snapshots_and_export_ships_them(run_dir, tmp_path):
    from mimo_edu.train.snapshots import read_snapshots

    snaps = read_snapshots(run_dir)  # validation samples 0 and 5 of 6 (SNAPSHOT_INDICES)
    assert list(snaps) == [2]  # one evaluation, at the last step
    probs = snaps[2]["probs"]
    assert len(probs) == 2 and all(p.ndim == 3 and p.shape[1:] == (128, 128) for p in probs)
    assert all(0.0 <= p.min() and p.max() <= 1.0 for p in probs if p.size)

    out = tmp_path / "shipped"
    assert main(["export", "--checkpoint", str(run_dir), "--out", str(out)]) == 0
    assert (out / "metrics.jsonl").read_text() == (run_dir / "metrics.jsonl").read_text()
    assert read_snapshots(out)[2]["ids"] == snaps[2]["ids"]
    shipped, trained = MIMO.from_pretrained(out), load_model(run_dir)
    assert all((a == b).all() for a, b in zip(shipped.state_dict().values(), trained.state_dict().values(), strict=True))


def test_no_aligner_run_and_no_prompt_evaluation(tmp_path, capsys):
    out = tmp_path / "ablation"
    argv = ["train", "--preset", "nano", "--out", str(out), "--max-steps", "1", "--batch-size", "2",
            "--eval-samples", "0", "--no-progress", "--no-aligner"]
    assert main(argv) == 0
    model = load_model(out)
    assert model.aligner is None and not model.config.use_aligner
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out), "--num", "4", "--json", "--no-prompts"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_samples"] == 4
