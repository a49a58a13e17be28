"""What MLPClassifier and MLPRegressor share: scikit-learn's parameters, its first-pass and
warm-start rules, its initial weights, the solvers, and predicting in X's library."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import scipy.sparse
from sklearn import get_config
from sklearn.base import BaseEstimator
from sklearn.utils._array_api import (
    check_same_namespace,
    get_namespace,
    get_namespace_and_device,
    move_to,
)
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    check_random_state,
    validate_data,
)

from ..backend import BACKEND_NAMES, Backend, asarray, backend_of, get_backend, to_numpy
from ..model import MLP
from ..optim import Optimizer
from ..sequential import in_mode
from ._data import Data, forward_all
from .lbfgs import LbfgsSettings, fit_lbfgs
from .losses import LOSSES, SklearnLoss, activate
from .optimizers import Adaptive, InvScaling, SklearnAdam, SklearnSGD
from .stochastic import Record, StochasticSettings, fit_stochastic

__all__ = ["BaseMLP", "follow", "host_list", "to_place_of"]

Array = Any

# scikit-learn's activation names -> xpnet's
HIDDEN = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
STOCHASTIC_SOLVERS = ("sgd", "adam")


def to_place_of(a: Array, reference: Array) -> Array:
    """`a` moved to the library and device of `reference` (scikit-learn's "everything follows
    X"); NumPy when array API dispatch is off or the reference is a sparse matrix."""
    if not get_config()["array_api_dispatch"] or scipy.sparse.issparse(reference):
        return to_numpy(a)
    xp, _, device = get_namespace_and_device(reference)
    return move_to(a, xp=xp, device=device)


def follow(a: Array, X: Array) -> Array:
    """Labels, targets or weights (an array or a list) moved to X's library and device; text
    labels (strings, objects), which only NumPy holds, stay on the host."""
    a = a if hasattr(a, "shape") else np.asarray(a)
    if isinstance(a, np.ndarray) and a.dtype.kind in "OUS":
        return a
    return to_place_of(a, X)


def host_list(labels: Array) -> list[Any]:
    """Labels as a list, for comparisons and error messages."""
    return to_numpy(labels).tolist()


class BaseMLP(BaseEstimator):
    """scikit-learn's BaseMultilayerPerceptron over an xpnet.MLP: the net ends in an identity
    layer, and scikit-learn's output activation and loss (xpnet.sklearn.losses) follow it."""

    _parameter_constraints: ClassVar[dict] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(HIDDEN))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "backend": [None, StrOptions({"auto", *BACKEND_NAMES})],
        "device": "no_validation",
        "dtype": [None, StrOptions({"float32", "float64"})],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    # set by the subclasses' __init__ (whose signatures are scikit-learn's, plus xpnet's)
    hidden_layer_sizes: Any
    activation: str
    solver: str
    alpha: float
    batch_size: int | str
    learning_rate: str
    learning_rate_init: float
    power_t: float
    max_iter: int
    loss: str
    shuffle: bool
    random_state: Any
    tol: float
    verbose: Any
    warm_start: bool
    momentum: float
    nesterovs_momentum: bool
    early_stopping: bool
    validation_fraction: float
    beta_1: float
    beta_2: float
    epsilon: float
    n_iter_no_change: Any
    max_fun: int
    backend: str | None
    device: Any
    dtype: str | None
    dropout: float

    # -- what the subclasses define -----------------------------------------------------
    def _validate_input(
        self, X: Array, y: Array, incremental: bool, reset: bool
    ) -> tuple[Array, Array]:
        """Validated X and the training targets T (n, n_outputs) for y."""
        raise NotImplementedError

    def _out_activation(self) -> str:
        """scikit-learn's `out_activation_` for the targets of the first pass."""
        raise NotImplementedError

    def _validation_score(self, P: np.ndarray, T: np.ndarray, w: np.ndarray | None) -> float:
        """The score early stopping watches, from host outputs P (activated) and targets T."""
        raise NotImplementedError

    def _strata(self, T: Array) -> np.ndarray | None:
        """Labels to stratify the early-stopping split by (single-output classifiers)."""
        return None

    def _class_weights(self, y: Array, incremental: bool) -> np.ndarray | None:
        """Each sample's class weight (host, float64), or None: every class weighs 1."""
        return None

    # -- fitting ------------------------------------------------------------------------
    def _validate(
        self, X: Array, y: Array, reset: bool, y_numeric: bool = False
    ) -> tuple[Array, Array]:
        """scikit-learn's validation: dense or CSR/CSC X, float32 stays float32, other data
        becomes float64, in X's library when array API dispatch is on; y moved there too."""
        xp, _ = get_namespace(X)
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=y_numeric,
            dtype=[xp.float64, xp.float32],
        )
        return X, follow(y, X)

    def _fit(self, X: Array, y: Array, sample_weight: Array | None, incremental: bool):
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if np.iterable(hidden) else [hidden]
        if any(int(h) <= 0 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, T = self._validate_input(X, y, incremental, reset=first_pass)
        sample_weight = self._weights(X, y, sample_weight, incremental)
        xp, _ = get_namespace(T)
        T = xp.reshape(T, (T.shape[0], -1))
        self.n_outputs_ = int(T.shape[1])
        rng = check_random_state(self.random_state)
        if self.dropout and self.solver not in STOCHASTIC_SOLVERS:
            raise ValueError(
                f"dropout={self.dropout} needs a stochastic solver ('sgd' or 'adam'): the "
                f"'{self.solver}' solver's line search needs the same objective at every step"
            )
        if first_pass:
            self._initialize(X, [int(X.shape[1]), *map(int, hidden), self.n_outputs_], rng)
        with in_mode(self._sync_net(), True):
            self._solve(X, T, sample_weight, incremental, rng)
        self._attach(self._net)  # a packed net (JAX) holds new arrays after training
        self._check_finite()
        return self

    def _weights(
        self, X: Array, y: Array, sample_weight: Array | None, incremental: bool
    ) -> Array | None:
        """The samples' weights in X's library and device: `sample_weight` times the class
        weights (the classifier's `class_weight`, as scikit-learn's estimators apply it);
        None when neither is given."""
        classes = self._class_weights(y, incremental)
        if classes is not None and sample_weight is not None:
            classes = classes * to_numpy(_check_sample_weight(sample_weight, X))
        weights = sample_weight if classes is None else classes
        return None if weights is None else follow(_check_sample_weight(weights, X), X)

    def _solve(
        self,
        X: Array,
        T: Array,
        sample_weight: Array | None,
        incremental: bool,
        rng: np.random.RandomState,
    ) -> None:
        """Train the net (in training mode) with the solver: epochs of batches, or L-BFGS."""
        data = Data(self._net, X, T, sample_weight)
        if self.solver in STOCHASTIC_SOLVERS:
            if not incremental or not hasattr(self, "_optimizer"):
                self._optimizer = self._make_optimizer()
            strata = self._strata(data.T) if self.early_stopping and self.n_outputs_ == 1 else None
            record = fit_stochastic(
                self._net,
                self._optimizer,
                self._make_loss(),
                data,
                self._stochastic_settings(incremental),
                self._record(),
                self._score,
                rng,
                strata,
            )
            self._keep(record)
            self.n_iter_, self.loss_ = record.n_iter, record.loss
        else:
            result = fit_lbfgs(self._net, self._make_loss(), data, self._lbfgs_settings())
            self.n_iter_, self.loss_ = result.n_iter, result.loss

    def _initialize(self, X: Array, layer_units: list[int], rng: np.random.RandomState) -> None:
        """A fresh net with scikit-learn's initial weights (for each layer, W then b drawn
        uniform in +-sqrt(factor / (fan_in + fan_out)) from `rng`, factor 2 for logistic hidden
        units, 6 otherwise), on the backend the data asks for, and a fresh training record."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._out_activation()
        backend = self._backend_for(X)
        float32 = X.dtype == (np.float32 if scipy.sparse.issparse(X) else backend_of(X).xp.float32)
        net = MLP(
            layer_units,
            hidden=HIDDEN[self.activation],
            output="identity",
            backend=backend,
            dtype=self.dtype or ("float32" if float32 else "float64"),
            dropout=self.dropout,
        )
        factor = 2.0 if self.activation == "logistic" else 6.0
        for linear in net.linears:
            bound = np.sqrt(factor / (linear.n_in + linear.n_out))
            for key in ("W", "b"):
                shape = linear.parameter_shapes()[key]
                linear.set_parameter(key, asarray(rng.uniform(-bound, bound, shape), like=net))
        if self.dropout:  # masks from random_state too (no draw without dropout, as sklearn)
            net.reseed((int(rng.randint(np.iinfo(np.int32).max)),))
        self._attach(net)
        if self.solver in STOCHASTIC_SOLVERS:
            self._keep(Record.fresh(self.early_stopping, net.state_dict()))

    def _backend_for(self, X: Array) -> Backend:
        """Where to train: `backend`/`device` when given, otherwise X's library and device
        (NumPy for a sparse X)."""
        if self.backend is not None:
            return get_backend(self.backend, self.device)
        here = get_backend("numpy") if scipy.sparse.issparse(X) else backend_of(X)
        return here if self.device is None else get_backend(here.name, self.device)

    def _attach(self, net: MLP) -> None:
        """Keep `net` and expose its live parameters as `coefs_` and `intercepts_` (views
        that training updates in place where the net keeps views; where it cannot, as on JAX,
        training binds new arrays, so `_fit` attaches again at its end)."""
        self._net = net
        self.coefs_ = [linear.W for linear in net.linears]
        self.intercepts_ = [linear.b for linear in net.linears]
        self._attached = [*self.coefs_, *self.intercepts_]  # what coefs_ held when attached

    def _make_loss(self) -> SklearnLoss:
        """A fresh loss for one training call (losses cache arrays, so none is kept)."""
        name = self.loss
        if name == "log_loss" and self.out_activation_ == "logistic":
            name = "binary_log_loss"
        return LOSSES[name]()

    def _make_optimizer(self) -> Optimizer:
        """scikit-learn's SGDOptimizer or AdamOptimizer, as xpnet optimizers."""
        if self.solver == "sgd":
            schedule = {
                "constant": None,
                "invscaling": InvScaling(self.power_t),
                "adaptive": Adaptive(),
            }[self.learning_rate]
            return SklearnSGD(
                self.learning_rate_init,
                self.momentum,
                self.nesterovs_momentum,
                schedule=schedule,
            )
        return SklearnAdam(self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)

    def _stochastic_settings(self, incremental: bool) -> StochasticSettings:
        return StochasticSettings(
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            alpha=float(self.alpha),
            verbose=bool(self.verbose),
            incremental=incremental,
        )

    def _lbfgs_settings(self) -> LbfgsSettings:
        return LbfgsSettings(
            max_iter=self.max_iter,
            max_fun=self.max_fun,
            tol=self.tol,
            alpha=float(self.alpha),
            verbose=bool(self.verbose),
        )

    def _record(self) -> Record:
        """The stochastic solvers' record of the fits so far, from the attributes it sets."""
        return Record(
            best_state=self._best_state,
            best_loss=self.best_loss_,
            validation_scores=self.validation_scores_,
            best_validation_score=self.best_validation_score_,
            loss_curve=self.loss_curve_,
            samples=self.t_,
            no_improvement_count=self._no_improvement_count,
        )

    def _keep(self, record: Record) -> None:
        """Expose a stochastic solver's record as scikit-learn's attributes."""
        self._best_state = record.best_state
        self.best_loss_ = record.best_loss
        self.validation_scores_ = record.validation_scores
        self.best_validation_score_ = record.best_validation_score
        self.loss_curve_ = record.loss_curve
        self.t_ = record.samples
        self._no_improvement_count = record.no_improvement_count

    def _score(self, validation: Data) -> float:
        """The score early stopping watches, of the net's outputs on the validation split."""
        P = to_numpy(self._activated(validation.X))
        w = None if validation.w is None else to_numpy(validation.w)
        return self._validation_score(P, to_numpy(validation.T), w)

    def _check_finite(self) -> None:
        xp = self._net.backend.xp
        P = self._net.parameter_buffer.flat_parameters()
        if not bool(to_numpy(xp.all(xp.isfinite(P)))):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            )

    # -- predicting ---------------------------------------------------------------------
    def _activated(self, X: Array) -> Array:
        """scikit-learn's outputs for X (the net's, then `out_activation_`), on the net's
        device."""
        net = self._sync_net()
        with in_mode(net, False):  # dropout off
            return activate(self.out_activation_, forward_all(net, X), net.backend.xp)

    @property
    def _first_coef(self) -> Array:
        """The array whose library and device the fit used (for check_same_namespace)."""
        return self.coefs_[0]

    def _outputs(self, X: Array, method: str) -> tuple[Array, Array]:
        """(scikit-learn's outputs for X, on the net's device; the validated X)."""
        check_is_fitted(self)
        sparse = scipy.sparse.issparse(X)
        if self.backend is None and self.device is None and not sparse:
            check_same_namespace(X, self, attribute="_first_coef", method=method)
        xp, _ = get_namespace(X)
        X = validate_data(
            self, X, reset=False, accept_sparse=["csr", "csc"], dtype=[xp.float64, xp.float32]
        )
        return self._activated(X), X

    # -- the net behind coefs_ and intercepts_ ---------------------------------------------
    def _sync_net(self) -> MLP:
        """The net whose parameters are `coefs_` and `intercepts_`. They are public, as in
        scikit-learn: arrays assigned to them by hand (or restored by unpickling) are loaded
        into the net, rebuilt when its sizes or hidden activation no longer match."""
        net = getattr(self, "_net", None)
        layers = [*self.coefs_, *self.intercepts_]
        if net is not None and self._matches(net):
            live = [*(linear.W for linear in net.linears), *(linear.b for linear in net.linears)]
            if len(live) == len(layers) and all(a is b for a, b in zip(live, layers, strict=True)):
                return net
            attached = getattr(self, "_attached", [])
            untouched = len(attached) == len(layers) and all(
                a is b for a, b in zip(attached, layers, strict=True)
            )
            if untouched:
                # coefs_ are what _attach set and the net trained on since (a packed net, as
                # JAX's, binds new arrays as it trains): the net holds the truth
                self._attach(net)
                return net
        first = self.coefs_[0]
        first = first if hasattr(first, "shape") else np.asarray(first, dtype=np.float64)
        sizes = [int(first.shape[0]), *(int(np.shape(W)[1]) for W in self.coefs_)]
        if net is None or net.sizes != sizes or not self._matches(net):
            net = MLP(
                sizes,
                hidden=HIDDEN[self.activation],
                output="identity",
                backend=backend_of(first),
                dtype="float32" if "float32" in str(first.dtype) else "float64",
                dropout=self.dropout,
            )
        pairs = zip(net.linears, self.coefs_, self.intercepts_, strict=True)
        net.load_state_dict(
            {
                linear.parameter_names[k]: a
                for linear, W, b in pairs
                for k, a in (("W", W), ("b", b))
            }
        )
        self._attach(net)
        return net

    def _matches(self, net: MLP) -> bool:
        """Whether `net` has the hidden activation and dropout the parameters ask for."""
        return net.hidden == HIDDEN[self.activation] and net.dropout == self.dropout

    # -- pickling: the net holds module references, so it is rebuilt from coefs_ ------------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_net", None)
        state.pop("_attached", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.array_api_support = True
        return tags
