"""xpnet.sklearn side by side with scikit-learn: the same arguments and random_state give the
same fitted model. On NumPy float64 coefs_ and intercepts_ agree to rel err < 1e-6 (in practice
to rounding), with the same n_iter_, loss curve and validation scores; under array API dispatch
every backend agrees to its dtype's rounding. Also the pieces: the update rules, schedules and
losses against scikit-learn's own, on every backend."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")
import scipy.sparse
import sklearn
from sklearn import neural_network as sk
from sklearn.datasets import load_iris, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network._base import LOSS_FUNCTIONS
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer
from sklearn.preprocessing import StandardScaler

import xpnet
from xpnet.optim.hooks import weight_mask
from xpnet.sklearn import MLPClassifier, MLPRegressor
from xpnet.sklearn.losses import LOSSES, objective
from xpnet.sklearn.optimizers import Adaptive, InvScaling, SklearnAdam, SklearnSGD


def _data():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    Xr, Yr = make_regression(n_samples=120, n_features=5, n_targets=3, noise=1, random_state=0)
    Xm, Ym = make_multilabel_classification(n_samples=150, n_classes=4, random_state=0)
    counts = np.random.RandomState(0).poisson(np.exp(0.3 * Xr[:, 0]))
    return {
        "multiclass": (X, y),
        "binary": (X, y == 1),
        "strings": (X, np.array(["setosa", "versicolor", "virginica"])[y]),
        "multilabel": (Xm, Ym),
        "multitarget": (Xr, Yr / 100),
        "target": (Xr, Yr[:, 0] / 100),
        "counts": (Xr[:, :2], counts),
    }


DATA = _data()

# (estimator, data, arguments): each a parameter or a combination scikit-learn treats apart
CASES = {
    "adam": ("C", "multiclass", dict(hidden_layer_sizes=(8,), max_iter=30)),
    "adam-binary": ("C", "binary", dict(hidden_layer_sizes=(8,), max_iter=30)),
    "adam-betas-eps": ("C", "multiclass", dict(beta_1=0.8, beta_2=0.99, epsilon=1e-4)),
    "sgd-nesterov": ("C", "multiclass", dict(solver="sgd", hidden_layer_sizes=(8, 6))),
    "sgd-momentum": (
        "C",
        "multiclass",
        dict(solver="sgd", nesterovs_momentum=False, momentum=0.5, activation="tanh"),
    ),
    "sgd-no-momentum": ("C", "binary", dict(solver="sgd", momentum=0.0)),
    "sgd-invscaling": (
        "C",
        "multiclass",
        dict(
            solver="sgd",
            learning_rate="invscaling",
            learning_rate_init=0.5,
            power_t=0.3,
            activation="logistic",
        ),
    ),
    "sgd-adaptive": (
        "C",
        "multiclass",
        dict(
            solver="sgd",
            learning_rate="adaptive",
            tol=1e-2,
            n_iter_no_change=2,
            batch_size=32,
            max_iter=60,
        ),
    ),
    "lbfgs": ("C", "multiclass", dict(solver="lbfgs", hidden_layer_sizes=(5,), alpha=1e-3)),
    "lbfgs-max-fun": ("C", "multiclass", dict(solver="lbfgs", max_fun=20)),
    "alpha": ("C", "multiclass", dict(alpha=0.5, learning_rate_init=0.01)),
    "early-stopping": (
        "C",
        "multiclass",
        dict(early_stopping=True, learning_rate_init=0.01, validation_fraction=0.2),
    ),
    "early-stopping-binary": ("C", "binary", dict(early_stopping=True, learning_rate_init=0.01)),
    "early-stopping-strings": ("C", "strings", dict(early_stopping=True, max_iter=20)),
    "no-shuffle-batch-7": ("C", "multiclass", dict(shuffle=False, batch_size=7, alpha=0.1)),
    "batch-50-tol-stop": ("C", "multiclass", dict(batch_size=50, tol=1e-2, n_iter_no_change=3)),
    "multilabel-identity": ("C", "multilabel", dict(activation="identity")),
    "multitarget-adam": ("R", "multitarget", dict(learning_rate_init=0.01)),
    "multitarget-sgd": ("R", "multitarget", dict(solver="sgd", learning_rate_init=0.001)),
    "regressor-lbfgs": ("R", "target", dict(solver="lbfgs", activation="tanh")),
    "regressor-early-stopping": ("R", "target", dict(early_stopping=True, max_iter=100)),
    "poisson-adam": ("R", "counts", dict(loss="poisson", learning_rate_init=0.01)),
    "poisson-lbfgs": ("R", "counts", dict(loss="poisson", solver="lbfgs", max_iter=30)),
}


def _pair(kind, params, **extra):
    ours = MLPClassifier if kind == "C" else MLPRegressor
    theirs = sk.MLPClassifier if kind == "C" else sk.MLPRegressor
    params = {"random_state": 0, "max_iter": 40, **params}
    return ours(**params, **extra), theirs(**params)


def _fit_quietly(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


def _flat(model):
    return np.concatenate(
        [xpnet.to_numpy(a).astype(np.float64).ravel() for a in model.coefs_ + model.intercepts_]
    )


def rel_err(ours, theirs) -> float:
    """max |ours - theirs| over max |theirs|, over every weight and bias."""
    a, b = _flat(ours), _flat(theirs)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _assert_same_record(ours, theirs, rtol=1e-9):
    """n_iter_, loss_, loss_curve_, t_, validation_scores_ as scikit-learn's (L-BFGS's loss_ to
    1e-6: its line searches magnify rounding)."""
    assert ours.n_iter_ == theirs.n_iter_
    rtol = 1e-6 if ours.solver == "lbfgs" else rtol
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=rtol)
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
        assert ours.t_ == theirs.t_
    if getattr(theirs, "validation_scores_", None) is not None:
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=rtol)
        assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_)


@pytest.mark.parametrize("case", list(CASES))
def test_same_model_as_sklearn(case):
    kind, data, params = CASES[case]
    X, y = DATA[data]
    ours, theirs = _pair(kind, params)
    _fit_quietly(ours, X, y)
    _fit_quietly(theirs, X, y)
    assert rel_err(ours, theirs) < 1e-6
    _assert_same_record(ours, theirs)
    assert ours.out_activation_ == theirs.out_activation_
    assert ours.n_layers_ == theirs.n_layers_ and ours.n_outputs_ == theirs.n_outputs_
    if kind == "C":
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-9)
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    else:
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_sample_weight_as_sklearn(solver):
    X, y = DATA["multiclass"]
    w = np.random.default_rng(0).uniform(0.0, 3.0, size=len(y))
    w[:10] = 0.0
    for early in [False, True] if solver != "lbfgs" else [False]:
        ours, theirs = _pair("C", dict(solver=solver, alpha=0.01, early_stopping=early))
        _fit_quietly(ours, X, y, sample_weight=w)
        _fit_quietly(theirs, X, y, sample_weight=w)
        assert rel_err(ours, theirs) < 1e-6
        _assert_same_record(ours, theirs)


def test_partial_fit_as_sklearn():
    """Each call is one epoch from its own draw of random_state; n_iter_ is that call's (1),
    t_ counts every sample seen."""
    X, y = DATA["multiclass"]
    Xr, yr = DATA["target"]
    ours, theirs = _pair("C", dict(solver="sgd", learning_rate="invscaling", batch_size=40))
    ours_r, theirs_r = _pair("R", dict(batch_size=20))
    for start in (0, 50, 100, 0):
        rows = slice(start, start + 50)
        for model in (ours, theirs):
            model.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        for model in (ours_r, theirs_r):
            model.partial_fit(Xr[rows], yr[rows])
        assert ours.n_iter_ == theirs.n_iter_ == 1
        assert ours.t_ == theirs.t_ and ours_r.t_ == theirs_r.t_
        assert rel_err(ours, theirs) < 1e-9 and rel_err(ours_r, theirs_r) < 1e-9
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_warm_start_as_sklearn(solver):
    """A second fit continues from the first one's weights with a new optimizer, keeping the
    loss curve and t_ (invscaling then starts where t_ is)."""
    X, y = DATA["multiclass"]
    params = dict(solver=solver, warm_start=True, max_iter=10, learning_rate="invscaling")
    ours, theirs = _pair("C", params)
    for _ in range(2):
        _fit_quietly(ours, X, y)
        _fit_quietly(theirs, X, y)
        assert rel_err(ours, theirs) < 1e-6
        _assert_same_record(ours, theirs)
    with pytest.raises(ValueError, match=r"Previously got \[0 1 2\], `y` has \[0 1\]"):
        ours.fit(X, (y == 1).astype(int))


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sparse_input_as_sklearn(fmt, solver):
    X, y = DATA["multiclass"]
    X = np.where(np.abs(X) < 0.5, 0.0, X)
    Xs = scipy.sparse.csr_matrix(X).asformat(fmt)
    ours, theirs = _pair("C", dict(solver=solver, max_iter=15))
    _fit_quietly(ours, Xs, y)
    _fit_quietly(theirs, Xs, y)
    assert rel_err(ours, theirs) < 1e-6
    np.testing.assert_allclose(ours.predict_proba(Xs), theirs.predict_proba(Xs), atol=1e-9)
    dense = _fit_quietly(_pair("C", dict(solver=solver, max_iter=15))[0], X, y)
    np.testing.assert_allclose(_flat(ours), _flat(dense), rtol=1e-12, atol=1e-14)


def test_verbose_prints_sklearns_lines(capsys):
    X, y = DATA["multiclass"]
    for model in _pair("C", dict(solver="sgd", max_iter=5, verbose=True, early_stopping=True)):
        _fit_quietly(model, X, y)
    ours, theirs = capsys.readouterr().out.split("Iteration 1,")[1:]
    assert len(ours.splitlines()) == len(theirs.splitlines()) == 10
    for a, b in zip(ours.splitlines(), theirs.splitlines(), strict=True):
        assert a.split("=")[0].split(":")[0] == b.split("=")[0].split(":")[0]
        assert float(a.split()[-1]) == pytest.approx(float(b.split()[-1]), rel=1e-7)


def test_diverging_regressor_with_early_stopping_records_nan_and_keeps_the_best():
    """scikit-learn's test_mlp_diverging_loss: NaN validation scores are recorded (not an error
    from r2_score) and the best epoch's weights come back."""
    X, y = load_iris(return_X_y=True)
    params = dict(
        hidden_layer_sizes=100,
        activation="identity",
        solver="sgd",
        learning_rate_init=1,
        max_iter=20,
        early_stopping=True,
    )
    ours, theirs = _pair("R", params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _fit_quietly(ours, X, y)
        _fit_quietly(theirs, X, y)
    assert np.isnan(ours.validation_scores_[-1]) and isinstance(ours.validation_scores_[-1], float)
    assert ours.n_iter_ == theirs.n_iter_
    assert rel_err(ours, theirs) < 1e-6
    assert np.all(np.isfinite(ours.predict(X)))


def test_alpha_is_scikit_learns_l2_penalty():
    """The classifier takes alpha (it raised TypeError before); the recorded loss includes
    0.5 * alpha * sum(W**2) / n_samples, as scikit-learn's."""
    X, y = DATA["multiclass"]
    small, _ = _pair("C", dict(alpha=0.0, max_iter=20))
    large, theirs = _pair("C", dict(alpha=1.0, max_iter=20))
    for model in (small, large, theirs):
        _fit_quietly(model, X, y)
    assert sum(np.sum(W**2) for W in large.coefs_) < sum(np.sum(W**2) for W in small.coefs_)
    np.testing.assert_allclose(large.loss_curve_, theirs.loss_curve_, rtol=1e-9)


def test_lbfgs_runs_out_of_max_fun_as_sklearn():
    X, y = DATA["multiclass"]
    ours, theirs = _pair("C", dict(solver="lbfgs", max_fun=10, max_iter=100))
    for model in (ours, theirs):
        with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
            model.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 100
    assert rel_err(ours, theirs) < 1e-6
    assert not hasattr(ours, "partial_fit")  # as scikit-learn's classifier


def test_predict_log_proba_is_the_log_of_predict_proba():
    for data in ("multiclass", "binary", "multilabel"):
        X, y = DATA[data]
        ours, theirs = _pair("C", dict(max_iter=5))
        _fit_quietly(ours, X, y)
        _fit_quietly(theirs, X, y)
        np.testing.assert_allclose(ours.predict_log_proba(X), np.log(ours.predict_proba(X)))
        np.testing.assert_allclose(
            ours.predict_log_proba(X), theirs.predict_log_proba(X), rtol=1e-9, atol=1e-12
        )


# -- every backend: under array API dispatch the fit follows X, with the same numbers --------


BACKEND_CASES = {
    "sgd": dict(solver="sgd"),
    "adam": dict(solver="adam"),
    "lbfgs": dict(solver="lbfgs"),
    "adam-early-stopping-weighted": dict(solver="adam", early_stopping=True),
}


@pytest.mark.parametrize("setting", list(BACKEND_CASES))
def test_same_model_as_sklearn_on_every_backend(backend, dtype, setting):
    """Under array API dispatch the fit runs in X's library on X's device (coefs_, classes_
    and predictions live there) and gives scikit-learn's model to the dtype's rounding."""
    X, y = DATA["multiclass"]
    X = X.astype(dtype)
    weighted = "weighted" in setting
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=len(y)) if weighted else None
    params = dict(max_iter=8, alpha=0.01, hidden_layer_sizes=(6,), **BACKEND_CASES[setting])
    ours, theirs = _pair("C", params)
    with sklearn.config_context(array_api_dispatch=True):
        on = backend.from_host
        _fit_quietly(ours, on(X), on(y), sample_weight=None if w is None else on(w.astype(dtype)))
        log_proba, labels = ours.predict_log_proba(on(X)), ours.predict(on(X))
        score = ours.score(on(X), on(y))
    _fit_quietly(theirs, X, y, sample_weight=w)
    for a in [*ours.coefs_, *ours.intercepts_, log_proba, labels, ours.classes_]:
        placed = xpnet.backend_of(a)
        assert (placed.name, str(placed.device)) == (backend.name, str(backend.device))
    want = xpnet.to_numpy(ours.classes_)[xpnet.to_numpy(log_proba).argmax(axis=1)]
    np.testing.assert_array_equal(xpnet.to_numpy(labels), want)
    assert score == pytest.approx(np.mean(want == y))
    tol = 1e-6 if dtype == "float64" else 1e-3
    assert rel_err(ours, theirs) < tol
    assert ours.n_iter_ == theirs.n_iter_
    curve = "loss_curve_" if ours.solver != "lbfgs" else "n_iter_"
    np.testing.assert_allclose(getattr(ours, curve), getattr(theirs, curve), rtol=tol)


def test_sparse_input_trains_on_another_backend():
    pytest.importorskip("torch")
    X, y = DATA["multiclass"]
    Xs = scipy.sparse.csr_matrix(np.where(np.abs(X) < 0.5, 0.0, X))
    ours = _fit_quietly(MLPClassifier(max_iter=5, random_state=0, backend="torch"), Xs, y)
    reference = _fit_quietly(MLPClassifier(max_iter=5, random_state=0), Xs, y)
    assert xpnet.backend_of(ours.coefs_[0]).name == "torch"
    np.testing.assert_allclose(_flat(ours), _flat(reference), rtol=1e-12, atol=1e-14)
    assert isinstance(ours.predict_proba(Xs), np.ndarray)


def _host(a):
    return xpnet.to_numpy(a).astype(np.float64)


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("schedule", ["constant", "invscaling", "adaptive"])
def test_sklearn_sgd_takes_sklearns_steps(backend, dtype, nesterov, schedule):
    """SklearnSGD with its schedules against scikit-learn's SGDOptimizer, step by step."""
    rng = np.random.default_rng(0)
    P0, grads = rng.normal(size=7), rng.normal(size=(6, 7))
    ref = SGDOptimizer([P0.copy()], 0.1, schedule, 0.8, nesterov, 0.4)
    ref.learning_rate = 1e-5 if schedule == "adaptive" else 0.1  # reaches 1e-6 in 2 epochs
    made = {"constant": None, "invscaling": InvScaling(0.4), "adaptive": Adaptive()}[schedule]
    ours = SklearnSGD(ref.learning_rate, 0.8, nesterov, schedule=made)
    P, theirs = backend.from_host(P0.astype(dtype)), [P0.copy()]
    for epoch in range(3):
        ours.begin_epoch(epoch)
        for g in grads[2 * epoch : 2 * epoch + 2]:
            P = ours.update(P, backend.from_host(g.astype(dtype)))
            ref.update_params(theirs, [g])
        ours.end_epoch({"samples": 10 * (epoch + 1), "lr": ours.current_lr, "stalled": True})
        ref.iteration_ends(10 * (epoch + 1))
        if schedule == "adaptive":  # every epoch stalled: lowered while lr > 1e-6, as theirs
            assert made.lowered is not ref.trigger_stopping("", False)
        tol = 50 * float(np.finfo(dtype).eps)
        np.testing.assert_allclose(_host(P), theirs[0], rtol=tol, atol=tol)


def test_adaptive_learning_rate_runs_down_and_stops_as_sklearn():
    """scikit-learn's test_adaptive_learning_rate: lowered by 5 at every stall until it is at
    most 1e-6, then stopped, at the same epoch with the same weights."""
    X, y = [[3, 2], [1, 6]], [1, 0]
    ours, theirs = _pair("C", dict(tol=0.5, max_iter=3000, solver="sgd", learning_rate="adaptive"))
    ours.fit(X, y)
    theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 3000
    assert ours._optimizer.current_lr == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)
    assert ours._optimizer.current_lr < 1e-6
    assert rel_err(ours, theirs) < 1e-9


def test_sklearn_optimizers_rebuild_from_their_config():
    for optimizer in (
        SklearnSGD(0.2, 0.5, False, schedule=InvScaling(0.3)),
        SklearnSGD(0.2, schedule=Adaptive()),
        SklearnAdam(0.01, 0.8, 0.9, 1e-6),
    ):
        again = xpnet.optim.optimizer_from_config(optimizer.config())
        assert type(again) is type(optimizer) and repr(again) == repr(optimizer)


def test_sklearn_adam_takes_sklearns_steps(backend, dtype):
    rng = np.random.default_rng(1)
    P0, grads = rng.normal(size=9), rng.normal(size=(5, 9)) * 1e-3
    ref = AdamOptimizer([P0.copy()], 0.01, 0.85, 0.99, 1e-3)
    ours = SklearnAdam(0.01, 0.85, 0.99, 1e-3)
    P, theirs = backend.from_host(P0.astype(dtype)), [P0.copy()]
    for g in grads:
        P = ours.update(P, backend.from_host(g.astype(dtype)))
        ref.update_params(theirs, [g])
    tol = 50 * float(np.finfo(dtype).eps)
    np.testing.assert_allclose(_host(P), theirs[0], rtol=tol, atol=tol)


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_are_sklearns(backend, dtype, name):
    """Value as sklearn.neural_network._base's loss (weighted), gradient (P - T) w / sum(w)
    at the raw outputs, plus the L2 term, through a one-layer net."""
    rng = np.random.default_rng(2)
    n, k = 12, 3 if name != "binary_log_loss" else 1
    net = xpnet.MLP([4, k], output="identity", backend=backend, dtype=dtype, seed=0)
    X = rng.normal(size=(n, 4))
    if name == "log_loss":
        T = np.eye(k)[rng.integers(0, k, n)]
    elif name == "poisson":
        T = rng.poisson(2.0, size=(n, k)).astype(float)
    else:
        T = (
            (rng.uniform(size=(n, k)) > 0.5).astype(float)
            if "log" in name
            else rng.normal(size=(n, k))
        )
    w = rng.uniform(0.5, 2.0, size=n)
    loss = LOSSES[name]()
    on = lambda a: xpnet.asarray(a, like=net)  # noqa: E731
    buffer = net.parameter_buffer
    mask = weight_mask(buffer.flat_parameters(), buffer.layout)
    value, G = objective(net, loss, on(X), on(T), on(w), 0.3, mask)
    W, b = _host(net.parameters()["W1"]), _host(net.parameters()["b1"])
    Z = X @ W + b
    from sklearn.neural_network._base import ACTIVATIONS

    P = Z.copy()
    ACTIVATIONS[loss.out_activation](P)
    expected = LOSS_FUNCTIONS[name](T, P, w) + 0.15 * np.sum(W * W) / w.sum()
    tol = 100 * float(np.finfo(dtype).eps)
    assert float(_host(value)) == pytest.approx(expected, rel=tol)
    D = (P - T) * w[:, None]
    gW, gb = (X.T @ D + 0.3 * W) / w.sum(), D.sum(axis=0) / w.sum()
    np.testing.assert_allclose(_host(G), np.concatenate([gW.ravel(), gb]), rtol=tol, atol=tol)
