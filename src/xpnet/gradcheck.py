"""Check `backward` against central finite differences of `forward`, per parameter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat
from tqdm.auto import tqdm

from .backend import asarray, backend_of, to_numpy
from .losses import Loss

__all__ = ["gradcheck", "relative_error"]

Array = Any


def relative_error(analytic: Any, numeric: Any) -> float:
    """||a - n|| / (||a|| + ||n||), 0 when both are zero: scale-free, so one bound fits all."""
    a, n = to_numpy(analytic).ravel(), to_numpy(numeric).ravel()
    denom = float((a**2).sum()) ** 0.5 + float((n**2).sum()) ** 0.5
    return float(((a - n) ** 2).sum()) ** 0.5 / denom if denom > 0 else 0.0


def gradcheck(
    model: Any,
    loss: Loss,
    X: Array,
    T: Array,
    *,
    eps: float = 1e-6,
    input_grad: bool = True,
    progress: bool = False,
) -> dict[str, float]:
    """{parameter name: relative error of backward vs central differences}, plus "input" for
    dL/dX when `input_grad`. `model` is an MLP or a layer; X must be float64 (differences in
    float32 are too coarse to mean anything). A correct backward gives errors below ~1e-7.
    Two forward passes per entry take minutes on a large net: `progress` shows a tqdm bar."""
    if X.dtype != array_api_compat.array_namespace(X).float64:
        raise ValueError(
            f"gradcheck needs float64 data and a float64 model, got {X.dtype}; "
            "use net.to(dtype='float64') and xpnet.asarray(X, like=net)"
        )
    backend = backend_of(X)
    loss.forward(model.forward(X), T)
    g = loss.backward()
    gX = model.backward(g) if input_grad else model.backward(g, input_grad=False)
    analytic = {name: to_numpy(g).copy() for name, g in model.grads.items()}
    if input_grad:
        analytic["input"] = to_numpy(gX).copy()

    inputs = {"X": X}

    def loss_now() -> float:
        return float(to_numpy(loss.forward(model.forward(inputs["X"]), T)))

    def setter(name: str) -> Callable[[Any], None]:
        def set_value(host: Any) -> None:
            value = asarray(host, like=backend, dtype="float64")
            if name == "input":
                inputs["X"] = value
            else:  # copied into the flat array where the model keeps one
                model.set_parameter(name, value)

        return set_value

    current = {name: p for name, p in model.parameters().items()}
    if input_grad:
        current["input"] = X
    hosts = {name: to_numpy(value).copy() for name, value in current.items()}
    total = sum(host.size for host in hosts.values())
    with tqdm(total=total, unit="entry", disable=not progress, dynamic_ncols=True) as bar:
        errors = {}
        for name, host in hosts.items():
            bar.set_description(name)
            numeric = _central_differences(host, setter(name), loss_now, eps, bar.update)
            errors[name] = relative_error(analytic[name], numeric)
    return errors


def _central_differences(
    host: Any,
    set_value: Callable[[Any], None],
    evaluate: Callable[[], float],
    eps: float,
    done: Callable[[int], Any],
) -> Any:
    """(f(x + eps e_i) - f(x - eps e_i)) / (2 eps) for every element i of the host array x;
    leaves x as it found it; `done(1)` after each element."""
    flat = host.reshape(-1)
    out = flat * 0.0
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        set_value(host)
        plus = evaluate()
        flat[i] = original - eps
        set_value(host)
        minus = evaluate()
        flat[i] = original
        out[i] = (plus - minus) / (2 * eps)
        done(1)
    set_value(host)
    return out.reshape(host.shape)
