"""xpnet.sklearn: scikit-learn's own estimator checks, the array API rules (training and
predictions follow X's library and device under array_api_dispatch; NumPy otherwise), losses
and stopping rules against scikit-learn's definitions, Pipeline and GridSearchCV."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'xpnet[sklearn]')")
import sklearn
from sklearn.base import clone
from sklearn.datasets import load_iris, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPRegressor as SklearnMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils._testing import ignore_warnings
from sklearn.utils.estimator_checks import parametrize_with_checks

import xpnet
from xpnet.sklearn import MLPClassifier, MLPRegressor


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    # As scikit-learn's own test_common does: several checks fit with too few iterations on
    # purpose, so the ConvergenceWarning that max_iter triggers is expected there.
    with ignore_warnings(category=ConvergenceWarning):
        check(estimator)


def test_import_xpnet_does_not_import_sklearn():
    code = "import sys, xpnet; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_classifier_learns_iris_with_string_labels(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = MLPClassifier(
        hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=1000, random_state=0
    )
    clf.fit(X, names)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert clf.out_activation_ == "softmax"
    assert clf.score(X, names) > 0.95
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[np.argmax(proba, axis=1)])
    assert [c.shape for c in clf.coefs_] == [(4, 16), (16, 3)]
    assert [b.shape for b in clf.intercepts_] == [(16,), (3,)]
    assert clf.n_features_in_ == 4 and clf.n_layers_ == 3 and clf.n_outputs_ == 3


def test_binary_and_multilabel_use_sigmoid_outputs(iris):
    X, y = iris
    binary = MLPClassifier(
        hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=1000, random_state=0
    )
    binary.fit(X, y == 0)
    assert binary.out_activation_ == "logistic" and binary.n_outputs_ == 1
    proba = binary.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_array_equal(binary.predict(X), binary.classes_[np.argmax(proba, axis=1)])
    assert binary.score(X, y == 0) == 1.0

    Xm, Ym = make_multilabel_classification(n_samples=200, n_classes=3, random_state=0)
    multi = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0)
    with pytest.warns(ConvergenceWarning):
        multi.fit(Xm, Ym)
    assert multi.out_activation_ == "logistic" and multi.n_outputs_ == 3
    np.testing.assert_array_equal(multi.classes_, [0, 1, 2])
    np.testing.assert_array_equal(multi.predict(Xm), multi.predict_proba(Xm) > 0.5)
    assert multi.score(Xm, Ym) > 0.6  # subset accuracy; chance is about 0.1


def test_loss_curve_is_sklearns_loss_at_the_weights_before_the_epoch(iris):
    """One full-batch epoch of partial_fit records the loss of the weights it started from:
    cross-entropy as sklearn.metrics.log_loss, squared error / 2 for regression."""
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(5,), batch_size=len(X), shuffle=False, alpha=0)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    before = clf.predict_proba(X)
    clf.partial_fit(X, y)
    assert clf.loss_curve_[-1] == pytest.approx(log_loss(y, before), rel=1e-12)
    assert clf.n_iter_ == 1 and clf.t_ == 2 * len(X)  # n_iter_: this call's, as scikit-learn

    reg = MLPRegressor(hidden_layer_sizes=(5,), batch_size=len(X), shuffle=False, alpha=0)
    target = X[:, 3]
    reg.partial_fit(X[:, :3], target)
    before = reg.predict(X[:, :3])
    reg.partial_fit(X[:, :3], target)
    assert reg.loss_curve_[-1] == pytest.approx(0.5 * np.mean((before - target) ** 2), rel=1e-12)


def test_stopping_rule_matches_sklearn():
    """With a tol no epoch can beat, both stop after n_iter_no_change + 2 epochs, silently."""
    X, y = make_regression(n_samples=60, n_features=4, noise=1.0, random_state=0)
    params = dict(hidden_layer_sizes=(4,), tol=1e6, n_iter_no_change=3, random_state=0)
    ours = MLPRegressor(**params).fit(X, y)
    theirs = SklearnMLPRegressor(**params).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 5
    assert len(ours.loss_curve_) == 5 and ours.best_loss_ == min(ours.loss_curve_)


def test_max_iter_raises_convergence_warning(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\)"):
        MLPClassifier(max_iter=3).fit(X, y)


def test_early_stopping_restores_the_best_epoch(iris):
    """It stops n_iter_no_change epochs after the best validation score and returns to those
    weights: the same run cut off at the best epoch (a deterministic trajectory) ends there."""
    X, y = iris
    params = dict(
        hidden_layer_sizes=(8,),
        learning_rate_init=0.01,
        early_stopping=True,
        validation_fraction=0.2,
        random_state=0,
    )
    clf = MLPClassifier(**params, max_iter=1000).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_ < 1000
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    best_epoch = clf.validation_scores_.index(clf.best_validation_score_) + 1
    assert clf.n_iter_ > best_epoch
    with pytest.warns(ConvergenceWarning):
        cut = MLPClassifier(**params, max_iter=best_epoch).fit(X, y)
    for ours, theirs in zip(
        clf.coefs_ + clf.intercepts_, cut.coefs_ + cut.intercepts_, strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        clf.partial_fit(X, y)


def test_partial_fit_errors_name_the_fix(iris):
    X, y = iris
    clf = MLPClassifier()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1])
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match=r"is not the same as on last call to partial_fit"):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="activation"):
        MLPClassifier(activation="sigmoid").fit(X, y)
    with pytest.raises(ValueError, match="'backend' parameter"):
        MLPClassifier(backend=xpnet.get_backend("numpy")).fit(X, y)  # names only: clone copies


def test_pipeline_and_grid_search(iris):
    X, y = load_iris(return_X_y=True)
    mlp = MLPClassifier(learning_rate_init=0.01, max_iter=1000, random_state=0)
    pipe = make_pipeline(StandardScaler(), mlp)
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(2,), (16,)]}, cv=3)
    grid.fit(X, y)
    width = grid.best_params_["mlpclassifier__hidden_layer_sizes"][0]
    assert grid.best_estimator_[-1].coefs_[0].shape == (4, width)  # set_params reached it
    assert np.all(grid.cv_results_["mean_test_score"] > 0.85)
    assert grid.score(X, y) > 0.95


def test_pickle_round_trip_on_another_backend(iris):
    pytest.importorskip("torch")
    X, y = iris
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, backend="torch", random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    assert xpnet.backend_of(again.coefs_[0]).name == "torch"
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


# -- array API: training and results follow X ---------------------------------------------


def _fit_on_host(X, y, dtype, **params):
    with pytest.warns(ConvergenceWarning):
        return MLPClassifier(**params).fit(X.astype(dtype), y)


PARAMS = dict(hidden_layer_sizes=(8,), max_iter=10, random_state=0)


def test_dispatch_regressor_and_mixed_targets(iris):
    """y from another library is moved to X's; predictions come back as X's arrays."""
    strict = pytest.importorskip("array_api_strict")
    torch = pytest.importorskip("torch")
    X, _ = iris
    Xt = torch.asarray(X[:, :3])
    yt = strict.asarray(X[:, 3], device=strict.Device("device1"))
    with sklearn.config_context(array_api_dispatch=True):
        reg = MLPRegressor(
            hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=1000, random_state=0
        )
        reg.fit(Xt, yt)
        pred = reg.predict(Xt)
        score = reg.score(Xt, torch.asarray(X[:, 3]))
    assert isinstance(pred, torch.Tensor) and pred.shape == (len(X),)
    assert all(isinstance(c, torch.Tensor) for c in reg.coefs_)
    assert score > 0.9


def test_without_dispatch_numpy_in_numpy_out(iris):
    torch = pytest.importorskip("torch")
    X, y = iris
    clf = MLPClassifier(**PARAMS)
    with pytest.warns(ConvergenceWarning):
        clf.fit(torch.asarray(X), torch.asarray(y))
    assert isinstance(clf.coefs_[0], np.ndarray)
    assert isinstance(clf.predict_proba(torch.asarray(X)), np.ndarray)
    np.testing.assert_array_equal(
        clf.predict_proba(X), _fit_on_host(X, y, "float64", **PARAMS).predict_proba(X)
    )


def test_explicit_backend_trains_there_and_answers_in_numpy(iris):
    pytest.importorskip("array_api_strict")
    X, y = iris
    clf = MLPClassifier(**PARAMS, backend="array_api_strict", device="device1", dtype="float32")
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    placed = xpnet.backend_of(clf.coefs_[0])
    assert (placed.name, str(placed.device)) == (
        "array_api_strict",
        "array_api_strict.Device('device1')",
    )
    proba = clf.predict_proba(X)
    assert isinstance(proba, np.ndarray) and proba.dtype == np.float32
    reference = _fit_on_host(X, y, "float32", **PARAMS)
    np.testing.assert_allclose(
        proba, reference.predict_proba(X), atol=1e3 * np.finfo("float32").eps
    )


def test_fitted_on_torch_refuses_numpy_input_under_dispatch(iris):
    torch = pytest.importorskip("torch")
    X, y = iris
    with sklearn.config_context(array_api_dispatch=True):
        clf = MLPClassifier(**PARAMS)
        with pytest.warns(ConvergenceWarning):
            clf.fit(torch.asarray(X), torch.asarray(y))
        with pytest.raises(ValueError, match="must use the same namespace"):
            clf.predict(X)


def test_fit_stochastic_takes_explicit_inputs_and_returns_the_record():
    """The solver reads no estimator: given a net, optimizer, loss, data, settings, the record
    of earlier fits and a scorer, it returns the next record and leaves the given one as it
    was; early stopping scores every epoch on the validation split and keeps the best."""
    from xpnet.sklearn._data import Data
    from xpnet.sklearn.losses import SquaredError
    from xpnet.sklearn.optimizers import SklearnAdam
    from xpnet.sklearn.stochastic import Record, StochasticSettings, fit_stochastic

    X, y = make_regression(n_samples=40, n_features=3, random_state=0)
    net = xpnet.MLP([3, 5, 1], output="identity", seed=0)
    data = Data(net, X, y[:, None] / 100)
    settings = StochasticSettings(
        max_iter=4,
        batch_size=10,
        shuffle=True,
        tol=0.0,
        n_iter_no_change=np.inf,
        early_stopping=True,
        validation_fraction=0.25,
        alpha=0.0,
        verbose=False,
        incremental=False,
    )
    rng = np.random.RandomState(0)
    before = Record.fresh(True, net.state_dict())
    before.loss_curve.append(9.0)  # an earlier fit's epoch
    scores = iter([0.1, 0.5, 0.3, 0.2])
    seen = []

    def score(validation):
        seen.append(validation.n)
        return next(scores)

    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        after = fit_stochastic(
            net, SklearnAdam(0.01), SquaredError(), data, settings, before, score, rng
        )
    assert before.loss_curve == [9.0] and before.validation_scores == []
    assert after.n_iter == 4 and after.samples == 4 * 30 and seen == [10] * 4
    assert after.loss_curve[0] == 9.0 and len(after.loss_curve) == 5
    assert after.validation_scores == [0.1, 0.5, 0.3, 0.2]
    assert after.best_validation_score == 0.5 and after.no_improvement_count == 2
    kept = {k: xpnet.to_numpy(v) for k, v in after.best_state.items()}
    for k, v in net.state_dict().items():  # the net ends with the best epoch's parameters
        np.testing.assert_array_equal(xpnet.to_numpy(v), kept[k])


# -- xpnet's extensions: class_weight and dropout (issue 22) -------------------------------------
QUICK = dict(hidden_layer_sizes=(8,), max_iter=15, random_state=0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    ("class_weight", "per_class"),
    [({0: 3.0, 2: 0.5}, [3.0, 1.0, 0.5]), ("balanced", [150 / (3 * 50)] * 3)],
    ids=["dict", "balanced"],
)
def test_class_weight_trains_as_the_same_sample_weight(iris, class_weight, per_class):
    """class_weight is sample_weight per class (a class a dict leaves out weighs 1, "balanced"
    weighs n / (classes * count)); with a sample_weight too, the two multiply."""
    X, y = iris
    X, y = X[10:], y[10:]  # 40, 50, 50 samples: "balanced" weighs the classes apart
    if class_weight == "balanced":
        per_class = [len(y) / (3 * np.sum(y == k)) for k in range(3)]
    by_class = MLPClassifier(**QUICK, class_weight=class_weight).fit(X, y)
    by_sample = MLPClassifier(**QUICK).fit(X, y, sample_weight=np.array(per_class)[y])
    for a, b in zip(by_class.coefs_, by_sample.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    own = np.linspace(0.5, 2.0, len(y))
    both = MLPClassifier(**QUICK, class_weight=class_weight).fit(X, y, sample_weight=own)
    alone = MLPClassifier(**QUICK).fit(X, y, sample_weight=own * np.array(per_class)[y])
    np.testing.assert_array_equal(both.coefs_[0], alone.coefs_[0])
    assert not np.array_equal(both.coefs_[0], by_class.coefs_[0])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_class_weight_takes_text_labels(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    by_name = MLPClassifier(**QUICK, class_weight={"virginica": 4.0}).fit(X, names)
    by_sample = MLPClassifier(**QUICK).fit(X, names, sample_weight=np.where(y == 2, 4.0, 1.0))
    np.testing.assert_array_equal(by_name.coefs_[0], by_sample.coefs_[0])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_balanced_class_weight_corrects_an_imbalance():
    """950 against 50 overlapping samples: unweighted, the net mostly predicts the majority
    (minority recall 0.16 measured); balanced, it finds 0.91 of the minority on a balanced test
    set."""
    from sklearn.metrics import balanced_accuracy_score, recall_score

    def blobs(n0, n1, seed):
        rng = np.random.default_rng(seed)
        X = np.vstack([rng.normal(0, 1, (n0, 2)), rng.normal(1.5, 1, (n1, 2))])
        return X, np.r_[np.zeros(n0, int), np.ones(n1, int)]

    X, y = blobs(950, 50, 0)
    X_test, y_test = blobs(500, 500, 1)
    scores = {}
    for class_weight in (None, "balanced"):
        clf = MLPClassifier((8,), random_state=0, class_weight=class_weight).fit(X, y)
        predicted = clf.predict(X_test)
        scores[class_weight] = (
            recall_score(y_test, predicted),
            balanced_accuracy_score(y_test, predicted),
        )
    assert scores[None][0] < 0.3 and scores["balanced"][0] > 0.8
    assert scores["balanced"][1] > scores[None][1] + 0.2


def test_balanced_class_weight_is_refused_by_partial_fit(iris):
    X, y = iris
    with pytest.raises(ValueError, match="class_weight 'balanced' is not supported for partial"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    by_class = MLPClassifier(**QUICK, class_weight={1: 2.0}).partial_fit(X, y, classes=[0, 1, 2])
    by_sample = MLPClassifier(**QUICK).partial_fit(
        X, y, classes=[0, 1, 2], sample_weight=np.where(y == 1, 2.0, 1.0)
    )
    np.testing.assert_array_equal(by_class.coefs_[0], by_sample.coefs_[0])


@pytest.mark.parametrize(
    ("params", "name"),
    [({"class_weight": "heavy"}, "class_weight"), ({"dropout": 1.0}, "dropout")],
)
def test_the_extensions_are_validated_as_scikit_learn_validates(iris, params, name):
    X, y = iris
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of MLPClassifier"):
        MLPClassifier(**params).fit(X, y)
    with pytest.raises(InvalidParameterError, match="'dropout' parameter of MLPRegressor"):
        MLPRegressor(dropout=-0.1).fit(X, y)


def test_the_extensions_round_trip_through_get_set_params_and_clone():
    clf = MLPClassifier(dropout=0.3, class_weight={0: 2.0})
    assert clf.get_params()["dropout"] == 0.3 and clf.get_params()["class_weight"] == {0: 2.0}
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    copy.set_params(dropout=0.1, class_weight="balanced")
    assert (copy.dropout, copy.class_weight) == (0.1, "balanced")
    assert MLPClassifier().get_params()["dropout"] == 0.0
    assert MLPRegressor(dropout=0.2).get_params()["dropout"] == 0.2
    assert "class_weight" not in MLPRegressor().get_params()


def _forward(estimator, X):
    """The fitted estimator's outputs by hand, every hidden unit kept (relu hidden layers)."""
    a = X
    for W, b in zip(estimator.coefs_[:-1], estimator.intercepts_[:-1], strict=True):
        a = np.maximum(a @ W + b, 0.0)
    return a @ estimator.coefs_[-1] + estimator.intercepts_[-1]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_dropout_changes_training_and_predicting_keeps_every_unit(iris, kind):
    X, y = iris
    Estimator = MLPClassifier if kind == "classifier" else MLPRegressor
    target = y if kind == "classifier" else X[:, 0] + y
    dropped = Estimator(**QUICK, dropout=0.3).fit(X, target)
    again = Estimator(**QUICK, dropout=0.3).fit(X, target)
    plain = Estimator(**QUICK).fit(X, target)
    np.testing.assert_array_equal(dropped.coefs_[0], again.coefs_[0])  # random_state decides
    assert not np.allclose(dropped.coefs_[0], plain.coefs_[0])
    assert not np.allclose(dropped.loss_curve_, plain.loss_curve_)
    Z = _forward(dropped, X)
    if kind == "classifier":
        expected = np.exp(Z - Z.max(axis=1, keepdims=True))
        expected /= expected.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(dropped.predict_proba(X), expected, rtol=1e-12)
    else:
        np.testing.assert_allclose(dropped.predict(X), Z[:, 0], rtol=1e-12)
    np.testing.assert_array_equal(dropped.predict(X), dropped.predict(X))
    restored = pickle.loads(pickle.dumps(dropped))
    np.testing.assert_array_equal(restored.predict(X), dropped.predict(X))
    restored.set_params(warm_start=True, max_iter=1).fit(X, target)
    assert any(isinstance(layer, xpnet.Dropout) for layer in restored._net.layers)


def test_dropout_needs_a_stochastic_solver(iris):
    X, y = iris
    with pytest.raises(ValueError, match=r"dropout=0\.2 needs a stochastic solver"):
        MLPClassifier(solver="lbfgs", dropout=0.2).fit(X, y)
