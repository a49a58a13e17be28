"""The modern activations (GELU, SiLU, LeakyReLU, Softplus): forward values and input gradients
against PyTorch autograd's on every backend, the backward through a net against central
differences (on NumPy), the fused Linear forward, checkpoints (LeakyReLU's slope included),
the weight init they ask for, and the names MLP and the CLI take."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet.model import HIDDEN

# negatives, zero, large magnitudes, and Softplus's threshold (20) on both sides and on it
EDGES = [-30.0, -20.5, -20.0, -8.0, -5.0, -1.0, -0.3, -1e-3, 0.0, 1e-3, 0.3, 1.0, 5.0, 8.0]
EDGES += [19.5, 20.0, 20.0001, 20.5, 30.0]
X_HOST = np.concatenate([EDGES, np.random.default_rng(0).normal(0.0, 6.0, 45)]).reshape(4, 16)
G_HOST = np.random.default_rng(1).normal(size=X_HOST.shape)

# xpnet's activation and PyTorch's module, by test id
CASES = {
    "gelu": (xpnet.GELU, lambda nn: nn.GELU()),
    "silu": (xpnet.SiLU, lambda nn: nn.SiLU()),
    "softplus": (xpnet.Softplus, lambda nn: nn.Softplus()),
    "leaky_relu": (xpnet.LeakyReLU, lambda nn: nn.LeakyReLU(0.01)),
    "leaky_relu-0.2": (lambda: xpnet.LeakyReLU(0.2), lambda nn: nn.LeakyReLU(0.2)),
    "leaky_relu-neg": (lambda: xpnet.LeakyReLU(-0.5), lambda nn: nn.LeakyReLU(-0.5)),
}


def _torch_reference(module_of, x, g):
    """PyTorch autograd's y and dL/dx for host float64 x and dL/dy g."""
    torch = pytest.importorskip("torch", reason="torch builds the reference values")
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = module_of(torch.nn)(xt)
    y.backward(torch.tensor(g, dtype=torch.float64))
    return y.detach().numpy(), xt.grad.numpy()


def _tol(dtype):
    """1e-9 relative in float64 (a few ulps of the dtype in float32), and an absolute floor
    of a few ulps of 1: PyTorch's GELU takes 1 + erf(x / sqrt(2)), which cancels below
    x = -5 (its GELU(-30) is 0, the true value -1.5e-196), where xpnet's erfc form keeps the
    relative precision."""
    eps = float(np.finfo(dtype).eps)
    return {"rtol": 1e-9 if dtype == "float64" else 64 * eps, "atol": 32 * eps}


@pytest.mark.parametrize("case_id", CASES)
def test_forward_and_input_gradient_equal_torch_autograd(backend, dtype, case_id):
    make, module_of = CASES[case_id]
    layer = make()
    x = xpnet.asarray(X_HOST, like=backend, dtype=dtype)
    g = xpnet.asarray(G_HOST, like=backend, dtype=dtype)
    xh, gh = (xpnet.to_numpy(a).astype(np.float64) for a in (x, g))  # as rounded to dtype
    want_y, want_dx = _torch_reference(module_of, xh, gh)
    y = layer.forward(x)
    dx = layer.backward(g)
    np.testing.assert_allclose(xpnet.to_numpy(y), want_y, **_tol(dtype))
    np.testing.assert_allclose(xpnet.to_numpy(dx), want_dx, **_tol(dtype))
    np.testing.assert_array_equal(xpnet.to_numpy(x), xh.astype(dtype))  # input kept


def test_gelu_keeps_the_lower_tail():
    """GELU(x) = x * erfc(-x / sqrt(2)) / 2 to float64 rounding far below x = -5, where
    1 + erf(x / sqrt(2)) has cancelled (math.erfc is the reference)."""
    import math

    x = np.array([-5.0, -8.0, -12.0, -20.0, -30.0])
    want = np.array([v * math.erfc(-v / math.sqrt(2)) / 2 for v in x])
    np.testing.assert_allclose(xpnet.GELU().forward(x), want, rtol=1e-12)
    assert np.all(want < 0)


@pytest.mark.parametrize("case_id", CASES)
def test_gradcheck_passes_through_a_net_with_each(case_id):
    """Linear -> activation -> Linear in float64: the activation runs fused with the Linear
    before it (forward_linear), and the backward matches central differences. On NumPy: on
    every backend the tests above hold each activation's backward to PyTorch autograd's and
    the fused pass to the plain one, and tests/test_ops.py the Linear's to the generic one."""
    make, _ = CASES[case_id]
    net = xpnet.Sequential(
        [xpnet.Linear(4, 6), make(), xpnet.Linear(6, 3)], backend="numpy", dtype="float64", seed=2
    )
    rng = np.random.default_rng(3)
    X = xpnet.asarray(rng.normal(0.0, 2.0, (5, 4)), like=net)
    T = xpnet.asarray(rng.normal(size=(5, 3)), like=net)
    errors = xpnet.gradcheck(net, xpnet.SSELoss(), X, T)
    assert set(errors) == {"W1", "b1", "W2", "b2", "input"}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("case_id", CASES)
def test_fused_linear_forward_equals_the_two_steps(backend, dtype, case_id):
    """forward_linear (what a net runs) gives forward(linear.forward(x)), and the backward
    after it reads what it cached (x for GELU, SiLU, Softplus: the Linear's output)."""
    make, _ = CASES[case_id]
    linear = xpnet.Linear(16, 5, backend=backend, dtype=dtype, seed=4)
    x = xpnet.asarray(X_HOST, like=linear)
    g = xpnet.asarray(G_HOST[:, :5], like=linear)
    fused, plain = make(), make()
    y = xpnet.to_numpy(fused.forward_linear(linear, x))
    want = xpnet.to_numpy(plain.forward(linear.forward(x)))
    np.testing.assert_allclose(y, want, rtol=4 * float(np.finfo(dtype).eps))
    np.testing.assert_allclose(
        xpnet.to_numpy(fused.backward(g)),
        xpnet.to_numpy(plain.backward(g)),
        rtol=4 * float(np.finfo(dtype).eps),
    )


@pytest.mark.parametrize("case_id", CASES)
def test_each_saves_and_loads(case_id, tmp_path):
    make, _ = CASES[case_id]
    net = xpnet.Sequential([xpnet.Linear(3, 4), make(), xpnet.Linear(4, 2)], seed=1)
    X = np.random.default_rng(5).normal(0.0, 3.0, (6, 3)).astype(np.float32)
    path = xpnet.save(net, tmp_path / "net.safetensors")
    loaded = xpnet.load(path)
    assert loaded.layers[1].config() == net.layers[1].config()
    assert type(loaded.layers[1]) is type(net.layers[1])
    np.testing.assert_array_equal(xpnet.to_numpy(loaded.forward(X)), net.forward(X))


def test_leaky_relu_slope_is_its_config():
    layer = xpnet.LeakyReLU(0.2)
    assert layer.config() == {"slope": 0.2} and repr(layer) == "LeakyReLU(slope=0.2)"
    assert xpnet.LeakyReLU().slope == 0.01
    assert not layer.backward_from_input and xpnet.LeakyReLU(-0.5).backward_from_input
    with pytest.raises(ValueError, match="slope must be a finite number"):
        xpnet.LeakyReLU(float("nan"))


INITS = {"relu": "he", "leaky_relu": "he", "gelu": "he", "silu": "he", "softplus": "xavier"}
INITS |= {"sigmoid": "xavier", "tanh": "xavier"}


@pytest.mark.parametrize("name", INITS)
def test_an_mlp_takes_each_name_and_the_init_it_asks_for(name):
    init = INITS[name]
    net = xpnet.MLP([3, 5, 2], hidden=name, output="identity", seed=0)
    assert net.hidden == name and type(net.layers[1]) is xpnet.layers.ACTIVATIONS[name]
    assert [layer.init for layer in net.linears] == [init, init]


def test_the_cli_takes_the_new_names_and_vanishing_keeps_its_three():
    from xpnet.cli.parser import build_parser

    parser = build_parser()
    for name in ("gelu", "silu", "leaky_relu", "softplus"):
        assert name in HIDDEN
        args = parser.parse_args(["train", "--activation", name])
        assert args.activation == name
    assert parser.parse_args(["vanishing"]).activations == ["sigmoid", "tanh", "relu"]
    assert parser.parse_args(["vanishing", "--activations", "gelu,silu"]).activations == [
        "gelu",
        "silu",
    ]
