"""One buffer for a model's parameters and gradients: the flat arrays P and G and their layout.

Optimizers update a whole model through one (P, G) pair, data-parallel training sums G in one
allreduce and L-BFGS reads and writes P as one vector. Where the library's arrays can be
written through views (NumPy, PyTorch, CuPy, array-api-strict), each parameter is a view of P
and backward writes each gradient into a view of G, so P and G cost nothing to hand out. Where
they cannot (immutable JAX arrays, read-only arrays), P and G are packed from the per-name
arrays when asked for and a new P is unpacked into new per-name arrays: the same numbers,
one copy more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from array_api_compat import array_namespace, device, is_writeable_array

__all__ = ["Layout", "ParameterBuffer", "Slot"]

Array = Any


class Slot(NamedTuple):
    """Where parameter `name` lies in the flat arrays: P[start:stop] reshaped to `shape`."""

    name: str
    start: int
    stop: int
    shape: tuple[int, ...]


Layout = tuple[Slot, ...]

_WRITES_THROUGH: dict[str, bool] = {}  # namespace name -> a view's write reaches its base


def _views_write_through(xp: Any, like: Array) -> bool:
    """Whether writing into a reshaped slice of an array of this namespace changes the array
    (probed once per namespace on a two-element array)."""
    known = _WRITES_THROUGH.get(xp.__name__)
    if known is None:
        base = xp.zeros((2,), dtype=like.dtype, device=device(like))
        try:
            view = xp.reshape(base[1:2], (1,))
            view[...] = 1
            known = bool(base[1] == 1)
        except (TypeError, ValueError, NotImplementedError):
            known = False
        _WRITES_THROUGH[xp.__name__] = known
    return known


class ParameterBuffer:
    """The parameters of a model by name (`params`), the gradients of its last backward
    (`grads`), and the flat arrays behind them in the order of `layout`.

    `views` says which way the buffer works (detected from the arrays when None): True, the
    parameters are views of P and gradients are written into views of G (`grad_target`);
    False, P and G are packed on request. All values share one namespace, dtype and device."""

    def __init__(self, values: Mapping[str, Array], *, views: bool | None = None) -> None:
        if not values:
            raise ValueError("a parameter buffer needs at least one parameter")
        first = next(iter(values.values()))
        self.xp = xp = array_namespace(*values.values())
        slots, start = [], 0
        for name, value in values.items():
            shape = tuple(int(n) for n in value.shape)
            slots.append(Slot(name, start, start + math.prod(shape), shape))
            start += math.prod(shape)
        self.layout: Layout = tuple(slots)
        self.size = start
        if views is None:
            views = all(is_writeable_array(v) for v in values.values()) and _views_write_through(
                xp, first
            )
        self.views = views
        self.dtype: Any = first.dtype  # of P and G: the master weights' and gradients'
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self._grad_views: dict[str, Array] = {}
        if views:
            self._P = xp.zeros((self.size,), dtype=first.dtype, device=device(first))
            self._G = xp.zeros((self.size,), dtype=first.dtype, device=device(first))
            for name, start, stop, shape in self.layout:
                self.params[name] = xp.reshape(self._P[start:stop], shape)
                self._grad_views[name] = xp.reshape(self._G[start:stop], shape)
        self.load(values)
        # mixed precision: the dtype the products run in (None: the parameters' own), and the
        # parameters cast to it, by name (the live parameters themselves when it is None)
        self.compute_dtype: Any = None
        self.compute: dict[str, Array] = self.params

    # -- parameters -----------------------------------------------------------------------
    def set(self, name: str, value: Array) -> None:
        """Make `value` (an array of the buffer's namespace, dtype and shape) parameter `name`:
        copied into its view of P, or bound in its place."""
        if self.views:
            view = self.params[name]
            if value is not view:
                view[...] = value
        else:
            self.params[name] = value

    def load(self, values: Mapping[str, Array]) -> None:
        """`set` every parameter from `values` (keys as in the layout)."""
        for name, *_ in self.layout:
            self.set(name, values[name])

    def flat_parameters(self) -> Array:
        """P: every parameter in layout order, as one 1-D array (the live one, or a packed
        copy)."""
        if self.views:
            return self._P
        return self._pack(self.params)

    def store_flat_parameters(self, P: Array) -> None:
        """Make P (1-D, in layout order) the parameters: nothing to do when it is the live P an
        update wrote into, else copied into it or unpacked into new per-name arrays."""
        if self.views:
            if P is not self._P:
                self._P[...] = P
            return
        xp = self.xp
        for name, start, stop, shape in self.layout:
            self.params[name] = xp.reshape(P[start:stop], shape)

    # -- mixed precision ------------------------------------------------------------------
    def set_compute_dtype(self, dtype: Any) -> None:
        """Run the products from a copy of the parameters in `dtype` (bfloat16, float16), kept
        by `refresh_compute`; None: from the parameters themselves."""
        self.compute_dtype = dtype
        self.compute = self.params
        self.refresh_compute()

    def refresh_compute(self) -> None:
        """Recast `compute` from the parameters: one cast of the flat P, viewed per parameter
        (a cast per parameter where P is packed); nothing without a compute dtype."""
        dtype = self.compute_dtype
        if dtype is None:
            return
        xp = self.xp
        if self.views:
            low = xp.astype(self._P, dtype)
            self.compute = {
                name: xp.reshape(low[start:stop], shape) for name, start, stop, shape in self.layout
            }
        else:
            self.compute = {name: xp.astype(p, dtype) for name, p in self.params.items()}

    # -- gradients ------------------------------------------------------------------------
    def put_grad(self, name: str, g: Array) -> None:
        """Record `g` as the gradient of `name` in the buffer's dtype (a low-precision product's
        gradient is accumulated in float32): cast into its view of G, or cast anew."""
        view = self._grad_views.get(name)
        if view is not None:
            view[...] = g
            self.grads[name] = view
        else:
            self.grads[name] = self.xp.astype(g, self.dtype)

    def grad_target(self, name: str) -> Array | None:
        """The view of G that backward should write the gradient of `name` into (None: give a
        new array, the buffer packs it)."""
        return self._grad_views.get(name)

    def sort_grads(self) -> None:
        """Put `grads` in layout order (backward fills it from the last layer back; a dict
        keeps the order of its first insertions, so with views this reorders once)."""
        grads = self.grads
        if len(grads) == len(self.layout) and next(iter(grads)) != self.layout[0].name:
            ordered = [(s.name, grads[s.name]) for s in self.layout]
            grads.clear()
            grads.update(ordered)

    def flat_gradients(self) -> Array:
        """G: the last backward's gradients in layout order, as one 1-D array. An entry of
        `grads` replaced since (e.g. clipped by hand) is what G holds."""
        grads = self.grads
        if len(grads) != len(self.layout):
            missing = [s.name for s in self.layout if s.name not in grads]
            raise RuntimeError(
                f"no gradients for {missing}: call net.backward(...) before optimizer.step(net)"
            )
        if not self.views:
            return self._pack(grads)
        for name, view in self._grad_views.items():
            g = grads[name]
            if g is not view:
                view[...] = g
        return self._G

    def _pack(self, arrays: Mapping[str, Array]) -> Array:
        xp = self.xp
        return xp.concat([xp.reshape(arrays[s.name], (-1,)) for s in self.layout])

    def __repr__(self) -> str:
        mode = "views" if self.views else "packed"
        return f"ParameterBuffer({[s.name for s in self.layout]}, size={self.size}, {mode})"
