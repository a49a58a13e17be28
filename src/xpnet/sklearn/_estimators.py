"""MLPClassifier and MLPRegressor: scikit-learn's signatures, defaults and results, trained by
xpnet's backprop on any array library."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d

from ..backend import to_numpy
from ._base import BaseMLP, follow, host_list, to_place_of

__all__ = ["MLPClassifier", "MLPRegressor"]

Array = Any

_PARAMETERS_DOC = """
    Parameters
    ----------
    Those of scikit-learn 1.9's estimator of the same name, with its defaults and meaning
    (hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start,
    momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2,
    epsilon, n_iter_no_change, max_fun; loss for the regressor), and where to train:

    backend : {None, "auto", "numpy", "cupy", "torch", "array_api_strict"}, default=None
        None: train where X lives (NumPy unless array API dispatch is on; NumPy for sparse X).
        A name (a plain string, so that clone and GridSearchCV can copy it): move the data
        there, train there.
    device : default=None
        The device on that backend (e.g. "cuda:1"); None: X's device, or the default one.
    dtype : {None, "float32", "float64"}, default=None
        None: float32 data trains in float32, anything else in float64.
    dropout : float in [0, 1), default=0
        An xpnet extension: in training ("sgd" and "adam"), zero each hidden unit with this
        probability (inverted dropout, its masks drawn from random_state); prediction keeps
        every unit. 0, the default, trains as scikit-learn does.

    Sparse X (CSR or CSC) stays on the host and is densified one batch at a time on the
    net's device (all of it at once for "lbfgs", whose batch is the whole set).
"""

_CLASS_WEIGHT_DOC = """    class_weight : None, dict, list of dicts or "balanced", default=None
        An xpnet extension, with the convention of scikit-learn's other classifiers: weights
        {label: weight} (a list of such dicts for multilabel y), or "balanced" (n_samples /
        (n_classes * bincount(y))); each sample's weight is multiplied by its class's, as
        sample_weight. Not "balanced" in partial_fit, which sees one batch of y.
"""


def _set_parameters(estimator: BaseMLP, arguments: dict[str, Any]) -> None:
    """Store an __init__'s arguments (its `locals()`) as they are, as scikit-learn asks."""
    for name, value in arguments.items():
        if name != "self":
            setattr(estimator, name, value)


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multilayer perceptron classifier: scikit-learn's MLPClassifier, trained by xpnet's
    explicit backpropagation. More than two classes: softmax outputs and cross-entropy; two
    classes or multilabel targets: logistic outputs and binary cross-entropy. Labels may be
    anything scikit-learn accepts, strings too; `classes_` holds them in sorted order."""

    __doc__ += _PARAMETERS_DOC + _CLASS_WEIGHT_DOC

    _parameter_constraints: ClassVar[dict] = {
        **BaseMLP._parameter_constraints,
        "class_weight": [dict, list, StrOptions({"balanced"}), None],
    }

    loss = "log_loss"  # scikit-learn's classifier loss, not a parameter

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: Any = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: Any = 10,
        max_fun: int = 15000,
        backend: str | None = None,
        device: Any = None,
        dtype: str | None = None,
        dropout: float = 0.0,
        class_weight: Any = None,
    ) -> None:
        _set_parameters(self, locals())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPClassifier:
        """Train on X (n_samples, n_features) and labels y (from the weights of the last fit
        when warm_start is set, else from scratch)."""
        return self._fit(X, y, sample_weight, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver not in ("sgd", "adam"):
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. {self.solver} is "
                "not stochastic."
            )
        return True

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None
    ) -> MLPClassifier:
        """One more epoch on X, y. The first call needs `classes`: every label there will be."""
        if classes is not None:
            classes = follow(classes, X)
        if self._first_partial_fit(classes):
            multilabel = type_of_target(y).startswith("multilabel")
            self._label_binarizer = LabelBinarizer().fit(y if multilabel else self.classes_)
        return self._fit(X, y, sample_weight, incremental=True)

    def _first_partial_fit(self, classes: Any) -> bool:
        """scikit-learn's _check_partial_fit_first_call, for labels in any library: sets
        classes_ and returns True on the first call."""
        known = getattr(self, "classes_", None)
        if known is None and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is None:
            return False
        classes = unique_labels(classes)
        if known is not None:
            if host_list(known) != host_list(classes):
                raise ValueError(
                    f"`classes={host_list(classes)!r}` is not the same as on last call to "
                    f"partial_fit, was: {host_list(known)!r}"
                )
            return False
        self.classes_ = classes
        return True

    def _validate_input(self, X, y, incremental, reset):
        X, y = self._validate(X, y, reset=reset)
        check_classification_targets(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes, known = to_numpy(unique_labels(y)), to_numpy(self.classes_)
            if self.warm_start:
                if set(classes.tolist()) != set(known.tolist()):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {known}, `y` has {classes}"
                    )
            elif set(classes.tolist()) - set(known.tolist()):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {known}. "
                    f"'y' has {classes}."
                )
        return X, self._label_binarizer.transform(y)

    def _out_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _class_weights(self, y: Array, incremental: bool) -> np.ndarray | None:
        """scikit-learn's compute_sample_weight of `class_weight` for labels y, on the host."""
        if self.class_weight is None:
            return None
        if incremental and self.class_weight == "balanced":
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit: one call sees one "
                "batch of y. Compute the weights from enough of y with "
                "sklearn.utils.class_weight.compute_class_weight('balanced', classes=classes, "
                "y=y) and pass them as class_weight={label: weight}."
            )
        labels = to_numpy(y) if hasattr(y, "shape") else np.asarray(y)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        return compute_sample_weight(self.class_weight, labels)

    def _strata(self, T: Array) -> np.ndarray | None:
        """The boolean target column of a binary problem, as scikit-learn stratifies by it
        (single-output classification only: multiclass targets have one column per class)."""
        return to_numpy(T).astype(bool)

    def _validation_score(self, P, T, w):
        """Accuracy (of whole label rows, for multilabel), as scikit-learn's accuracy_score of
        the labels predict gives."""
        if self.out_activation_ == "softmax":
            hits = np.argmax(P, axis=1) == np.argmax(T, axis=1)
        else:
            hits = np.all((P > 0.5) == (T > 0.5), axis=1)
        return float(np.average(hits, weights=w))

    def predict(self, X: Any) -> Array:
        """The predicted labels, in X's library and device where they are numbers."""
        P, _ = self._outputs(X, "predict")
        return self._label_binarizer.inverse_transform(to_place_of(P, self.classes_))

    def predict_proba(self, X: Any) -> Array:
        """Probabilities (n_samples, n_classes), columns ordered as `classes_`; one column per
        label for multilabel targets."""
        P, X = self._outputs(X, "predict_proba")
        if self.n_outputs_ == 1:
            P = self._net.backend.xp.concat([1.0 - P, P], axis=1)
        return to_place_of(P, X)

    def predict_log_proba(self, X: Any) -> Array:
        """The logarithm of `predict_proba`."""
        P, X = self._outputs(X, "predict_log_proba")
        xp = self._net.backend.xp
        if self.n_outputs_ == 1:
            P = xp.concat([1.0 - P, P], axis=1)
        return to_place_of(xp.log(P), X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multilayer perceptron regressor: scikit-learn's MLPRegressor, trained by xpnet's
    explicit backpropagation. loss="squared_error": identity outputs and half the squared
    error; loss="poisson": exp outputs and half the Poisson deviance. y may have several
    columns."""

    __doc__ += _PARAMETERS_DOC

    _parameter_constraints: ClassVar[dict] = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: Any = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: Any = 10,
        max_fun: int = 15000,
        backend: str | None = None,
        device: Any = None,
        dtype: str | None = None,
        dropout: float = 0.0,
    ) -> None:
        _set_parameters(self, locals())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """Train on X (n_samples, n_features) and targets y (from the weights of the last fit
        when warm_start is set, else from scratch)."""
        return self._fit(X, y, sample_weight, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One more epoch on X, y ("sgd", "adam"; with "lbfgs", as in scikit-learn, another
        L-BFGS run from the current weights)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _validate_input(self, X, y, incremental, reset):
        X, y = self._validate(X, y, reset=reset, y_numeric=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _out_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _validation_score(self, P, T, w):
        """R^2 averaged over the outputs, as scikit-learn's score; NaN when the predictions
        are not finite (a diverging fit), as scikit-learn records it."""
        if not np.all(np.isfinite(P)):
            return float("nan")
        return float(r2_score(T, P, sample_weight=w))

    def predict(self, X: Any) -> Array:
        """Predictions (n_samples,) for one target, else (n_samples, n_outputs), in X's
        library and device."""
        P, X = self._outputs(X, "predict")
        if self.n_outputs_ == 1:
            P = P[:, 0]
        return to_place_of(P, X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
