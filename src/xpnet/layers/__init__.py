"""The layers: each a `Layer` with `forward(x)` and `backward(grad)`, registered by name so a
checkpoint can rebuild it. A layer with parameters is a module here and one import below."""

from .activations import ACTIVATIONS, Activation, Identity, ReLU, Sigmoid, Tanh
from .base import LAYERS, Layer, layer_config, layer_from_config
from .dropout import Dropout
from .linear import Linear
from .norm import BatchNorm, LayerNorm
from .residual import Residual

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "Activation",
    "BatchNorm",
    "Dropout",
    "Identity",
    "Layer",
    "LayerNorm",
    "Linear",
    "ReLU",
    "Residual",
    "Sigmoid",
    "Tanh",
    "layer_config",
    "layer_from_config",
]
