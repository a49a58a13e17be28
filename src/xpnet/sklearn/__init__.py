"""scikit-learn estimators over xpnet's MLP: `MLPClassifier` and `MLPRegressor`.

They are scikit-learn's own MLP estimators, parameter for parameter and number for number:
the same initial weights, shuffles and early-stopping split drawn from `random_state`, the
same losses, L2 penalty, update rules (`optimizers`), learning-rate schedules and stopping
rules, and L-BFGS through scipy (`lbfgs`), so that on NumPy float64 the fitted `coefs_` and
`intercepts_` are scikit-learn's to rounding. The backprop is xpnet's, written against the
array API: scikit-learn's rule for array libraries holds. Without
`sklearn.set_config(array_api_dispatch=True)` inputs are converted to NumPy and NumPy comes
out; with it, training happens in X's library (NumPy, CuPy, PyTorch, array-api-strict) and on
X's device, the fitted `coefs_` live there, and predictions come back there. `backend=` /
`device=` instead train wherever they say, moving the data there explicitly; predictions still
come back in X's library and device.

Needs the optional extra: `pip install 'xpnet[sklearn]'`. `import xpnet` does not import this
package (or scikit-learn).
"""

from ._estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
