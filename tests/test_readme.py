"""The README's ten-line example runs as written and learns XOR."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xpnet.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_ten_line_example_trains_xor(capsys):
    code = _python_block_after("## Ten lines that train on the CPU or the GPU")
    assert len(code.strip().splitlines()) <= 10
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert namespace["hist"].last["accuracy"] == 1.0
    assert namespace["hist"].last["loss"] < 1e-3
    assert "[0.01 0.99 1.   0.01]" in capsys.readouterr().out


def _console_output(command: str) -> list[str]:
    """The lines the README shows under `$ <command>` (up to the next prompt or the block's end)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"$ {command}"))
    shown = []
    for line in lines[start + 1 :]:
        if line.startswith(("$ ", "```")):
            break
        shown.append(line)
    return shown


def test_the_readme_gradcheck_numbers_reproduce(capsys):
    """Issue 21, item 26: the README showed numbers an older gradcheck gave."""
    argv = ["gradcheck", "--data", "xor", "--hidden", "4", "--loss", "sse"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == _console_output("xpnet " + " ".join(argv))


def test_the_top_level_help_names_every_backend(capsys):
    """Issue 21, item 26: `xpnet --help` left out JAX."""
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "NumPy, CuPy, PyTorch, JAX or array-api-strict" in help_text
