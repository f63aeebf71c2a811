"""BTYD models: the summaries they are fitted on, their likelihoods and predictions.

- :class:`Histories`, :func:`compress`: customers grouped by identical (frequency,
  recency, T), so that a fit costs per distinct history, not per customer;
  :func:`check_summary` names the rows of a summary that cannot be modelled;
- :class:`BGNBD`, :class:`MBGNBD`, :class:`ParetoNBD` (purchases) and :class:`GammaGamma`
  (spend per purchase): log-likelihoods (with analytic gradients where available),
  probability alive and expected purchases, each a function of the parameters ``theta``;
- :data:`MODELS`: the model of each name in :data:`~segkit.core.params.CLV_MODELS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special

from segkit.core.checks import show_rows
from segkit.core.errors import SegkitError
from segkit.core.params import CLV_MODELS

#: Model parameters (natural scale), in the order of the model's ``names``.
Theta = np.ndarray | Sequence[float]

# ----------------------------------------------------------------------------- data


class Histories(NamedTuple):
    """Unique (x, t_x, T) histories with their counts and the map back to customers."""

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    weight: np.ndarray
    inverse: np.ndarray  # customer i has history inverse[i]


def check_summary(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary: ArrayLike | None = None,
    *,
    name: str = "BTYD summary",
    repeat_only_monetary: bool = True,
) -> None:
    """Check that a BTYD summary can be modelled.

    Parameters
    ----------
    frequency, recency, T
        Repeat purchases, last minus first purchase, observation end minus first purchase.
    monetary
        Mean value of the repeat purchases, checked when given.
    name
        What the summary is called in the messages.
    repeat_only_monetary
        Check ``monetary`` for repeat buyers only (else for every customer).

    Raises
    ------
    SegkitError
        Naming the rows with missing values, negative values, fractional frequency, recency
        after T, repeat buyers with zero recency or non-positive monetary value.

    Examples
    --------
    >>> check_summary([0, 2], [0.0, 5.0], [9.0, 4.0])
    Traceback (most recent call last):
    ...
    segkit.core.errors.SegkitError: BTYD summary: recency (last minus first purchase) ...
    """
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


def _distinct(*columns: ArrayLike, sort: bool = True) -> tuple[tuple, np.ndarray, np.ndarray]:
    """Distinct rows of ``columns``: (the distinct values of each column, each row's group
    number, the size of each group). One pandas grouping, shared by every compression."""
    df = pd.DataFrame({i: np.asarray(c, float) for i, c in enumerate(columns)})
    codes = df.groupby(list(df.columns), sort=sort).ngroup().to_numpy()
    counts = np.bincount(codes, minlength=codes.max() + 1 if len(codes) else 0)
    first = np.zeros(len(counts), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    return tuple(df[i].to_numpy()[first] for i in df.columns), codes, counts


def compress(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Histories:
    """Group customers by identical (frequency, recency, T); the fit works on the groups.

    Examples
    --------
    >>> h = compress([0, 2, 2], [0.0, 5.0, 5.0], [9.0, 8.0, 8.0])
    >>> h.x.tolist(), h.weight.tolist(), h.inverse.tolist()
    ([0.0, 2.0], [1.0, 2.0], [0, 1, 1])
    """
    (x, tx, t), codes, counts = _distinct(frequency, recency, T)
    return Histories(x, tx, t, counts.astype(float), codes)


# ----------------------------------------------------------------------------- models


def _log1mexp(d: np.ndarray) -> np.ndarray:
    """log(1 - exp(d)) for d <= 0, accurate near 0 and at -inf."""
    d = np.minimum(d, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(d > -0.693, np.log(-np.expm1(d)), np.log1p(-np.exp(d)))


def pair_index(x: ArrayLike, T: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (x, T) pairs and each row's index into them.

    Examples
    --------
    >>> px, pT, idx = pair_index([1, 1, 2], [5.0, 5.0, 5.0])
    >>> px.tolist(), pT.tolist(), idx.tolist()
    ([1.0, 2.0], [5.0, 5.0], [0, 0, 1])
    """
    (px, pT), codes, _ = _distinct(x, T, sort=False)
    return px, pT, codes


def _pairs(h: Histories) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Distinct (x, t_x) and (x, T) pairs of ``h`` with each history's index into them."""
    return [pair_index(h.x, t) for t in (h.tx, h.T)]


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
        """Starting values of the fit."""
        return np.array([1.0, max(float(np.average(h.T, weights=h.weight)), 1e-3), 1.0, 1.0])

    def cache(self, h: Histories) -> dict[str, Any]:
        """What the fit computes once for ``h``: the distinct frequencies."""
        return {"x": _Unique(h.x)}

    def loglik(
        self, theta: Theta, h: Histories, grad: bool = False, cache: dict | None = None
    ) -> Any:
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

    def total(self, theta: Theta, h: Histories, cache: dict) -> tuple[float, np.ndarray]:
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

    def p_alive(self, theta: Theta, x: ArrayLike, tx: ArrayLike, T: ArrayLike) -> np.ndarray:
        """P(alive at T | x, t_x, T)."""
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

    def expected(
        self, theta: Theta, t: ArrayLike, x: ArrayLike, tx: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """E[X(t) | x, t_x, T]: expected purchases in the next ``t`` units."""
        return self.future(theta, t, x, T) * self.p_alive(theta, x, tx, T)

    def future(self, theta: Theta, t: ArrayLike, x: ArrayLike, T: ArrayLike) -> np.ndarray:
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

    def expected_new(self, theta: Theta, t: ArrayLike) -> np.ndarray:
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
    # The gradient is analytic except for the derivatives of 2F1 in its parameters a and
    # b, which have no closed form: those are central differences, per distinct (x, t)
    # pair (:meth:`_part_grad`). One gradient costs ~6 2F1 passes over the pairs and one
    # pass over the histories, where central differences of the whole likelihood cost 9
    # passes over both (issue 18: Pareto/NBD was 60% of the CLV stage).
    analytic_gradient = True
    #: The likelihood is nearly flat along s and β together: the fit uses tight tolerances.
    ridge = True
    #: Relative step of the central differences of log 2F1 in a and b.
    _STEP = 1e-5

    def start(self, h: Histories) -> np.ndarray:
        """Starting values of the fit."""
        mt = max(float(np.average(h.T, weights=h.weight)), 1e-3)
        return np.array([1.0, mt, 1.0, mt])

    def cache(self, h: Histories) -> dict[str, Any]:
        """What the fit computes once for ``h``: the distinct (x, t_x) and (x, T) pairs,
        the distinct frequencies and their total weights."""
        ux = _Unique(h.x)
        return {
            "pairs": _pairs(h),
            "x": ux,
            "Wx": np.bincount(ux.index, weights=h.weight, minlength=len(ux.values)),
        }

    @staticmethod
    def _hyp_args(theta: Theta, x: Any, t: Any) -> tuple[Any, Any, Any, Any, bool]:
        """(a = r+s+x, b, z, max(α,β) + t, α >= β): A0's 2F1(a, b; a+1; z) and its base."""
        r, alpha, s, beta = theta
        rsx = r + s + x
        if alpha >= beta:
            return rsx, s + 1, (alpha - beta) / (alpha + t), alpha + t, True
        return rsx, r + x, (beta - alpha) / (beta + t), beta + t, False

    @classmethod
    def _log_a0_part(cls, theta: Theta, x: Any, t: Any) -> np.ndarray:
        """log of 2F1(...; z(t)) / (max(α,β) + t)^(r+s+x), one of the two parts of A0."""
        a, b, z, base, _ = cls._hyp_args(theta, x, t)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.log(special.hyp2f1(a, b, a + 1, z)) - a * np.log(base)

    @classmethod
    def _part_grad(cls, theta: Theta, x: Any, t: Any) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_log_a0_part` and its gradient in (r, α, s, β), shape (n, 4).

        α and β enter 2F1 through z only (d/dz 2F1 = ab/c 2F1(a+1, b+1; c+1; z)); r and
        s through a (with c = a+1) and b, where the derivatives are central differences
        of log 2F1 with relative step :attr:`_STEP`.
        """
        r, alpha, s, beta = theta
        a, b, z, base, alpha_big = cls._hyp_args(theta, x, t)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            f = special.hyp2f1(a, b, a + 1, z)
            lf = np.log(f)
            dlz = a * b / (a + 1) * special.hyp2f1(a + 1, b + 1, a + 2, z) / f
            ha = cls._STEP * np.maximum(a, 1.0)
            da = (
                np.log(special.hyp2f1(a + ha, b, a + 1 + ha, z))
                - np.log(special.hyp2f1(a - ha, b, a + 1 - ha, z))
            ) / (2 * ha)
            hb = cls._STEP * np.maximum(b, 1.0)
            db = (
                np.log(special.hyp2f1(a, b + hb, a + 1, z))
                - np.log(special.hyp2f1(a, b - hb, a + 1, z))
            ) / (2 * hb)
            lb = np.log(base)
        if alpha_big:  # z = (α-β)/(α+t), b = s+1
            dz_da, dz_db = (beta + t) / base**2, -1.0 / base
            d_r, d_s = da, da + db
        else:  # z = (β-α)/(β+t), b = r+x
            dz_da, dz_db = -1.0 / base, (alpha + t) / base**2
            d_r, d_s = da + db, da
        grad = np.column_stack(
            [
                d_r - lb,
                dlz * dz_da - (a / base if alpha_big else 0.0),
                d_s - lb,
                dlz * dz_db - (0.0 if alpha_big else a / base),
            ]
        )
        return lf - a * lb, grad

    @classmethod
    def _terms(
        cls, theta: Theta, x: Any, tx: Any, T: Any, pairs: list | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
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

    def loglik(
        self, theta: Theta, h: Histories, grad: bool = False, cache: dict | None = None
    ) -> Any:
        """Per-history log-likelihood (and its gradient in the natural parameters)."""
        r, alpha, s, beta = theta
        if grad:
            return self._with_grad(theta, h, cache or self.cache(h))
        t1, t2 = self._terms(theta, h.x, h.tx, h.T, (cache or {}).get("pairs"))
        base = special.gammaln(r + h.x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        return base + np.logaddexp(t1, t2)

    def _history_terms(self, theta: Theta, h: Histories, cache: dict) -> dict[str, Any]:
        """Per history: log-likelihood without the x-only terms, and the coefficients of
        the pair gradients (t1's weight p1, t2's weight p2, A0's v = 1/expm1(-d))."""
        r, alpha, s, beta = theta
        (px1, pt1, i1), (px2, pt2, i2) = cache["pairs"]
        L1, D1 = self._part_grad(theta, px1, pt1)
        L2, D2 = self._part_grad(theta, px2, pt2)
        lA, lB = np.log(alpha + pt2), np.log(beta + pt2)
        T1 = -(r + px2) * lA - s * lB
        C2 = np.log(s) - np.log(r + s + px2)
        l1 = L1[i1]
        d = L2[i2] - l1
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            t2 = C2[i2] + l1 + _log1mexp(d)
            t1 = T1[i2]
            p2 = special.expit(t2 - t1)
            v = np.where(p2 > 0, 1.0 / np.expm1(-d), 0.0)
        dT1 = np.column_stack([-lA, -(r + px2) / (alpha + pt2), -lB, -s / (beta + pt2)])
        rsx = r + s + px2
        dC2 = np.column_stack([-1 / rsx, np.zeros_like(rsx), 1 / s - 1 / rsx, np.zeros_like(rsx)])
        return {
            "lse": np.logaddexp(t1, t2),
            "p2": p2,
            "v": v,
            "pairs": (D1, i1, D2, i2, dT1, dC2),
        }

    def _x_terms(self, theta: Theta, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per distinct x: the log-likelihood terms in x and θ only, and their gradient."""
        r, alpha, s, beta = theta
        ll = special.gammaln(r + xs) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        one = np.ones_like(xs)
        g = np.column_stack(
            [
                special.digamma(r + xs) - special.digamma(r) + np.log(alpha),
                one * r / alpha,
                one * np.log(beta),
                one * s / beta,
            ]
        )
        return ll, g

    def _with_grad(self, theta: Theta, h: Histories, cache: dict) -> tuple[np.ndarray, Any]:
        """Per-history log-likelihood and gradient (n x 4): :meth:`total` without the
        sums, for checks and small data."""
        ux = cache["x"]
        lx, gx = self._x_terms(theta, ux.values)
        ht = self._history_terms(theta, h, cache)
        D1, i1, D2, i2, dT1, dC2 = ht["pairs"]
        p2, v = ht["p2"], ht["v"]
        with np.errstate(invalid="ignore"):
            g = (
                gx[ux.index]
                + (1 - p2)[:, None] * dT1[i2]
                + p2[:, None] * (dC2[i2] + (1 + v)[:, None] * D1[i1] - v[:, None] * D2[i2])
            )
        return lx[ux.index] + ht["lse"], g

    def total(self, theta: Theta, h: Histories, cache: dict) -> tuple[float, np.ndarray]:
        """Weighted log-likelihood and its gradient, summed: the fit's hot path. The pair
        gradients are weighted by the sums of their histories' coefficients (bincount),
        so the per-history work is a few vector passes and no (n x 4) array."""
        ux, Wx, w = cache["x"], cache["Wx"], h.weight
        lx, gx = self._x_terms(theta, ux.values)
        ht = self._history_terms(theta, h, cache)
        D1, i1, D2, i2, dT1, dC2 = ht["pairs"]
        p2, v = ht["p2"], ht["v"]
        wp2 = w * p2
        n1, n2 = len(D1), len(D2)
        with np.errstate(invalid="ignore"):
            c1 = np.bincount(i1, weights=wp2 * (1 + v), minlength=n1)
            c2 = np.bincount(i2, weights=wp2 * v, minlength=n2)
        k1 = np.bincount(i2, weights=w - wp2, minlength=n2)
        k2 = np.bincount(i2, weights=wp2, minlength=n2)
        g = Wx @ gx + k1 @ dT1 + k2 @ dC2 + c1 @ D1 - c2 @ D2
        return float(Wx @ lx + w @ ht["lse"]), g

    def p_alive(self, theta: Theta, x: ArrayLike, tx: ArrayLike, T: ArrayLike) -> np.ndarray:
        """P(alive at T | x, t_x, T)."""
        x, tx, T = (np.asarray(v, float) for v in (x, tx, T))
        t1, t2 = self._terms(theta, x, tx, T)
        return np.exp(t1 - np.logaddexp(t1, t2))

    def expected(
        self, theta: Theta, t: ArrayLike, x: ArrayLike, tx: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """E[X(t) | x, t_x, T]: expected purchases in the next ``t`` units."""
        return self.future(theta, t, x, T) * self.p_alive(theta, x, tx, T)

    def future(self, theta: Theta, t: ArrayLike, x: ArrayLike, T: ArrayLike) -> np.ndarray:
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

    def expected_new(self, theta: Theta, t: ArrayLike) -> np.ndarray:
        """E[X(t)] for a customer who has just made a first purchase."""
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

    def start(self, h: Histories) -> np.ndarray:
        """Starting values of the fit."""
        return np.array([1.0, 1.0, max(float(np.average(h.tx, weights=h.weight)), 1e-3)])

    def cache(self, h: Histories) -> dict[str, Any]:
        """What the fit computes once for ``h``: distinct frequencies, log mean spend."""
        return {"x": _Unique(h.x), "lm": np.log(h.tx)}

    def loglik(
        self, theta: Theta, h: Histories, grad: bool = False, cache: dict | None = None
    ) -> Any:
        """Per-history log-likelihood (and its gradient in the natural parameters)."""
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
    def expected_spend(theta: Theta, x: ArrayLike, mx: ArrayLike) -> np.ndarray:
        """E[M | x, m_x]: the customer's expected spend per purchase (population mean for
        customers without repeat purchases)."""
        x = np.asarray(x, float)
        mx = np.nan_to_num(np.asarray(mx, float))
        return GammaGamma.spend_formula(theta, x, mx)

    @staticmethod
    def log_gradient(theta: Any, x: Any, mx: Any) -> list[Any]:
        """d log E[M | x, m_x] / d log (p, q, v), in closed form, over numpy arrays or
        engine columns alike (``mx`` with missing values as 0): the delta method's
        gradient of the expected spend.

        >>> g = GammaGamma.log_gradient((6.25, 3.74, 15.44), 2.0, 35.0)
        >>> [round(float(v), 4) for v in g]
        [0.1798, -0.2454, 0.1807]
        """
        p, q, v = theta
        d = p * x + q - 1
        return [1 - p * x / d, -q / d, v / (v + x * mx)]

    @staticmethod
    def spend_formula(theta: Any, x: Any, mx: Any) -> Any:
        """``p (v + x m_x) / (p x + q - 1)``: the formula of :meth:`expected_spend`, over
        numpy arrays or engine columns alike (:mod:`segkit.engine.value`)."""
        p, q, v = theta
        return p * (v + x * mx) / (p * x + q - 1)


#: The model of each name in :data:`~segkit.core.params.CLV_MODELS`.
MODELS: dict[str, Any] = {m.name: m for m in (BGNBD(), ParetoNBD(), MBGNBD(), GammaGamma())}
#: The spend model; the others model purchases.
SPEND_MODEL = "gamma_gamma"
PURCHASE_MODELS = tuple(m for m in CLV_MODELS if m != SPEND_MODEL)
