"""Stage 04, customer lifetime value: BTYD models fitted by maximum likelihood.

Why segkit carries its own models
---------------------------------
``lifetimes``, the light library everyone used, is archived and partly broken on pandas 3
(``calibration_and_holdout_data`` and ``plot_history_alive`` fail); ``pymc-marketing`` is
maintained but fits through PyMC (about 12 s to compile on first use, ~4 s per BG/NBD fit
of a million customers, and default priors that do not give the maximum-likelihood
answer). The models here are plain maximum-likelihood fits in numpy/scipy:

- log-space likelihoods (``logaddexp`` of the two likelihood branches, ``gammaln`` /
  ``betaln``), so that customers with hundreds of purchases do not overflow;
- analytic gradients for BG/NBD, MBG/NBD and Gamma-Gamma (digamma terms). The Pareto/NBD
  likelihood contains Gauss's hypergeometric function, whose derivative in its parameters
  scipy does not provide, so its gradient is by central differences;
- parameters optimized on the log scale (L-BFGS-B), standard errors from the observed
  information (a finite-difference Hessian at the optimum), confidence intervals
  ``exp(log θ ± z·se)`` that stay positive;
- fitted on the unique (frequency, recency, T) histories weighted by their counts, so the
  cost grows with the number of distinct histories, not of customers; the terms that
  depend on one of x, t_x or T alone are computed once per distinct value.

Models: ``bgnbd`` (Fader, Hardie & Lee 2005, "Counting your customers the easy way"),
``pareto_nbd`` (Schmittlein, Morrison & Colombo 1987; likelihood as in Fader & Hardie 2005,
"A note on deriving the Pareto/NBD model"), ``mbgnbd`` (Batislam, Denizel & Filiztekin
2007) and ``gamma_gamma`` for spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV";
Fader & Hardie 2013, "The Gamma-Gamma model of monetary value").

CLV over a horizon of H months is
``sum_{i=1..H} (E[X(i months)] - E[X(i-1 months)]) · E[M] · margin / (1 + d)^(i/12)``
with ``d`` the annual discount rate, the expected purchases conditional on each customer's
history, and ``E[M]`` the Gamma-Gamma expected spend per purchase. Its interval reflects the
uncertainty of the fitted parameters (delta method on the log scale), not the much larger
customer-to-customer randomness of what will actually be bought.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from segkit.core.checks import SegkitError, check_columns, check_scalar, show_rows
from segkit.stages.run import Run, Skipped

#: Days per time unit of the BTYD summary.
UNIT_DAYS = {"D": 1.0, "W": 7.0}
DAYS_PER_MONTH = 365.25 / 12


# ----------------------------------------------------------------------------- data


class Histories(NamedTuple):
    """Unique (x, t_x, T) histories with their counts and the map back to customers."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    weight: np.ndarray
    inverse: np.ndarray  # customer i has history inverse[i]


def check_summary(
    frequency, recency, T, monetary=None, *, name: str = "BTYD summary", repeat_only_monetary=True
) -> None:
    """Raise a :class:`SegkitError` naming the rows when a BTYD summary is not usable."""
    df = pd.DataFrame({"frequency": frequency, "recency": recency, "T": T})
    bad = df.isna().any(axis=1)
    if bad.any():
        raise SegkitError(f"{name}: missing frequency, recency or T in {show_rows(df, bad)}")
    for col in ("frequency", "recency", "T"):
        neg = df[col] < 0
        if neg.any():
            raise SegkitError(f"{name}: {col} must be >= 0; negative in {show_rows(df, neg)}")
    frac = df["frequency"] != np.round(df["frequency"])
    if frac.any():
        raise SegkitError(
            f"{name}: frequency counts repeat purchases and must be whole; {show_rows(df, frac)}"
        )
    late = df["recency"] > df["T"] + 1e-9
    if late.any():
        raise SegkitError(
            f"{name}: recency (last minus first purchase) is greater than T (observation end "
            f"minus first purchase) in {show_rows(df, late)}; check data.observation_end"
        )
    zero_rec = (df["frequency"] > 0) & (df["recency"] <= 0)
    if zero_rec.any():
        raise SegkitError(
            f"{name}: customers with repeat purchases must have recency > 0; "
            f"{show_rows(df, zero_rec)}"
        )
    if monetary is not None:
        m = pd.Series(np.asarray(monetary, float), index=df.index)
        rows = df["frequency"] > 0 if repeat_only_monetary else pd.Series(True, index=df.index)
        bad_m = rows & ~(m > 0)
        if bad_m.any():
            raise SegkitError(
                f"{name}: monetary (mean value of repeat purchases) must be > 0 for repeat "
                f"buyers; found {m[bad_m].head(3).tolist()} in {show_rows(df, bad_m)}"
            )


def _distinct(*columns, sort: bool = True):
    """Distinct rows of ``columns``: (the distinct values of each column, each row's group
    number, the size of each group). One pandas grouping, shared by every compression."""
    df = pd.DataFrame({i: np.asarray(c, float) for i, c in enumerate(columns)})
    codes = df.groupby(list(df.columns), sort=sort).ngroup().to_numpy()
    counts = np.bincount(codes, minlength=codes.max() + 1 if len(codes) else 0)
    first = np.zeros(len(counts), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    return tuple(df[i].to_numpy()[first] for i in df.columns), codes, counts


def compress(frequency, recency, T) -> Histories:
    """Group customers by identical (frequency, recency, T); the fit works on the groups."""
    (x, tx, t), codes, counts = _distinct(frequency, recency, T)
    return Histories(x, tx, t, counts.astype(float), codes)


# ----------------------------------------------------------------------------- models


def _log1mexp(d: np.ndarray) -> np.ndarray:
    """log(1 - exp(d)) for d <= 0, accurate near 0 and at -inf."""
    d = np.minimum(d, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(d > -0.693, np.log(-np.expm1(d)), np.log1p(-np.exp(d)))


def _pairs(h: Histories):
    """Distinct (x, t_x) and (x, T) pairs of ``h`` with each history's index into them."""
    return [_pair_index(h.x, t) for t in (h.tx, h.T)]


class _Unique:
    """Distinct values of one column and the index of each row into them."""

    def __init__(self, values: np.ndarray):
        self.values, self.index = np.unique(values, return_inverse=True)


class BGNBD:
    """BG/NBD: Poisson purchases at rate λ ~ Gamma(r, α); after each repeat purchase the
    customer drops out with probability p ~ Beta(a, b) (Fader, Hardie & Lee 2005)."""

    name = "bgnbd"
    label = "BG/NBD"
    names = ("r", "alpha", "a", "b")
    analytic_gradient = True
    _mbg = 0  # 1 for MBG/NBD: drop-out possible at the first purchase too

    def start(self, h: Histories) -> np.ndarray:
        return np.array([1.0, max(float(np.average(h.T, weights=h.weight)), 1e-3), 1.0, 1.0])

    def loglik(self, theta, h: Histories, grad: bool = False, cache=None):
        """Per-history log-likelihood (and its gradient in the natural parameters)."""
        r, alpha, a, b = theta
        m = self._mbg
        c = cache or {}
        ux = c.get("x") or _Unique(h.x)
        xs = ux.values
        # terms that depend on x only
        ax = special.gammaln(r + xs) - special.gammaln(r) + r * np.log(alpha)
        bx = special.betaln(a, b + xs + m) - special.betaln(a, b)
        with np.errstate(divide="ignore"):
            lb = np.log(b + xs - 1 + m)
        x = h.x
        ix = ux.index
        rx = r + x
        lT = np.log(alpha + h.T)
        ltx = np.log(alpha + h.tx)
        c3 = -rx * lT
        c4 = np.log(a) - lb[ix] - rx * ltx
        if not m:
            c4 = np.where(x > 0, c4, -np.inf)
        lse = np.logaddexp(c3, c4)
        ll = ax[ix] + bx[ix] + lse
        if not grad:
            return ll
        w3 = np.exp(c3 - lse)
        w4 = np.exp(c4 - lse)
        dr = (special.digamma(r + xs) - special.digamma(r))[ix] + np.log(alpha)
        dr = dr - w3 * lT - w4 * ltx
        dalpha = r / alpha - w3 * rx / (alpha + h.T) - w4 * rx / (alpha + h.tx)
        dab = special.digamma(a + b) - special.digamma(a + b + xs + m)
        da = dab[ix] + w4 / a
        db = (special.digamma(b + xs + m) - special.digamma(b) + dab)[ix]
        with np.errstate(divide="ignore", invalid="ignore"):
            db = db - np.where(w4 > 0, w4 / (b + x - 1 + m), 0.0)
        return ll, np.column_stack([dr, dalpha, da, db])

    def total(self, theta, h: Histories, cache: dict):
        """Weighted log-likelihood and its gradient, summed: the fit's hot path. The same
        algebra as :meth:`loglik`, but x-only terms are summed per distinct x (weights
        ``W_x``) and the per-history work is a few vector passes."""
        r, alpha, a, b = theta
        m = self._mbg
        ux = cache["x"]
        xs, ix = ux.values, ux.index
        if "Wx" not in cache:
            cache["Wx"] = np.bincount(ix, weights=h.weight, minlength=len(xs))
            cache["rep"] = h.x > 0
        Wx, w = cache["Wx"], h.weight
        lT = np.log(alpha + h.T)
        ltx = np.log(alpha + h.tx)
        rx = r + h.x
        with np.errstate(divide="ignore"):
            lb = np.log(b + xs - 1 + m)
        c3 = -rx * lT
        c4 = np.log(a) - lb[ix] - rx * ltx
        if not m:
            c4[~cache["rep"]] = -np.inf
        d = c4 - c3  # log odds of the 'dropped out' branch
        lse = c3 + np.logaddexp(0.0, d)
        w4 = special.expit(d)
        w3 = 1.0 - w4
        ax = special.gammaln(r + xs) - special.gammaln(r) + r * np.log(alpha)
        bx = special.betaln(a, b + xs + m) - special.betaln(a, b)
        ll = Wx @ (ax + bx) + w @ lse
        ww3, ww4 = w * w3, w * w4
        dr = Wx @ (special.digamma(r + xs) - special.digamma(r)) + Wx.sum() * np.log(alpha)
        dr -= ww3 @ lT + ww4 @ ltx
        dalpha = Wx.sum() * r / alpha - ww3 @ (rx / (alpha + h.T)) - ww4 @ (rx / (alpha + h.tx))
        dab = special.digamma(a + b) - special.digamma(a + b + xs + m)
        W4x = np.bincount(ix, weights=ww4, minlength=len(xs))
        da = Wx @ dab + W4x.sum() / a
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_b = np.where(W4x > 0, W4x / (b + xs - 1 + m), 0.0)
        db = Wx @ (special.digamma(b + xs + m) - special.digamma(b) + dab) - inv_b.sum()
        return ll, np.array([dr, dalpha, da, db])

    def p_alive(self, theta, x, tx, T):
        r, alpha, a, b = theta
        m = self._mbg
        x, tx, T = (np.asarray(v, float) for v in (x, tx, T))
        with np.errstate(divide="ignore", invalid="ignore"):
            lo = (
                np.log(a)
                - np.log(b + x - 1 + m)
                + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
            )
        if not m:
            lo = np.where(x > 0, lo, -np.inf)
        return special.expit(-lo)

    def expected(self, theta, t, x, tx, T):
        """E[X(t) | x, t_x, T]: expected purchases in the next ``t`` units."""
        return self.future(theta, t, x, T) * self.p_alive(theta, x, tx, T)

    def future(self, theta, t, x, T):
        """E[X(t) | x, T, alive at T]: depends on (x, T) only, so predictions compute it
        once per distinct (x, T) pair."""
        r, alpha, a, b = theta
        m = self._mbg
        x, T = np.asarray(x, float), np.asarray(T, float)
        t = np.asarray(t, float)
        z = t / (alpha + T + t)
        f = special.hyp2f1(r + x, b + x + m, a + b + x - 1 + m, z)
        head = (a + b + x - 1 + m) / (a - 1)
        return head * (1 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * f)

    def expected_new(self, theta, t):
        """E[X(t)] for a customer who has just made a first purchase (tracking plots)."""
        r, alpha, a, b = theta
        t = np.asarray(t, float)
        z = t / (alpha + t)
        if self._mbg:
            f = special.hyp2f1(r, b + 1, a + b, z)
            return b / (a - 1) * (1 - (alpha / (alpha + t)) ** r * f)
        f = special.hyp2f1(r, b, a + b - 1, z)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * f)


class MBGNBD(BGNBD):
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007): like BG/NBD, but a customer may also
    drop out right after the first purchase, so one-time buyers can be inactive."""

    name = "mbgnbd"
    label = "MBG/NBD"
    _mbg = 1


class ParetoNBD:
    """Pareto/NBD: Poisson purchases at rate λ ~ Gamma(r, α) while alive; lifetime
    exponential with rate μ ~ Gamma(s, β) (Schmittlein, Morrison & Colombo 1987)."""

    name = "pareto_nbd"
    label = "Pareto/NBD"
    names = ("r", "alpha", "s", "beta")
    analytic_gradient = False

    def start(self, h: Histories) -> np.ndarray:
        mt = max(float(np.average(h.T, weights=h.weight)), 1e-3)
        return np.array([1.0, mt, 1.0, mt])

    @staticmethod
    def _log_a0_part(theta, x, t):
        """log of 2F1(...; z(t)) / (max(α,β) + t)^(r+s+x), one of the two parts of A0."""
        r, alpha, s, beta = theta
        rsx = r + s + x
        if alpha >= beta:
            big, b2, dz = alpha, s + 1, alpha - beta
        else:
            big, b2, dz = beta, r + x, beta - alpha
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            f = special.hyp2f1(rsx, b2, rsx + 1, dz / (big + t))
            return np.log(f) - rsx * np.log(big + t)

    @classmethod
    def _terms(cls, theta, x, tx, T, pairs=None):
        """(log of the 'alive at T' term, log of the 'died in (t_x, T]' term).

        ``pairs`` (from :func:`_pairs`) evaluates the hypergeometric parts once per distinct
        (x, t_x) and (x, T) pair instead of once per history: they are most of the cost.
        """
        r, alpha, s, beta = theta
        rsx = r + s + x
        t1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        if pairs is None:
            l1 = cls._log_a0_part(theta, x, tx)
            l2 = cls._log_a0_part(theta, x, T)
        else:
            (px1, pt1, i1), (px2, pt2, i2) = pairs
            l1 = cls._log_a0_part(theta, px1, pt1)[i1]
            l2 = cls._log_a0_part(theta, px2, pt2)[i2]
        with np.errstate(invalid="ignore"):
            la0 = l1 + _log1mexp(l2 - l1)
        t2 = np.log(s) - np.log(rsx) + la0
        return t1, t2

    def loglik(self, theta, h: Histories, grad: bool = False, cache=None):
        r, alpha, s, beta = theta
        t1, t2 = self._terms(theta, h.x, h.tx, h.T, (cache or {}).get("pairs"))
        base = special.gammaln(r + h.x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        ll = base + np.logaddexp(t1, t2)
        if grad:
            raise NotImplementedError("Pareto/NBD has no analytic gradient here")
        return ll

    def p_alive(self, theta, x, tx, T):
        x, tx, T = (np.asarray(v, float) for v in (x, tx, T))
        t1, t2 = self._terms(theta, x, tx, T)
        return np.exp(t1 - np.logaddexp(t1, t2))

    def expected(self, theta, t, x, tx, T):
        return self.future(theta, t, x, T) * self.p_alive(theta, x, tx, T)

    def future(self, theta, t, x, T):
        """E[X(t) | x, T, alive at T]."""
        r, alpha, s, beta = theta
        x, T = np.asarray(x, float), np.asarray(T, float)
        t = np.asarray(t, float)
        lr = np.log(beta + T) - np.log(beta + T + t)  # log((β+T)/(β+T+t)) < 0
        # (β+T)/(s-1)·[1 - ((β+T)/(β+T+t))^(s-1)], with its limit (β+T)·log(...) at s = 1
        if abs(s - 1) > 1e-8:
            tail = (beta + T) * -np.expm1((s - 1) * lr) / (s - 1)
        else:
            tail = -(beta + T) * lr
        return (r + x) / (alpha + T) * tail

    def expected_new(self, theta, t):
        r, alpha, s, beta = theta
        t = np.asarray(t, float)
        lr = np.log(beta) - np.log(beta + t)
        if abs(s - 1) > 1e-8:
            return r * beta / alpha * -np.expm1((s - 1) * lr) / (s - 1)
        return -r * beta / alpha * lr


class GammaGamma:
    """Gamma-Gamma spend model: each purchase is worth z ~ Gamma(p, ν), ν ~ Gamma(q, v)
    across customers; fitted on repeat buyers' mean spend (Fader, Hardie & Lee 2005)."""

    name = "gamma_gamma"
    label = "Gamma-Gamma"
    names = ("p", "q", "v")
    analytic_gradient = True

    def start(self, h) -> np.ndarray:
        return np.array([1.0, 1.0, max(float(np.average(h.tx, weights=h.weight)), 1e-3)])

    def loglik(self, theta, h, grad: bool = False, cache=None):
        # here h.x is the number of repeat purchases and h.tx their mean value; the terms in
        # x alone are computed once per distinct x
        p, q, v = theta
        c = cache or {}
        ux = c.get("x") or _Unique(h.x)
        xs, ix = ux.values, ux.index
        x, mx = h.x, h.tx
        lm = c["lm"] if "lm" in c else np.log(mx)
        pxs = p * xs
        lvm = np.log(v + mx * x)
        lx_terms = special.gammaln(pxs + q) - special.gammaln(pxs) + pxs * np.log(xs)
        px = p * x
        ll = lx_terms[ix] - special.gammaln(q) + q * np.log(v) + (px - 1) * lm - (px + q) * lvm
        if not grad:
            return ll
        dpq = special.digamma(pxs + q)
        dp = (xs * (dpq - special.digamma(pxs) + np.log(xs)))[ix] + x * (lm - lvm)
        dq = dpq[ix] - special.digamma(q) + np.log(v) - lvm
        dv = q / v - (px + q) / (v + mx * x)
        return ll, np.column_stack([dp, dq, dv])

    @staticmethod
    def expected_spend(theta, x, mx):
        """E[M | x, m_x]: the customer's expected spend per purchase (population mean for
        customers without repeat purchases)."""
        p, q, v = theta
        x = np.asarray(x, float)
        mx = np.nan_to_num(np.asarray(mx, float))
        return p * (v + x * mx) / (p * x + q - 1)


MODELS = {m.name: m for m in (BGNBD(), ParetoNBD(), MBGNBD(), GammaGamma())}
PURCHASE_MODELS = ("bgnbd", "pareto_nbd", "mbgnbd")


# ----------------------------------------------------------------------------- fitting


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

    #: A parameter whose log has a standard error above this is reported as weakly
    #: identified (its 95 % interval spans more than a factor of ~25,000).
    WEAK_SE_LOG = 2.5

    @property
    def weak(self) -> list[str]:
        """Parameters the data barely identify (huge interval): interpret with care."""
        se_log = np.sqrt(np.diag(self.cov_log))
        return [n for n, v in zip(self.params, se_log, strict=True) if v > self.WEAK_SE_LOG]

    @property
    def theta(self) -> np.ndarray:
        return np.array(list(self.params.values()))

    @property
    def spec(self):
        return MODELS[self.model]

    @property
    def aic(self) -> float:
        return 2 * len(self.params) - 2 * self.loglik

    @property
    def bic(self) -> float:
        return len(self.params) * np.log(self.n) - 2 * self.loglik

    def to_dict(self) -> dict:
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
        }

    def table(self) -> pd.DataFrame:
        """Parameters with standard errors and 95 % intervals, one row each."""
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
    def p_alive(self, x, tx, T):
        return self.spec.p_alive(self.theta, x, tx, T)

    def expected(self, t, x, tx, T):
        return self.spec.expected(self.theta, t, x, tx, T)

    def expected_new(self, t):
        return self.spec.expected_new(self.theta, t)

    def expected_spend(self, x, mx):
        return self.spec.expected_spend(self.theta, x, mx)


def _hessian(f, z: np.ndarray, h: float = 1e-4) -> np.ndarray:
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


def _hessian_from_gradient(g, z: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of an analytic gradient ``g``, symmetrized."""
    cols = [(g(z + h * e) - g(z - h * e)) / (2 * h) for e in np.eye(len(z))]
    H = np.column_stack(cols)
    return (H + H.T) / 2


#: Above this many distinct histories, a fit starts from the fit on a sample of them.
WARM_START = 40_000


def _fit(model, h, n: int, alpha: float = 0.05) -> Fit:
    spec = MODELS[model]
    total_w = h.weight.sum()
    cache = {"x": _Unique(h.x)} if model in ("bgnbd", "mbgnbd") else None
    if model == "pareto_nbd":
        cache = {"pairs": _pairs(h)}
    if model == "gamma_gamma":
        cache = {"x": _Unique(h.x), "lm": np.log(h.tx)}

    def nll(z):
        with np.errstate(all="ignore"):
            ll = spec.loglik(np.exp(z), h, cache=cache)
        val = -float(h.weight @ ll) / total_w
        return val if np.isfinite(val) else 1e10

    def nll_grad(z):
        theta = np.exp(z)
        with np.errstate(all="ignore"):
            if hasattr(spec, "total"):
                tot, g = spec.total(theta, h, cache)
            else:
                ll, g = spec.loglik(theta, h, grad=True, cache=cache)
                tot, g = h.weight @ ll, h.weight @ g
        val = -float(tot) / total_w
        gz = -g * theta / total_w
        if not (np.isfinite(val) and np.all(np.isfinite(gz))):
            return 1e10, np.zeros_like(z)
        return val, gz

    t0 = time.perf_counter()
    bounds = [(-12.0, 12.0)] * len(spec.names)
    z0 = np.log(spec.start(h))
    if len(h.weight) > WARM_START:
        # fit a fixed random sample of histories first, then polish on all of them: the
        # full-data optimizer then needs a handful of iterations instead of ~20
        pick = np.sort(np.random.default_rng(0).choice(len(h.weight), WARM_START, replace=False))
        sub = Histories(h.x[pick], h.tx[pick], h.T[pick], h.weight[pick], pick)
        z0 = np.log(_fit(model, sub, n, alpha).theta)
    if spec.analytic_gradient:
        res = optimize.minimize(
            nll_grad, z0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 1000}
        )
    else:
        res = optimize.minimize(
            nll, z0, method="L-BFGS-B", bounds=bounds, options={"maxiter": 2000, "eps": 1e-7}
        )
    label = spec.label
    if not res.success or not np.isfinite(res.fun) or res.fun >= 1e9:
        raise SegkitError(
            f"{label} fit did not converge on {n:,} customers ({res.message}); "
            "check the BTYD summary (time_unit, observation_end) or drop this model from "
            "clv.models"
        )
    z = res.x
    at_bound = np.isclose(np.abs(z), 12.0, atol=1e-3)
    if at_bound.any():
        bad = [spec.names[i] for i in np.flatnonzero(at_bound)]
        raise SegkitError(
            f"{label}: the data cannot identify {bad} (the estimate runs off to "
            f"{np.exp(z[at_bound]).round(8).tolist()}); this happens with very few repeat "
            "buyers or histories that the model cannot describe. Drop this model from "
            "clv.models or use a longer observation period."
        )
    if spec.analytic_gradient:  # 2k gradient calls instead of ~2k^2 function calls
        H = _hessian_from_gradient(lambda zz: nll_grad(zz)[1] * total_w, z)
    else:
        H = _hessian(lambda zz: nll(zz) * total_w, z)
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
    cov = (V / np.maximum(w, floor)) @ V.T
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
        loglik=-res.fun * total_w,
        n=n,
        n_unique=len(h.weight),
        iterations=int(res.nit),
        seconds=time.perf_counter() - t0,
    )


def fit_purchases(model: str, frequency, recency, T) -> Fit:
    """Fit a purchase model (``bgnbd``, ``pareto_nbd``, ``mbgnbd``) to a BTYD summary.

    >>> fit = fit_purchases("bgnbd", cal["frequency"], cal["recency"], cal["T"])  # doctest: +SKIP
    >>> fit.params                                                              # doctest: +SKIP
    {'r': 0.2426, 'alpha': 4.4136, 'a': 0.7929, 'b': 2.4259}
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
    return _fit(model, compress(frequency, recency, T), len(freq))


def fit_spend(frequency, monetary) -> Fit:
    """Fit the Gamma-Gamma model on repeat buyers' (frequency, mean spend)."""
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
    return _fit("gamma_gamma", h, int(rep.sum()))


def spend_frequency_correlation(frequency, monetary) -> float:
    """Pearson correlation of frequency and mean spend among repeat buyers (Gamma-Gamma
    assumes they are independent; |r| above ~0.3 makes its CLV doubtful)."""
    freq = np.asarray(frequency, float)
    rep = freq > 0
    if rep.sum() < 3:
        return float("nan")
    return float(np.corrcoef(freq[rep], np.asarray(monetary, float)[rep])[0, 1])


# ----------------------------------------------------------------------------- CLV


def _months_in_units(time_unit: str) -> float:
    check_scalar(time_unit, "time_unit", str, in_=UNIT_DAYS)
    return DAYS_PER_MONTH / UNIT_DAYS[time_unit]


def _pair_index(x, T):
    """Distinct (x, T) pairs and each row's index into them."""
    (px, pT), codes, _ = _distinct(x, T, sort=False)
    return px, pT, codes


def discounted_purchases(
    fit: Fit,
    x,
    tx,
    T,
    horizon_months: int,
    discount_rate: float,
    time_unit: str,
    theta=None,
    pairs=None,
) -> np.ndarray:
    """Sum over months of the expected purchases in month i, discounted to today.

    The month-by-month expectation given alive depends on (x, T) only: it is computed once
    per distinct pair (``pairs`` from :func:`_pair_index` may be passed in) and multiplied
    by each history's probability alive.
    """
    check_scalar(horizon_months, "horizon_months", int, gt=0)
    check_scalar(discount_rate, "discount_rate", float, ge=0, lt=1)
    spec = fit.spec
    theta = fit.theta if theta is None else theta
    x, tx, T = (np.atleast_1d(np.asarray(v, float)) for v in (x, tx, T))
    px, pT, idx = pairs if pairs is not None else _pair_index(x, T)
    month = _months_in_units(time_unit)
    prev = np.zeros(len(px))
    total = np.zeros_like(prev)
    for i in range(1, horizon_months + 1):
        cur = spec.future(theta, i * month, px, pT)
        total += (cur - prev) / (1 + discount_rate) ** (i / 12)
        prev = cur
    return total[idx] * spec.p_alive(theta, x, tx, T)


def _delta_var(f, fit: Fit, base=None, eps: float = 1e-4) -> np.ndarray:
    """Per-row variance of log f(θ) from the covariance of the log-parameters (delta
    method); the gradient by forward differences from ``base = f(θ)`` when given, else
    central differences."""
    z = np.log(fit.theta)
    grads = []
    for i in range(len(z)):
        dz = np.zeros_like(z)
        dz[i] = eps
        with np.errstate(divide="ignore", invalid="ignore"):
            if base is not None:
                grads.append((np.log(f(np.exp(z + dz))) - np.log(base)) / eps)
            else:
                grads.append((np.log(f(np.exp(z + dz))) - np.log(f(np.exp(z - dz)))) / (2 * eps))
    G = np.column_stack(grads)
    return np.einsum("ij,jk,ik->i", G, fit.cov_log, G)


def predict(
    purchases: Fit,
    spend: Fit | None,
    summary: pd.DataFrame,
    *,
    horizon_months: int = 12,
    margin: float = 0.3,
    discount_rate: float = 0.1,
    time_unit: str = "W",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per-customer predictions from a BTYD summary (frequency, recency, T, monetary).

    Columns: ``p_alive``, ``expected_purchases`` (over the horizon), ``expected_spend``
    (per purchase), ``clv`` (margin × discounted expected revenue) with ``clv_low`` /
    ``clv_high`` (parameter uncertainty, delta method).
    """
    check_columns(summary, ["frequency", "recency", "T"], "BTYD summary")
    check_scalar(horizon_months, "clv.horizon_months", int, gt=0)
    check_scalar(margin, "clv.margin", float, gt=0, le=1)
    check_summary(summary["frequency"], summary["recency"], summary["T"])
    h = compress(summary["frequency"], summary["recency"], summary["T"])
    months = horizon_months * _months_in_units(time_unit)
    u_alive = purchases.p_alive(h.x, h.tx, h.T)
    u_exp = purchases.expected(months, h.x, h.tx, h.T)
    pairs = _pair_index(h.x, h.T)
    u_disc = discounted_purchases(
        purchases, h.x, h.tx, h.T, horizon_months, discount_rate, time_unit, pairs=pairs
    )
    # delta method on log(discounted purchases) w.r.t. the log-parameters; forward
    # differences (half the cost on the hot path, ample for an interval)
    var_p = _delta_var(
        lambda th: discounted_purchases(
            purchases, h.x, h.tx, h.T, horizon_months, discount_rate, time_unit, th, pairs=pairs
        ),
        purchases,
        base=u_disc,
    )
    inv = h.inverse
    out = pd.DataFrame(index=summary.index)
    if "customer_id" in summary:
        out["customer_id"] = summary["customer_id"].to_numpy()
    out["frequency"] = summary["frequency"].to_numpy()
    out["p_alive"] = u_alive[inv]
    out["expected_purchases"] = u_exp[inv]
    disc = u_disc[inv]
    var = var_p[inv]
    if spend is not None and "monetary" in summary:
        x = summary["frequency"].to_numpy(float)
        mx = summary["monetary"].to_numpy(float)
        es = spend.expected_spend(x, mx)
        var = var + _delta_var(lambda th: spend.spec.expected_spend(th, x, mx), spend)
        out["expected_spend"] = es
        out["clv"] = margin * disc * es
        zq = stats.norm.ppf(1 - alpha / 2)
        sd = np.sqrt(np.nan_to_num(var))
        out["clv_low"] = out["clv"] * np.exp(-zq * sd)
        out["clv_high"] = out["clv"] * np.exp(zq * sd)
    out["discounted_purchases"] = disc
    return out


# ----------------------------------------------------------------------------- holdout


def holdout_predictions(cal: pd.DataFrame, fits: dict[str, Fit]) -> pd.DataFrame:
    """Each model's expected holdout purchases per customer (one column per model)."""
    check_columns(
        cal, ["frequency", "recency", "T", "frequency_holdout", "duration_holdout"], "calibration"
    )
    t = cal["duration_holdout"].to_numpy()
    return pd.DataFrame(
        {n: f.expected(t, cal["frequency"], cal["recency"], cal["T"]) for n, f in fits.items()},
        index=cal.index,
    )


def holdout_by_frequency(
    cal: pd.DataFrame, fits: dict[str, Fit], censor: int = 7, pred: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Actual vs predicted holdout purchases per customer, by calibration frequency.

    ``cal`` is ``features.calibration_holdout`` output. One row per frequency 0..censor-1
    and ``censor+`` (as in Fader, Hardie & Lee 2005, figure 4), plus a ``total`` row with
    sums over all customers. ``pred``: :func:`holdout_predictions`, if already computed.
    """
    pred = holdout_predictions(cal, fits) if pred is None else pred
    df = pd.DataFrame({"frequency": cal["frequency"], "actual": cal["frequency_holdout"]})
    df[list(fits)] = pred[list(fits)]
    df["group"] = np.where(df["frequency"] >= censor, f"{censor}+", df["frequency"].astype(str))
    order = [str(i) for i in range(censor)] + [f"{censor}+"]
    g = df.groupby("group")
    out = g[["actual", *fits]].mean().reindex(order).dropna(how="all")
    out.insert(0, "customers", g.size().reindex(out.index))
    tot = df[["actual", *fits]].sum()
    out.loc["total"] = [len(df), *tot.to_numpy()]
    out.index.name = "calibration_frequency"
    return out.reset_index()


def holdout_errors(
    cal: pd.DataFrame, fits: dict[str, Fit], pred: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per model: total predicted vs actual holdout purchases, MAE and RMSE per customer,
    log-likelihood, AIC and BIC of the calibration fit."""
    preds = holdout_predictions(cal, fits) if pred is None else pred
    rows = []
    actual = cal["frequency_holdout"].to_numpy(float)
    for name, f in fits.items():
        pred = preds[name].to_numpy()
        rows.append(
            {
                "model": MODELS[name].label,
                "actual_total": actual.sum(),
                "predicted_total": pred.sum(),
                "error_pct": 100 * (pred.sum() - actual.sum()) / actual.sum(),
                "mae": np.mean(np.abs(pred - actual)),
                "rmse": np.sqrt(np.mean((pred - actual) ** 2)),
                "loglik": f.loglik,
                "aic": f.aic,
                "bic": f.bic,
            }
        )
    return pd.DataFrame(rows)


def tracking(
    tx_path: str,
    fits: dict[str, Fit],
    calibration_end,
    observation_end,
    time_unit: str,
    con=None,
) -> pd.DataFrame:
    """Weekly repeat purchases of the calibration cohort, actual and expected.

    The tracking plots of Fader, Hardie & Lee (2005, figures 2-3): customers who first
    bought on or before ``calibration_end``; for each week since the first date, the
    number of repeat purchase days, and the model's expectation
    ``sum_i E[X(t - first_i)]`` differenced by week.
    """
    import duckdb

    con = con or duckdb.connect()
    cal = pd.Timestamp(calibration_end).normalize()
    end = pd.Timestamp(observation_end).normalize()
    days = con.execute(
        f"""
        WITH d AS (SELECT DISTINCT customer_id, CAST(timestamp AS DATE) AS day
                   FROM read_parquet('{tx_path}') WHERE CAST(timestamp AS DATE) <= DATE '{end.date()}'),
        f AS (SELECT customer_id, min(day) AS first FROM d GROUP BY 1)
        SELECT d.day, f.first FROM d JOIN f USING (customer_id)
        WHERE f.first <= DATE '{cal.date()}'"""
    ).df()
    if days.empty:
        raise SegkitError("tracking: no customers bought on or before the calibration end")
    origin = pd.Timestamp(days["first"].min())
    n_days = (end - origin).days + 1
    n_weeks = int(np.ceil(n_days / 7))
    day_i = (pd.to_datetime(days["day"]) - origin).dt.days.to_numpy()
    first_i = (pd.to_datetime(days["first"]) - origin).dt.days.to_numpy()
    repeat = day_i > first_i
    actual = np.bincount(day_i[repeat] // 7, minlength=n_weeks)[:n_weeks]
    firsts = pd.Series(first_i[day_i == first_i]).value_counts()  # customers per first day
    edges = np.arange(1, n_weeks + 1) * 7  # end of each week, in days since origin
    out = pd.DataFrame({"week": np.arange(1, n_weeks + 1), "actual": actual.astype(float)})
    unit = UNIT_DAYS[time_unit]
    for name, f in fits.items():
        age = (edges[:, None] - firsts.index.to_numpy()[None, :]) / unit
        cum = (f.expected_new(np.clip(age, 0, None)) * (age > 0)) @ firsts.to_numpy()
        out[name] = np.diff(np.concatenate([[0.0], cum]))
    cal_week = ((cal - origin).days + 1) / 7
    out["period"] = np.where(out["week"] <= cal_week, "calibration", "holdout")
    # a partial last week looks like a collapse in purchases: the plots leave it out
    out["complete"] = out["week"] * 7 <= n_days
    return out


# ----------------------------------------------------------------------------- stage


class CLVResult(NamedTuple):
    findings: list[str]
    params: pd.DataFrame  # every fitted model's parameters with se and intervals
    fits: dict[str, Fit]  # fits on the whole observation period (used for predictions)
    cal_fits: dict[str, Fit]  # fits on the calibration period (used for the holdout)
    holdout: pd.DataFrame | None  # by calibration frequency
    errors: pd.DataFrame | None  # per model
    tracking: pd.DataFrame | None
    customers: pd.DataFrame  # per customer predictions with segment
    segments: pd.DataFrame  # per segment value
    actions: pd.DataFrame | None  # profile's suggested actions revisited with CLV
    model: str  # purchase model used for CLV
    correlation: float
    time_unit: str


def segment_value(clv: pd.DataFrame, min_size: int = 20) -> pd.DataFrame:
    """Per segment: customers, total CLV, share of total value, CLV per customer, mean
    P(alive) and expected purchases. Segments below ``min_size`` customers are listed with
    their size only (privacy)."""
    check_columns(clv, ["segment", "clv"], "clv")
    keys = ["segment", "segment_name"] if "segment_name" in clv else ["segment"]
    g = clv.groupby(keys, sort=True)
    out = g.agg(
        customers=("clv", "size"),
        clv_total=("clv", "sum"),
        clv_low_total=("clv_low", "sum"),
        clv_high_total=("clv_high", "sum"),
        p_alive=("p_alive", "mean"),
        expected_purchases=("expected_purchases", "mean"),
    ).reset_index()
    out["share_of_value"] = out["clv_total"] / clv["clv"].sum()
    out["share_of_customers"] = out["customers"] / len(clv)
    out["clv_per_customer"] = out["clv_total"] / out["customers"]
    out["clv_median"] = g["clv"].median().to_numpy()
    small = out["customers"] < min_size
    detail = [c for c in out.columns if c not in (*keys, "customers", "share_of_customers")]
    out.loc[small, detail] = np.nan
    out["suppressed"] = small
    return out


def _actions_with_value(run: Run, seg: pd.DataFrame) -> pd.DataFrame | None:
    """The profiling stage's suggested actions, revisited with each segment's CLV."""
    from segkit import profile

    try:
        profiles = run.load("profiles")
    except SegkitError:  # profiling skipped (e.g. too few customers): nothing to revisit
        return None
    actions = profile.suggest_actions(profiles, seg[~seg["suppressed"]])
    run.save("actions_with_value.csv", actions)
    return actions


def _money(v: float) -> str:
    return f"{v:,.0f}"


def run_stage(run: Run) -> CLVResult | Skipped:
    """Fit the CLV models of ``run``, validate on the holdout, predict every customer."""
    from segkit import io

    p = run.params["clv"]
    d = run.params["data"]
    customers = run.load("customers")
    if not {"frequency", "recency", "T"} <= set(customers.columns):
        reason = (
            f"parameter set {run.params['name']!r} has no transaction log, so there is no "
            "purchase history to model; CLV needs data.transactions."
        )
        run.save_findings("clv", [f"Skipped: {reason}"], status="skipped")
        return Skipped("clv", reason)
    unit = d["time_unit"]
    purchase_models = [m for m in p["models"] if m in PURCHASE_MODELS]
    if not purchase_models:
        raise SegkitError(
            f"clv.models == {p['models']}: name at least one of {list(PURCHASE_MODELS)}"
        )
    use_spend = "gamma_gamma" in p["models"]

    # 1. holdout validation: fit on the calibration period, predict the holdout
    cal_fits: dict[str, Fit] = {}
    holdout = errors = track = None
    if d["calibration_end"]:
        cal = run.load("calibration")
        for m in purchase_models:
            cal_fits[m] = fit_purchases(m, cal["frequency"], cal["recency"], cal["T"])
        per_customer = holdout_predictions(cal, cal_fits)
        holdout = holdout_by_frequency(cal, cal_fits, pred=per_customer)
        errors = holdout_errors(cal, cal_fits, pred=per_customer)
        obs_end = run.load("data_quality")["summary"]["observation_end"]
        con = io.connect(temp_dir=run.artifacts / ".duckdb_tmp")
        track = tracking(
            run.path("transactions.parquet").as_posix(),
            cal_fits,
            d["calibration_end"],
            obs_end,
            unit,
            con,
        )
        con.close()
        run.save("clv_holdout.csv", holdout)
        run.save("clv_models.csv", errors)
        run.save("clv_tracking.csv", track)

    # 2. fit on the whole period; the model with the best BIC gives the CLV
    fits = {
        m: fit_purchases(m, customers["frequency"], customers["recency"], customers["T"])
        for m in purchase_models
    }
    corr = float("nan")
    if use_spend:
        fits["gamma_gamma"] = fit_spend(customers["frequency"], customers["monetary"])
        corr = spend_frequency_correlation(customers["frequency"], customers["monetary"])
    best = min(purchase_models, key=lambda m: fits[m].bic)
    pred = predict(
        fits[best],
        fits.get("gamma_gamma"),
        customers,
        horizon_months=p["horizon_months"],
        margin=p["margin"],
        discount_rate=p["discount_rate"],
        time_unit=unit,
    )
    if "clv" not in pred:  # no spend model: value in purchases only
        pred["clv"] = pred["discounted_purchases"]
        pred["clv_low"] = pred["clv_high"] = np.nan
    segments = run.load("segments")
    pred = pred.merge(segments, on="customer_id", how="left")
    pred["segment"] = pred["segment"].fillna(0).astype(int)
    seg = segment_value(pred, run.params["profile"]["min_segment_size"])
    params_json = {m: f.to_dict() for m, f in fits.items()}
    params_json["_meta"] = {
        "time_unit": unit,
        "clv_model": best,
        "horizon_months": p["horizon_months"],
        "margin": p["margin"],
        "discount_rate": p["discount_rate"],
        "spend_frequency_correlation": corr,
        "calibration": {m: f.to_dict() for m, f in cal_fits.items()},
    }
    run.save("clv_params.json", params_json)
    floats = pred.select_dtypes("float").columns
    pred[floats] = pred[floats].round(9)
    run.save("clv.parquet", pred)
    run.save("clv_segments.csv", seg)
    actions = _actions_with_value(run, seg)
    params = pd.concat([f.table() for f in fits.values()], ignore_index=True)

    unit_word = {"W": "weeks", "D": "days"}[unit]
    total = pred["clv"].sum()
    shown = seg[~seg["suppressed"]].sort_values("clv_per_customer", ascending=False)
    top = shown.iloc[0]
    findings = [
        f"The customers are worth {_money(total)} in margin over the next {p['horizon_months']} "
        f"months (discounted at {p['discount_rate']:.0%} a year, margin {p['margin']:.0%}); "
        f"segment {top['segment']} '{top.get('segment_name', top['segment'])}' is worth "
        f"{_money(top['clv_per_customer'])} per customer and {top['share_of_value']:.0%} of the total."
    ]
    if errors is not None:
        e = errors.set_index("model")
        lab = MODELS[best].label
        findings.append(
            f"Checked on the holdout after {d['calibration_end']}: {lab} predicted "
            f"{e.loc[lab, 'predicted_total']:,.0f} repeat purchases against "
            f"{e.loc[lab, 'actual_total']:,.0f} actual ({e.loc[lab, 'error_pct']:+.1f}%), "
            f"mean absolute error {e.loc[lab, 'mae']:.2f} per customer."
        )
    alive = pred["p_alive"]
    findings.append(
        f"{(alive < 0.5).mean():.0%} of customers are more likely gone than active "
        f"(probability alive below 50%); they hold {pred.loc[alive < 0.5, 'clv'].sum() / total:.0%} "
        "of the expected value."
    )
    findings.append(
        f"CLV uses {MODELS[best].label} (lowest BIC among {', '.join(MODELS[m].label for m in purchase_models)}) "
        f"fitted in {unit_word}"
        + (" and Gamma-Gamma for spend per purchase." if use_spend else "; no spend model.")
    )
    for m, f in fits.items():
        if f.weak:
            findings.append(
                f"Caution: {MODELS[m].label} barely identifies {', '.join(f.weak)} (95% "
                f"intervals over a factor of 10,000 wide); with this data "
                + (
                    "drop-out is hardly visible, so probability alive is not informative."
                    if m in PURCHASE_MODELS
                    else "spend per purchase is poorly determined."
                )
            )
    if use_spend and abs(corr) > 0.3:
        findings.append(
            f"Caution: spend per purchase and frequency are correlated (r = {corr:.2f}); "
            "Gamma-Gamma assumes they are not, so CLV may be biased for frequent buyers."
        )
    elif use_spend:
        findings.append(
            f"Spend per purchase and frequency are nearly uncorrelated (r = {corr:.2f}), "
            "as the Gamma-Gamma model assumes."
        )
    run.save_findings("clv", findings)
    return CLVResult(
        findings=findings,
        params=params,
        fits=fits,
        cal_fits=cal_fits,
        holdout=holdout,
        errors=errors,
        tracking=track,
        customers=pred,
        segments=seg,
        actions=actions,
        model=best,
        correlation=corr,
        time_unit=unit,
    )
