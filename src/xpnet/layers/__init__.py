"""The layers: each a `Layer` with `forward(x)` and `backward(grad)`, registered by name so a
checkpoint can rebuild it. A layer with parameters is a module here and one import below."""

from .activations import (
    ACTIVATIONS,
    GELU,
    Activation,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    SiLU,
    Softplus,
    Tanh,
)
from .base import LAYERS, Layer, layer_config, layer_from_config
from .dropout import Dropout
from .linear import Linear
from .norm import BatchNorm, LayerNorm
from .residual import Residual

__all__ = [
    "ACTIVATIONS",
    "GELU",
    "LAYERS",
    "Activation",
    "BatchNorm",
    "Dropout",
    "Identity",
    "Layer",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "ReLU",
    "Residual",
    "SiLU",
    "Sigmoid",
    "Softplus",
    "Tanh",
    "layer_config",
    "layer_from_config",
]
