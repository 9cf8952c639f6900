"""One training run from a config: the model, MIMOSeg-synth (or a folder), validation with mask snapshots.

    trainer = train_run(get_preset("nano", max_steps=20), "runs/nano")

`python -m mimo_edu train` and the notebooks both call this, so a notebook's run
is the command's run. The run resumes when `out` already holds a checkpoint.
"""

import os
from pathlib import Path

from mimo_edu.data import MIMOSegDataset, MIMOSegSynth, collate, split_seed
from mimo_edu.eval.evaluate import evaluate, headline
from mimo_edu.model import build_mimo
from mimo_edu.train.config import TrainConfig
from mimo_edu.train.snapshots import write_snapshot
from mimo_edu.train.trainer import Trainer
from mimo_edu.utils import seed_everything

SNAPSHOT_INDICES = (0, 5, 10, 15)  # validation samples whose masks are saved at every evaluation: 4 tasks, 4 images


def datasets(cfg: TrainConfig, image_size: int, data: str | Path | None = None) -> tuple:
    """(train, val): MIMOSeg-synth's train split, or the folder `data`; val is always MIMOSeg-synth's val split."""
    if data:
        train_set = MIMOSegDataset(data)
    else:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        num = cfg.train_samples or cfg.max_steps * cfg.samples_per_step * world  # every draw a fresh sample
        train_set = MIMOSegSynth(num, seed=split_seed("train"), image_size=image_size, tasks=cfg.task_mix)
    val_set = MIMOSegSynth(cfg.eval_samples, seed=split_seed("val"), image_size=image_size)
    return train_set, val_set


def train_run(cfg: TrainConfig, out: str | Path, data: str | Path | None = None) -> Trainer:
    """Build the model from `cfg` (seeded), train it to cfg.max_steps into `out`; returns the Trainer."""
    seed_everything(cfg.seed)  # the model's random init
    model = build_mimo(cfg.model_preset, from_scratch=cfg.from_scratch, **cfg.model_overrides)
    train_set, val_set = datasets(cfg, model.config.image_size, data)
    probe = [val_set[i] for i in SNAPSHOT_INDICES if i < len(val_set)]

    def evaluate_fn(m) -> dict:
        if not trainer.sharded:  # snapshots need the whole model on one rank
            write_snapshot(out, trainer.step, m, probe)
        return headline(evaluate(m, val_set))

    trainer = Trainer(model, train_set, cfg, out, collate, evaluate_fn if cfg.eval_samples else None)
    trainer.train()
    return trainer
