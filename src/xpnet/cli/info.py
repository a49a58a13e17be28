"""`xpnet info`: versions, backends and devices."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys

from ..backend import available_backends

__all__ = ["cmd_info"]


def cmd_info(args: argparse.Namespace) -> None:
    print(f"xpnet {_version('xpnet')}, Python {platform.python_version()} ({sys.platform})")
    packages = ["numpy", "array-api-compat", "array-api-extra", "array-api-strict", "torch"]
    packages += ["cupy-cuda12x", "cupy-cuda13x", "tqdm", "safetensors", "matplotlib"]
    print("packages: " + ", ".join(f"{p} {_version(p)}" for p in packages))
    print("backends:")
    for name, status in available_backends().items():
        print(f"  {name:<17}{status}")
    devices = _gpus()
    print("GPUs:" + ("" if devices else " none"))
    for line in devices:
        print(f"  {line}")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _gpus() -> list[str]:
    """One line per CUDA device cupy or torch can see: index, name, memory."""
    status = available_backends()
    if status["cupy"] == "ok":
        import cupy

        props = [
            cupy.cuda.runtime.getDeviceProperties(i)
            for i in range(cupy.cuda.runtime.getDeviceCount())
        ]
        return [
            f"cuda:{i} {p['name'].decode()} {p['totalGlobalMem'] / 2**30:.1f} GiB"
            for i, p in enumerate(props)
        ]
    if status["torch"] == "ok":
        import torch

        if torch.cuda.is_available():
            return [
                f"cuda:{i} {torch.cuda.get_device_name(i)} "
                f"{torch.cuda.get_device_properties(i).total_memory / 2**30:.1f} GiB"
                for i in range(torch.cuda.device_count())
            ]
    return []
