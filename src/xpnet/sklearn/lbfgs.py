"""scikit-learn's "lbfgs" solver: scipy.optimize.minimize(method="L-BFGS-B") on the flat
parameter vector, with the objective and gradient of xpnet's backprop. scipy works on the host
in float64, so each evaluation copies the parameters to the net's device and the loss and
gradient back (as scikit-learn does on other libraries); the vector is in scikit-learn's order
(every weight matrix, then every bias), so the optimizer sees the numbers it sees there."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.optimize
from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
from sklearn.utils.optimize import _check_optimize_result

from ..backend import asarray, to_numpy
from ._data import Data
from .losses import objective, weight_mask

if TYPE_CHECKING:
    from ._base import BaseMLP

__all__ = ["fit_lbfgs"]


def _sklearn_order(net: Any) -> np.ndarray:
    """Indices into the net's flat parameters that list them in scikit-learn's order."""
    layout = net.parameter_buffer.layout
    weights = [np.arange(s.start, s.stop) for s in layout if len(s.shape) >= 2]
    biases = [np.arange(s.start, s.stop) for s in layout if len(s.shape) < 2]
    return np.concatenate(weights + biases)


def fit_lbfgs(est: BaseMLP, data: Data) -> None:
    """Minimise the full-batch objective with at most max_iter iterations and max_fun
    evaluations, stopping when the projected gradient is below tol (scipy's gtol)."""
    net = est._net
    buffer = net.parameter_buffer
    order = _sklearn_order(net)
    inverse = np.argsort(order)
    X, T, w = data.batch(0, data.n)
    loss, mask = est._make_loss(), weight_mask(net)
    alpha = float(est.alpha)

    def value_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        buffer.store_flat_parameters(asarray(x[inverse], like=net))
        value, G = objective(net, loss, X, T, w, alpha, mask)
        return float(to_numpy(value)), to_numpy(G)[order].astype(np.float64)

    iprint = 1 if est.verbose is True or est.verbose >= 1 else -1
    result = scipy.optimize.minimize(
        value_and_gradient,
        to_numpy(buffer.flat_parameters())[order].astype(np.float64),
        method="L-BFGS-B",
        jac=True,
        options={
            "maxfun": est.max_fun,
            "maxiter": est.max_iter,
            "gtol": est.tol,
            **_get_additional_lbfgs_options_dict("iprint", iprint),
        },
    )
    est.n_iter_ = _check_optimize_result("lbfgs", result, est.max_iter)
    est.loss_ = float(result.fun)
    buffer.store_flat_parameters(asarray(result.x[inverse], like=net))
