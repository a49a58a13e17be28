"""`xpnet info`: versions, backends and devices."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
from pathlib import Path

from ..backend import LIBRARIES, available_backends, gpu_devices
from ..checkpoint import load_checkpoint
from ..data import DOWNLOADED, PACKAGED
from ..labels import describe_classes

__all__ = ["cmd_info"]


def cmd_info(args: argparse.Namespace) -> None:
    if args.run_dir is not None:
        return _summary(args.run_dir)
    print(f"xpnet {_version('xpnet')}, Python {platform.python_version()} ({sys.platform})")
    packages = [p for library in LIBRARIES.values() for p in library.distributions]
    packages += ["array-api-compat", "array-api-extra", "tqdm", "safetensors", "matplotlib"]
    print("packages: " + ", ".join(f"{p} {_version(p)}" for p in packages))
    print(_datasets())
    print("backends:")
    for name, status in available_backends().items():
        print(f"  {name:<17}{status}")
    devices = gpu_devices()
    print("GPUs:" + ("" if devices else " none"))
    for line in devices:
        print(f"  {line}")


def _version(package: str) -> str:
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
    """A saved net layer by layer: sizes, activation, parameters (each and in all), and the
    labels its class codes stand for."""
    ck = load_checkpoint(run, "numpy")
    net, params = ck.net, ck.net.parameters()
    optimizer = "" if ck.optimizer is None else f", {ck.optimizer.name} (step {ck.optimizer.t})"
    print(
        f"{run}: {' -> '.join(map(str, net.sizes))} MLP, {net.dtype_name}, "
        f"{ck.epoch} epoch{'s' * (ck.epoch != 1)} trained{optimizer}"
    )
    print(f"{'layer':<7}{'sizes':<14}{'activation':<12}{'parameters':>12}  arrays")
    total = 0
    for i in range(1, len(net.sizes)):
        W, b = params[f"W{i}"], params[f"b{i}"]
        count = W.size + b.size
        total += count
        activation = net.hidden if i < len(net.sizes) - 1 else net.output
        shapes = f"W{i} {' x '.join(map(str, W.shape))}, b{i} {' x '.join(map(str, b.shape))}"
        sizes = f"{net.sizes[i - 1]} -> {net.sizes[i]}"
        print(f"{i:<7}{sizes:<14}{activation:<12}{count:>12,}  {shapes}")
    print(f"{'total':<33}{total:>12,}")
    print(f"classes: {describe_classes(ck.classes)}")
