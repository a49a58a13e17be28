"""What is particular to the JAX backend: its devices, float64 only in JAX's x64 mode, immutable
arrays (packed parameters, new arrays each step), checkpoints across libraries and the command
line. The rest of the suite runs on JAX through the `jax` and `jax-f64` cases of conftest."""

from __future__ import annotations

import json

import numpy as np
import pytest

import xpnet
from xpnet.cli import main

jax = pytest.importorskip("jax", reason="jax not installed (pip install 'xpnet[jax]')")
if xpnet.available_backends()["jax"] != "ok":  # pragma: no cover - a jaxlib without a platform
    pytest.skip(f"jax: {xpnet.available_backends()['jax']}", allow_module_level=True)


@pytest.fixture
def x64():
    """JAX's x64 mode on for the test (float64 arrays), restored after."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


@pytest.fixture
def no_x64():
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", before)


def _xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    return X, np.array([[0], [1], [1], [0]], dtype=np.float32)


# -- backend and devices ------------------------------------------------------------------
def test_jax_is_a_backend_with_its_default_device():
    assert xpnet.available_backends()["jax"] == "ok"
    backend = xpnet.get_backend("jax")
    assert backend.name == "jax" and backend.xp is jax.numpy
    assert backend.device == jax.devices()[0]
    assert xpnet.get_backend("auto").name != "jax"  # auto never picks jax


@pytest.mark.parametrize("spec", ["cpu", "cpu:0", "device-object"])
def test_cpu_devices_by_name_or_object(spec):
    cpu = jax.devices("cpu")[0]
    backend = xpnet.get_backend("jax", cpu if spec == "device-object" else spec)
    assert backend.device == cpu
    assert xpnet.backend.on_host(backend)  # the CLI's memory check counts host memory for it
    net = xpnet.MLP([2, 3, 1], backend=backend)
    assert all(p.device == cpu for p in net.parameters().values())


def test_gpu_devices_need_a_gpu_and_bad_names_are_refused():
    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        gpus = []
    if gpus:
        assert xpnet.get_backend("jax", "cuda:0").device == gpus[0]
        assert xpnet.get_backend("jax", "gpu:0").device == gpus[0]
        assert xpnet.get_backend("jax", 0).device == gpus[0]
    else:
        with pytest.raises(xpnet.BackendError, match=r"unknown device 'cuda:0'.*JAX has no GPU"):
            xpnet.get_backend("jax", "cuda:0")
    with pytest.raises(xpnet.BackendError, match=r"JAX has \d+ cpu device"):
        xpnet.get_backend("jax", f"cpu:{len(jax.devices('cpu'))}")
    with pytest.raises(xpnet.BackendError, match="use 'cpu', a GPU number"):
        xpnet.get_backend("jax", "tpu")


def test_dtype_objects_of_jax_are_taken():
    assert xpnet.backend.dtype_name(jax.numpy.float32) == "float32"
    assert xpnet.MLP([2, 1], backend="jax", dtype=jax.numpy.float32).dtype_name == "float32"


# -- float64: only in JAX's x64 mode, never switched on behind the user's back ---------------
def test_float64_without_x64_is_refused_naming_the_setting(no_x64):
    with pytest.raises(xpnet.BackendError, match=r"JAX_ENABLE_X64=1.*jax_enable_x64"):
        xpnet.MLP([2, 1], backend="jax", dtype="float64")
    with pytest.raises(xpnet.BackendError, match="JAX_ENABLE_X64"):
        xpnet.asarray(np.ones(3), like="jax", dtype="float64")
    assert not jax.config.jax_enable_x64  # refused, not switched on


def test_float64_in_x64_mode(x64):
    net = xpnet.MLP([2, 4, 1], backend="jax", dtype="float64", seed=3)
    assert all(p.dtype == jax.numpy.float64 for p in net.parameters().values())
    ref = xpnet.MLP([2, 4, 1], dtype="float64", seed=3)
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(xpnet.to_numpy(net.state_dict()[k]), v)


# -- immutable arrays ------------------------------------------------------------------------
def test_same_seed_gives_bit_identical_weights_to_numpy():
    for hidden in ("sigmoid", "relu"):
        net = xpnet.MLP([5, 7, 3], hidden=hidden, backend="jax", seed=11)
        ref = xpnet.MLP([5, 7, 3], hidden=hidden, seed=11)
        for k, v in ref.state_dict().items():
            np.testing.assert_array_equal(xpnet.to_numpy(net.state_dict()[k]), v)


@pytest.mark.parametrize("make_opt", [lambda: xpnet.SGD(0.5, momentum=0.9), xpnet.Adam])
def test_a_step_binds_new_arrays_and_matches_numpy(make_opt):
    """JAX arrays cannot be written: the buffer is packed, each step rebinds parameters and
    optimizer state to new arrays, and the numbers are NumPy's to float32 rounding."""
    X, T = _xor()
    nets = {b: xpnet.MLP([2, 4, 1], backend=b, seed=1) for b in ("jax", "numpy")}
    opts = {b: make_opt() for b in nets}
    assert not nets["jax"].parameter_buffer.views and nets["numpy"].parameter_buffer.views
    before = nets["jax"].parameters()
    for _ in range(5):
        for b, net in nets.items():
            xpnet.train.step(
                net,
                xpnet.asarray(X, like=net),
                xpnet.asarray(T, like=net),
                xpnet.SSELoss(),
                opts[b],
            )
    after = nets["jax"].parameters()
    assert all(after[k] is not before[k] for k in before)
    for k, v in nets["numpy"].parameters().items():
        np.testing.assert_allclose(xpnet.to_numpy(after[k]), v, rtol=1e-5, atol=1e-6)


def test_fit_agrees_with_numpy():
    X, T = _xor()
    hist = {}
    nets = {}
    for b in ("jax", "numpy"):
        nets[b] = xpnet.MLP([2, 4, 1], backend=b, seed=1)
        hist[b] = xpnet.fit(
            nets[b],
            X,
            T,
            loss=xpnet.SSELoss(),
            optimizer=xpnet.SGD(2.0, 0.9),
            epochs=200,
            batch_size=4,
            progress=False,
        )
    np.testing.assert_allclose(hist["jax"]["loss"], hist["numpy"]["loss"], rtol=1e-3, atol=1e-6)
    assert hist["jax"].last["accuracy"] == 1.0
    for k, v in nets["numpy"].parameters().items():
        np.testing.assert_allclose(xpnet.to_numpy(nets["jax"].parameters()[k]), v, rtol=1e-3)


# -- checkpoints: saved on JAX, loaded anywhere and back -------------------------------------
def test_checkpoint_from_jax_loads_everywhere_and_back(tmp_path):
    X, T = _xor()
    net = xpnet.MLP([2, 4, 1], backend="jax", seed=2)
    opt = xpnet.Adam(0.05)
    xpnet.fit(net, X, T, loss=xpnet.SSELoss(), optimizer=opt, epochs=3, progress=False)
    path = xpnet.save(net, tmp_path / "run", optimizer=opt, epoch=3)
    weights = {k: xpnet.to_numpy(v) for k, v in net.state_dict().items()}
    others = [b for b, s in xpnet.available_backends().items() if s == "ok" and b != "jax"]
    for name in others:
        ck = xpnet.load_checkpoint(path, backend=name)
        assert ck.net.backend.name == name and ck.optimizer.t == opt.t
        for k, v in weights.items():
            np.testing.assert_array_equal(xpnet.to_numpy(ck.net.state_dict()[k]), v)
        again = xpnet.save(ck.net, tmp_path / f"from-{name}.safetensors", optimizer=ck.optimizer)
        back = xpnet.load_checkpoint(again, backend="jax")
        assert back.net.backend.name == "jax"
        for k, v in weights.items():
            np.testing.assert_array_equal(xpnet.to_numpy(back.net.state_dict()[k]), v)
        for k, v in opt.state_dict().items():
            if k != "t":
                np.testing.assert_array_equal(
                    xpnet.to_numpy(back.optimizer.state_dict()[k]), xpnet.to_numpy(v)
                )


def test_float64_checkpoint_on_jax_without_x64_says_how(tmp_path, no_x64):
    path = xpnet.save(xpnet.MLP([2, 1], dtype="float64"), tmp_path / "f64.safetensors")
    with pytest.raises(xpnet.CheckpointError, match=r"cannot load .*JAX_ENABLE_X64"):
        xpnet.load(path, backend="jax")
    assert xpnet.load(path, backend="numpy").dtype_name == "float64"


# -- the command line --------------------------------------------------------------------------
def test_cli_trains_evaluates_and_resumes_on_jax(capsys, tmp_path):
    run = tmp_path / "run"
    common = ["--data", "xor", "--hidden", "4", "--loss", "sse", "--optimizer", "sgd"]
    assert main(["train", *common, "--epochs", "2", "--backend", "jax", "--out", str(run)]) == 0
    out, err = capsys.readouterr()
    assert str(xpnet.get_backend("jax")) in out  # jax on cpu, or its GPU
    assert "epoch 2/2: loss" in err  # stderr: the per-epoch log
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["backend"], metrics["epochs"]) == ("jax", 2)
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    assert str(xpnet.get_backend("jax")) in capsys.readouterr().out
    assert main(["evaluate", str(run), "--backend", "jax"]) == 0
    assert f"epoch 3, {xpnet.get_backend('jax')}" in capsys.readouterr().out
    assert main(["evaluate", str(run), "--backend", "numpy"]) == 0  # saved on jax, read anywhere
    assert "numpy on cpu" in capsys.readouterr().out
    assert main(["info"]) == 0
    assert "jax" in capsys.readouterr().out


def test_cli_eager_runs_op_by_op_to_the_compiled_runs_numbers(capsys, tmp_path, monkeypatch):
    """--eager reaches fit as compiled=False; both runs agree to float32 rounding."""
    seen = []
    real_fit = xpnet.cli.train.fit

    def spy(*args, **kwargs):
        seen.append(kwargs["compiled"])
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(xpnet.cli.train, "fit", spy)
    common = ["--data", "xor", "--hidden", "4", "--loss", "sse", "--optimizer", "sgd"]  # as above
    argv = ["train", *common, "--epochs", "2", "--backend", "jax"]
    assert main([*argv, "--quiet", "--out", str(tmp_path / "compiled")]) == 0
    assert main([*argv, "--quiet", "--eager", "--out", str(tmp_path / "eager")]) == 0
    assert seen == [True, False]
    capsys.readouterr()
    a = xpnet.load(tmp_path / "compiled", backend="numpy").state_dict()
    b = xpnet.load(tmp_path / "eager", backend="numpy").state_dict()
    for name, value in a.items():
        assert np.abs(b[name] - value).max() <= 1e-6 * np.abs(value).max(), name


def test_cli_refuses_jax_float64_without_x64_in_one_line(capsys, tmp_path, no_x64):
    status = main(
        [
            "train",
            "--data",
            "xor",
            "--backend",
            "jax",
            "--dtype",
            "float64",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    _, err = capsys.readouterr()
    assert status == 2 and "JAX_ENABLE_X64" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_gradcheck_without_x64_hints_at_no_dtype_option(no_x64, capsys):
    """Issue 21, item 22: the refusal suggested dtype='float32', which gradcheck lacks (it
    compares in float64)."""
    assert main(["gradcheck", "--backend", "jax", "--data", "xor"]) == 2
    err = capsys.readouterr().err
    assert "gradcheck compares in float64 (it has no --dtype). JAX computes in float64" in err
    assert "JAX_ENABLE_X64=1" in err and "dtype=" not in err and len(err.splitlines()) == 1
