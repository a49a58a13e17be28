"""The README stays short and true: its ten-line example runs as written and learns XOR, the
Sigmoid code it quotes is the code in the package, and its links lead to files that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


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
    out = capsys.readouterr().out
    assert "[0.01 0.99 1.   0.01]" in out
    assert "`[0.01 0.99 1.   0.01]`" in README.read_text(encoding="utf-8")  # what it says it prints


def test_readme_is_short():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 250


def test_sigmoid_code_is_the_package_code():
    """Every code line of the quoted Sigmoid (comments aside) is a line of the package."""
    code = _python_block_after("## The seed's Sigmoid layer")
    sources = [
        ROOT / "src/xpnet/layers/activations.py",
        ROOT / "src/xpnet/ops/generic.py",
    ]
    source_lines = {line.strip() for p in sources for line in p.read_text().splitlines()}
    for line in code.splitlines():
        bare = line.split("#", 1)[0].strip()
        if not bare:
            continue
        if bare.startswith("def "):  # quoted without the annotations
            name = bare[4:].split("(", 1)[0]
            assert any(s.startswith(f"def {name}(") for s in source_lines), line
        else:
            assert bare in source_lines, line


def test_links_lead_to_files():
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert len(local) > 20
    for target in local:
        assert (ROOT / target).exists(), target
