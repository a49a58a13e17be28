"""The README's ten-line example runs as written and learns XOR."""

from __future__ import annotations

import re
from pathlib import Path

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
