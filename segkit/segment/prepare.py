"""The clustering matrix: which features, checked and tidied, and how they are transformed.

:func:`prepare` checks and fills the clustering columns; :func:`preprocessor` is the
scikit-learn transformer fitted by the stage (log1p for money and counts, robust scaling,
one-hot categories); :class:`Transform` is that fitted transformer as plain arrays, which
is what a saved :class:`~segkit.segment.segmenter.Segmenter` keeps and applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, RobustScaler

from segkit.core.checks import check_columns
from segkit.core.errors import SegkitError
from segkit.core.params import MAX_LEVELS

#: Default numeric features for transaction data (money and counts are log-transformed).
DEFAULT_FEATURES = ["days_since_last", "orders", "revenue", "aov", "tenure_days"]
#: Features that are log1p-transformed before scaling (skewed money and counts).
LOG_FEATURES = frozenset({"orders", "revenue", "aov", "frequency", "monetary", "items", "history"})
#: Column whose mean per segment orders the segments (first present wins).
VALUE_COLUMNS = ("revenue", "monetary", "history", "spend")
#: Quantile range of the robust scaling.
QUANTILE_RANGE = (5, 95)
#: Columns of the customer table never clustered on by default (ids, dates, BTYD summaries).
NOT_FEATURES = frozenset(
    {
        "customer_id",
        "first_purchase",
        "last_purchase",
        "frequency",
        "recency",
        "T",
        "monetary",
        "items",
        "mean_ipt_days",
    }
)


def default_features(customers: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns to cluster on when the parameters give none.

    Parameters
    ----------
    customers : the customer table.

    Returns
    -------
    The present :data:`DEFAULT_FEATURES` and ``share_*`` columns plus any other numeric
    column with more than two values; categorical: the remaining columns with at most
    :data:`MAX_LEVELS` levels.

    Examples
    --------
    >>> t = pd.DataFrame({"customer_id": ["a", "b", "c"], "revenue": [1.0, 2, 3],
    ...                   "age": [20, 30, 40], "region": ["n", "s", "n"]})
    >>> default_features(t)
    (['revenue', 'age'], ['region'])
    """
    num = [c for c in DEFAULT_FEATURES if c in customers.columns]
    num += [c for c in customers.columns if c.startswith("share_")]
    skip = NOT_FEATURES | set(num)
    rest = [c for c in customers.columns if c not in skip]
    num += [
        c
        for c in rest
        if pd.api.types.is_numeric_dtype(customers[c]) and customers[c].nunique() > 2
    ]
    cat = [c for c in rest if c not in num and customers[c].nunique() <= MAX_LEVELS]
    return num, cat


def _offenders(customers: pd.DataFrame, mask: Any, n: int = 5) -> str:
    """'customer_id a, b, c and 4 more' (or row numbers) for the rows where ``mask``."""
    mask = np.asarray(mask, dtype=bool)
    if "customer_id" in customers:
        ids = customers.loc[mask, "customer_id"].astype(str).tolist()
        what = "customer_id"
    else:
        ids = [str(i) for i in np.flatnonzero(mask)]
        what = "rows"
    more = f" and {len(ids) - n} more" if len(ids) > n else ""
    return f"{what} {', '.join(ids[:n])}{more}"


class Prepared(NamedTuple):
    """The clustering columns after :func:`prepare`."""

    data: pd.DataFrame  # the clustering columns, missing values filled
    numeric: list[str]
    categorical: list[str]
    notes: list[str]  # what was dropped or filled, for the report


def _check_numeric(customers: pd.DataFrame, numeric: list[str], where: str) -> None:
    """An error for a numeric feature that is not numeric or holds infinite values."""
    for col in numeric:
        s = customers[col]
        if not pd.api.types.is_numeric_dtype(s):
            bad = pd.to_numeric(s, errors="coerce").isna() & s.notna()
            raise SegkitError(
                f"{where}: column {col!r} must be numeric to cluster on, found {s.dtype} "
                f"values such as {s[bad].astype(str).unique()[:3].tolist()}; list it under "
                f"cluster.categorical instead ({_offenders(customers, bad)})."
            )
        inf = np.isinf(s.to_numpy(dtype=float, na_value=np.nan))
        if inf.any():
            raise SegkitError(
                f"{where}: column {col!r} has {int(inf.sum())} infinite value(s); segkit "
                f"expects finite numbers; fix the source or drop the rows "
                f"({_offenders(customers, inf)})."
            )


def prepare(
    customers: pd.DataFrame, numeric: list[str], categorical: list[str], where: str = "customers"
) -> Prepared:
    """Check and tidy the clustering columns; every problem named, nothing silently changed.

    - a numeric feature that is not numeric, or holds infinite values: an error naming the
      column and the first offending customers;
    - a column with no values at all, or with one value only: dropped, with a note (it
      cannot separate customers); an error if no feature is left;
    - missing values: numeric filled with the column's median, categorical with the level
      ``"missing"``, with a note giving the count.

    Parameters
    ----------
    customers : the customer table.
    numeric, categorical : the clustering columns.
    where : what the table is called in messages.

    Returns
    -------
    :class:`Prepared`: the filled columns, the kept numeric and categorical names, notes.

    Raises
    ------
    SegkitError
        A column is missing, not numeric, holds infinite values, or no column varies.
    """
    check_columns(customers, numeric + categorical, where)
    _check_numeric(customers, numeric, where)
    notes: list[str] = []
    num: list[str] = []
    cat: list[str] = []
    for col in numeric + categorical:
        s = customers[col]
        if s.isna().all():
            notes.append(f"{col!r} is empty for every customer and was left out.")
        elif s.nunique(dropna=True) < 2 and not s.isna().any():
            notes.append(f"{col!r} has the same value for every customer and was left out.")
        else:
            (num if col in numeric else cat).append(col)
    if not num and not cat:
        raise SegkitError(
            f"{where}: no usable clustering feature: {' '.join(notes)} Give "
            f"cluster.features / cluster.categorical columns that vary between customers."
        )
    data = customers[num + cat].copy()
    for col in num:
        n = int(data[col].isna().sum())
        if n:
            data[col] = data[col].fillna(data[col].median())
            notes.append(f"{col!r}: {n:,} missing value(s) filled with the median.")
    data = _categorical(data, cat, notes)
    if not num and not cat:
        raise SegkitError(f"{where}: no usable clustering feature: {' '.join(notes)}")
    return Prepared(data, num, cat, notes)


def _categorical(data: pd.DataFrame, cat: list[str], notes: list[str]) -> pd.DataFrame:
    """Categorical columns as levels, capped; identifier-like ones removed from ``cat``."""
    for col in list(cat):
        n = int(data[col].isna().sum())
        data[col] = as_levels(data[col])
        if n:
            notes.append(f"{col!r}: {n:,} missing value(s) kept as the level 'missing'.")
        data[col], note = cap_levels(data[col], col)
        if note:
            notes.append(note)
        if data[col].nunique() > MAX_LEVELS:  # identifier-like: nothing to group on
            cat.remove(col)
            data = data.drop(columns=col)
    return data


def cap_levels(values: pd.Series, col: str) -> tuple[pd.Series, str | None]:
    """At most :data:`MAX_LEVELS` levels: rarer ones merged into ``"other"``, with a note.

    A column whose levels are mostly unique (an identifier, a free-text field) is returned
    as it is with a note saying it is left out: one-hot coding 10,000 levels would make
    clustering crawl and mean nothing.

    >>> s, note = cap_levels(pd.Series(list("ab") * 50 + [f"x{i}" for i in range(40)]), "c")
    >>> s.nunique(), note.split(";")[0]
    (30, "'c': 42 levels")
    """
    counts = values.value_counts()
    if len(counts) <= MAX_LEVELS:
        return values, None
    if len(counts) > 0.5 * len(values):
        return values, (
            f"{col!r}: {len(counts):,} levels for {len(values):,} customers, mostly unique "
            "(an identifier or free text?), so it was left out of the clustering."
        )
    keep = set(counts.index[: MAX_LEVELS - 1])
    rare = ~values.isin(keep)
    note = (
        f"{col!r}: {len(counts):,} levels; the {MAX_LEVELS - 1} most frequent kept, "
        f"{int(rare.sum()):,} customers with one of the {len(counts) - len(keep):,} rarer "
        "levels grouped as 'other'."
    )
    return values.where(~rare, "other"), note


def as_levels(values: pd.Series) -> pd.Series:
    """A categorical column as strings, missing values as the level ``"missing"``.

    >>> as_levels(pd.Series(["a", None, 3])).tolist()
    ['a', 'missing', '3']
    """
    return values.astype("string").fillna("missing").astype(str)


def preprocessor(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    """log1p for skewed money/counts, robust scaling, one-hot for categories.

    Output columns: the log-transformed numeric features, the other numeric features, then
    one block of indicator columns per categorical attribute (the layout
    :class:`~segkit.segment.kprototypes.KPrototypes` and the gap reference rely on).

    Parameters
    ----------
    numeric, categorical : the (prepared) clustering columns.

    Returns
    -------
    An unfitted ``ColumnTransformer``.
    """
    logged = [c for c in numeric if c in LOG_FEATURES]
    plain = [c for c in numeric if c not in LOG_FEATURES]
    parts: list[tuple[str, Any, list[str]]] = []
    if logged:
        scaler = RobustScaler(quantile_range=QUANTILE_RANGE)
        parts.append(("log", make_pipeline(FunctionTransformer(np.log1p), scaler), logged))
    if plain:
        parts.append(("num", RobustScaler(quantile_range=QUANTILE_RANGE), plain))
    if categorical:
        parts.append(
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)
        )
    return ColumnTransformer(parts)


def onehot_layout(prep: ColumnTransformer) -> list[int]:
    """Sizes of the one-hot blocks after the numeric columns of a fitted preprocessor."""
    if "cat" not in prep.named_transformers_:
        return []
    return [len(c) for c in prep.named_transformers_["cat"].categories_]


@dataclass
class Transform:
    """A fitted :func:`preprocessor` as plain arrays: same output, nothing to unpickle.

    ``(log1p(x) - log_center) / log_scale`` for ``logged``, ``(x - center) / scale`` for
    ``plain``, then one indicator block per categorical column over ``categories`` (an
    unseen level gives a block of zeros, as ``OneHotEncoder(handle_unknown="ignore")``).
    """

    logged: list[str]
    log_center: np.ndarray
    log_scale: np.ndarray
    plain: list[str]
    center: np.ndarray
    scale: np.ndarray
    categories: dict[str, list[str]]

    @classmethod
    def from_fitted(cls, prep: ColumnTransformer) -> Transform:
        """The arrays of a fitted :func:`preprocessor`."""
        parts = {name: (est, cols) for name, est, cols in prep.transformers_}
        empty = np.zeros(0)
        log_center, log_scale, center, scale = empty, empty, empty, empty
        logged: list[str] = []
        plain: list[str] = []
        categories: dict[str, list[str]] = {}
        if "log" in parts:
            est, logged = parts["log"]
            scaler = est[-1]
            log_center, log_scale = scaler.center_, scaler.scale_
        if "num" in parts:
            est, plain = parts["num"]
            center, scale = est.center_, est.scale_
        if "cat" in parts:
            est, cols = parts["cat"]
            categories = {
                c: [str(v) for v in lv] for c, lv in zip(cols, est.categories_, strict=True)
            }
        return cls(list(logged), log_center, log_scale, list(plain), center, scale, categories)

    @property
    def width(self) -> int:
        """Number of output columns."""
        return len(self.logged) + len(self.plain) + sum(map(len, self.categories.values()))

    @property
    def blocks(self) -> list[int]:
        """Sizes of the one-hot blocks."""
        return [len(v) for v in self.categories.values()]

    def apply(self, data: Mapping[str, Any]) -> np.ndarray:
        """The transformed matrix of prepared columns ``data`` (a DataFrame or a dict of
        arrays): what the fitted ``ColumnTransformer.transform`` returns, computed with the
        same element-wise operations, column by column."""
        n = len(next(iter(data.values()))) if isinstance(data, dict) else len(data)
        out = np.zeros((n, self.width))
        j = 0
        for cols, center, scale, log in (
            (self.logged, self.log_center, self.log_scale, True),
            (self.plain, self.center, self.scale, False),
        ):
            for col, c, s in zip(cols, center, scale, strict=True):
                x = np.asarray(data[col], dtype=float)
                out[:, j] = ((np.log1p(x) if log else x) - c) / s
                j += 1
        for col, levels in self.categories.items():
            codes = pd.Index(levels).get_indexer(data[col])
            rows = np.flatnonzero(codes >= 0)
            out[rows, j + codes[rows]] = 1.0
            j += len(levels)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (lists and floats only)."""
        return {
            "logged": self.logged,
            "log_center": self.log_center.tolist(),
            "log_scale": self.log_scale.tolist(),
            "plain": self.plain,
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "categorical": list(self.categories),  # JSON objects lose their order
            "categories": list(self.categories.values()),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transform:
        """Rebuild from :meth:`to_dict`; a SegkitError if the arrays do not fit together."""
        t = cls(
            [str(c) for c in d["logged"]],
            np.asarray(d["log_center"], dtype=float),
            np.asarray(d["log_scale"], dtype=float),
            [str(c) for c in d["plain"]],
            np.asarray(d["center"], dtype=float),
            np.asarray(d["scale"], dtype=float),
            {
                str(c): [str(v) for v in lv]
                for c, lv in zip(d["categorical"], d["categories"], strict=True)
            },
        )
        for col, levels in t.categories.items():
            if len(set(levels)) != len(levels):
                raise SegkitError(f"transform: the levels of {col!r} repeat: {levels}")
        shapes = [(t.logged, t.log_center), (t.logged, t.log_scale)]
        shapes += [(t.plain, t.center), (t.plain, t.scale)]
        if any(arr.shape != (len(cols),) for cols, arr in shapes):
            raise SegkitError(
                f"transform: centers/scales do not match the columns {t.logged + t.plain}"
            )
        return t
