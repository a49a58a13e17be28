"""scikit-learn's stochastic solvers ("sgd", "adam"): its epochs, its draws from random_state
(the early-stopping split, then one sklearn.utils.shuffle of the sample order per epoch), its
loss bookkeeping and its stopping rules, over xpnet's backprop and `Optimizer.step`."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import shuffle as sklearn_shuffle

from ..backend import to_numpy
from ..model import MLP
from ..optim import Optimizer
from ..optim.hooks import weight_mask
from ..scoring import batch_bounds
from ._data import Data
from .losses import SklearnLoss, objective
from .optimizers import Adaptive

__all__ = ["Record", "StochasticSettings", "fit_stochastic"]

Array = Any


@dataclasses.dataclass(frozen=True)
class StochasticSettings:
    """The estimator's parameters that the stochastic solvers read."""

    max_iter: int
    batch_size: int | str  # or "auto"
    shuffle: bool
    tol: float
    n_iter_no_change: float
    early_stopping: bool
    validation_fraction: float
    alpha: float
    verbose: bool
    incremental: bool  # partial_fit: one epoch, on from the record of the calls before


@dataclasses.dataclass
class Record:
    """scikit-learn's record of stochastic training: what a fit leaves for the next one
    (warm_start, partial_fit) and the estimator exposes as n_iter_, t_, loss_, loss_curve_,
    best_loss_, validation_scores_ and best_validation_score_."""

    best_state: dict[str, Array]  # the parameters of the best validation score
    best_loss: float | None  # None with early stopping, which watches validation scores
    validation_scores: list[float] | None  # None without early stopping
    best_validation_score: float | None
    loss_curve: list[float] = dataclasses.field(default_factory=list)
    samples: int = 0  # samples trained on, over all calls (t_)
    no_improvement_count: int = 0
    n_iter: int = 0  # epochs of the last call

    @classmethod
    def fresh(cls, early_stopping: bool, state: dict[str, Array]) -> Record:
        """The record before the first epoch, for a net with parameters `state`."""
        if early_stopping:
            return cls(state, None, [], -np.inf)
        return cls(state, np.inf, None, None)

    @property
    def loss(self) -> float:
        """The last epoch's loss (loss_)."""
        return self.loss_curve[-1]


def fit_stochastic(
    net: MLP,
    optimizer: Optimizer,
    loss: SklearnLoss,
    data: Data,
    settings: StochasticSettings,
    record: Record,
    score: Callable[[Data], float],
    rng: np.random.RandomState,
    strata: np.ndarray | None = None,
) -> Record:
    """Train `net` on `data` for up to max_iter epochs (one when incremental), as
    scikit-learn's BaseMultilayerPerceptron._fit_stochastic does, on from `record`; return the
    record after it. `score(validation)` is the score early stopping watches on the
    validation split (drawn from `rng`, stratified by `strata` when given)."""
    if settings.early_stopping and settings.incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    scores = record.validation_scores
    record = dataclasses.replace(
        record,
        loss_curve=list(record.loss_curve),
        validation_scores=None if scores is None else list(scores),
        n_iter=0,
    )
    validation = None
    train = data
    if settings.early_stopping:
        rows, val_rows = train_test_split(
            np.arange(data.n),
            random_state=rng,
            test_size=settings.validation_fraction,
            stratify=strata,
        )
        if val_rows.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size "
                "of your dataset."
            )
        train, validation = data.take(rows), data.take(val_rows)
    n = train.n
    if isinstance(settings.batch_size, str):  # "auto"
        batch_size = min(200, n)
    else:
        if settings.batch_size > n:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going to be "
                "clipped",
                stacklevel=5,
            )
        batch_size = int(np.clip(settings.batch_size, 1, n))
    batches = batch_bounds(n, batch_size)
    buffer = net.parameter_buffer
    mask = weight_mask(buffer.flat_parameters(), buffer.layout)
    order = np.arange(n)
    with loss.checked_targets(train.T):
        for _ in range(settings.max_iter):
            epoch = train
            if settings.shuffle:
                order = sklearn_shuffle(order, random_state=rng)
                epoch = train.take(order)
            optimizer.begin_epoch(record.n_iter)
            total: Any = 0.0
            for start, stop in batches:
                X, T, w = epoch.batch(start, stop)
                value, G = objective(net, loss, X, T, w, settings.alpha, mask)
                optimizer.step(net, G)
                total = total + value * (stop - start)
            record.n_iter += 1
            record.samples += n
            record.loss_curve.append(float(to_numpy(total)) / n)
            if settings.verbose:
                print(f"Iteration {record.n_iter}, loss = {record.loss:.8f}")
            _count_no_improvement(net, record, settings, validation, score)
            stalled = record.no_improvement_count > settings.n_iter_no_change
            optimizer.end_epoch(
                {
                    "loss": record.loss,
                    "samples": record.samples,
                    "lr": optimizer.current_lr,
                    "stalled": stalled,
                }
            )
            if stalled and _stop(optimizer, record, settings, validation is not None):
                break
            if settings.incremental:
                break
            if record.n_iter == settings.max_iter:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({settings.max_iter}) reached and "
                    "the optimization hasn't converged yet.",
                    ConvergenceWarning,
                    stacklevel=5,
                )
    if validation is not None:
        net.load_state_dict(record.best_state)
    return record


def _count_no_improvement(
    net: MLP,
    record: Record,
    settings: StochasticSettings,
    validation: Data | None,
    score: Callable[[Data], float],
) -> None:
    """scikit-learn's bookkeeping after an epoch, comparisons as it writes them (a NaN score
    or loss resets the count), keeping the parameters of the best validation score."""
    if validation is not None:
        value = score(validation)
        scores, best = record.validation_scores, record.best_validation_score
        assert scores is not None and best is not None  # early stopping keeps them
        scores.append(value)
        if settings.verbose:
            print(f"Validation score: {value:f}")
        if value < best + settings.tol:
            record.no_improvement_count += 1
        else:
            record.no_improvement_count = 0
        if value > best:
            record.best_validation_score = value
            record.best_state = net.state_dict()
    else:
        last, best_loss = record.loss, record.best_loss
        assert best_loss is not None  # kept unless early stopping
        if last > best_loss - settings.tol:
            record.no_improvement_count += 1
        else:
            record.no_improvement_count = 0
        if last < best_loss:
            record.best_loss = last


def _stop(
    optimizer: Optimizer, record: Record, settings: StochasticSettings, validated: bool
) -> bool:
    """After a stalled epoch: True to stop, False when the "adaptive" schedule lowered the
    learning rate instead (and the count starts over); says which, when verbose."""
    watched = "Validation score" if validated else "Training loss"
    message = (
        f"{watched} did not improve more than tol={settings.tol:f} for "
        f"{settings.n_iter_no_change} consecutive epochs."
    )
    schedule = optimizer.schedule
    if isinstance(schedule, Adaptive) and schedule.lowered:
        if settings.verbose:
            print(f"{message} Setting learning rate to {optimizer.lr * schedule.scale:f}")
        record.no_improvement_count = 0
        return False
    if settings.verbose:
        too_small = " Learning rate too small." if isinstance(schedule, Adaptive) else ""
        print(f"{message}{too_small} Stopping.")
    return True
