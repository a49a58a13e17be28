"""`xpnet info RUN`: a saved net layer by layer."""

from __future__ import annotations

from helpers import run


def test_info_on_a_run_prints_its_layers_and_parameters(capsys, small, tmp_path):
    argv = ["train", "--data", small, "--hidden", "8,5", "--epochs", "1", "--out", tmp_path / "r"]
    assert run(capsys, *argv)[0] == 0
    status, out, err = run(capsys, "info", tmp_path / "r")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'r'}: 64 -> 8 -> 5 -> 10 MLP, float32, 1 epoch")
    # (64 + 1) * 8 = 520, (8 + 1) * 5 = 45, (5 + 1) * 10 = 60
    assert lines[2].split()[:6] == ["1", "64", "->", "8", "sigmoid", "520"]
    assert lines[3].split()[:6] == ["2", "8", "->", "5", "sigmoid", "45"]
    assert lines[4].split()[:6] == ["3", "5", "->", "10", "identity", "60"]
    assert lines[5].split() == ["total", "625"]
    assert run(capsys, "info", tmp_path / "none")[0] == 2
