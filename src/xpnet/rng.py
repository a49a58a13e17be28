"""Host-side randomness: initial weights and shuffling, drawn by numpy.random.Generator on the
CPU and then cast and moved, so one seed gives the same net and order on every backend."""

from __future__ import annotations

import numpy as np

__all__ = ["INITS", "epoch_permutation", "init_weights", "new_generator"]

INITS = ("xavier", "he", "lecun")


def init_weights(
    n_in: int, n_out: int, init: str, rng: int | np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) as float64 host arrays: W ~ Glorot-uniform ("xavier", for sigmoid and tanh),
    He-normal ("he", for the ReLU family: std sqrt(2 / n_in)) or LeCun-normal ("lecun": std
    sqrt(1 / n_in)); b = 0."""
    rng = np.random.default_rng(rng)
    if init == "xavier":
        limit = np.sqrt(6.0 / (n_in + n_out))
        W = rng.uniform(-limit, limit, size=(n_in, n_out))
    elif init == "he":
        W = rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out))
    elif init == "lecun":
        W = rng.normal(0.0, np.sqrt(1.0 / n_in), size=(n_in, n_out))
    else:
        raise ValueError(f"unknown init {init!r}: use one of {', '.join(INITS)}")
    return W, np.zeros(n_out)


def new_generator(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The sample order of one epoch: a function of (seed, epoch) alone, so a resumed run
    shuffles exactly as an uninterrupted one."""
    return np.random.default_rng([seed, epoch]).permutation(n)
