"""The trainer on a toy model: learning, schedule, data order, checkpoints and exact resume."""

import json
import os
from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from mimo_edu.checkpoints import LATEST, frozen_fingerprint, latest_checkpoint
from mimo_edu.data import MIMOSegSynth
from mimo_edu.errors import CheckpointError, MimoError
from mimo_edu.train.config import TrainConfig, get_preset
from mimo_edu.train.sampler import StepBatchSampler
from mimo_edu.train.trainer import Trainer, lr_at


class ToyData(Dataset):
    """y = x @ w for a fixed w; sample i is a function of i alone."""

    def __init__(self, n: int = 64):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 6, generator=g)
        self.y = self.x @ torch.randn(6, 1, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i], "id": f"toy-{i}"}


def collate(samples: list[dict]) -> dict:
    return {"x": torch.stack([s["x"] for s in samples]), "y": torch.stack([s["y"] for s in samples]),
            "ids": [s["id"] for s in samples]}


@dataclass
class ToyOutput:
    """Like MIMOOutput: a dataclass, so DDP can find the tensors the loss came from."""

    loss: torch.Tensor
    ce_loss: torch.Tensor
    bce_loss: torch.Tensor | None = None
    dice_loss: torch.Tensor | None = None


class ToyModel(nn.Module):
    """A frozen layer, dropout (to exercise the random streams), a trained head and an unused parameter."""

    def __init__(self, seed: int = 0, dropout: float = 0.1):
        super().__init__()
        torch.manual_seed(seed)
        self.frozen = nn.Linear(6, 16).requires_grad_(False)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))
        self.unused = nn.Parameter(torch.zeros(3))  # trainable but never used, so it has no AdamW state

    def forward(self, batch: dict) -> ToyOutput:
        pred = self.head(self.drop(self.frozen(batch["x"])))
        mse = (pred - batch["y"]).pow(2).mean()
        return ToyOutput(loss=mse, ce_loss=mse)


def toy_config(**kw) -> TrainConfig:
    base = dict(lr=1e-2, warmup_steps=2, max_steps=8, batch_size=4, grad_accum=2, log_every=1,
                ckpt_every=100, progress=False)
    return TrainConfig(**{**base, **kw})


def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    data = ToyData(n=8)
    cfg = toy_config(max_steps=40, batch_size=8, grad_accum=1, warmup_steps=5)
    records = Trainer(ToyModel(), data, cfg, None, collate).train()
    first, last = records[0]["loss"], sum(r["loss"] for r in records[-5:]) / 5
    assert last < 0.3 * first, (first, last)
    assert records[-1]["step"] == 40 and records[-1]["lr"] < records[10]["lr"]


def test_lr_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(lr=1.0, warmup_steps=4, max_steps=20, min_lr_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(20)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert lrs[4:] == sorted(lrs[4:], reverse=True)
    assert lr_at(20, cfg) == pytest.approx(0.1)


def test_linear_schedule_is_lisas_warmup_decay():
    cfg = TrainConfig(lr=1.0, warmup_steps=4, max_steps=20, min_lr_ratio=0.0, schedule="linear")
    assert [lr_at(s, cfg) for s in (0, 3, 4, 12, 16, 19, 20)] == pytest.approx([0.25, 1.0, 1.0, 0.5, 0.25, 1 / 16, 0.0])
    floor = TrainConfig(lr=1.0, warmup_steps=4, max_steps=20, min_lr_ratio=0.1, schedule="linear")
    assert lr_at(12, floor) == pytest.approx(0.55)  # halfway from lr to the floor
    paper = get_preset("paper")
    assert lr_at(paper.warmup_steps, paper) == 3e-4
    assert lr_at((paper.warmup_steps + paper.max_steps) // 2, paper) == pytest.approx(1.5e-4, rel=1e-3)
    with pytest.raises(ValueError, match="schedule 'step'"):
        TrainConfig(schedule="step")


def test_a_run_saved_before_the_schedule_switch_resumes(tmp_path):
    Trainer(ToyModel(), ToyData(), toy_config(max_steps=2), tmp_path, collate).train()
    state_file = tmp_path / "step-0000002" / "trainer_state.pt"
    state = torch.load(state_file, weights_only=True)
    del state["config"]["schedule"]  # as written before the field existed
    torch.save(state, state_file)
    assert TrainConfig.from_dict(state["config"]).schedule == "cosine"
    assert Trainer(ToyModel(), ToyData(), toy_config(max_steps=4), tmp_path, collate).step == 2
    with pytest.raises(CheckpointError, match=r"different settings for \['schedule'\]"):
        Trainer(ToyModel(), ToyData(), toy_config(max_steps=4, schedule="linear"), tmp_path, collate)


def test_sampler_shards_ranks_and_replays_from_any_step():
    n, batch, accum, world = 10, 2, 2, 2
    samplers = [StepBatchSampler(n, batch, accum, seed=3, rank=r, world_size=world) for r in range(world)]
    first_epoch = [i for s in range(1) for m in range(accum) for r in range(world) for i in samplers[r].indices(s, m)]
    assert len(set(first_epoch)) == 8  # no sample twice within an epoch
    step2 = [samplers[0].indices(2, m) for m in range(accum)]
    resumed = iter(StepBatchSampler(n, batch, accum, seed=3, rank=0, world_size=world, start_step=2))
    assert [next(resumed) for _ in range(accum)] == step2
    assert StepBatchSampler(n, batch, accum, seed=4).indices(0, 0) != StepBatchSampler(n, batch, accum, seed=3).indices(0, 0)


def test_sampler_keeps_the_samples_of_one_image_together():
    sampler = StepBatchSampler(24, 8, 1, seed=0, group=4)
    for step in range(3):
        batch = sampler.indices(step, 0)
        assert [i // 4 for i in batch] == [batch[0] // 4] * 4 + [batch[4] // 4] * 4  # two whole images
    assert sorted(i for s in range(3) for i in sampler.indices(s, 0)) == list(range(24))
    assert sorted(StepBatchSampler(10, 5, 1, seed=0, group=4).indices(0, 0) + StepBatchSampler(
        10, 5, 1, seed=0, group=4).indices(1, 0)) == list(range(10))  # a short last run still counts
    assert MIMOSegSynth(8).samples_per_image == 4
    toy = ToyData(n=16)
    toy.samples_per_image = 4
    for same_image, group in ((1, 1), (2, 2), (8, 4)):
        trainer = Trainer(ToyModel(), toy, toy_config(same_image=same_image), None, collate)
        assert trainer._loader().batch_sampler.group == group
    assert Trainer(ToyModel(), ToyData(n=16), toy_config(same_image=2), None, collate)._loader().batch_sampler.group == 1


def test_resume_after_interruption_replays_the_same_losses(tmp_path):
    cfg = toy_config(max_steps=8)
    full = Trainer(ToyModel(), ToyData(), cfg, tmp_path / "full", collate).train()

    out = tmp_path / "interrupted"
    Trainer(ToyModel(), ToyData(), cfg, out, collate).train(steps=5)  # "killed" after step 5's checkpoint
    resumed = Trainer(ToyModel(), ToyData(), cfg, out, collate)
    assert resumed.step == 5
    rest = resumed.train()
    assert [r["step"] for r in rest] == [6, 7, 8]
    assert [r["loss"] for r in rest] == [r["loss"] for r in full[5:]]  # bit-exact
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 8  # no duplicated lines after resuming
    final = {k: v for k, v in resumed.raw_model.state_dict().items()}
    reference = Trainer(ToyModel(), ToyData(), cfg, tmp_path / "full", collate).raw_model.state_dict()
    assert all(torch.equal(final[k], reference[k]) for k in final)


def test_checkpoints_are_atomic_and_only_the_latest_is_kept(tmp_path):
    cfg = toy_config(max_steps=6, ckpt_every=2)
    crashed = tmp_path / ".tmp-step-0000002-999"  # a write that a crash cut short
    crashed.mkdir()
    (crashed / "trainable.safetensors").write_bytes(b"half a file")
    Trainer(ToyModel(), ToyData(), cfg, tmp_path, collate).train()
    assert (tmp_path / LATEST).read_text().strip() == "step-0000006"
    assert sorted(p.name for p in tmp_path.iterdir()) == [LATEST, "metrics.jsonl", "step-0000006"]
    state = torch.load(tmp_path / "step-0000006" / "trainer_state.pt", weights_only=True)
    assert state["step"] == 6 and state["frozen_fingerprint"] == frozen_fingerprint(ToyModel())


def test_training_without_out_dir_writes_nothing(tmp_path):
    os.chdir(tmp_path)
    Trainer(ToyModel(), ToyData(), toy_config(max_steps=2), None, collate).train()
    assert list(tmp_path.iterdir()) == []


def test_resume_refuses_incompatible_settings_and_models(tmp_path):
    Trainer(ToyModel(), ToyData(), toy_config(max_steps=2), tmp_path, collate).train()
    with pytest.raises(CheckpointError, match=r"different settings for \['lr'\]"):
        Trainer(ToyModel(), ToyData(), toy_config(max_steps=4, lr=0.5), tmp_path, collate)
    with pytest.raises(CheckpointError, match="frozen weights differ"):
        Trainer(ToyModel(seed=1), ToyData(), toy_config(max_steps=4), tmp_path, collate)
    Trainer(ToyModel(), ToyData(), toy_config(max_steps=4), tmp_path, collate)  # more steps: fine


def test_a_broken_latest_pointer_is_reported(tmp_path):
    (tmp_path / LATEST).write_text("step-0000042\n")
    with pytest.raises(CheckpointError, match="step-0000042.*missing"):
        latest_checkpoint(tmp_path)


def test_presets():
    paper = get_preset("paper")
    assert paper.batch_size * paper.grad_accum * 4 == 40 and paper.lr == 3e-4 and paper.precision == "bf16"
    assert get_preset("nano", max_steps=3).max_steps == 3
    with pytest.raises(ValueError, match="'huge' does not exist"):
        get_preset("huge")
    assert TrainConfig.from_dict(paper.to_dict()) == paper


def test_bf16_autocast_trains_on_the_cpu():
    records = Trainer(ToyModel(), ToyData(), toy_config(max_steps=3, precision="bf16"), None, collate).train()
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records)


def test_task_mix_sets_the_questions_asked_of_each_training_image():
    from mimo_edu.train.run import datasets

    cfg = get_preset("nano", max_steps=2, batch_size=6, task_mix=("seg", "prompt_qa", "prompt_qa"))
    train_set, _ = datasets(cfg, 128)
    assert train_set.samples_per_image == 3
    assert [train_set[i].task for i in range(6)] == ["seg", "prompt_qa", "prompt_qa"] * 2
    first, second = train_set[1], train_set[2]  # one image, two prompt-QA questions drawn apart
    assert (first.image == second.image).all() and first.question + first.answer != second.question + second.answer
    assert TrainConfig.from_dict(cfg.to_dict() | {"task_mix": ["seg", "qa_seg"]}).task_mix == ("seg", "qa_seg")
    for bad in ((), ("seg", "vqa")):
        with pytest.raises(MimoError, match="task_mix"):
            get_preset("nano", task_mix=bad)
