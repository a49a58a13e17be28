"""Gradient hooks: what an optimizer does to the flat gradient G before its update rule, once
per step and the same for every rule (so no update kernel needs to know of them)."""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace, device

from ..params import Layout

__all__ = ["clip_grad_norm", "weight_decay", "weight_mask"]

Array = Any


def clip_grad_norm(G: Array, max_norm: float, xp: Any) -> Array:
    """G scaled down to Euclidean norm `max_norm` when it is longer (torch's
    clip_grad_norm_: the factor is max_norm / (norm + 1e-6), capped at 1), computed on the
    device without a host round trip."""
    norm = xp.sqrt(xp.sum(G * G))
    return G * xp.clip(max_norm / (norm + 1e-6), max=1.0)


def weight_decay(G: Array, P: Array, decay: float, mask: Array | None) -> Array:
    """G + decay * P on the elements where `mask` is 1 (the weights, not the biases; every
    element when mask is None): the gradient of an L2 penalty decay / 2 * ||W||^2."""
    return G + decay * (P if mask is None else mask * P)


def weight_mask(P: Array, layout: Layout) -> Array:
    """1 over the weight matrices (parameters of 2 or more dimensions) of flat parameters P
    laid out by `layout`, 0 over the biases: where weight decay and L2 penalties apply."""
    xp, where = array_namespace(P), device(P)
    pieces = [
        xp.full((stop - start,), float(len(shape) >= 2), dtype=P.dtype, device=where)
        for _, start, stop, shape in layout
    ]
    return xp.concat(pieces)
