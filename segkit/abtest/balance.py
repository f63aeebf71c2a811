"""Covariate balance of an experiment's arms: were they randomized?

A randomized arm differs from the control only by chance. :func:`balance` compares each
arm with the control on the customer attributes fixed before the treatment by their
standardized mean differences (Austin 2009); an attribute with ``|smd| > SMD_LIMIT`` says the
arm was not randomized (e.g. a past campaign's acceptance used as an "arm"), and the A/B
stage says so in its first finding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segkit.abtest.evaluation import choose_control
from segkit.core.errors import SegkitError

#: |standardized mean difference| above which an attribute is out of balance (Austin 2009).
SMD_LIMIT = 0.1
#: Columns of :func:`balance`, in order.
BALANCE_COLUMNS = [
    "arm",
    "control",
    "attribute",
    "level",
    "n_arm",
    "n_control",
    "mean_arm",
    "mean_control",
    "smd",
    "imbalanced",
]


def _smd(t: np.ndarray, c: np.ndarray, ddof: int = 1) -> tuple[float, float, float]:
    """(mean of t, mean of c, SMD) with the pooled SD sqrt((var_t + var_c) / 2); ddof 0 on
    0/1 values gives p(1 - p); NaN when both variances are 0 (or a side has under two)."""
    mt, mc = float(np.mean(t)) if len(t) else np.nan, float(np.mean(c)) if len(c) else np.nan
    if len(t) < 2 or len(c) < 2:
        return mt, mc, np.nan
    sd = np.sqrt((np.var(t, ddof=ddof) + np.var(c, ddof=ddof)) / 2)
    return mt, mc, float((mt - mc) / sd) if sd > 0 else np.nan


def balance(
    customers: pd.DataFrame,
    experiment: pd.DataFrame,
    attributes: list[str] | tuple[str, ...],
    *,
    control: str | None = None,
) -> pd.DataFrame:
    """Standardized mean differences of the customer attributes, each arm vs the control.

    A randomized arm differs from the control only by chance: ``|smd| > SMD_LIMIT`` (0.1)
    on an attribute fixed before the treatment says the arm was not randomized (e.g. a past
    campaign's acceptance used as an "arm").

    Parameters
    ----------
    customers : ``customer_id`` and the attributes (measured before the treatment).
    experiment : ``customer_id`` and ``arm``; customers absent from either are left out.
    attributes : numeric attributes (missing values left out per attribute) and
        categorical ones (each level's share is compared as a 0/1 variable).
    control : the control arm; None = the arm named like a control
        (:func:`segkit.abtest.evaluation.choose_control`).

    Returns
    -------
    DataFrame with :data:`BALANCE_COLUMNS`, one row per arm × numeric attribute (``level``
    empty) and per arm × categorical attribute × level: ``smd`` = (mean_arm -
    mean_control) / sqrt((var_arm + var_control) / 2) with sample variances for numbers
    and p(1 - p) for a level's share p (Austin 2009); NaN when both variances are 0.
    ``imbalanced`` = ``|smd| > SMD_LIMIT``.

    Raises
    ------
    SegkitError
        A column is missing, or ``control`` is not an arm (or none looks like one).

    Examples
    --------
    >>> c = pd.DataFrame({"customer_id": [1, 2, 3, 4], "age": [20, 30, 40, 50]})
    >>> e = pd.DataFrame({"customer_id": [1, 2, 3, 4], "arm": ["control"] * 2 + ["mail"] * 2})
    >>> round(balance(c, e, ["age"])["smd"].item(), 3)  # 20 / sqrt(50)
    2.828
    """
    attributes = list(attributes)
    for name, df, cols in (
        ("customers", customers, ["customer_id", *attributes]),
        ("experiment", experiment, ["customer_id", "arm"]),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise SegkitError(
                f"{name} has no column {missing[0]!r}; columns are {list(df.columns)}"
            )
    both = experiment[["customer_id", "arm"]].merge(
        customers[["customer_id", *attributes]], on="customer_id", how="inner"
    )
    both["arm"] = both["arm"].astype(str)
    arms = sorted(both["arm"].unique())
    ctrl = choose_control(arms, control)
    rows = []
    for arm in (a for a in arms if a != ctrl):
        t, c = both[both["arm"] == arm], both[both["arm"] == ctrl]
        for col in attributes:
            rows += _balance_rows(t[col], c[col], arm, ctrl, col)
    out = pd.DataFrame(rows, columns=BALANCE_COLUMNS)
    out["imbalanced"] = out["smd"].abs() > SMD_LIMIT
    return out


def _balance_rows(t: pd.Series, c: pd.Series, arm: str, ctrl: str, col: str) -> list[tuple]:
    """The balance rows of one attribute: one for a number, one per level otherwise."""
    if pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t):
        tv, cv = t.dropna().to_numpy(float), c.dropna().to_numpy(float)
        return [(arm, ctrl, col, "", len(tv), len(cv), *_smd(tv, cv), False)]
    ts, cs = t.astype("string").fillna("(missing)"), c.astype("string").fillna("(missing)")
    levels = sorted(set(ts) | set(cs))
    return [
        (
            arm,
            ctrl,
            col,
            level,
            len(ts),
            len(cs),
            *_smd((ts == level).to_numpy(float), (cs == level).to_numpy(float), ddof=0),
            False,
        )
        for level in levels
    ]
