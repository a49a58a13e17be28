"""xpnet: multilayer perceptrons trained by explicit, readable error backpropagation, written
once against the Python array API standard so the same code runs on NumPy, CuPy, PyTorch, JAX
and array-api-strict."""

from .backend import (
    Backend,
    BackendError,
    asarray,
    available_backends,
    backend_of,
    get_backend,
    to_numpy,
)
from .checkpoint import Checkpoint, CheckpointError, load, load_checkpoint, save
from .export import export_onnx
from .gradcheck import gradcheck, relative_error
from .layers import (
    GELU,
    BatchNorm,
    Dropout,
    Identity,
    Layer,
    LayerNorm,
    LeakyReLU,
    Linear,
    ReLU,
    Residual,
    Sigmoid,
    SiLU,
    Softplus,
    Tanh,
)
from .losses import BCELoss, Loss, MSELoss, SoftmaxCrossEntropyLoss, SSELoss
from .model import MLP
from .optim import SGD, Adam, AdamW, Momentum, Optimizer
from .scoring import evaluate, predict
from .sequential import Sequential
from .stopping import EarlyStopping
from .tensorboard_log import TensorBoard
from .train import History, fit

__version__ = "0.1.0"

__all__ = [
    "GELU",
    "MLP",
    "SGD",
    "Adam",
    "AdamW",
    "BCELoss",
    "Backend",
    "BackendError",
    "BatchNorm",
    "Checkpoint",
    "CheckpointError",
    "Dropout",
    "EarlyStopping",
    "History",
    "Identity",
    "Layer",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "Loss",
    "MSELoss",
    "Momentum",
    "Optimizer",
    "ReLU",
    "Residual",
    "SSELoss",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SoftmaxCrossEntropyLoss",
    "Softplus",
    "Tanh",
    "TensorBoard",
    "__version__",
    "asarray",
    "available_backends",
    "backend_of",
    "evaluate",
    "export_onnx",
    "fit",
    "get_backend",
    "gradcheck",
    "load",
    "load_checkpoint",
    "predict",
    "relative_error",
    "save",
    "to_numpy",
]
