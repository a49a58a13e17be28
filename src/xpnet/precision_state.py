"""A net's precision policy and loss scale as a checkpoint keeps them (JSON), and back: a
resumed mixed-precision run goes on with the policy and the scale it stopped with."""

from __future__ import annotations

from typing import Any

from .loss_scaling import LossScaler
from .precision import as_precision, compute_dtype
from .sequential import Sequential

__all__ = ["precision_state", "restore_precision"]


def precision_state(net: Sequential) -> dict[str, Any]:
    """{"policy": its name, and the loss scaler's numbers where it scales}."""
    scaler = net.loss_scaler
    return {"policy": net.precision.name, **(scaler.state_dict() if scaler else {})}


def restore_precision(net: Sequential, state: Any) -> None:
    """Put the policy of `precision_state` (None: "32") back on a net of float32 master
    weights, with its loss scaler's numbers. On a backend that cannot run the policy (NumPy,
    array-api-strict) the net stays at "32": its weights are the float32 masters all the
    same."""
    if state is None:
        return
    if not isinstance(state, dict):
        raise ValueError(f"its precision {state!r} is not a JSON object")
    policy = as_precision(state.get("policy"))
    try:
        compute_dtype(policy, net.backend, net.dtype_name)
    except ValueError:
        return
    net.set_precision(policy)
    if net.loss_scaler is not None:
        P = net.parameter_buffer.flat_parameters()
        net.loss_scaler = LossScaler.from_state(P, state)
