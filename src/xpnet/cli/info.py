"""`xpnet info`: versions, backends and devices."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from ..backend import LIBRARIES, available_backends, gpu_devices
from ..checkpoint import load_checkpoint
from ..data import DOWNLOADED, PACKAGED
from ..labels import describe_classes
from ..layers import Layer
from ..layers.sequence import has_parameters, leaves, widths

__all__ = ["cmd_info", "version"]


def cmd_info(args: argparse.Namespace) -> None:
    if args.run_dir is not None:
        return _summary(args.run_dir)
    print(f"xpnet {version('xpnet')}, Python {platform.python_version()} ({sys.platform})")
    packages = [p for library in LIBRARIES.values() for p in library.distributions]
    packages += ["array-api-compat", "array-api-extra", "tqdm", "safetensors", "matplotlib"]
    packages += ["scikit-learn", "mpi4py"]  # the estimators; data-parallel training
    packages += ["onnx", "tensorboard"]  # the export and logging extras
    print("packages: " + ", ".join(f"{p} {version(p)}" for p in packages))
    print(_datasets())
    print("backends:")
    for name, status in available_backends().items():
        print(f"  {name:<17}{status}")
    devices = gpu_devices()
    print("GPUs:" + ("" if devices else " none"))
    for line in devices:
        print(f"  {line}")


def version(package: str) -> str:
    """The installed version of `package`, or "not installed"."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _datasets() -> str:
    """The built-in datasets, and where the downloaded ones are cached (present: all files)."""
    from ..download import DATASETS, data_dir  # here: urllib and ssl load for `info` alone

    root = data_dir()
    cached = [n for n, r in DATASETS.items() if all((root / n / f).is_file() for f in r.sha256)]
    return (
        f"datasets: {', '.join(PACKAGED)} (packaged); "
        f"{', '.join(DOWNLOADED)} (downloaded on first use into {root}; cached: "
        f"{', '.join(cached) or 'none'})"
    )


def _summary(run: Path) -> None:
    """A saved net row by row, as its layers describe themselves: each layer with parameters
    and the parameterless layers after it (its activation), the widths in and out, the
    parameters (each and in all), and the labels its class codes stand for."""
    ck = load_checkpoint(run, "numpy")
    net = ck.net
    optimizer = "" if ck.optimizer is None else f", {ck.optimizer.name} (step {ck.optimizer.t})"
    print(
        f"{run}: {net.describe()} {type(net).__name__}, {net.dtype_name}, "
        f"{ck.epoch} epoch{'s' * (ck.epoch != 1)} trained{optimizer}"
    )
    print(f"{'layer':<7}{'sizes':<14}{'then':<12}{'parameters':>12}  type: arrays")
    sizes = widths(net.layers)
    total = 0
    for row, (start, stop) in enumerate(_rows(net.layers), 1):
        main = net.layers[start]
        params = {
            name: net.parameter_buffer.params[name]
            for leaf in leaves([main])
            for name in leaf.parameter_names.values()
        }
        count = sum(int(p.size) for p in params.values())
        total += count
        then = "+".join(layer.name for layer in net.layers[start + 1 : stop]) or "-"
        arrays = ", ".join(f"{name} {' x '.join(map(str, p.shape))}" for name, p in params.items())
        span = f"{sizes[start]} -> {sizes[stop]}"
        print(f"{row:<7}{span:<14}{then:<12}{count:>12,}  {main.name}: {arrays}".rstrip())
    print(f"{'total':<33}{total:>12,}")
    print(f"classes: {describe_classes(ck.classes)}")


def _rows(layers: Sequence[Layer]) -> list[tuple[int, int]]:
    """(start, stop) of each row of the summary: a layer with parameters and the parameterless
    layers after it; parameterless layers before the first one make a row of their own."""
    starts = [i for i, layer in enumerate(layers) if has_parameters(layer)]
    if starts[0] != 0:
        starts.insert(0, 0)
    return list(zip(starts, [*starts[1:], len(layers)], strict=True))
