"""Training: config presets, the Trainer, atomic checkpoints with exact resume, torchrun/DDP/FSDP."""

from mimo_edu.train.checkpoint import course_checkpoint, latest_checkpoint, load_model
from mimo_edu.train.config import PRESETS, TrainConfig, get_preset
from mimo_edu.train.trainer import Trainer, lr_at, read_metrics

__all__ = ["PRESETS", "TrainConfig", "Trainer", "course_checkpoint", "get_preset", "latest_checkpoint", "load_model", "lr_at", "read_metrics"]
