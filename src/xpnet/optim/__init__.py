"""Optimizers: `step(net)` moves every parameter against its gradient, through the net's flat
parameter and gradient arrays (one update call for the whole net), and `update(P, G)` does
the same on bare flat arrays. One module per update rule; hooks and schedules apart."""

from .adam import Adam, AdamW
from .base import OPTIMIZERS, Optimizer, Trainable, optimizer_from_config
from .hooks import clip_grad_norm, weight_decay
from .schedules import SCHEDULES, Constant, Cosine, Plateau, Schedule, Step, schedule_from_config
from .sgd import SGD, Momentum

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "Adam",
    "AdamW",
    "Constant",
    "Cosine",
    "Momentum",
    "Optimizer",
    "Plateau",
    "Schedule",
    "Step",
    "Trainable",
    "clip_grad_norm",
    "optimizer_from_config",
    "schedule_from_config",
    "weight_decay",
]
