"""Maximum-likelihood fits of the BTYD models, with standard errors and intervals.

- :func:`fit_purchases` (BG/NBD, Pareto/NBD, MBG/NBD) and :func:`fit_spend` (Gamma-Gamma)
  check their input and call :func:`fit_histories`, which fits on distinct histories;
- parameters are optimized on the log scale (L-BFGS-B), from the fit on a fixed random
  sample of histories when there are more than :data:`WARM_START` of them;
- standard errors from the observed information (a finite-difference Hessian at the
  optimum), intervals ``exp(log θ ± z·se)``; :class:`Fit` holds the result;
- a Gamma-Gamma whose q and v run off to infinity (spend per purchase does not vary between
  customers beyond chance) is fitted at that limit, one spend level for all, instead of
  failing (:func:`fit_spend`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

from segkit.clv.models import (
    MODELS,
    PURCHASE_MODELS,
    SPEND_MODEL,
    Histories,
    check_summary,
    compress,
)
from segkit.core.checks import check_scalar, show_rows
from segkit.core.errors import SegkitError

#: Above this many distinct histories, a fit starts from the fit on a sample of them.
WARM_START = 40_000
#: Bound of the log-parameters during the optimization.
_LOG_BOUND = 12.0


@dataclass
class Fit:
    """A fitted model: parameters, their standard errors and intervals, fit statistics."""

    model: str
    params: dict[str, float]
    se: dict[str, float]
    ci_low: dict[str, float]
    ci_high: dict[str, float]
    cov_log: np.ndarray = field(repr=False)  # covariance of the log-parameters
    loglik: float = np.nan
    n: int = 0  # customers the fit used
    n_unique: int = 0  # distinct histories it was computed on
    iterations: int = 0
    seconds: float = 0.0
    #: Set when the fit is a model's boundary case, not an interior optimum: what it means
    #: (a Gamma-Gamma whose q and v run off: one spend level for all, :func:`fit_spend`).
    limit: str = ""

    #: A parameter whose log has a standard error above this is reported as weakly
    #: identified (its 95 % interval spans more than a factor of ~25,000).
    WEAK_SE_LOG = 2.5

    @property
    def weak(self) -> list[str]:
        """Parameters the data barely identify (huge interval): interpret with care."""
        se_log = np.sqrt(np.diag(self.cov_log))
        return [n for n, v in zip(self.params, se_log, strict=True) if v > self.WEAK_SE_LOG]

    @property
    def spend_level(self) -> float:
        """A Gamma-Gamma's population mean spend per purchase, p v / (q - 1) (at its
        :attr:`limit`, every customer's expected spend)."""
        p, q, v = (self.params[k] for k in ("p", "q", "v"))
        return p * v / (q - 1)

    @property
    def theta(self) -> np.ndarray:
        """The parameters as an array, in the model's order."""
        return np.array(list(self.params.values()))

    @property
    def spec(self) -> Any:
        """The model (:data:`~segkit.clv.models.MODELS`) that was fitted."""
        return MODELS[self.model]

    @property
    def aic(self) -> float:
        """Akaike information criterion."""
        return 2 * len(self.params) - 2 * self.loglik

    @property
    def bic(self) -> float:
        """Bayesian information criterion (``n`` customers)."""
        return len(self.params) * np.log(self.n) - 2 * self.loglik

    def to_dict(self) -> dict:
        """Parameters, standard errors, intervals and fit statistics as plain JSON values."""
        return {
            **{k: float(v) for k, v in self.params.items()},
            "se": {k: float(v) for k, v in self.se.items()},
            "ci_low": {k: float(v) for k, v in self.ci_low.items()},
            "ci_high": {k: float(v) for k, v in self.ci_high.items()},
            "loglik": float(self.loglik),
            "aic": float(self.aic),
            "bic": float(self.bic),
            "n": int(self.n),
            "n_unique": int(self.n_unique),
            "weakly_identified": self.weak,
            "cov_log": np.asarray(self.cov_log, float).tolist(),
            **({"limit": self.limit} if self.limit else {}),
        }

    @classmethod
    def from_dict(cls, model: str, saved: dict) -> Fit:
        """The fit :meth:`to_dict` wrote (``clv_params.json``), for predictions.

        Raises
        ------
        SegkitError
            An unknown model, or a parameter or the covariance missing (a file written
            before segkit saved the covariance: rerun the CLV stage).
        """
        if model not in MODELS:
            raise SegkitError(f"CLV model {model!r}: unknown, expected one of {sorted(MODELS)}")
        names = MODELS[model].names
        missing = [k for k in (*names, "cov_log") if k not in saved]
        if missing:
            raise SegkitError(
                f"saved CLV model {model!r} lacks {missing}: it was written by an older "
                "segkit; rerun the CLV stage (segkit run ... --stages clv)"
            )
        cov = np.asarray(saved["cov_log"], float)
        if cov.shape != (len(names), len(names)):
            raise SegkitError(
                f"saved CLV model {model!r}: cov_log is {cov.shape}, expected "
                f"{len(names)} x {len(names)}"
            )

        def by_name(key: str) -> dict[str, float]:
            return {k: float(saved.get(key, {}).get(k, np.nan)) for k in names}

        return cls(
            model=model,
            params={k: float(saved[k]) for k in names},
            se=by_name("se"),
            ci_low=by_name("ci_low"),
            ci_high=by_name("ci_high"),
            cov_log=cov,
            loglik=float(saved.get("loglik", np.nan)),
            n=int(saved.get("n", 0)),
            n_unique=int(saved.get("n_unique", 0)),
            limit=str(saved.get("limit", "")),
        )

    def table(self) -> pd.DataFrame:
        """Parameters with standard errors and 95 % intervals, one row each; a Gamma-Gamma
        at its limit shows p and the spend level (q and v only carry it, see :attr:`limit`)."""
        if self.limit and self.model == SPEND_MODEL:
            p, mean = self.params["p"], self.spend_level
            sd = float(
                np.sqrt(max(self.cov_log[0, 0] + self.cov_log[2, 2] + 2 * self.cov_log[0, 2], 0))
            )
            zq = stats.norm.ppf(0.975)
            return pd.DataFrame(
                {
                    "model": MODELS[self.model].label,
                    "parameter": ["p", "mean spend per purchase (q, v: no spread)"],
                    "estimate": [p, mean],
                    "se": [self.se["p"], mean * sd],
                    "ci_low": [self.ci_low["p"], mean * np.exp(-zq * sd)],
                    "ci_high": [self.ci_high["p"], mean * np.exp(zq * sd)],
                }
            )
        return pd.DataFrame(
            {
                "model": MODELS[self.model].label,
                "parameter": list(self.params),
                "estimate": list(self.params.values()),
                "se": list(self.se.values()),
                "ci_low": list(self.ci_low.values()),
                "ci_high": list(self.ci_high.values()),
            }
        )

    # predictions, in the time unit of the data the model was fitted on
    def p_alive(self, x: ArrayLike, tx: ArrayLike, T: ArrayLike) -> np.ndarray:
        """P(alive at T | x, t_x, T)."""
        return self.spec.p_alive(self.theta, x, tx, T)

    def expected(self, t: ArrayLike, x: ArrayLike, tx: ArrayLike, T: ArrayLike) -> np.ndarray:
        """E[X(t) | x, t_x, T]: expected purchases in the next ``t`` time units."""
        return self.spec.expected(self.theta, t, x, tx, T)

    def expected_new(self, t: ArrayLike) -> np.ndarray:
        """E[X(t)] for a customer who has just made a first purchase."""
        return self.spec.expected_new(self.theta, t)

    def expected_spend(self, x: ArrayLike, mx: ArrayLike) -> np.ndarray:
        """E[M | x, m_x]: expected spend per purchase (Gamma-Gamma fits)."""
        return self.spec.expected_spend(self.theta, x, mx)


# ----------------------------------------------------------------------------- optimization


def _hessian(f: Callable[[np.ndarray], float], z: np.ndarray, h: float = 2e-3) -> np.ndarray:
    """Central-difference Hessian of a scalar function ``f`` at ``z``."""
    k = len(z)
    H = np.empty((k, k))
    f0 = f(z)
    for i in range(k):
        ei = np.eye(k)[i] * h
        H[i, i] = (f(z + ei) - 2 * f0 + f(z - ei)) / h**2
        for j in range(i):
            ej = np.eye(k)[j] * h
            H[i, j] = H[j, i] = (
                f(z + ei + ej) - f(z + ei - ej) - f(z - ei + ej) + f(z - ei - ej)
            ) / (4 * h**2)
    return H


def _hessian_from_gradient(
    g: Callable[[np.ndarray], np.ndarray], z: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Central differences of an analytic gradient ``g``, symmetrized."""
    cols = [(g(z + h * e) - g(z - h * e)) / (2 * h) for e in np.eye(len(z))]
    H = np.column_stack(cols)
    return (H + H.T) / 2


class _Objective:
    """Mean negative log-likelihood per customer of ``spec`` on ``h``, in log-parameters."""

    def __init__(self, spec: Any, h: Histories):
        self.spec, self.h = spec, h
        self.total_w = h.weight.sum()
        self.cache = spec.cache(h)

    def nll(self, z: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            ll = self.spec.loglik(np.exp(z), self.h, cache=self.cache)
        val = -float(self.h.weight @ ll) / self.total_w
        return val if np.isfinite(val) else 1e10

    def nll_grad(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        spec, h = self.spec, self.h
        theta = np.exp(z)
        with np.errstate(all="ignore"):
            if hasattr(spec, "total"):
                tot, g = spec.total(theta, h, self.cache)
            else:
                ll, g = spec.loglik(theta, h, grad=True, cache=self.cache)
                tot, g = h.weight @ ll, h.weight @ g
        val = -float(tot) / self.total_w
        gz = -g * theta / self.total_w
        if not (np.isfinite(val) and np.all(np.isfinite(gz))):
            return 1e10, np.zeros_like(z)
        return val, gz

    def hessian(self, z: np.ndarray) -> np.ndarray:
        """Hessian of the total negative log-likelihood at ``z``."""
        if self.spec.analytic_gradient:  # 2k gradient calls instead of ~2k^2 function calls
            return _hessian_from_gradient(lambda zz: self.nll_grad(zz)[1] * self.total_w, z)
        return _hessian(lambda zz: self.nll(zz) * self.total_w, z)


def _start(model: str, h: Histories, n: int, *, alpha: float, seed: int) -> np.ndarray:
    """Log-parameters to start from: the model's start, or with more than
    :data:`WARM_START` histories the fit on a fixed random sample of them (the full-data
    optimizer then needs a handful of iterations instead of ~20)."""
    if len(h.weight) <= WARM_START:
        return np.log(MODELS[model].start(h))
    pick = np.sort(np.random.default_rng(seed).choice(len(h.weight), WARM_START, replace=False))
    sub = Histories(h.x[pick], h.tx[pick], h.T[pick], h.weight[pick], pick)
    return np.log(fit_histories(model, sub, n, alpha=alpha, seed=seed).theta)


def _minimize(obj: _Objective, z0: np.ndarray) -> Any:
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(obj.spec.names)
    if obj.spec.analytic_gradient:
        # Pareto/NBD keeps tight tolerances: its likelihood is nearly flat along s and beta
        # together (see below), and the default ftol stops short on that ridge.
        tight = {"ftol": 1e-13, "gtol": 1e-9} if getattr(obj.spec, "ridge", False) else {}
        return optimize.minimize(
            obj.nll_grad,
            z0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 1000, **tight},
        )
    return optimize.minimize(
        # No analytic gradient (Pareto/NBD): central differences and tight tolerances. Its
        # likelihood is nearly flat along s and beta together (Hessian condition ~5,000 on
        # the demo); with forward differences and scipy's default ftol/gtol the optimizer
        # stopped short on that ridge, at a point set by the last bits of the arithmetic,
        # so the 4th digit of a forecast changed with the CPU's numpy/BLAS kernels.
        obj.nll,
        z0,
        jac="3-point",
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
    )


class RunOff(SegkitError):
    """A parameter ran off to a bound of the optimization: ``names``, ``upper`` (to the
    upper bound, i.e. to infinity)."""

    def __init__(self, message: str, names: list[str], upper: list[bool]):
        super().__init__(message)
        self.names, self.upper = names, upper


def _check_optimum(res: Any, spec: Any, n: int) -> None:
    """Raise when the optimizer failed or a parameter ran off to a bound."""
    label = spec.label
    if not res.success or not np.isfinite(res.fun) or res.fun >= 1e9:
        raise SegkitError(
            f"{label} fit did not converge on {n:,} customers ({res.message}); "
            "check the BTYD summary (time_unit, observation_end) or drop this model from "
            "clv.models"
        )
    z = res.x
    at_bound = np.isclose(np.abs(z), _LOG_BOUND, atol=1e-3)
    if at_bound.any():
        bad = [spec.names[i] for i in np.flatnonzero(at_bound)]
        raise RunOff(
            f"{label}: the data cannot identify {bad} (the estimate runs off to "
            f"{np.exp(z[at_bound]).round(8).tolist()}); this happens with very few repeat "
            "buyers or histories that the model cannot describe. Drop this model from "
            "clv.models or use a longer observation period.",
            bad,
            [bool(v > 0) for v in z[at_bound]],
        )


def _covariance(H: np.ndarray, label: str, n: int) -> np.ndarray:
    """Covariance of the log-parameters from the Hessian ``H`` of the negative
    log-likelihood."""
    if not np.all(np.isfinite(H)):
        raise SegkitError(
            f"{label}: the likelihood could not be evaluated around the estimate on {n:,} "
            "customers; the data cannot identify the model. Drop it from clv.models."
        )
    # The optimizer converged, but the likelihood may be (numerically) flat in a direction,
    # e.g. drop-out when almost nobody drops out. Rather than fail the stage, floor the
    # curvature there: those parameters get enormous standard errors and are reported as
    # weakly identified (Fit.weak), which the findings spell out.
    w, V = np.linalg.eigh((H + H.T) / 2)
    floor = 1e-10 * max(np.abs(w).max(), 1.0)
    return (V / np.maximum(w, floor)) @ V.T


def fit_histories(model: str, h: Histories, n: int, *, alpha: float = 0.05, seed: int = 0) -> Fit:
    """Fit ``model`` to compressed histories by maximum likelihood.

    Parameters
    ----------
    model
        A name in :data:`~segkit.clv.models.MODELS`.
    h
        Distinct histories with their counts (:func:`~segkit.clv.models.compress`).
    n
        Number of customers behind ``h`` (for the BIC and the messages).
    alpha
        1 - confidence level of the intervals.
    seed
        Seed of the random sample of histories the warm start is fitted on (used only
        with more than :data:`WARM_START` distinct histories).

    Returns
    -------
    Fit

    Raises
    ------
    SegkitError
        When the optimizer does not converge, a parameter runs off to a bound, or the
        likelihood cannot be evaluated around the estimate.
    """
    spec = MODELS[model]
    obj = _Objective(spec, h)
    t0 = time.perf_counter()
    z0 = _start(model, h, n, alpha=alpha, seed=seed)
    res = _minimize(obj, z0)
    _check_optimum(res, spec, n)
    z = res.x
    cov = _covariance(obj.hessian(z), spec.label, n)
    theta = np.exp(z)
    se_log = np.sqrt(np.diag(cov))
    se_log = np.minimum(se_log, 300.0)  # keeps exp() finite for unidentified parameters
    zq = stats.norm.ppf(1 - alpha / 2)
    names = spec.names
    return Fit(
        model=model,
        params=dict(zip(names, theta.tolist(), strict=True)),
        se=dict(zip(names, (theta * se_log).tolist(), strict=True)),
        ci_low=dict(zip(names, np.exp(z - zq * se_log).tolist(), strict=True)),
        ci_high=dict(zip(names, np.exp(z + zq * se_log).tolist(), strict=True)),
        cov_log=cov,
        loglik=-res.fun * obj.total_w,
        n=n,
        n_unique=len(h.weight),
        iterations=int(res.nit),
        seconds=time.perf_counter() - t0,
    )


# ----------------------------------------------------------------------------- entry points


def fit_purchases(
    model: str, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, seed: int = 0
) -> Fit:
    """Fit a purchase model (``bgnbd``, ``pareto_nbd``, ``mbgnbd``) to a BTYD summary.

    Parameters
    ----------
    model
        One of :data:`~segkit.clv.models.PURCHASE_MODELS`.
    frequency, recency, T
        The BTYD summary (repeat purchases, last minus first purchase, observation end
        minus first purchase), in one time unit.
    seed
        Seed of the warm start's sample of histories (see :func:`fit_histories`).

    Returns
    -------
    Fit

    Raises
    ------
    SegkitError
        For an unknown model, an unusable summary (:func:`~segkit.clv.models.check_summary`),
        no customers, no repeat buyers, or a fit that fails (:func:`fit_histories`).

    Examples
    --------
    >>> fit = fit_purchases("bgnbd", cal["frequency"], cal["recency"], cal["T"])  # doctest: +SKIP
    >>> fit.params                                                              # doctest: +SKIP
    {'r': 0.2426, 'alpha': 4.4136, 'a': 0.7929, 'b': 2.4259}
    >>> fit_purchases("bgnbd", [0, 0], [0.0, 0.0], [5.0, 6.0])
    Traceback (most recent call last):
    ...
    segkit.core.errors.SegkitError: BG/NBD: none of the 2 customers made a repeat purchase ...
    """
    check_scalar(model, "model", str, in_=PURCHASE_MODELS)
    check_summary(frequency, recency, T)
    freq = np.asarray(frequency, float)
    if len(freq) == 0:
        raise SegkitError(f"{MODELS[model].label}: the BTYD summary has no customers")
    if not (freq > 0).any():
        raise SegkitError(
            f"{MODELS[model].label}: none of the {len(freq):,} customers made a repeat purchase "
            "(frequency is 0 for all), so purchase rates and drop-out cannot be told apart; "
            "a longer observation period or a finer time unit is needed"
        )
    return fit_histories(model, compress(frequency, recency, T), len(freq), seed=seed)


def fit_spend(frequency: ArrayLike, monetary: ArrayLike, *, seed: int = 0) -> Fit:
    """Fit the Gamma-Gamma model on repeat buyers' (frequency, mean spend).

    Parameters
    ----------
    frequency, monetary
        Repeat purchases and their mean value per customer; customers without repeat
        purchases are left out.
    seed
        Seed of the warm start's sample of buyers (see :func:`fit_histories`).

    Returns
    -------
    Fit
        At the limit of one spend level for all (:attr:`Fit.limit` says so) when q and v
        run off to infinity, where the interior fit would stop at a bound.

    Raises
    ------
    SegkitError
        With fewer than 10 repeat buyers, or a repeat buyer whose monetary value is not
        positive (the rows are named).
    """
    freq = np.asarray(frequency, float)
    m = np.asarray(monetary, float)
    rep = freq > 0
    if rep.sum() < 10:
        raise SegkitError(
            f"Gamma-Gamma: {int(rep.sum())} repeat buyers; at least 10 are needed to fit "
            "spend per purchase"
        )
    bad = rep & ~(m > 0)
    if bad.any():
        df = pd.DataFrame({"frequency": freq, "monetary": m})
        raise SegkitError(
            f"Gamma-Gamma: monetary must be > 0 for repeat buyers; found "
            f"{m[bad][:3].tolist()} in {show_rows(df, bad)}"
        )
    h = Histories(freq[rep], m[rep], np.zeros(rep.sum()), np.ones(rep.sum()), np.arange(rep.sum()))
    try:
        return fit_histories(SPEND_MODEL, h, int(rep.sum()), seed=seed)
    except RunOff as exc:
        if not (set(exc.names) <= {"q", "v"} and all(exc.upper)):
            raise
        return _fit_one_spend_level(freq[rep], m[rep])


#: q of a Gamma-Gamma at its limit (:func:`_fit_one_spend_level`): the weight of a
#: customer's own mean spend, p x / (p x + q - 1), is then below 1e-6 for x p < 10^4.
LIMIT_Q = 1e10


def _fit_one_spend_level(x: np.ndarray, m: np.ndarray, alpha: float = 0.05) -> Fit:
    """Gamma-Gamma at its limit q, v -> infinity with q / v -> nu: every customer spends
    Gamma(p, nu) per purchase, with the same nu, so a mean of x purchases is
    Gamma(p x, nu x). Fitted by maximum likelihood (nu = p sum(x) / sum(x m) given p;
    p by a one-dimensional search), returned as a Gamma-Gamma :class:`Fit` with
    q = :data:`LIMIT_Q` and v = q / nu, whose expected spend is p / nu for every customer
    (to 1e-6), so that predictions, engines and ``clv_params.json`` need nothing new.

    Written here rather than fitted with scipy.stats.gamma: the shape and rate of each
    customer's mean scale with its x, which no scipy distribution's fit takes.
    """
    sx, sxm, lm = x.sum(), (x * m).sum(), np.log(m)

    def nll(log_p: float) -> float:
        pv = np.exp(log_p)
        nu = pv * sx / sxm
        px = pv * x
        return -float(
            (px * np.log(nu * x) - special.gammaln(px) + (px - 1) * lm - nu * x * m).sum()
        )

    t0 = time.perf_counter()
    res = optimize.minimize_scalar(
        nll, bounds=(-_LOG_BOUND, _LOG_BOUND), method="bounded", options={"xatol": 1e-10}
    )
    p = float(np.exp(res.x))
    nu = p * sx / sxm
    # observed information in (log p, log nu): theta_i theta_j d2(-ll)/d theta_i d theta_j
    h_pp = (x**2 * special.polygamma(1, p * x)).sum() * p * p
    h_pn = -sx * p  # -(sum x / nu) * p * nu
    h_nn = p * sx  # (sum p x / nu^2) * nu^2
    cov2 = np.linalg.inv(np.array([[h_pp, h_pn], [h_pn, h_nn]]))
    cov = np.zeros((3, 3))  # log v = log q - log nu; log q is fixed
    cov[0, 0], cov[2, 2] = cov2[0, 0], cov2[1, 1]
    cov[0, 2] = cov[2, 0] = -cov2[0, 1]
    q, v = LIMIT_Q, LIMIT_Q / nu
    theta, se_log = np.array([p, q, v]), np.sqrt(np.diag(cov))
    zq = stats.norm.ppf(1 - alpha / 2)
    names = MODELS[SPEND_MODEL].names
    return Fit(
        model=SPEND_MODEL,
        params=dict(zip(names, theta.tolist(), strict=True)),
        se=dict(zip(names, (theta * se_log).tolist(), strict=True)),
        ci_low=dict(zip(names, (theta * np.exp(-zq * se_log)).tolist(), strict=True)),
        ci_high=dict(zip(names, (theta * np.exp(zq * se_log)).tolist(), strict=True)),
        cov_log=cov,
        loglik=-float(res.fun),
        n=len(x),
        n_unique=len(x),
        iterations=int(res.nfev),
        seconds=time.perf_counter() - t0,
        limit=(
            "spend per purchase does not vary between customers beyond chance (q and v run "
            "off to infinity): every customer's expected spend per purchase is the same, "
            "p / nu"
        ),
    )


def spend_frequency_correlation(frequency: ArrayLike, monetary: ArrayLike) -> float:
    """Pearson correlation of frequency and mean spend among repeat buyers (Gamma-Gamma
    assumes they are independent; |r| above ~0.3 makes its CLV doubtful).

    Examples
    --------
    >>> spend_frequency_correlation([0, 1, 2, 3], [0.0, 10.0, 20.0, 30.0])
    1.0
    >>> spend_frequency_correlation([0, 1], [0.0, 10.0])
    nan
    """
    freq = np.asarray(frequency, float)
    rep = freq > 0
    if rep.sum() < 3:
        return float("nan")
    return float(np.corrcoef(freq[rep], np.asarray(monetary, float)[rep])[0, 1])
