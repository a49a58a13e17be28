"""scikit-learn estimators over xpnet's MLP: `MLPClassifier` and `MLPRegressor`.

They take the parameters of scikit-learn's own MLP estimators and train an `xpnet.MLP` with
`xpnet.fit`. scikit-learn's rule for array libraries holds: without
`sklearn.set_config(array_api_dispatch=True)` inputs are converted to NumPy and NumPy comes
out; with it, training happens in X's library (NumPy, CuPy, PyTorch, array-api-strict) and on
X's device, the fitted `coefs_` live there, and predictions come back there. `backend=` /
`device=` instead train wherever they say, moving the data there explicitly; predictions still
come back in X's library and device.

Needs the optional extra: `pip install 'xpnet[sklearn]'`. `import xpnet` does not import this
module (or scikit-learn).
"""

from __future__ import annotations

import warnings
from functools import partial
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from array_api_compat import array_namespace
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._array_api import (
    check_same_namespace,
    get_namespace,
    get_namespace_and_device,
    move_to,
)
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import (
    check_is_fitted,
    check_random_state,
    column_or_1d,
    validate_data,
)

from . import ops
from .backend import BACKEND_NAMES, Backend, asarray, backend_of, get_backend, to_numpy
from .losses import BCELoss, Loss, MSELoss, SoftmaxCrossEntropyLoss
from .model import MLP
from .optim import SGD, Adam, Optimizer
from .scoring import predict, predicted_labels
from .train import fit

__all__ = ["MLPClassifier", "MLPRegressor"]

Array = Any

# scikit-learn's activation names -> xpnet's
_HIDDEN = {"logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_SEED_RANGE = np.iinfo(np.int32).max


class _HalfSquaredError(MSELoss):
    """mean((Y - T)**2) / 2, scikit-learn's regression loss: `loss_curve_` and `tol` then mean
    what they mean for sklearn.neural_network.MLPRegressor."""

    def _value(self, Y, T, xp):
        return 0.5 * super()._value(Y, T, xp)

    def _gradient(self, Y, T, xp):
        return 0.5 * super()._gradient(Y, T, xp)


def _to_place_of(a: Array, reference: Array) -> Array:
    """`a` moved to the library and device of `reference` (scikit-learn's "everything follows
    X"); NumPy when array API dispatch is off."""
    if not get_config()["array_api_dispatch"]:
        return to_numpy(a)
    xp, _, device = get_namespace_and_device(reference)
    return move_to(a, xp=xp, device=device)


def _follow(a: Array, X: Array) -> Array:
    """Labels or targets (an array or a list) moved to X's library and device; text labels
    (strings, objects), which only NumPy holds, stay on the host."""
    a = a if hasattr(a, "shape") else np.asarray(a)
    if isinstance(a, np.ndarray) and a.dtype.kind in "OUS":
        return a
    return _to_place_of(a, X)


def _host(labels: Array) -> list[Any]:
    """Labels as a list, for error messages."""
    return to_numpy(labels).tolist()


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, the net, the training loop."""

    _parameter_constraints: ClassVar[dict] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_HIDDEN))],
        "solver": [StrOptions({"sgd", "adam"})],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "backend": [None, StrOptions({"auto", *BACKEND_NAMES})],
        "device": "no_validation",
        "dtype": [None, StrOptions({"float32", "float64"})],
    }

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "logistic",
        *,
        solver: str = "adam",
        batch_size: int | str = "auto",
        learning_rate_init: float = 0.001,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        momentum: float = 0.9,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        backend: str | None = None,
        device: Any = None,
        dtype: str | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.device = device
        self.dtype = dtype

    # -- what the subclasses define -----------------------------------------------------
    def _targets(
        self, X: Array, y: Array, first: bool, incremental: bool, classes: Array | None
    ) -> tuple[Array, Array]:
        """Validated X and the training targets T (n, n_outputs) for y."""
        raise NotImplementedError

    def _output(self) -> tuple[str, str]:
        """The output layer: (xpnet's output activation, scikit-learn's `out_activation_`)."""
        raise NotImplementedError

    def _loss(self) -> Loss:
        """A fresh loss for one training call (losses cache arrays, so none is kept)."""
        raise NotImplementedError

    def _validation_score(self, Y: np.ndarray, T: np.ndarray) -> float:
        """The score early stopping watches, from host outputs Y and targets T."""
        raise NotImplementedError

    def _strata(self, T: Array) -> np.ndarray | None:
        """Labels to stratify the early-stopping split by; None: a plain shuffled split."""
        return None

    # -- fitting ------------------------------------------------------------------------
    def _validate(
        self, X: Array, y: Array, reset: bool, y_numeric: bool = False
    ) -> tuple[Array, Array]:
        """scikit-learn's validation: X float32 stays float32, other data becomes float64, in
        X's library when array API dispatch is on; y moved to X's library and device."""
        xp, _ = get_namespace(X)
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            multi_output=True,
            y_numeric=y_numeric,
            dtype=[xp.float64, xp.float32],
        )
        return X, _follow(y, X)

    def _fit(self, X: Array, y: Array, incremental: bool, classes: Array | None = None):
        first = not (incremental and hasattr(self, "coefs_"))
        if incremental and self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True: set early_stopping=False "
                "or call fit"
            )
        X, T = self._targets(X, y, first, incremental, classes)
        rng = check_random_state(self.random_state)
        if first:
            self._initialize(X, T.shape[1], rng)
        net = self._net
        X, T = asarray(X, like=net), asarray(T, like=net)
        self._train(X, T, incremental, rng)
        return self

    def _initialize(self, X: Array, n_outputs: int, rng: np.random.RandomState) -> None:
        """A fresh net, optimizer and training record on the backend the data asks for."""
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if np.iterable(hidden) else [hidden]
        if any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must all be >= 1, got {hidden}")
        backend = self._backend_for(X)
        dtype = self.dtype or ("float32" if X.dtype == backend_of(X).xp.float32 else "float64")
        init_seed, self._shuffle_seed = (int(s) for s in rng.randint(_SEED_RANGE, size=2))
        output, self.out_activation_ = self._output()
        net = MLP(
            [X.shape[1], *hidden, n_outputs],
            hidden=_HIDDEN[self.activation],
            output=output,
            backend=backend,
            dtype=dtype,
            seed=init_seed,
        )
        self._attach(net)
        self._optimizer: Optimizer = (
            SGD(self.learning_rate_init, momentum=self.momentum)
            if self.solver == "sgd"
            else Adam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)
        )
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(net.sizes)
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        self.best_loss_ = None if self.early_stopping else np.inf
        self.validation_scores_: list[float] | None = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None

    def _backend_for(self, X: Array) -> Backend:
        """Where to train: `backend`/`device` when given, otherwise X's library and device."""
        if self.backend is not None:
            return get_backend(self.backend, self.device)
        here = backend_of(X)
        return here if self.device is None else get_backend(here.name, self.device)

    def _attach(self, net: MLP) -> None:
        """Keep `net` and expose its live parameters as `coefs_` and `intercepts_`."""
        self._net = net
        self._net_config = net.config()
        params = net.parameters()
        layers = range(1, len(net.sizes))
        self.coefs_ = [params[f"W{k}"] for k in layers]
        self.intercepts_ = [params[f"b{k}"] for k in layers]

    def _train(self, X: Array, T: Array, incremental: bool, rng: np.random.RandomState) -> None:
        """Epochs of minibatch backprop with scikit-learn's stopping rules; one epoch for
        partial_fit. Warns (ConvergenceWarning) when fit runs out of max_iter."""
        net = self._net
        validation = None
        if self.early_stopping:
            X, T, validation = self._split(X, T, rng)
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn(
                    f"batch_size={self.batch_size} is larger than the {n} training samples; "
                    f"it is clipped to {n}",
                    UserWarning,
                    stacklevel=5,
                )
            batch_size = min(self.batch_size, n)
        if not incremental:
            self.n_iter_ = 0
        first_epoch = self.n_iter_
        fit(
            net,
            X,
            T,
            loss=self._loss(),
            optimizer=self._optimizer,
            epochs=first_epoch + (1 if incremental else self.max_iter),
            initial_epoch=first_epoch,
            batch_size=batch_size,
            seed=self._shuffle_seed,
            shuffle=self.shuffle,
            progress=bool(self.verbose),
            callbacks=[partial(self._end_epoch, n=n, validation=validation)],
        )
        if validation is not None:
            net.load_state_dict(self._best_state)
            del self._best_state
        self._attach(net)
        self._check_finite()
        stopped = self._no_improvement_count > self.n_iter_no_change
        if not incremental and not stopped and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet; increase max_iter, or raise tol.",
                ConvergenceWarning,
                stacklevel=5,
            )

    def _split(self, X: Array, T: Array, rng: np.random.RandomState):
        """(X_train, T_train, (X_val, T_val)) on the net's device; indices drawn on the host,
        stratified for single-output classification as scikit-learn does."""
        train, val = train_test_split(
            np.arange(X.shape[0]),
            test_size=self.validation_fraction,
            random_state=rng,
            stratify=self._strata(T),
        )
        if val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small: increase validation_fraction or give more samples"
            )
        xp, backend = self._net.backend.xp, self._net.backend
        train, val = backend.from_host(train), backend.from_host(val)
        take = partial(xp.take, axis=0)
        return take(X, train), take(T, train), (take(X, val), take(T, val))

    def _end_epoch(self, epoch: int, record: dict[str, float], *, n, validation) -> bool:
        """scikit-learn's bookkeeping after each epoch; True (stop) after n_iter_no_change
        epochs without an improvement of at least tol."""
        self.n_iter_ += 1
        self.t_ += n
        self.loss_ = record["loss"]
        self.loss_curve_.append(self.loss_)
        if validation is not None:
            Xv, Tv = validation
            score = self._validation_score(to_numpy(predict(self._net, Xv)), to_numpy(Tv))
            scores, best = self.validation_scores_, self.best_validation_score_
            assert scores is not None and best is not None  # early stopping keeps them
            scores.append(score)
            improved = score >= best + self.tol
            if score > best:
                self.best_validation_score_ = score
                self._best_state = self._net.state_dict()
        else:
            assert self.best_loss_ is not None  # kept unless early stopping
            improved = self.loss_ <= self.best_loss_ - self.tol
            self.best_loss_ = min(self.best_loss_, self.loss_)
        self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
        return self._no_improvement_count > self.n_iter_no_change

    def _check_finite(self) -> None:
        xp = self._net.backend.xp
        for p in self._net.parameters().values():
            if not bool(to_numpy(xp.all(xp.isfinite(p)))):
                raise ValueError(
                    "Solver produced non-finite parameter weights: scale the inputs (e.g. "
                    "sklearn.preprocessing.StandardScaler) or lower learning_rate_init"
                )

    # -- predicting ---------------------------------------------------------------------
    @property
    def _first_coef(self) -> Array:
        """The array whose library and device the fit used (for check_same_namespace)."""
        return self.coefs_[0]

    def _outputs(self, X: Array, method: str) -> tuple[Array, Array]:
        """(the net's outputs for X, on the net's device; the validated X)."""
        check_is_fitted(self)
        if self.backend is None and self.device is None:
            check_same_namespace(X, self, attribute="_first_coef", method=method)
        xp, _ = get_namespace(X)
        X = validate_data(self, X, reset=False, dtype=[xp.float64, xp.float32])
        return predict(self._net, asarray(X, like=self._net)), X

    # -- pickling: the net holds module references, so it is rebuilt from coefs_ ------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_net", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "coefs_" in state:
            net = MLP(**self._net_config, backend=backend_of(self.coefs_[0]))
            pairs = enumerate(zip(self.coefs_, self.intercepts_, strict=True), 1)
            net.load_state_dict(
                {n: a for k, (W, b) in pairs for n, a in ((f"W{k}", W), (f"b{k}", b))}
            )
            self._attach(net)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags


_PARAMETERS_DOC = """
    Parameters (those of scikit-learn's MLP estimators, and where to train)
    ----------
    hidden_layer_sizes : array-like of int or int, default=(100,)
        Widths of the hidden layers.
    activation : {"logistic", "tanh", "relu"}, default="logistic"
        Hidden activation (xpnet's Sigmoid, Tanh, ReLU).
    solver : {"adam", "sgd"}, default="adam"
        xpnet.Adam(learning_rate_init, beta_1, beta_2, epsilon) or
        xpnet.SGD(learning_rate_init, momentum) (classical momentum, not Nesterov's).
    batch_size : int or "auto", default="auto"
        Minibatch size; "auto" is min(200, n_samples).
    learning_rate_init, max_iter, shuffle, random_state, tol, verbose, momentum,
    early_stopping, validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change :
        As in scikit-learn (constant learning rate; verbose shows xpnet's progress bar).
    backend : {None, "auto", "numpy", "cupy", "torch", "array_api_strict"}, default=None
        None: train where X lives (NumPy unless array API dispatch is on). A name (a plain
        string, so that clone and GridSearchCV can copy it): move the data there, train there.
    device : default=None
        The device on that backend (e.g. "cuda:1"); None: X's device, or the default one.
    dtype : {None, "float32", "float64"}, default=None
        None: float32 data trains in float32, anything else in float64.
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multilayer perceptron classifier trained by xpnet's explicit backpropagation.

    More than two classes: softmax output and cross-entropy (xpnet.SoftmaxCrossEntropyLoss on an
    identity output). Two classes, or multilabel indicator targets: sigmoid outputs and binary
    cross-entropy (xpnet.BCELoss). Labels may be anything scikit-learn accepts, strings too;
    `classes_` holds them in sorted order.
    """

    __doc__ += _PARAMETERS_DOC

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train from scratch on X (n_samples, n_features) and labels y."""
        return self._fit(X, y, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One more epoch on X, y. The first call needs `classes`: every label there will be."""
        return self._fit(X, y, incremental=True, classes=classes)

    def _targets(self, X, y, first, incremental, classes):
        X, y = self._validate(X, y, reset=first)
        check_classification_targets(y)
        if classes is not None:
            classes = unique_labels(_follow(classes, X))
        if not incremental:
            self._label_binarizer = LabelBinarizer().fit(y)
        elif first:
            if classes is None:
                raise ValueError(
                    "the first call to partial_fit needs classes=...: every label the data "
                    "will have (e.g. numpy.unique(y_all))"
                )
            multilabel = type_of_target(y).startswith("multilabel")
            self._label_binarizer = LabelBinarizer().fit(y if multilabel else classes)
        elif classes is not None and _host(classes) != _host(self.classes_):
            raise ValueError(
                f"classes={_host(classes)} differs from classes_ {_host(self.classes_)} of the "
                "first partial_fit call; pass the same classes"
            )
        self.classes_ = self._label_binarizer.classes_
        if incremental:
            unseen = np.setdiff1d(to_numpy(unique_labels(y)), to_numpy(self.classes_))
            if unseen.size:
                raise ValueError(
                    f"y has classes {unseen.tolist()} that are not in classes_ "
                    f"{_host(self.classes_)}; pass every class to the first partial_fit call"
                )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, self._label_binarizer.transform(y)

    def _output(self):
        if self._label_binarizer.y_type_ == "multiclass":
            return "identity", "softmax"
        return "sigmoid", "logistic"

    def _loss(self):
        return SoftmaxCrossEntropyLoss() if self.out_activation_ == "softmax" else BCELoss()

    def _strata(self, T: Array) -> np.ndarray | None:
        """Class codes to stratify the early-stopping split by (none for multilabel)."""
        if self._label_binarizer.y_type_.startswith("multilabel"):
            return None
        labels = to_numpy(T)
        return np.argmax(labels, axis=1) if labels.shape[1] > 1 else labels[:, 0]

    def _validation_score(self, Y, T):
        """Accuracy (of whole label rows, for multilabel), as scikit-learn's score."""
        if self._label_binarizer.y_type_.startswith("multilabel"):
            hits = np.all((Y > 0.5) == (T > 0.5), axis=1)
        else:
            xp = array_namespace(Y)
            hits = predicted_labels(Y, xp) == predicted_labels(T, xp)
        return float(np.mean(hits))

    def predict(self, X: Any) -> Array:
        """The predicted labels, in X's library and device where they are numbers."""
        Y, _ = self._outputs(X, "predict")
        return self._label_binarizer.inverse_transform(_to_place_of(Y, self.classes_))

    def predict_proba(self, X: Any) -> Array:
        """Probabilities (n_samples, n_classes), columns ordered as `classes_`; one column per
        label for multilabel targets."""
        Y, X = self._outputs(X, "predict_proba")
        xp = self._net.backend.xp
        if self.out_activation_ == "softmax":
            Y = ops.generic.softmax(Y, xp)
        elif self.n_outputs_ == 1:
            Y = xp.concat([1.0 - Y, Y], axis=1)
        return _to_place_of(Y, X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multilayer perceptron regressor trained by xpnet's explicit backpropagation: identity
    output and squared error / 2 (scikit-learn's loss). y may have several columns."""

    __doc__ += _PARAMETERS_DOC

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any) -> MLPRegressor:
        """Train from scratch on X (n_samples, n_features) and targets y."""
        return self._fit(X, y, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One more epoch on X, y."""
        return self._fit(X, y, incremental=True)

    def _targets(self, X, y, first, incremental, classes):
        X, y = self._validate(X, y, reset=first, y_numeric=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        xp, _ = get_namespace(y)
        return X, xp.reshape(y, (y.shape[0], -1))

    def _output(self):
        return "identity", "identity"

    def _loss(self):
        return _HalfSquaredError()

    def _validation_score(self, Y, T):
        """R^2, averaged over the outputs, as scikit-learn's score."""
        return float(r2_score(T, Y))

    def predict(self, X: Any) -> Array:
        """Predictions (n_samples,) for one target, else (n_samples, n_outputs), in X's
        library and device."""
        Y, X = self._outputs(X, "predict")
        if self.n_outputs_ == 1:
            Y = Y[:, 0]
        return _to_place_of(Y, X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
