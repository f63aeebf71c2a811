"""Who gets which campaign: the budget allocated under the caps, and the holdouts.

:func:`allocate` chooses integer contact counts per segment × campaign × channel that
maximize the expected profit subject to: each customer contacted at most once (per
segment, contacts ≤ contactable customers − holdout), optional caps per segment and per
channel, and an optional total budget. Greedy by profit per cost is exact only for a
single budget with one option per segment; with several campaigns or channels per segment
and caps it is not (a cheap option can crowd out a dearer, more profitable one), so the
problem is solved exactly as a small mixed-integer program with
:func:`scipy.optimize.milp` (HiGHS): one variable per option, a handful of rows.

:func:`holdout_size` is the random holdout kept in each targeted segment: large enough
for the next campaign's measurement to detect the lift seen now with the A/B stage's
power, given the contacts (the unequal-allocation version of
:func:`segkit.abtest.sample_size_means`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import optimize, stats

from segkit.abtest.statistics import sample_size_means
from segkit.core.errors import SegkitError


def allocate(
    options: pd.DataFrame,
    capacity: Mapping[str, int],
    *,
    budget: float | None = None,
    segment_caps: Mapping[str, int] | None = None,
    channel_caps: Mapping[str, int] | None = None,
) -> np.ndarray:
    """Contacts per option (row of ``options``) that maximize the expected profit.

    Parameters
    ----------
    options
        One row per allowed segment × campaign × channel: ``segment``, ``channel``,
        ``cost_per_contact``, ``profit_per_contact`` (only rows that may be sent).
    capacity
        Segment -> most customers that may be contacted (contactable − holdout).
    budget
        Most money spent on contacts; None = no limit.
    segment_caps, channel_caps
        Most contacts per segment and per channel (absent keys: no cap).

    Returns
    -------
    numpy.ndarray
        Integer contacts per row of ``options`` (zeros where sending loses money).

    Raises
    ------
    SegkitError
        The solver found no optimum (it should always: zero contacts is feasible).
    """
    n = len(options)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    seg = options["segment"].astype(str).to_numpy()
    profit = options["profit_per_contact"].to_numpy(float)
    rows, hi = _constraints(options, capacity, budget, segment_caps, channel_caps)
    upper = np.array([max(int(capacity.get(s, 0)), 0) for s in seg], float)
    upper[profit <= 0] = 0  # a contact that loses money is never chosen
    res = optimize.milp(
        c=-profit,
        integrality=np.ones(n),
        bounds=optimize.Bounds(np.zeros(n), upper),
        constraints=optimize.LinearConstraint(np.array(rows), np.zeros(len(rows)), np.array(hi)),
    )
    if res.x is None:  # pragma: no cover - x = 0 is always feasible
        raise SegkitError(f"the allocation found no solution: {res.message}")
    return np.round(res.x).astype(np.int64)


def _constraints(
    options: pd.DataFrame,
    capacity: Mapping[str, int],
    budget: float | None,
    segment_caps: Mapping[str, int] | None,
    channel_caps: Mapping[str, int] | None,
) -> tuple[list[np.ndarray], list[float]]:
    """Rows and upper bounds: contacts per segment, per capped channel, and the cost."""
    seg = options["segment"].astype(str).to_numpy()
    chan = options["channel"].astype(str).to_numpy()
    rows: list[np.ndarray] = []
    hi: list[float] = []
    for s in np.unique(seg):
        cap = min(int(capacity.get(s, 0)), int((segment_caps or {}).get(s, np.iinfo(np.int64).max)))
        rows.append((seg == s).astype(float))
        hi.append(max(cap, 0))
    for c, cap in (channel_caps or {}).items():
        rows.append((chan == c).astype(float))
        hi.append(int(cap))
    if budget is not None:
        rows.append(options["cost_per_contact"].to_numpy(float))
        hi.append(float(budget))
    return rows, hi


def balanced_n(lift: float, sd: float, alpha: float, power: float) -> float:
    """Customers per arm of a 1:1 test detecting ``lift`` (the A/B stage's formula);
    inf when there is nothing to detect (no lift or no spread)."""
    if not np.isfinite(lift) or not np.isfinite(sd) or lift == 0 or sd <= 0:
        return np.inf
    return float(sample_size_means(abs(lift), float(sd), alpha, power))


def holdout_size(
    n_contacts: int,
    n_balanced: float,
    *,
    available: int,
    min_holdout: int,
    max_holdout: int,
) -> int:
    """The holdout for ``n_contacts`` contacted customers in one segment.

    A test with ``n_t`` treated and ``n_h`` held out has the variance of a 1:1 test with
    ``n`` per arm when ``1/n_t + 1/n_h = 2/n``; so ``n_h = 1 / (2/n − 1/n_t)``. When no
    holdout reaches the power (``n_t ≤ n/2``) or it exceeds ``max_holdout``, the holdout is
    ``max_holdout``; never below ``min_holdout``, never more than ``available`` (the
    segment's contactable customers not contacted).

    >>> holdout_size(10_000, 393, available=5_000, min_holdout=50, max_holdout=2_000)  # 1 / (2/393 - 1/10,000) = 200.4
    201
    """
    need = 2 / n_balanced - 1 / n_contacts if n_contacts > 0 else 0.0
    size = float(max_holdout) if need <= 0 else min(float(np.ceil(1 / need)), max_holdout)
    return int(max(0, min(max(size, min_holdout), available)))


def power_of(lift: float, sd: float, n_t: int, n_h: int, alpha: float) -> float:
    """Power of a two-sided test at ``alpha`` of ``lift`` with ``n_t`` treated and
    ``n_h`` held out (normal approximation); nan without contacts or holdout."""
    if n_t <= 0 or n_h <= 0 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    z = abs(lift) / (sd * np.sqrt(1 / n_t + 1 / n_h))
    return float(stats.norm.cdf(z - stats.norm.ppf(1 - alpha / 2)))


def full_holdout(
    n_contactable: int, n_balanced: float, *, min_holdout: int, max_share: float
) -> int:
    """The holdout of a segment contacted in full: the smallest ``h`` with
    ``1/(N − h) + 1/h ≤ 2/n`` (solved on the integers), within ``[min_holdout,
    max_share·N]``; the capacity left for contacts is ``N − h``."""
    cap = int(np.floor(max_share * n_contactable))
    if not np.isfinite(n_balanced):
        return max(min(min_holdout, cap), 0)
    h = np.arange(1, max(cap, 1) + 1)
    ok = 1 / np.maximum(n_contactable - h, 1) + 1 / h <= 2 / n_balanced
    size = int(h[ok][0]) if ok.any() else cap
    return max(min(max(size, min_holdout), cap), 0)
