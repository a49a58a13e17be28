"""scikit-learn's stochastic solvers ("sgd", "adam"): its epochs, its draws from random_state
(the early-stopping split, then one sklearn.utils.shuffle of the sample order per epoch), its
loss bookkeeping and its stopping rules, over xpnet's backprop and optimizers."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import shuffle as sklearn_shuffle

from ..backend import to_numpy
from ..scoring import batch_bounds
from ._data import Data
from .losses import objective, weight_mask
from .optimizers import Adaptive

if TYPE_CHECKING:
    from ._base import BaseMLP

__all__ = ["fit_stochastic"]


def fit_stochastic(est: BaseMLP, data: Data, incremental: bool, rng: np.random.RandomState) -> None:
    """Train est's net on `data` for up to max_iter epochs (one for partial_fit), as
    scikit-learn's BaseMultilayerPerceptron._fit_stochastic does."""
    if not incremental or not hasattr(est, "_optimizer"):
        est._optimizer = est._make_optimizer()
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    net, optimizer = est._net, est._optimizer
    buffer = net.parameter_buffer
    validation = None
    train = data
    if est.early_stopping:
        strata = est._strata(data.T) if est.n_outputs_ == 1 else None
        rows, val_rows = train_test_split(
            np.arange(data.n),
            random_state=rng,
            test_size=est.validation_fraction,
            stratify=strata,
        )
        if val_rows.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size "
                "of your dataset."
            )
        train, validation = data.take(rows), data.take(val_rows)
    n = train.n
    if isinstance(est.batch_size, str):  # "auto"
        batch_size = min(200, n)
    else:
        if est.batch_size > n:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going to be "
                "clipped",
                stacklevel=5,
            )
        batch_size = int(np.clip(est.batch_size, 1, n))
    batches = batch_bounds(n, batch_size)
    loss, mask = est._make_loss(), weight_mask(net)
    alpha = float(est.alpha)
    order = np.arange(n)
    est.n_iter_ = 0
    for _ in range(est.max_iter):
        epoch = train
        if est.shuffle:
            order = sklearn_shuffle(order, random_state=rng)
            epoch = train.take(order)
        optimizer.begin_epoch(est.n_iter_)
        total: Any = 0.0
        for start, stop in batches:
            X, T, w = epoch.batch(start, stop)
            value, G = objective(net, loss, X, T, w, alpha, mask)
            buffer.store_flat_parameters(
                optimizer.update(buffer.flat_parameters(), G, buffer.layout)
            )
            total = total + value * (stop - start)
        est.n_iter_ += 1
        est.loss_ = float(to_numpy(total)) / n
        est.t_ += n
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        est._update_no_improvement_count(validation)
        stalled = est._no_improvement_count > est.n_iter_no_change
        optimizer.end_epoch(
            {"loss": est.loss_, "samples": est.t_, "lr": optimizer.current_lr, "stalled": stalled}
        )
        if stalled:
            watched = "Validation score" if validation is not None else "Training loss"
            message = (
                f"{watched} did not improve more than tol={est.tol:f} for "
                f"{est.n_iter_no_change} consecutive epochs."
            )
            schedule = optimizer.schedule
            if isinstance(schedule, Adaptive) and schedule.lowered:
                if est.verbose:
                    print(f"{message} Setting learning rate to {optimizer.lr * schedule.scale:f}")
                est._no_improvement_count = 0
            else:
                if est.verbose:
                    too_small = (
                        " Learning rate too small." if isinstance(schedule, Adaptive) else ""
                    )
                    print(f"{message}{too_small} Stopping.")
                break
        if incremental:
            break
        if est.n_iter_ == est.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=5,
            )
    if validation is not None:
        net.load_state_dict(est._best_state)
