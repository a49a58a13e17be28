"""TensorBoard logs of training: a `fit` callback that writes each epoch's record (loss,
accuracy, validation scores, learning rate, seconds) as scalars, and the norm of each Linear
layer's weight gradient on a fixed probe batch, so many runs can be followed side by side.

The event files are written by TensorBoard's own writer (`tensorboard.summary.writer`'s
EventFileWriter, which needs neither TensorFlow nor PyTorch), as plain scalar summaries that
its event reader and the scalars dashboard read. `tensorboard` is an optional extra
(`pip install 'xpnet[tensorboard]'`), imported only when a log is opened."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from .diagnostics import layer_gradient_norms
from .inputs import prepare
from .layers import Linear
from .layers.sequence import leaves
from .losses import Loss, SSELoss
from .sequential import Sequential, in_mode

__all__ = ["INSTALL_HINT", "TensorBoard"]

INSTALL_HINT = "pip install 'xpnet[tensorboard]'"


class TensorBoard:
    """A `fit` callback that logs to event files in `logdir` (made if missing; TensorBoard
    shows each subdirectory of its --logdir as a run). After epoch e it writes every number of
    the epoch's record but "epoch" as a scalar of that name at step e (the columns of
    history.csv), and flushes, so TensorBoard shows a run as it trains.

    With `net` and `probe` = (X, T), a fixed batch, it also writes `gradient_norm/W1`, ...:
    the Euclidean norm of each Linear layer's dL/dW for `loss` (default SSE) on that batch,
    as `xpnet vanishing` measures it, taken with the net in evaluation mode so that batch
    norm's running statistics and dropout's draws are left as training has them.

    Close it (or use it as a context manager) to finish the files."""

    def __init__(
        self,
        logdir: str | os.PathLike,
        *,
        net: Sequential | None = None,
        probe: tuple[Any, Any] | None = None,
        loss: Loss | None = None,
    ) -> None:
        if (net is None) != (probe is None):
            raise ValueError("gradient norms need both net= and probe=(X, T), or neither")
        self.logdir = os.fspath(logdir)
        self.net, self.loss = net, loss or SSELoss()
        self._probe: tuple[Any, Any] | None = None
        if net is not None and probe is not None:
            self._probe = prepare(net, *probe, "the gradient probe")
            self.loss.check_targets(self._probe[1])
        self._writer = _event_writer(self.logdir)

    def __call__(self, epoch: int, record: Mapping[str, float]) -> None:
        scalars = {k: float(v) for k, v in record.items() if k != "epoch"}
        scalars.update(self.gradient_norms())
        self.write(epoch, scalars)

    def gradient_norms(self) -> dict[str, float]:
        """{"gradient_norm/W<k>": norm of that weight's gradient on the probe batch}; empty
        without a probe."""
        if self.net is None or self._probe is None:
            return {}
        names = [
            layer.parameter_names["W"]
            for layer in leaves(self.net.layers)
            if isinstance(layer, Linear)
        ]
        with in_mode(self.net, False):
            norms = layer_gradient_norms(self.net, *self._probe, self.loss)
        return {f"gradient_norm/{name}": norm for name, norm in zip(names, norms, strict=True)}

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        """One event of these scalars at `step`, flushed to the file."""
        from tensorboard.compat.proto import event_pb2, summary_pb2

        values = [summary_pb2.Summary.Value(tag=k, simple_value=v) for k, v in scalars.items()]
        event = event_pb2.Event(wall_time=time.time(), step=step)
        event.summary.value.extend(values)
        self._writer.add_event(event)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> TensorBoard:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _event_writer(logdir: str) -> Any:
    """TensorBoard's event file writer for `logdir`; ImportError with the install hint where
    the tensorboard package is missing."""
    try:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as err:
        raise ImportError(f"TensorBoard logs need the tensorboard package: {INSTALL_HINT}") from err
    return EventFileWriter(logdir)
