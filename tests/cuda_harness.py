"""Run xpnet's CUDA kernels (xpnet.ops.cuda_code) on the CPU, and compile them for the GPU,
with no GPU and no CuPy: so a GPU run confirms them rather than debugs them.

- `run_elementwise` wraps an ElementwiseKernel body in a C++ loop over i (T a typedef of
  double or float; array arguments indexed by i, 0-d ones passed as values), builds it with
  gcc and calls it through ctypes on NumPy arrays.
- `run_reduction` does the same for a full ReductionKernel (map, reduce, post).
- `run_rows` runs a row-source kernel block by block with WARP 1: lane 0 only, the shuffle the
  identity, `__global__`/`__device__` empty, blockIdx set before each call.
- `ptx_errors` compiles every kernel with `nvcc -arch=sm_90 --ptx` (the elementwise and
  reduction bodies in a minimal `__global__` function) and returns nvcc's complaints.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from xpnet.ops import cuda_code
from xpnet.ops.cuda_code import Elementwise, Reduction

GCC = shutil.which("gcc")
NVCC = shutil.which("nvcc")
_BUILD = Path(tempfile.mkdtemp(prefix="xpnet-cuda-harness-"))
_CTYPES = {"float": (ctypes.c_float, np.float32), "double": (ctypes.c_double, np.float64)}
_CPU_HEADER = "#include <cmath>\nusing namespace std;\n"
# what the CUDA runtime gives a kernel, for one lane of one block at a time
_CPU_SHIM = """
#define WARP 1
#define __global__
#define __device__
struct xpnet_dim3 { unsigned x, y, z; };
static xpnet_dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0}, blockDim = {1, 1, 1};
template <typename V> static V __shfl_xor_sync(unsigned, V v, int) { return v; }
extern "C" void xpnet_set_block(unsigned b) { blockIdx.x = b; }
"""


def ctype_of(dtype: Any) -> str:
    return "float" if np.dtype(dtype) == np.float32 else "double"


def _names(params: str) -> list[str]:
    """'T x, T y' -> ['x', 'y']."""
    return [p.split()[-1] for p in params.split(",")]


def _wrapped(kernel: Elementwise | Reduction, scalars: set[str], gpu: bool) -> str:
    """A kernel as a function of n and its arguments (array ones as pointers name_), looping
    over the elements: all of them on the CPU, one per thread on the GPU."""
    inputs, outputs = _names(kernel.inputs), _names(kernel.outputs)
    params = ["long n"]
    params += [f"T {k}" if k in scalars else f"const T* {k}_" for k in inputs]
    params += [f"T* {k}_" for k in outputs]
    loads = "".join(f"const T {k} = {k}_[i]; " for k in inputs if k not in scalars)
    if gpu:
        head = 'extern "C" __global__ void'
        loop = "long i = blockIdx.x * (long)blockDim.x + threadIdx.x; if (i < n)"
    else:
        head, loop = 'extern "C" void', "for (long i = 0; i < n; ++i)"
    if isinstance(kernel, Elementwise):
        out_loads = "".join(f"T {k} = {k}_[i]; " for k in outputs)
        stores = "".join(f"{k}_[i] = {k}; " for k in outputs)
        body = f"{loop} {{ {loads}{out_loads}{kernel.body}\n {stores}}}"
    else:
        (out,) = outputs
        step = f"{{ {loads}T b = ({kernel.map}); a = ({kernel.reduce}); }}"
        body = f"T a = T({kernel.identity}); {loop} {step} T {out}; {kernel.post}; *{out}_ = {out};"
    return f"{head} {kernel.name}({', '.join(params)}) {{ {body} }}\n"


def _build(source: str) -> ctypes.CDLL:
    """source compiled by gcc as C++ into a shared library (once per source)."""
    key = hashlib.sha1(source.encode()).hexdigest()[:16]
    lib = _BUILD / f"{key}.so"
    if not lib.exists():
        path = _BUILD / f"{key}.cpp"
        path.write_text(source)
        command = [str(GCC), "-x", "c++", "-O1", "-shared", "-fPIC", str(path), "-o", str(lib)]
        done = subprocess.run([*command, "-lm"], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"gcc failed on\n{source}\n{done.stderr}")
    return ctypes.CDLL(str(lib))


def _argument(value: Any, ctype: str) -> Any:
    if isinstance(value, np.ndarray):
        return ctypes.c_void_p(value.ctypes.data)
    if isinstance(value, np.int32 | int):
        return ctypes.c_int(int(value))
    return _CTYPES[ctype][0](float(value))


def _run_looped(kernel: Elementwise | Reduction, dtype: Any, arrays: dict[str, Any]) -> Any:
    ctype, host = ctype_of(dtype), np.dtype(dtype)
    inputs, outputs = _names(kernel.inputs), _names(kernel.outputs)
    values = {k: np.asarray(v, host) for k, v in arrays.items()}
    scalars = {k for k in inputs if values[k].ndim == 0}
    shape = np.broadcast_shapes(*(v.shape for k, v in values.items() if k not in scalars))
    source = f"{_CPU_HEADER}typedef {ctype} T;\n{_wrapped(kernel, scalars, gpu=False)}"
    function = getattr(_build(source), kernel.name)
    args = {
        k: v[()] if k in scalars else np.ascontiguousarray(np.broadcast_to(v, shape))
        for k, v in values.items()
        if k in inputs
    }
    if isinstance(kernel, Reduction):
        outs = {outputs[0]: np.zeros((), host)}
    else:
        outs = {k: np.array(np.broadcast_to(values.get(k, 0), shape), host) for k in outputs}
    n = int(np.prod(shape))
    function(
        ctypes.c_long(n),
        *(_argument(args[k], ctype) for k in inputs),
        *(_argument(outs[k], ctype) for k in outputs),
    )
    return outs


def run_elementwise(kernel: Elementwise, dtype: Any, **arrays: Any) -> dict[str, np.ndarray]:
    """The kernel's outputs for these arguments (by name; outputs given are their starting
    values, as CuPy's in-place outputs), broadcast together, on the CPU."""
    return _run_looped(kernel, dtype, arrays)


def run_reduction(kernel: Reduction, dtype: Any, **arrays: Any) -> np.ndarray:
    """The reduction of all elements of the arguments, on the CPU."""
    (out,) = _run_looped(kernel, dtype, arrays).values()
    return out


def run_rows(name: str, dtype: Any, grid: int, *args: Any) -> None:
    """Row-source kernel `name` over blocks 0..grid-1 with one lane each (WARP 1); arrays are
    written in place, so pass C-contiguous arrays of dtype."""
    ctype = ctype_of(dtype)
    lib = _build(_CPU_HEADER + _CPU_SHIM + cuda_code.row_source(ctype))
    function = getattr(lib, name)
    converted = [_argument(a, ctype) for a in args]
    for block in range(grid):
        lib.xpnet_set_block(ctypes.c_uint(block))
        function(*converted)


def ptx_errors(dtype: Any) -> str:
    """nvcc's errors compiling every kernel for sm_90 with T = dtype's C type ("" if none)."""
    wrapped = "".join(
        _wrapped(kernel, set(), gpu=True)
        for kernel in [*cuda_code.elementwise_kernels(), cuda_code.HALF_SUM_OF_SQUARES]
    )
    source = cuda_code.row_source(ctype_of(dtype)) + wrapped
    path = _BUILD / f"kernels-{ctype_of(dtype)}.cu"
    path.write_text(source)
    command = [str(NVCC), "-arch=sm_90", "--ptx", str(path), "-o", str(path.with_suffix(".ptx"))]
    done = subprocess.run(command, capture_output=True, text=True)
    return done.stderr if done.returncode else ""
