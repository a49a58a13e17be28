"""The layers: each a `Layer` with `forward(x)` and `backward(grad)`, registered by name so a
checkpoint can rebuild it. A layer with parameters is a module here and one import below."""

from .activations import ACTIVATIONS, Activation, Identity, ReLU, Sigmoid, Tanh
from .base import LAYERS, Layer, layer_config, layer_from_config
from .linear import Linear

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "Activation",
    "Identity",
    "Layer",
    "Linear",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "layer_config",
    "layer_from_config",
]
