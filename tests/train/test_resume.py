"""Training that survives: SIGKILL mid-run and resume, a full disk, a tampered checkpoint, determinism.

The nano runs are short (3 steps of batch 1, a checkpoint and a log line every step); the
subprocess runs `python -m mimo_edu train` with the checkpoint interval patched to 1, which
the command line does not expose.
"""

import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from hostile import Exploit
from safetensors.torch import load_file
from test_checkpoint_checks import toy_trainer
from torch.nn.parallel import DistributedDataParallel

from mimo_edu.cli import main
from mimo_edu.data import MIMOSegSynth
from mimo_edu.errors import CheckpointError
from mimo_edu.train import checkpoint as ckpt_io
from mimo_edu.train import config as train_config
from mimo_edu.train.checkpoint import (
    LATEST,
    OPTIMIZER,
    TRAINABLE,
    save_checkpoint,
    step_dir_name,
    write_text_atomic,
)
from mimo_edu.train.trainer import read_metrics

STEPS = 3
ARGS = ["--preset", "nano", "--max-steps", str(STEPS), "--batch-size", "1", "--eval-samples", "0", "--no-progress"]
EVERY_STEP = {"ckpt_every": 1, "log_every": 1}
TRAIN = f"""
import sys
from dataclasses import replace
from mimo_edu.train import config
config.PRESETS["nano"] = lambda: replace(config.nano_training(), **{EVERY_STEP!r})
from mimo_edu.cli import main
raise SystemExit(main(["train", *sys.argv[1:]]))
"""
"""`python -m mimo_edu train ARGS` with a checkpoint and a log line after every step."""


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted in-process nano run of STEPS steps."""
    out = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(train_config.PRESETS, "nano", lambda: replace(train_config.nano_training(), **EVERY_STEP))
        assert main(["train", "--out", str(out), *ARGS]) == 0
    return out


def losses(out: Path) -> dict[int, list[float]]:
    """Step -> loss parts, gradient norm and learning rate, from OUT/metrics.jsonl."""
    keys = ("loss", "ce_loss", "bce_loss", "dice_loss", "grad_norm", "lr")
    return {r["step"]: [r[k] for k in keys] for r in read_metrics(out) if r["kind"] == "train"}


def latest_step(out: Path) -> int:
    return int((out / LATEST).read_text().strip().removeprefix("step-"))


@pytest.mark.slow
def test_same_seed_gives_identical_datasets_and_nano_training(reference, tmp_path, monkeypatch):
    a, b = MIMOSegSynth(6, seed=7), MIMOSegSynth(6, seed=7)
    for i in range(6):
        assert a[i].image.tobytes() == b[i].image.tobytes() and np.array_equal(a[i].masks, b[i].masks)
        assert (a[i].question, a[i].answer) == (b[i].question, b[i].answer)
        assert [p.to_dict() for p in a[i].visual_prompts] == [p.to_dict() for p in b[i].visual_prompts]
    assert MIMOSegSynth(6, seed=8)[0].image.tobytes() != a[0].image.tobytes()

    monkeypatch.setitem(train_config.PRESETS, "nano", lambda: replace(train_config.nano_training(), **EVERY_STEP))
    assert main(["train", "--out", str(tmp_path), *ARGS]) == 0
    assert losses(tmp_path) == losses(reference) and sorted(losses(tmp_path)) == [1, 2, 3]  # bit-identical
    ours, theirs = (load_file(o / step_dir_name(STEPS) / TRAINABLE) for o in (tmp_path, reference))
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_from_its_last_checkpoint(reference, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-c", TRAIN, "--out", str(out), *ARGS]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not (out / LATEST).exists():  # the first checkpoint is complete once `latest` names it
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(60) == -signal.SIGKILL  # killed mid-training, not finished
    killed_at = latest_step(out)
    logged = max(losses(out))  # the last step trained before the kill
    assert 1 <= killed_at < STEPS and logged - killed_at <= 1  # lost at most one checkpoint interval (1 step)

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {out / step_dir_name(killed_at)} at step {killed_at}" in resumed.stdout
    assert latest_step(out) == STEPS and sorted(p.name for p in out.iterdir()) == [
        LATEST, "metrics.jsonl", step_dir_name(STEPS)]  # no temporary folder left behind
    steps = [r["step"] for r in read_metrics(out) if r["kind"] == "train"]
    assert steps == [1, 2, 3]  # every step once: the lines after the checkpoint were dropped and redone
    assert losses(out) == losses(reference)  # bit for bit the run that was never interrupted


@pytest.mark.slow
def test_the_train_command_refuses_a_tampered_checkpoint(reference, tmp_path, capsys):
    out = shutil.copytree(reference, tmp_path / "run")
    torch.save(Exploit(tmp_path / "pwned"), out / step_dir_name(STEPS) / OPTIMIZER)
    assert main(["train", "--out", str(out), *ARGS, "--max-steps", str(STEPS + 1)]) == 2
    err = capsys.readouterr().err
    assert f"error: checkpoint {out / step_dir_name(STEPS) / OPTIMIZER}: refused, unread" in err
    assert not (tmp_path / "pwned").exists()


@contextmanager
def process_group(path: Path, wrap: bool):
    """A one-process gloo group (what torchrun gives each rank) when `wrap`, else nothing."""
    if wrap:
        dist.init_process_group("gloo", init_method=f"file://{path}", rank=0, world_size=1)
    try:
        yield
    finally:
        if wrap:
            dist.destroy_process_group()


@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "ddp"])
def test_resume_restores_weights_and_only_the_adamw_state_saved(tmp_path, wrap):
    """Frozen weights are not stored, and a parameter without AdamW state when the checkpoint was written
    (no gradient yet) starts afresh after resuming too, as in the uninterrupted run."""
    def model_and_optimizer():
        torch.manual_seed(0)
        model = torch.nn.ModuleDict({"frozen": torch.nn.Linear(2, 2), "used": torch.nn.Linear(2, 1),
                                     "later": torch.nn.Linear(2, 1)})
        model["frozen"].requires_grad_(False)
        wrapped = DistributedDataParallel(model) if wrap else model
        return model, wrapped, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)

    with process_group(tmp_path / "group", wrap):
        model, wrapped, optimizer = model_and_optimizer()
        model["used"](model["frozen"](torch.ones(1, 2))).sum().backward()
        optimizer.step()
        save_checkpoint(tmp_path, 1, *ckpt_io.gather_state(wrapped, optimizer), {"step": 1})
        model2, wrapped2, optimizer2 = model_and_optimizer()
        ckpt_io.restore_state(wrapped2, optimizer2, tmp_path / step_dir_name(1))
    assert set(optimizer2.state) == set(model2["used"].parameters())  # `later` has none, as before the save
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters(), strict=True))


# --------------------------------------------------------------------------------------------- full disk


def _only_step_one_left(out: Path) -> None:
    assert (out / LATEST).read_text() == "step-0000001\n"
    assert sorted(p.name for p in out.iterdir()) == [LATEST, "metrics.jsonl", "step-0000001"]  # no temporary files
    assert toy_trainer(out, max_steps=3).step == 1  # the previous checkpoint still resumes


def test_a_full_disk_gives_a_clear_error_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    real_save, calls = ckpt_io.save_file, []

    def save_until_the_disk_fills(tensors, path):
        calls.append(path)
        if len(calls) == 1:
            return real_save(tensors, path)
        Path(path).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(ckpt_io, "save_file", save_until_the_disk_fills)
    trainer = toy_trainer(tmp_path, max_steps=3, log_every=1)
    with pytest.raises(CheckpointError, match=r"(?s)step-0000002: cannot be written \(.*No space left on device.*\)\. "
                                              r"The disk holding .* is full or not writable: free space.*The partial "
                                              r"files were removed; the previous checkpoint .*step-0000001 is intact"):
        trainer.train()
    monkeypatch.undo()
    _only_step_one_left(tmp_path)


@contextmanager
def file_size_limit(nbytes: int):
    """Make writes beyond `nbytes` fail for real (EFBIG), as a full disk does, in this process only."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


@pytest.mark.parametrize("big", ["weights", "optimizer"], ids=["safetensors-fails", "torch.save-fails"])
def test_real_write_failures_become_checkpoint_errors(tmp_path, big):
    toy_trainer(tmp_path, max_steps=1).train()
    large = {"w": torch.zeros(500_000)}  # 2 MB, above the 1 MB limit
    trainable, optim = (large, {}) if big == "weights" else ({"w": torch.ones(1)}, {"state": large})
    with file_size_limit(1_000_000), pytest.raises(CheckpointError, match=r"(?s)step-0000002: cannot be written.*"
                                                                          r"step-0000001 is intact"):
        save_checkpoint(tmp_path, 2, trainable, optim, {"step": 2})
    _only_step_one_left(tmp_path)


def test_latest_is_replaced_whole_or_not_at_all(tmp_path):
    (tmp_path / LATEST).write_text("step-0000001\n")
    with file_size_limit(4), pytest.raises(OSError, match="File too large"):
        write_text_atomic(tmp_path / LATEST, "step-0000002\n")
    assert (tmp_path / LATEST).read_text() == "step-0000001\n" and os.listdir(tmp_path) == [LATEST]
