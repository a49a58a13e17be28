"""The multilayer perceptron of the classic tutorials, a `Sequential` of Linear layers with an
activation after each; and the one way back from a stored config to a net of either kind."""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence
from typing import Any

from .backend import Backend
from .layers import (
    ACTIVATIONS,
    BatchNorm,
    Dropout,
    Layer,
    LayerNorm,
    Linear,
    Residual,
    layer_from_config,
)
from .layers.sequence import leaves
from .sequential import Sequential

__all__ = [
    "CLASSIC_HIDDEN",
    "HIDDEN",
    "HIDDEN_ACTIVATIONS",
    "MLP",
    "NORMS",
    "OUTPUTS",
    "config_layers",
    "mlp_layers",
    "net_from_config",
]

CLASSIC_HIDDEN = ("sigmoid", "tanh", "relu")  # the seeds' three, `xpnet vanishing`'s default
HIDDEN = (*CLASSIC_HIDDEN, "leaky_relu", "gelu", "silu", "softplus")  # the nonlinear ones
# what MLP accepts between layers: also "identity" (a linear net, as scikit-learn allows)
HIDDEN_ACTIVATIONS = (*HIDDEN, "identity")
OUTPUTS = ("sigmoid", "identity", "tanh", "relu")


def _checked_sizes(sizes: Any) -> list[int]:
    """sizes as a list of Python ints, or a ValueError that says what is wrong with it."""
    if isinstance(sizes, str) or not isinstance(sizes, Sequence):
        raise ValueError(
            f"sizes must be a list of layer widths such as [64, 32, 10], got {sizes!r}"
        )
    bad = [n for n in sizes if isinstance(n, bool) or not isinstance(n, numbers.Integral)]
    if bad:
        raise ValueError(f"sizes must be whole numbers, got {bad[0]!r} in {list(sizes)}")
    out = [int(n) for n in sizes]
    if len(out) < 2 or min(out) < 1:
        raise ValueError(
            f"sizes must list at least an input and an output width, all >= 1; got {out}"
        )
    return out


NORMS: dict[str | None, Any] = {None: None, "layer": LayerNorm, "batch": BatchNorm}


def mlp_layers(
    sizes: Sequence[int],
    hidden: str = "sigmoid",
    output: str = "sigmoid",
    bias: bool = True,
    dropout: float = 0.0,
    norm: str | None = None,
    residual: bool = False,
) -> list[Layer]:
    """The layers of an MLP of these widths, placed by nobody yet: a block per hidden layer,
    Linear -> norm (if any) -> activation -> Dropout (if dropout > 0); then the output Linear
    and activation. With `residual`, a hidden layer of equal widths is a pre-activation
    residual block instead (He et al. 2016, "Identity Mappings in Deep Residual Networks"):
    x + Linear(Dropout(activation(norm(x)))), whose skip path carries the gradient down
    unchanged (a block that ends in a sigmoid would add positive outputs at every depth, and
    the first layer's gradient shrinks again: 0.04 of the last layer's at depth 20 on digits,
    0.34 in this order). Every Linear starts as the hidden activation asks (He-normal for
    the ReLU family, Glorot-uniform otherwise)."""
    sizes = _checked_sizes(sizes)
    if hidden not in HIDDEN_ACTIVATIONS:
        raise ValueError(f"unknown hidden activation {hidden!r}: use one of {HIDDEN_ACTIVATIONS}")
    if output not in OUTPUTS:
        raise ValueError(f"unknown output activation {output!r}: use one of {OUTPUTS}")
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}: use None, 'layer' or 'batch'")
    if not isinstance(residual, bool):
        raise ValueError(f"residual must be True or False, got {residual!r}")
    init = ACTIVATIONS[hidden].init
    *inner, last = itertools.pairwise(sizes)
    layers: list[Layer] = []

    def shaping(width: int) -> list[Layer]:
        """norm -> activation -> dropout over `width` features."""
        norming = [NORMS[norm](width)] if norm else []
        return [*norming, ACTIVATIONS[hidden](), *([Dropout(dropout)] if dropout else [])]

    for n_in, n_out in inner:
        linear = Linear(n_in, n_out, bias=bias, init=init)
        if residual and n_in == n_out:
            layers.append(Residual([*shaping(n_in), linear]))
        else:
            layers += [linear, *shaping(n_out)]
    return [*layers, Linear(*last, bias=bias, init=init), ACTIVATIONS[output]()]


class MLP(Sequential):
    """An MLP of sizes [n_in, h1, ..., n_out] with `hidden` activations and an `output` one.

    Weights start from `numpy.random.default_rng(seed)` on the host (He-normal for relu,
    leaky_relu, gelu and silu, Glorot-uniform otherwise, zero biases), so one seed gives
    bit-identical weights on every backend. Parameters are named W1, b1, W2, ... (layer k maps
    sizes[k-1] -> sizes[k]). `dropout`, `norm` ("layer" or "batch") and `residual` build the
    blocks of `mlp_layers` (norm parameters and statistics are numbered among the layers:
    gamma2, beta2, ...). It is the `Sequential` of `mlp_layers`, whose plain loops its forward
    and backward are."""

    def __init__(
        self,
        sizes: Sequence[int],
        hidden: str = "sigmoid",
        output: str = "sigmoid",
        backend: str | Backend = "numpy",
        device: Any = None,
        dtype: Any = "float32",
        seed: int = 0,
        bias: bool = True,
        dropout: float = 0.0,
        norm: str | None = None,
        residual: bool = False,
    ) -> None:
        layers = mlp_layers(sizes, hidden, output, bool(bias), dropout, norm, residual)
        super().__init__(layers, backend, device, dtype, seed)
        self.hidden: str = hidden
        self.bias: bool = bool(bias)
        self.dropout, self.norm, self.residual = float(dropout), norm, residual
        self.linears: list[Linear] = [
            layer for layer in leaves(layers) if isinstance(layer, Linear)
        ]
        self.sizes: list[int] = [self.n_in, *(linear.n_out for linear in self.linears)]

    def config(self) -> dict[str, Any]:
        """What rebuilds this net, as keyword arguments of MLP: sizes, activations, dtype, seed,
        bias."""
        return {
            "sizes": list(self.sizes),
            "hidden": self.hidden,
            "output": self.output,
            "dtype": self.dtype_name,
            "seed": self.seed,
            "bias": self.bias,
            **{key: value for key, value in self._blocks().items() if value},
        }

    def _blocks(self) -> dict[str, Any]:
        """The block options beyond the classic MLP; a config names them only when set, so a
        plain MLP's config is what it always was."""
        return {"dropout": self.dropout, "norm": self.norm, "residual": self.residual}

    def __repr__(self) -> str:
        blocks = "".join(f", {key}={value!r}" for key, value in self._blocks().items() if value)
        return (
            f"MLP({self.sizes}, hidden={self.hidden!r}, output={self.output!r}{blocks}, "
            f"backend={self.backend.name!r}, device={str(self.backend.device)!r}, "
            f"dtype={self.dtype_name!r})"
        )


_MLP_KEYS = ("sizes", "hidden", "output", "bias", "dropout", "norm", "residual")


def config_layers(config: Any) -> list[Layer]:
    """The unplaced layers a stored net config describes (a Sequential's "layers", or an MLP's
    sizes and activations): their parameter shapes can be checked before anything is
    allocated."""
    if not isinstance(config, dict):
        raise ValueError(f"its architecture is not an object ({config!r})")
    if "layers" in config:
        if not isinstance(config["layers"], list):
            raise ValueError(f"its layers are not a list ({config['layers']!r})")
        return [layer_from_config(entry) for entry in config["layers"]]
    return mlp_layers(**{k: config[k] for k in _MLP_KEYS if k in config})


def net_from_config(config: dict[str, Any], backend: Backend) -> Sequential:
    """The net (MLP or Sequential) a stored config describes, freshly initialised on
    `backend`."""
    if "layers" in config:
        extra = set(config) - {"layers", "dtype", "seed"}
        if extra:
            raise ValueError(f"its architecture has unknown keys {sorted(extra)}")
        return Sequential(
            config_layers(config), backend, dtype=config["dtype"], seed=config["seed"]
        )
    return MLP(**config, backend=backend)
