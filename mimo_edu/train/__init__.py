"""Training: config presets, the Trainer, atomic checkpoints with exact resume, torchrun/DDP/FSDP.

`load_model`, `latest_checkpoint` and `course_checkpoint` live outside training (mimo_edu/checkpoints.py,
mimo_edu/shipped.py), so that inference loads a model without this package; they are re-exported here.
"""

from mimo_edu.checkpoints import latest_checkpoint, load_model
from mimo_edu.shipped import course_checkpoint
from mimo_edu.train.config import PRESETS, TrainConfig, get_preset
from mimo_edu.train.trainer import Trainer, lr_at, read_metrics

__all__ = ["PRESETS", "TrainConfig", "Trainer", "course_checkpoint", "get_preset", "latest_checkpoint", "load_model", "lr_at", "read_metrics"]
