"""The adapter between xpnet and the array libraries.

This is the only module that knows which libraries exist. It turns a backend name into a
namespace and a device, finds the namespace and device of arrays (with a clear error when they
disagree), and makes the explicit host <-> device copies (`to_numpy`, `asarray`).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "BACKEND_NAMES",
    "DTYPE_NAMES",
    "LIBRARIES",
    "Backend",
    "BackendError",
    "Library",
    "asarray",
    "available_backends",
    "available_memory",
    "backend_of",
    "check_placement",
    "count_nonfinite",
    "dtype_name",
    "get_backend",
    "gpu_devices",
    "host_available_memory",
    "index_dtype",
    "limit_library_threads",
    "on_host",
    "rank_device",
    "to_numpy",
]

DTYPE_NAMES = ("float32", "float64")

X64_HOW = (
    "JAX computes in float64 only with its x64 mode on: set JAX_ENABLE_X64=1 in the environment, "
    "or call jax.config.update('jax_enable_x64', True) before making any JAX array (xpnet does "
    "not switch it on for you: it changes every JAX computation in the process)"
)
X64_HINT = f"{X64_HOW}; or use dtype='float32'"


class BackendError(ValueError):
    """A backend that is unknown or unusable here, or arrays that do not belong together."""


def _ready(module: ModuleType) -> str:
    """Importable means usable."""
    return "ok"


def _anywhere(device: Any, rank: int) -> Any:
    """Every rank on the device the user named."""
    return device


def _no_gpus() -> list[str]:
    """A library that lists no GPUs."""
    return []


def _no_refusal() -> str:
    """float64 works."""
    return ""


@dataclasses.dataclass(frozen=True)
class Library:
    """What xpnet knows about one array library, in one place: how to import and probe it,
    its devices (default, parsing a user's spec, the one a data-parallel rank takes), its
    host copy, free memory and GPUs. `LIBRARIES` holds one per supported library; nothing
    else asks which library it is dealing with."""

    name: str  # the backend name: "numpy", "cupy", ...
    install: str  # how a user installs it
    default_device: Callable[[ModuleType], Any]  # namespace -> its default device
    parse_device: Callable[[ModuleType, Any], Any]  # namespace, user's spec -> device
    host_copy: Callable[[Any], np.ndarray]  # an array -> a NumPy copy on the host
    distributions: tuple[str, ...]  # the packages that provide it (their versions get recorded)
    array_module: str = ""  # the module whose `asarray` makes its arrays; default: `name`
    check: Callable[[ModuleType], str] = _ready  # imported module -> "ok" or why not usable
    host_memory: bool = False  # True: its arrays always live in the host's memory
    free_memory: Callable[[Any], int | None] | None = None  # Backend -> free bytes on its GPU
    gpus: Callable[[], list[str]] = _no_gpus  # a line per CUDA device it sees
    rank_device: Callable[[Any, int], Any] = _anywhere  # device spec, local rank -> the rank's
    nccl: bool = False  # True: a data-parallel group sums its gradients GPU to GPU by NCCL
    float64_refusal: Callable[[], str] = _no_refusal  # why float64 is off here, or ""
    set_threads: Callable[[ModuleType, int], None] | None = None  # module, size of its own pool

    def status(self) -> str:
        """ "ok", or why this library is not usable here (not installed, no CUDA device)."""
        try:
            module = importlib.import_module(self.name)
        except ImportError:
            return f"not installed ({self.install})"
        return self.check(module)


@dataclasses.dataclass(frozen=True)
class Backend:
    """A resolved backend: the array namespace `xp` and the device arrays are created on."""

    name: str
    xp: ModuleType
    device: Any

    @property
    def library(self) -> Library:
        """The facts about this backend's array library."""
        return LIBRARIES[self.name]

    def dtype(self, name: Any) -> Any:
        """The namespace's dtype object for "float32" or "float64" (or any library's float32
        or float64 dtype object: see `dtype_name`). JAX's float64 needs its x64 mode: without
        it this raises BackendError saying how to switch it on."""
        name = dtype_name(name)
        refusal = self.library.float64_refusal() if name == "float64" else ""
        if refusal:
            raise BackendError(f"backend {self.name!r} cannot make float64 arrays here: {refusal}")
        return getattr(self.xp, name)

    def from_host(self, host: Any) -> Any:
        """A host (NumPy) array moved to this backend's device, dtype kept: an explicit copy."""
        return self.xp.asarray(host, device=self.device)

    def __str__(self) -> str:
        return f"{self.name} on {self.device}"


def dtype_name(dtype: Any) -> str:
    """ "float32" or "float64" for that name or for a float32/float64 dtype object of any
    supported library: numpy (np.float32, np.dtype("float32"); cupy uses these too), torch
    (torch.float32), array_api_strict (array_api_strict.float32) and jax (jax.numpy.float32).
    Anything else raises BackendError; nothing is converted silently (Python's `float` is not
    taken for float64)."""
    if isinstance(dtype, str):
        name = dtype
    elif isinstance(dtype, np.dtype):
        name = dtype.name
    elif isinstance(dtype, type) and issubclass(dtype, np.generic):
        name = np.dtype(dtype).name
    elif type(dtype).__module__.split(".")[0] in ("torch", "array_api_strict"):
        name = str(dtype).rpartition(".")[2]  # "torch.float32", "array_api_strict.float32"
    elif type(dtype).__module__.split(".")[0] == "jax":
        name = np.dtype(dtype).name  # jax.numpy.float32 is a scalar type with a numpy dtype
    else:
        name = None
    if name not in DTYPE_NAMES:
        raise BackendError(
            f"unsupported dtype {dtype!r}: use {' or '.join(map(repr, DTYPE_NAMES))} (or a "
            "library's float32/float64 dtype, such as numpy.float32 or torch.float64)"
        )
    return name


# -- numpy -----------------------------------------------------------------------------------


def _numpy_device(xp: ModuleType, device: Any) -> str:
    if str(device) != "cpu":
        raise ValueError("numpy arrays live on the CPU")
    return "cpu"


# -- cupy ------------------------------------------------------------------------------------


def _cupy_check(cupy: ModuleType) -> str:
    """Why cupy is not usable here, or "ok"."""
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "no CUDA device"
        (cupy.arange(2) + 1).sum().item()
    except Exception as exc:  # the CUDA runtime reports a missing driver/device in many ways
        return f"no CUDA device ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    return "ok"


def _gpu_index(device: Any) -> int:
    """The GPU number in 1, "1", "cuda" (0) or "cuda:1"."""
    if isinstance(device, int):
        return device
    kind, _, index = str(device).partition(":")
    if kind.isdigit() and not index:
        return int(kind)
    if kind == "cuda" and (index.isdigit() or not index):
        return int(index or 0)
    raise ValueError("give a GPU number (1) or 'cuda:1'")


def _cupy_device(cupy: ModuleType, device: Any) -> Any:
    if isinstance(device, cupy.cuda.Device):
        return device
    index, count = _gpu_index(device), cupy.cuda.runtime.getDeviceCount()
    if not 0 <= index < count:
        raise ValueError(f"this machine has {count} GPU(s), numbered from 0")
    return cupy.cuda.Device(index)


def _cupy_free_memory(backend: Backend) -> int:
    with backend.device:
        return int(backend.xp.cuda.runtime.memGetInfo()[0])


def _cupy_gpus() -> list[str]:
    import cupy

    props = [
        cupy.cuda.runtime.getDeviceProperties(i) for i in range(cupy.cuda.runtime.getDeviceCount())
    ]
    return [
        f"cuda:{i} {p['name'].decode()} {p['totalGlobalMem'] / 2**30:.1f} GiB"
        for i, p in enumerate(props)
    ]


def _cupy_rank_device(device: Any, rank: int) -> Any:
    """GPU `rank` where the user named no device."""
    return rank if device is None else device


# -- torch -----------------------------------------------------------------------------------


def _torch_device(xp: ModuleType, device: Any) -> Any:
    """A torch.device with an explicit index for CUDA, so it compares equal to the device that
    tensors made on it report ("cuda" -> "cuda:0")."""
    torch = importlib.import_module("torch")
    if not isinstance(device, torch.device):
        numbered = isinstance(device, int) or str(device).isdigit()
        device = torch.device(f"cuda:{device}" if numbered else device)
    if device.type == "cpu":
        return torch.device("cpu")  # "cpu:3" too: torch's CPU tensors all report plain "cpu"
    if device.type == "meta":
        raise ValueError("meta tensors hold no data to train on")
    if device.type != "cuda":  # mps, xpu, ...: torch parses the name even where it cannot run
        try:
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError, ValueError) as exc:
            reason = (str(exc).strip() or type(exc).__name__).splitlines()[0].split(". ")[0]
            usable = "cpu or cuda" if torch.cuda.is_available() else "cpu (no CUDA here)"
            raise ValueError(
                f"this torch cannot make tensors there ({reason[:160]}); use {usable}"
            ) from None
        return device
    if not torch.cuda.is_available():
        raise ValueError("torch has no CUDA device here")
    index = torch.cuda.current_device() if device.index is None else device.index
    if not 0 <= index < torch.cuda.device_count():
        raise ValueError(f"this machine has {torch.cuda.device_count()} GPU(s), numbered from 0")
    return torch.device("cuda", index)


def _torch_free_memory(backend: Backend) -> int | None:
    if backend.device.type != "cuda":
        return host_available_memory()
    return int(importlib.import_module("torch").cuda.mem_get_info(backend.device)[0])


def _torch_gpus() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [
        f"cuda:{i} {torch.cuda.get_device_name(i)} "
        f"{torch.cuda.get_device_properties(i).total_memory / 2**30:.1f} GiB"
        for i in range(torch.cuda.device_count())
    ]


def _torch_rank_device(device: Any, rank: int) -> Any:
    """GPU `rank` where the user named CUDA without a number."""
    return f"cuda:{rank}" if device == "cuda" else device


# -- array_api_strict ------------------------------------------------------------------------


def _strict_device(xp: ModuleType, device: Any) -> Any:
    """One of array_api_strict's devices, by its name ("device1") or itself."""
    known = {str(d): d for d in xp.__array_namespace_info__().devices()}
    known.update({repr(d): d for d in known.values()})
    key = f"array_api_strict.Device({str(device)!r})" if isinstance(device, str) else repr(device)
    return known[key]


def _strict_host_copy(a: Any) -> np.ndarray:
    info = array_api_compat.array_namespace(a).__array_namespace_info__()
    return np.asarray(a.to_device(info.default_device()))


# -- jax -------------------------------------------------------------------------------------


def _jax_check(jax: ModuleType) -> str:
    """Why jax is not usable here, or "ok" (JAX on the CPU counts: it always has one)."""
    try:
        jax.devices()
    except RuntimeError as exc:  # a jaxlib that finds no platform it can start
        return f"no usable JAX platform ({str(exc).splitlines()[0]})"
    return "ok"


def _jax_device(xp: ModuleType, device: Any) -> Any:
    """A jax Device from one, from "cpu" / "cpu:N", or from a GPU number, "gpu:N" or "cuda:N"
    (JAX names NVIDIA and AMD GPUs alike "gpu")."""
    jax = importlib.import_module("jax")
    if isinstance(device, jax.Device):
        return device
    kind, _, index = str(device).partition(":")
    if kind == "cpu" and (index.isdigit() or not index):
        platform, number = "cpu", int(index or 0)
    else:
        try:
            platform, number = "gpu", _gpu_index(str(device).replace("gpu", "cuda", 1))
        except ValueError:
            raise ValueError(
                "use 'cpu', a GPU number (1), 'gpu:1' or 'cuda:1', or a jax.Device"
            ) from None
    try:
        devices = jax.devices(platform)
    except RuntimeError:
        raise ValueError(
            f"JAX has no {platform.upper()} here (its devices: {jax.devices()})"
        ) from None
    if not 0 <= number < len(devices):
        raise ValueError(f"JAX has {len(devices)} {platform} device(s) here, numbered from 0")
    return devices[number]


def _jax_float64_refusal() -> str:
    """X64_HINT unless JAX's x64 mode (float64 arrays) is on."""
    return "" if importlib.import_module("jax").config.jax_enable_x64 else X64_HINT


LIBRARIES: dict[str, Library] = {
    library.name: library
    for library in (
        Library(
            "numpy",
            install="pip install numpy",
            default_device=lambda xp: "cpu",
            parse_device=_numpy_device,
            host_copy=np.asarray,
            distributions=("numpy",),
            host_memory=True,
        ),
        Library(
            "cupy",
            install="pip install 'xpnet[cuda12]' or 'xpnet[cuda13]' (matching your CUDA driver)",
            default_device=lambda xp: xp.cuda.Device(),
            parse_device=_cupy_device,
            host_copy=lambda a: a.get(),
            distributions=("cupy-cuda12x", "cupy-cuda13x"),
            check=_cupy_check,
            free_memory=_cupy_free_memory,
            gpus=_cupy_gpus,
            rank_device=_cupy_rank_device,
            nccl=True,
        ),
        Library(
            "torch",
            install="pip install 'xpnet[torch]'",
            default_device=lambda xp: importlib.import_module("torch").device("cpu"),
            parse_device=_torch_device,
            host_copy=lambda a: a.detach().cpu().numpy(),
            distributions=("torch",),
            free_memory=_torch_free_memory,
            gpus=_torch_gpus,
            rank_device=_torch_rank_device,
            set_threads=lambda torch, threads: torch.set_num_threads(threads),
        ),
        Library(
            "array_api_strict",
            install="pip install array-api-strict",
            default_device=lambda xp: xp.__array_namespace_info__().default_device(),
            parse_device=_strict_device,
            host_copy=_strict_host_copy,
            distributions=("array-api-strict",),
            host_memory=True,
        ),
        Library(
            "jax",
            install="pip install 'xpnet[jax]'",
            # JAX's default: a GPU if it has one
            default_device=lambda xp: importlib.import_module("jax").devices()[0],
            parse_device=_jax_device,
            host_copy=np.asarray,
            distributions=("jax",),
            array_module="jax.numpy",
            check=_jax_check,
            float64_refusal=_jax_float64_refusal,
        ),
    )
}
BACKEND_NAMES = tuple(LIBRARIES)


def limit_library_threads(threads: int) -> None:
    """Size the thread pools the imported libraries keep apart from BLAS and OpenMP (torch's)
    to `threads`; a library not imported yet is left alone (and not imported)."""
    for library in LIBRARIES.values():
        if library.set_threads is not None and library.name in sys.modules:
            library.set_threads(sys.modules[library.name], threads)


def available_backends() -> dict[str, str]:
    """Each backend name -> "ok", or the reason it is missing (not installed, no CUDA device)."""
    return {name: library.status() for name, library in LIBRARIES.items()}


def _parse_device(library: Library, xp: ModuleType, device: Any) -> Any:
    """Turn a user's device spec ("cuda:1", 1, "device1", a device object) into the library's."""
    if device is None:
        return library.default_device(xp)
    try:
        return library.parse_device(xp, device)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise BackendError(
            f"unknown device {device!r} for backend {library.name!r}: {exc}"
        ) from None


def rank_device(backend: str | Backend, device: Any, local_rank: int | None) -> Any:
    """The device spec a process trains on: in a data-parallel group, GPU `local_rank` (its
    rank among the group's processes on this machine) where the user named no GPU index (cupy
    without a device; torch with "cuda"); else (alone: `local_rank` None) `device` as given."""
    if local_rank is None:
        return device
    name = backend.name if isinstance(backend, Backend) else backend
    return LIBRARIES[name].rank_device(device, local_rank)


def _name_of(namespace: ModuleType) -> str:
    """The backend name of a namespace (numpy, array_api_compat.numpy, cupy, torch, ...)."""
    module = namespace.__name__.removeprefix("array_api_compat.")
    for name in BACKEND_NAMES:
        if module == name or module.startswith(name + "."):
            return name
    raise BackendError(
        f"unsupported array namespace {namespace.__name__!r}: use one of {', '.join(BACKEND_NAMES)}"
    )


def get_backend(name: str | ModuleType | Backend = "auto", device: Any = None) -> Backend:
    """Resolve a backend name ("auto", "numpy", "cupy", "torch", "array_api_strict", "jax"), a
    namespace module or a `Backend` to a `Backend`; "auto" is cupy when a CUDA device is usable,
    else numpy (never jax: choose it by name)."""
    if isinstance(name, Backend):
        return name if device is None else get_backend(name.name, device)
    if isinstance(name, ModuleType):
        name = _name_of(name)
    if name == "auto":
        name = "cupy" if LIBRARIES["cupy"].status() == "ok" else "numpy"
    if name not in LIBRARIES:
        raise BackendError(f"unknown backend {name!r}: use one of auto, {', '.join(BACKEND_NAMES)}")
    library = LIBRARIES[name]
    status = library.status()
    if status != "ok":
        raise BackendError(f"backend {name!r} is not usable here: {status}")
    module = importlib.import_module(library.array_module or name)
    xp = array_api_compat.array_namespace(module.asarray(0.0))
    return Backend(name, xp, _parse_device(library, xp, device))


def _library(a: Any) -> str | None:
    """The backend name of array `a`, or None when it is no array of a known library."""
    try:
        return _name_of(array_api_compat.array_namespace(a))
    except (TypeError, BackendError):
        return None


def backend_of(*arrays: Any) -> Backend:
    """The backend and device shared by `arrays`; a clear error if they come from two libraries
    or two devices (nothing is ever copied silently)."""
    seen: dict[tuple[str, str], Any] = {}
    for a in arrays:
        name = _library(a)
        if name is None:
            raise BackendError(
                f"expected an array, got {type(a).__name__}: "
                "convert it with xpnet.asarray(a, like=net)"
            )
        seen.setdefault((name, str(array_api_compat.device(a))), a)
    if len(seen) > 1:
        places = " and ".join(f"{name} on {dev}" for name, dev in seen)
        raise BackendError(
            f"arrays from two places: {places}; move them with xpnet.asarray(a, like=net)"
        )
    ((name, _),) = seen
    a = next(iter(seen.values()))
    return Backend(name, array_api_compat.array_namespace(a), array_api_compat.device(a))


def check_placement(a: Any, backend: Backend, what: str) -> None:
    """Raise if `a` is not an array of `backend`'s library on its device."""
    name = _library(a)
    if name != backend.name:
        kind = f"a {name} array" if name else f"a {type(a).__name__}, not an array"
        raise BackendError(
            f"{what} is {kind} but the net runs on {backend}; "
            f"move it with xpnet.asarray({what}, like=net)"
        )
    device = array_api_compat.device(a)
    if str(device) != str(backend.device):
        raise BackendError(
            f"{what} is on device {device} but the net runs on {backend}; "
            f"move it with xpnet.asarray({what}, like=net)"
        )


def index_dtype(xp: ModuleType) -> Any:
    """The namespace's default integer dtype for indices (what argmax returns): int64, or int32
    where the library has no int64 in its present mode (JAX without x64), so labels and counts
    never ask for a dtype the library would truncate with a warning."""
    return xp.__array_namespace_info__().default_dtypes()["indexing"]


def on_host(backend: Backend) -> bool:
    """Whether `backend`'s arrays live in the host's memory: numpy, array_api_strict, and torch
    or jax on the CPU (a jax CPU device calls itself "cpu:0")."""
    if backend.library.host_memory:
        return True
    return getattr(backend.device, "platform", None) == "cpu" or str(backend.device) == "cpu"


def available_memory(backend: Backend) -> int | None:
    """Bytes free for new arrays on `backend`'s device: the GPU's free memory for cupy and
    torch on CUDA, else the host's available memory (Linux /proc/meminfo, or sysconf); None
    when unknown."""
    free_memory = backend.library.free_memory
    if free_memory is None:
        return host_available_memory()
    try:
        return free_memory(backend)
    except Exception:  # a driver that cannot say: no estimate rather than a false refusal
        return None


def host_available_memory() -> int | None:
    """The host's available memory in bytes (MemAvailable on Linux), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def count_nonfinite(a: Any, xp: ModuleType) -> int:
    """How many entries of `a` are NaN or infinite, read on the host. scikit-learn's
    `_assert_all_finite` trick first: one sum, finite exactly when every entry is (NaN and inf
    propagate), with no array allocated; only a sum that is not finite (bad data, or finite
    values overflowing the dtype) pays for the element-wise count. On torch's CPU the count
    took 30x the sum of an MNIST-sized X."""
    with np.errstate(over="ignore", invalid="ignore"):  # NumPy's overflow warning: counted next
        if bool(to_numpy(xp.isfinite(xp.sum(a)))):
            return 0
        return int(to_numpy(xp.sum(xp.astype(~xp.isfinite(a), xp.int32))))


def to_numpy(a: Any) -> np.ndarray:
    """Any backend's array (or a Python scalar) -> numpy.ndarray: the one explicit device ->
    host copy."""
    name = _library(a)
    return np.asarray(a) if name is None else LIBRARIES[name].host_copy(a)


def _target(like: Any) -> tuple[Backend, str]:
    """The backend and dtype name of `like`: an MLP (or layer), a Backend, or a backend name."""
    backend = getattr(like, "backend", like)
    dtype = getattr(like, "dtype_name", "float32")
    return get_backend(backend), dtype


def asarray(a: Any, like: Any, dtype: str | None = None) -> Any:
    """The explicit move: any array (or nested list) -> `like`'s backend, device and dtype.

    `like` is an MLP or layer (its backend, device and dtype), a Backend or a backend name
    (float32 unless `dtype` says otherwise). Integer and boolean data are cast to the float dtype.
    """
    backend, like_dtype = _target(like)
    dtype = dtype or like_dtype
    target = backend.dtype(dtype)
    library = _library(a)
    if library == backend.name and library != "numpy":
        if str(array_api_compat.device(a)) != str(backend.device):
            a = array_api_compat.to_device(a, backend.device)
        return a if a.dtype == target else backend.xp.astype(a, target)
    host = to_numpy(a) if library else np.asarray(a)
    if host.dtype.kind not in "biuf":
        raise BackendError(f"cannot convert data of dtype {host.dtype} to {dtype}")
    return backend.from_host(np.ascontiguousarray(host, dtype=np.dtype(dtype)))


def gpu_devices() -> list[str]:
    """One line per CUDA device the first usable library that sees any (cupy, then torch)
    lists: index, name, memory."""
    for library in LIBRARIES.values():
        found = library.gpus() if library.status() == "ok" else []
        if found:
            return found
    return []
