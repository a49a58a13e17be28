"""`xpnet gradcheck`: backward vs central differences, per parameter."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import numpy as np

from ..backend import X64_HOW, get_backend, to_numpy
from ..data import load_dataset
from ..gradcheck import gradcheck
from ..inputs import prepare
from ..losses import LOSSES
from ..model import MLP
from .config import build_net, check_memory, net_sizes
from .errors import EXIT_FAILED, EXIT_OK, UsageError
from .options import TrainOptions

__all__ = [
    "GRADCHECK_EPS",
    "GRADCHECK_SAMPLES",
    "GRADCHECK_TOLERANCE",
    "ROUNDING_MARGIN",
    "cmd_gradcheck",
]


GRADCHECK_TOLERANCE = 1e-6  # the bound where float64 rounding allows it (see _tolerances)


ROUNDING_MARGIN = 10  # measured errors of a correct backward sit 3-5x below the rounding floor


GRADCHECK_EPS = 1e-6  # xpnet.gradcheck's default step


GRADCHECK_SAMPLES = 8  # the batch checked unless --samples says otherwise


def cmd_gradcheck(args: argparse.Namespace) -> int:
    options = TrainOptions.from_args(args)
    if get_backend(options.backend, options.device).library.float64_refusal():
        raise UsageError(
            f"xpnet gradcheck compares in float64 (it has no --dtype). {X64_HOW}; or check "
            "on another --backend (numpy, torch)"
        )
    data = load_dataset(options.data)
    n = min(args.samples or GRADCHECK_SAMPLES, len(data))
    if args.samples is not None and n < args.samples:  # said when asked for, not by default
        print(
            f"xpnet gradcheck: --samples {args.samples} is more than the {len(data)} samples "
            f"of {data.name}; checking all {n}",
            file=sys.stderr,
        )
    check_memory(net_sizes(options, data), options.backend, options.device, n, "float64", n)
    net = build_net(options, data, "float64")
    X, T = prepare(net, data.X[:n], data.y[:n])
    loss = LOSSES[options.loss]()
    with np.errstate(all="ignore"):  # a saturated net may overflow exp: the errors tell
        errors = gradcheck(net, loss, X, T, eps=GRADCHECK_EPS, progress=sys.stderr.isatty())
        tolerances = _tolerances(net, loss, X, T)
    print(f"relative error of backward vs central differences ({net!r}, {X.shape[0]} samples):")
    for name, error in errors.items():
        note = (
            ""
            if tolerances[name] == GRADCHECK_TOLERANCE
            else f"  (tolerance {tolerances[name]:.2g})"
        )
        print(f"  {name:<6}{error:.2e}{note}")
    worst = max(errors, key=lambda name: errors[name] / tolerances[name])  # nearest its bound
    passed = all(errors[name] < tolerances[name] for name in errors)
    verdict = "ok" if passed else "FAILED"
    print(f"{verdict}: largest {errors[worst]:.2e} ({worst}; tolerance {tolerances[worst]:.2g})")
    return EXIT_OK if passed else EXIT_FAILED


def _tolerances(net: MLP, loss: Any, X: Any, T: Any) -> dict[str, float]:
    """The bound on each relative error (per parameter, and "input" for dL/dX): 1e-6, or the
    error float64 rounding alone gives central differences, times a margin, if that is larger.

    Each loss value carries a rounding error of about u |L| (u = 2.2e-16), so every central
    difference (f(x + eps) - f(x - eps)) / (2 eps) is off by about u |L| / eps, and k of them
    by sqrt(k) u |L| / eps in norm: relative to the gradient's norm ||g||, a floor of
    u |L| sqrt(k) / (2 eps ||g||). For the weights that floor does not depend on the batch
    (the loss is a mean, and so are their gradients); for the input it grows in proportion to
    the batch (each sample's dL/dx shrinks as 1/n while k grows as n), which is why a fixed
    1e-6 failed a correct backward at 1797 samples. Measured errors of a correct backward lie
    3-5x below the floor; a wrong backward gives errors of 1e-2 and more, so the bound is
    capped at 1e-2."""
    value = abs(float(to_numpy(loss.forward(net.forward(X), T))))
    gX = net.backward(loss.backward())
    grads = {name: to_numpy(g) for name, g in net.grads.items()}
    grads["input"] = to_numpy(gX)
    u = float(np.finfo(np.float64).eps)
    out = {}
    for name, g in grads.items():
        norm = float(np.linalg.norm(g))
        floor = u * value * math.sqrt(g.size) / (2 * GRADCHECK_EPS * norm) if norm else math.inf
        out[name] = min(max(GRADCHECK_TOLERANCE, ROUNDING_MARGIN * floor), 1e-2)
    return out
