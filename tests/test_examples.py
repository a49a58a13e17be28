"""The two seed programs in examples/ run on every backend and reproduce the hand-computed
numbers: the first forward pass and error, then a steadily falling error."""

from __future__ import annotations

import importlib.util
import itertools
import math
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def argv(case, *extra):
    device = [] if case.device is None else ["--device", str(case.device)]
    return ["--backend", case.name, *device, "--dtype", case.dtype, *extra]


def rel(case) -> float:
    return 1e-6 if case.dtype == "float32" else 1e-13


def falls(values) -> bool:
    return all(b < a for a, b in itertools.pairwise(values))


def test_single_neuron(case, capsys):
    trace = example("single_neuron")(argv(case, "--steps", "20"))
    y0 = sigmoid(0.3 * 1.0 - 0.1 * -2.0 + 0.8 * 0.5)  # sigmoid(0.9)
    assert trace[0] == pytest.approx((y0, 0.5 * (1.0 - y0) ** 2), rel=rel(case))
    # one step by hand: w <- w - 0.5 (y - t) y (1 - y) x
    delta = (y0 - 1.0) * y0 * (1.0 - y0)
    w1 = [w - 0.5 * delta * x for w, x in zip([0.3, -0.1, 0.8], [1.0, -2.0, 0.5], strict=True)]
    y1 = sigmoid(sum(w * x for w, x in zip(w1, [1.0, -2.0, 0.5], strict=True)))
    assert trace[1][0] == pytest.approx(y1, rel=rel(case))
    errors = [e for _, e in trace]
    assert len(trace) == 21 and falls(errors) and errors[-1] < errors[0] / 2
    assert "step  20" in capsys.readouterr().out


def test_hidden_layer(case, capsys):
    trace = example("hidden_layer")(argv(case, "--steps", "50"))
    h = [sigmoid(0.35 * 0.1 + 0.9 * 0.8), sigmoid(0.35 * 0.4 + 0.9 * 0.6)]
    y0 = sigmoid(0.3 * h[0] + 0.9 * h[1])  # the textbook's 0.69
    assert trace[0][0] == pytest.approx(y0, rel=rel(case)) and round(y0, 2) == 0.69
    errors = [e for _, e in trace]
    assert falls(errors) and abs(trace[-1][0] - 0.5) < 0.02
    out = capsys.readouterr().out
    assert "step   0  y = 0.690283" in out and "W2 = " in out


@pytest.mark.parametrize("name", ["single_neuron", "hidden_layer"])
def test_an_unusable_backend_or_dtype_is_one_line_and_the_help_is_whole(name, capsys):
    """Issue 21, item 25: --backend jax (float64 without x64 mode) crashed with a traceback,
    and the help's description stopped mid-sentence."""
    with pytest.raises(SystemExit) as stop:
        example(name)(["--backend", "no-such-library"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err and "no-such-library" in err
    with pytest.raises(SystemExit):
        example(name)(["--help"])
    out = capsys.readouterr().out
    assert f"python examples/{name}.py --backend numpy" in out and "JAX_ENABLE_X64" in out
