"""An ONNX graph under construction: named constants (initializers), one-output nodes, and
names that depend only on what is added, in order, so one net always gives the same bytes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["GraphBuilder"]


class GraphBuilder:
    """Nodes and initializers of one graph whose floating-point tensors are `dtype` (the
    parameters are cast to it as they are added); `reserved` names are not given out."""

    def __init__(self, dtype: np.dtype[Any], reserved: Sequence[str] = ()) -> None:
        self.dtype = np.dtype(dtype)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._taken: set[str] = set(reserved)  # the graph's own inputs and outputs

    def _fresh(self, hint: str) -> str:
        """`hint`, or hint_2, hint_3, ... where the name is taken."""
        name, k = hint, 1
        while name in self._taken:
            k += 1
            name = f"{hint}_{k}"
        self._taken.add(name)
        return name

    def parameter(self, name: str, value: Any) -> str:
        """A float initializer named `name` (a parameter's name in the net: W1, b1, ...)."""
        array = np.asarray(value, dtype=self.dtype)
        self.initializers.append(numpy_helper.from_array(array, self._fresh(name)))
        return self.initializers[-1].name

    def constant(self, hint: str, value: Any) -> str:
        """An initializer holding `value`: floats in the graph's dtype, integers as int64,
        text as UTF-8 strings."""
        array = np.asarray(value)
        if array.dtype.kind == "f":
            return self.parameter(hint, array)
        name = self._fresh(hint)
        if array.dtype.kind == "U":
            data = [text.encode() for text in array.ravel().tolist()]
            tensor = helper.make_tensor(name, TensorProto.STRING, array.shape, data)
        else:
            tensor = numpy_helper.from_array(array.astype(np.int64), name)
        self.initializers.append(tensor)
        return name

    def node(self, op: str, inputs: Sequence[str], output: str = "", **attributes: Any) -> str:
        """Add an `op` node of these inputs; returns its one output's name (`output`, one of
        the reserved names, or a fresh name after the op)."""
        out = output or self._fresh(op.lower())
        name = self._fresh(f"{op}_{len(self.nodes)}")
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=name, **attributes))
        return out

    def rename(self, tensor: str, output: str) -> str:
        """`tensor` under the name `output` (an Identity node), for a graph output."""
        return self.node("Identity", [tensor], output=output)

    def graph(
        self,
        name: str,
        inputs: Sequence[onnx.ValueInfoProto],
        outputs: Sequence[onnx.ValueInfoProto],
    ) -> onnx.GraphProto:
        return helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
