"""Advice on runs that ended without an error but likely went wrong."""

from __future__ import annotations

import math

from ..train import History
from .options import TrainOptions

__all__ = ["explosion_hint"]

EXPLODED = 100.0  # a loss this many times that of guessing is no longer training


def explosion_hint(history: History, options: TrainOptions, n_classes: int) -> str | None:
    """What to say when a softmax cross-entropy run's loss, finite all along, exceeded 100
    times the loss of guessing (ln k for k classes) in some epoch: its weights blew up, and
    a run that diverges without overflowing ends at chance and exits 0 otherwise. None when
    nothing looks wrong (the other losses are bounded, as their outputs are sigmoids)."""
    if options.loss != "softmax_ce" or n_classes < 2 or not history.records:
        return None
    guess = math.log(n_classes)
    epoch, worst = max(
        ((int(r["epoch"]), r["loss"]) for r in history.records), key=lambda pair: pair[1]
    )
    if not worst > EXPLODED * guess:
        return None
    accuracy = history.last.get("accuracy")
    reached = "" if accuracy is None else f", and it ends with training accuracy {accuracy:.3g}"
    lr = options.lr
    return (
        f"the loss reached {worst:.3g} in epoch {epoch}, over {EXPLODED:g} times that of "
        f"guessing ({guess:.3g}): the weights blew up{reached}; the learning rate {lr:g} is "
        f"likely too high for {options.optimizer}: try a lower --lr such as {lr / 10:g}, or "
        "--clip-norm 1"
    )
