"""Optimizers: the update rules against hand-computed values and against PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet


def _net_with_grads(backend, dtype, seed=0):
    net = xpnet.MLP([3, 2], output="identity", backend=backend, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    X = xpnet.asarray(rng.normal(size=(4, 3)), like=net)
    T = xpnet.asarray(rng.normal(size=(4, 2)), like=net)
    return net, X, T


def _step(net, X, T, opt):
    loss = xpnet.MSELoss()
    loss.forward(net.forward(X), T)
    net.backward(loss.backward(), input_grad=False)
    grads = {k: xpnet.to_numpy(v).astype(np.float64) for k, v in net.grads.items()}
    opt.step(net)
    return grads


def _params(net):
    return {k: xpnet.to_numpy(v).astype(np.float64) for k, v in net.parameters().items()}


def test_sgd_is_p_minus_lr_g(backend, dtype):
    net, X, T = _net_with_grads(backend, dtype)
    before = _params(net)
    grads = _step(net, X, T, xpnet.SGD(lr=0.3))
    tol = 8 * np.finfo(dtype).eps
    for k, p in _params(net).items():
        np.testing.assert_allclose(p, before[k] - 0.3 * grads[k], rtol=tol, atol=tol)


def test_momentum_accumulates_velocity(backend, dtype):
    net, X, T = _net_with_grads(backend, dtype)
    opt = xpnet.Momentum(lr=0.1, momentum=0.9)
    p0 = _params(net)
    g1 = _step(net, X, T, opt)
    g2 = _step(net, X, T, opt)
    tol = 16 * np.finfo(dtype).eps
    for k, p in _params(net).items():
        v1 = g1[k]
        v2 = 0.9 * v1 + g2[k]
        np.testing.assert_allclose(p, p0[k] - 0.1 * v1 - 0.1 * v2, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_matches_torch_optim(name):
    torch = pytest.importorskip("torch")
    net, X, T = _net_with_grads("numpy", "float64", seed=3)
    params = {k: torch.tensor(v, requires_grad=True) for k, v in _params(net).items()}
    ours, theirs = {
        "sgd": (xpnet.SGD(lr=0.2), torch.optim.SGD(params.values(), lr=0.2)),
        "momentum": (
            xpnet.Momentum(lr=0.1, momentum=0.8),
            torch.optim.SGD(params.values(), lr=0.1, momentum=0.8),
        ),
        "adam": (xpnet.Adam(lr=0.05), torch.optim.Adam(params.values(), lr=0.05)),
    }[name]
    for _ in range(5):
        grads = _step(net, X, T, ours)
        theirs.zero_grad()
        for k, p in params.items():
            p.grad = torch.tensor(grads[k])
        theirs.step()
    for k, p in _params(net).items():
        np.testing.assert_allclose(p, params[k].detach().numpy(), rtol=1e-12, atol=1e-14)


def test_state_dict_round_trip_continues_exactly():
    net_a, X, T = _net_with_grads("numpy", "float64")
    net_b, _, _ = _net_with_grads("numpy", "float64")
    opt_a = xpnet.Adam(lr=0.05)
    for _ in range(3):
        _step(net_a, X, T, opt_a)
    net_b.load_state_dict(net_a.state_dict())
    opt_b = xpnet.Adam(lr=0.05)
    opt_b.load_state_dict(opt_a.state_dict())
    assert opt_b.t == 3
    _step(net_a, X, T, opt_a)
    _step(net_b, X, T, opt_b)
    for k, p in _params(net_a).items():
        np.testing.assert_array_equal(p, _params(net_b)[k])


def test_state_is_copied_in_and_out_so_optimizers_never_share_arrays():
    net_a, X, T = _net_with_grads("numpy", "float64")
    net_b, _, _ = _net_with_grads("numpy", "float64")
    opt_a = xpnet.Momentum(lr=0.1)
    _step(net_a, X, T, opt_a)
    saved = opt_a.state_dict()
    before = {k: v.copy() for k, v in saved.items() if k != "t"}
    opt_b = xpnet.Momentum(lr=0.1)
    opt_b.load_state_dict(saved)
    _step(net_b, X, T, opt_b)
    _step(net_a, X, T, opt_a)
    for k, v in before.items():  # neither optimizer's steps reached the saved arrays
        np.testing.assert_array_equal(saved[k], v)
    assert not np.array_equal(opt_a.state[k], v)


def test_foreign_optimizer_state_is_refused():
    with pytest.raises(KeyError, match=r"Adam keeps state \['m', 'v'\], not \['velocity.W1'\]"):
        xpnet.Adam().load_state_dict({"t": 1, "velocity.W1": np.zeros(2)})
    with pytest.raises(KeyError, match=r"SGD keeps state none"):
        xpnet.SGD(lr=0.1).load_state_dict({"t": 1, "m.W1": np.zeros(2)})


def test_bad_hyperparameters_and_missing_grads():
    with pytest.raises(ValueError, match="learning rate must be a positive number, got -1"):
        xpnet.SGD(lr=-1)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        xpnet.SGD(lr=0.1, momentum=1.5)
    with pytest.raises(RuntimeError, match=r"call net\.backward"):
        xpnet.SGD(lr=0.1).step(xpnet.MLP([2, 1]))


# -- bare flat arrays, as scikit-learn tests its stochastic optimizers --------------------------
def _flat(seed, n=7):
    rng = np.random.default_rng(seed)
    return rng.normal(size=n), [rng.normal(size=n) for _ in range(4)]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: xpnet.SGD(lr=0.2), lambda p, torch: torch.optim.SGD([p], lr=0.2)),
        (
            lambda: xpnet.SGD(lr=0.1, momentum=0.8, weight_decay=0.05),
            lambda p, torch: torch.optim.SGD([p], lr=0.1, momentum=0.8, weight_decay=0.05),
        ),
        (
            lambda: xpnet.Adam(lr=0.05, beta1=0.8, beta2=0.99, eps=1e-6),
            lambda p, torch: torch.optim.Adam([p], lr=0.05, betas=(0.8, 0.99), eps=1e-6),
        ),
        (
            lambda: xpnet.Adam(lr=0.05, weight_decay=0.1),
            lambda p, torch: torch.optim.Adam([p], lr=0.05, weight_decay=0.1),
        ),
    ],
    ids=["sgd", "momentum+decay", "adam", "adam+decay"],
)
def test_update_on_bare_arrays_matches_torch(ours, theirs):
    """update(P, G) with no layout treats all of P as weights (weight decay on every element,
    as torch applies it to a parameter)."""
    torch = pytest.importorskip("torch")
    P, grads = _flat(0)
    opt = ours()
    ref = torch.tensor(P.copy(), requires_grad=True)
    ref_opt = theirs(ref, torch)
    for G in grads:
        P = opt.update(P, G)
        ref.grad = torch.tensor(G)
        ref_opt.step()
    assert opt.t == len(grads)
    np.testing.assert_allclose(P, ref.detach().numpy(), rtol=1e-13, atol=1e-15)


def test_clip_norm_matches_torch_clip_grad_norm():
    torch = pytest.importorskip("torch")
    P, grads = _flat(1)
    opt = xpnet.SGD(lr=0.1, clip_norm=0.5)
    ref = torch.tensor(P.copy(), requires_grad=True)
    ref_opt = torch.optim.SGD([ref], lr=0.1)
    for G in grads:
        P = opt.update(P, G)
        ref.grad = torch.tensor(G)
        assert float(torch.nn.utils.clip_grad_norm_([ref], 0.5)) > 0.5  # it did clip
        ref_opt.step()
    np.testing.assert_allclose(P, ref.detach().numpy(), rtol=1e-13, atol=1e-15)
    small = xpnet.SGD(lr=1.0, clip_norm=100.0).update(np.ones(3), np.full(3, 0.5))
    np.testing.assert_array_equal(small, np.full(3, 0.5))  # below the norm: untouched


def test_weight_decay_spares_the_biases_of_a_net(backend, dtype):
    """With a zero loss gradient, one SGD step shrinks every weight by lr * decay and leaves
    every bias as it was."""
    net = xpnet.MLP([3, 4, 2], backend=backend, dtype=dtype, seed=0)
    net.load_state_dict({k: np.full(tuple(v.shape), 2.0) for k, v in net.parameters().items()})
    before = _params(net)
    buffer = net.parameter_buffer
    G = buffer.flat_parameters() * 0.0
    opt = xpnet.SGD(lr=0.5, weight_decay=0.1)
    buffer.store_flat_parameters(opt.update(buffer.flat_parameters(), G, buffer.layout))
    for k, p in _params(net).items():
        factor = 1 - 0.5 * 0.1 if k.startswith("W") else 1.0
        np.testing.assert_allclose(p, before[k] * factor, rtol=4 * np.finfo(dtype).eps)


def test_hyperparameters_are_checked_when_the_optimizer_is_made():
    cases = [
        (lambda: xpnet.Adam(beta1=1.0), r"beta1 must be in \[0, 1\), got 1\.0"),
        (lambda: xpnet.Adam(beta2=-0.1), r"beta2 must be in \[0, 1\), got -0\.1"),
        (lambda: xpnet.Adam(eps=-1), r"eps must be a positive number, got -1"),
        (lambda: xpnet.Adam(lr="0.01"), r"learning rate must be a positive number, got '0\.01'"),
        (lambda: xpnet.SGD(lr=float("nan")), r"learning rate must be a positive number, got nan"),
        (lambda: xpnet.SGD(lr=True), r"learning rate must be a positive number, got True"),
        (lambda: xpnet.SGD(weight_decay=-1), r"weight_decay must be in \[0, inf\), got -1"),
        (lambda: xpnet.SGD(clip_norm=0), r"clip_norm must be a positive number, got 0"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()


def test_a_named_optimizer_subclass_saves_and_loads(tmp_path, request):
    """Saving goes through the optimizer's own config(), not a table of known types."""

    class Halved(xpnet.SGD, name="test-halved-sgd"):
        def update_rule(self, P, G, state, lr, xp, fns):
            return fns.sgd_update(P, G, lr=lr / 2, xp=xp)

    request.addfinalizer(lambda: xpnet.optim.OPTIMIZERS.pop("test-halved-sgd"))
    net, X, T = _net_with_grads("numpy", "float64")
    opt = Halved(lr=0.4)
    _step(net, X, T, opt)
    xpnet.save(net, tmp_path / "run", optimizer=opt)
    loaded = xpnet.load_checkpoint(tmp_path / "run", backend="numpy")
    assert type(loaded.optimizer) is Halved and loaded.optimizer.t == 1
    assert loaded.optimizer.lr == 0.4

    class Nameless(xpnet.SGD):
        pass

    with pytest.raises(ValueError, match=r"Nameless has no name of its own, so it cannot be saved"):
        xpnet.save(net, tmp_path / "other", optimizer=Nameless(lr=0.1))


def test_an_optimizer_refuses_the_state_of_another_net():
    net_a, X, T = _net_with_grads("numpy", "float64")
    opt = xpnet.Adam()
    _step(net_a, X, T, opt)
    net_b = xpnet.MLP([3, 5, 2], dtype="float64")
    loss = xpnet.MSELoss()
    loss.forward(net_b.forward(X), T)
    net_b.backward(loss.backward())
    with pytest.raises(ValueError, match="state belongs to a net with another set of parameters"):
        opt.step(net_b)


def test_step_sums_gradients_with_the_given_allreduce():
    """train.step hands the flat gradient to allreduce before the update: doubling it (two
    processes with the same batch) equals twice the learning rate."""
    nets = [_net_with_grads("numpy", "float64")[0] for _ in range(2)]
    _, X, T = _net_with_grads("numpy", "float64")
    loss = xpnet.MSELoss()
    seen = []

    def double(G):
        seen.append(G.shape)
        return G * 2

    xpnet.train.step(nets[0], X, T, loss, xpnet.SGD(lr=0.1), allreduce=double)
    xpnet.train.step(nets[1], X, T, loss, xpnet.SGD(lr=0.2))
    assert seen == [(3 * 2 + 2,)]
    for k, p in _params(nets[0]).items():
        np.testing.assert_allclose(p, _params(nets[1])[k], rtol=1e-15)


def test_step_takes_an_explicit_gradient_and_reduces_it_first(backend, dtype):
    """Optimizer.step(net, G, reduce): the update follows reduce(G), not the gradients the
    net's last backward left, and reduce sees G itself, once."""
    net, X, T = _net_with_grads(backend, dtype)
    _step(net, X, T, xpnet.SGD(lr=0.1))  # leaves gradients behind that step must ignore
    buffer = net.parameter_buffer
    before = xpnet.to_numpy(buffer.flat_parameters()).astype(np.float64)
    g = np.linspace(-1.0, 1.0, before.size)
    G = xpnet.asarray(g, like=net)
    seen = []

    def reduce(a):
        seen.append(a)
        return a * 3.0

    xpnet.SGD(lr=0.5).step(net, G, reduce=reduce)
    assert len(seen) == 1 and seen[0] is G
    after = xpnet.to_numpy(buffer.flat_parameters()).astype(np.float64)
    tol = 8 * np.finfo(dtype).eps
    np.testing.assert_allclose(after, before - 0.5 * 3.0 * g, rtol=tol, atol=tol)


def test_only_optimizers_with_fixed_numbers_can_be_captured_in_a_cuda_graph():
    """ops.torch.capture asks the optimizer first: a graph would freeze Adam's bias corrections
    and a schedule's learning rate."""
    xpnet.SGD(lr=0.1).check_capturable()
    xpnet.Momentum(lr=0.1, weight_decay=0.01, clip_norm=1.0).check_capturable()
    with pytest.raises(ValueError, match=r"Adam cannot be captured.*bias corrections"):
        xpnet.Adam().check_capturable()
    stepped = xpnet.SGD(lr=0.1, schedule=xpnet.optim.Step(every=2))
    with pytest.raises(ValueError, match=r"SGD cannot be captured.*learning rate follows"):
        stepped.check_capturable()
    with pytest.raises(ValueError, match=r"learning rate follows"):
        xpnet.SGD(lr=0.1, schedule=xpnet.optim.Constant(warmup_epochs=1)).check_capturable()


def test_adamw_matches_torch_adamw_and_spares_the_biases():
    torch = pytest.importorskip("torch")
    net, X, T = _net_with_grads("numpy", "float64", seed=4)
    params = {k: torch.tensor(v, requires_grad=True) for k, v in _params(net).items()}
    theirs = torch.optim.AdamW(
        [
            {"params": [params["W1"]], "weight_decay": 0.1},
            {"params": [params["b1"]], "weight_decay": 0.0},
        ],
        lr=0.05,
    )
    ours = xpnet.AdamW(lr=0.05, weight_decay=0.1)
    for _ in range(5):
        grads = _step(net, X, T, ours)
        for k, p in params.items():
            p.grad = torch.tensor(grads[k])
        theirs.step()
    for k, p in _params(net).items():
        # torch shrinks by p * (1 - lr * wd), xpnet by p - lr * wd * p: a rounding apart
        np.testing.assert_allclose(p, params[k].detach().numpy(), rtol=1e-13, atol=1e-15)
    assert xpnet.AdamW().weight_decay == 0.01  # torch's default


def test_adamw_is_saved_and_resumed_as_adamw(tmp_path):
    net, X, T = _net_with_grads("numpy", "float64")
    opt = xpnet.AdamW(lr=0.05, weight_decay=0.2)
    _step(net, X, T, opt)
    xpnet.save(net, tmp_path / "run", optimizer=opt)
    loaded = xpnet.load_checkpoint(tmp_path / "run", backend="numpy")
    assert type(loaded.optimizer) is xpnet.AdamW and loaded.optimizer.weight_decay == 0.2
    _step(net, X, T, opt)
    _step(loaded.net, X, T, loaded.optimizer)
    for k, p in _params(net).items():
        np.testing.assert_array_equal(p, _params(loaded.net)[k])
