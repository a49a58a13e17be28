"""The documentation's code runs: every ```python block of every page under docs/ is executed
(a page's blocks in order, in one namespace, in a fresh working directory), and where a block
is followed by an output block (```text title="Output"), what it prints must be exactly that.
A block right after a line `<!-- not executed: REASON -->` is skipped, and says why. A page
that needs an optional package is skipped when that package is missing, naming it."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import MPIEXEC, needs_mpi

from xpnet.cli import parallel
from xpnet.layers import LAYERS
from xpnet.optim import OPTIMIZERS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)(.*)$")
SKIP = re.compile(r"^<!-- not executed: (.+) -->$")
# the optional packages a page's code imports
NEEDS = {
    "tutorials/sklearn.md": ["sklearn", "scipy", "torch"],
    "tutorials/vanishing.md": ["matplotlib"],
    "export.md": ["onnx", "onnxruntime"],  # pages of other branches (issue 25, items 3 and 4)
    "tensorboard.md": ["tensorboard"],
    "mixed-precision.md": ["torch"],
}


@dataclass
class Block:
    lang: str
    attrs: str
    code: str
    line: int
    skip: str | None = None
    output: str | None = None


def blocks(page: Path) -> list[Block]:
    """The page's top-level fenced blocks; each python block carries the output block that
    follows it, if any."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    skip = None
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            s = SKIP.match(lines[i].strip())
            if s:
                skip = s.group(1)
            elif lines[i].strip():
                skip = None
            i += 1
            continue
        end = lines.index("```", i + 1)
        found.append(
            Block(m.group(1), m.group(2), "\n".join(lines[i + 1 : end]) + "\n", i + 1, skip)
        )
        skip = None
        i = end + 1
    for prev, block in itertools.pairwise(found):
        if block.lang == "text" and 'title="Output"' in block.attrs and prev.lang == "python":
            prev.output = block.code
    return [b for b in found if b.lang == "python"]


PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if blocks(p))


def clean(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


@pytest.mark.parametrize("name", PAGES)
def test_page_runs(name, tmp_path, monkeypatch):
    for module in NEEDS.get(name, []):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{name} needs {module}, which is not installed")
    monkeypatch.chdir(tmp_path)
    before = [dict(registry) for registry in (LAYERS, OPTIMIZERS)]
    namespace: dict = {"__name__": "__docs__"}
    page = DOCS / name
    try:
        for block in blocks(page):
            if block.skip:
                continue
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(block.code, f"{page}:{block.line}", "exec"), namespace)
            if block.output is not None:
                assert clean(out.getvalue()) == clean(block.output), (
                    f"{name}, block at line {block.line}"
                )
    finally:  # the layers and optimizers a page defines are forgotten after it
        for registry, saved in zip((LAYERS, OPTIMIZERS), before, strict=True):
            registry.clear()
            registry.update(saved)


def test_pages_have_code_and_outputs():
    """The tutorials run code, and say what it prints."""
    tutorials = [p for p in PAGES if p.startswith("tutorials/")]
    assert len(tutorials) == 6
    for name in tutorials:
        assert any(b.output for b in blocks(DOCS / name)), name


@needs_mpi
def test_mpi_tutorial_prints_the_same_on_two_ranks(tmp_path):
    """The data-parallel tutorial's script, under `mpiexec -n 2`, prints what one process does."""
    script = blocks(DOCS / "tutorials/mpi.md")[0]
    (tmp_path / "train.py").write_text(script.code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in parallel.THREAD_VARIABLES}
    done = subprocess.run(
        [str(MPIEXEC), "-n", "2", sys.executable, "train.py"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert clean(done.stdout) == clean(script.output)


def test_every_output_block_is_checked():
    """An output block shown without a python block right before it would be checked by
    nothing: there is none."""
    for page in DOCS.rglob("*.md"):
        shown = page.read_text(encoding="utf-8").count('```text title="Output"')
        checked = sum(b.output is not None for b in blocks(page))
        assert shown == checked, page


def test_api_reference_covers_the_public_modules():
    """The reference pages render the package and each public module from its docstrings
    (mkdocstrings documents the names in each module's __all__)."""
    directives = {
        line.split(":::", 1)[1].strip()
        for page in (DOCS / "reference").glob("*.md")
        for line in page.read_text(encoding="utf-8").splitlines()
        if line.startswith(":::")
    }
    modules = {
        "xpnet",
        "xpnet.backend",
        "xpnet.checkpoint",
        "xpnet.data",
        "xpnet.diagnostics",
        "xpnet.distributed",
        "xpnet.layers",
        "xpnet.losses",
        "xpnet.model",
        "xpnet.optim",
        "xpnet.sequential",
        "xpnet.sklearn",
        "xpnet.train",
    }
    assert modules <= directives
