"""The clustering matrix: which features, checked and tidied, and how they are transformed.

:func:`prepare` checks and fills the clustering columns; :func:`preprocessor` is the
scikit-learn transformer fitted by the stage (log1p for money and counts, robust scaling,
one-hot categories); :class:`Transform` is that fitted transformer as plain arrays, which
is what a saved :class:`~segkit.segment.segmenter.Segmenter` keeps and applies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, RobustScaler

from segkit.core.checks import check_columns
from segkit.core.errors import SegkitError
from segkit.core.params import MAX_LEVELS

#: Default numeric features for transaction data.
DEFAULT_FEATURES = ["days_since_last", "orders", "revenue", "aov", "tenure_days"]
#: Money and counts of a transaction log: log1p-transformed even when not strongly skewed
#: (so runs on transaction logs keep their preparation); any other non-negative column is
#: log-transformed when the data are skewed (:func:`is_skewed`), whatever it is called.
LOG_FEATURES = frozenset({"orders", "revenue", "aov", "frequency", "monetary", "items", "history"})
#: Column whose mean per segment orders the segments when ``cluster.value`` is not given
#: (first present wins; none present: the segments are ordered by size).
VALUE_COLUMNS = ("revenue", "monetary", "history", "spend")
#: :func:`is_skewed`: skewness (of the values capped at their 1st and 99th percentiles)
#: above this, or a 99th percentile above RATIO_LIMIT times the median.
SKEW_LIMIT, RATIO_LIMIT = 1.0, 10.0
#: :func:`implausible_bounds`: values further than this many scaled MADs from the median,
#: as long as they are rare (at most this share of the customers, or 3 customers).
OUTLIER_MADS, MAX_IMPLAUSIBLE_SHARE = 10.0, 0.01
#: Category levels held by fewer than this share of the customers are named in a note:
#: a marital status "YOLO" or "Absurd" held by 2 of 2,240 customers is more often an entry
#: error than a kind of customer, and a reader of the report should see it.
RARE_LEVEL_SHARE = 0.01
#: Years of birth before this are implausible (a column named like birth/born/yob).
EARLIEST_BIRTH_YEAR = 1900
_BIRTH = re.compile(r"birth|born|yob", re.IGNORECASE)
#: Numeric columns named like this are taken for outcomes (results, not traits).
OUTCOME_NAMES = re.compile(
    r"accept|respon[sd]|complain|conver[st]|churn|click|redeem|unsubscri|"
    # the same in German, French, Spanish, Italian, Portuguese, Dutch (segkit.scaffold.infer)
    r"akzept|acept|accett|antwort|reaktion|r[ée]pon|respuest|rispost|reactie|beschwerde|"
    r"reklamation|plainte|queja|reclam|klacht|konver|k[üu]ndig|abwander|r[ée]sili|disdett|"
    r"opzeg|klick|\bclic|einl[öo]s|canje|riscatt",
    re.IGNORECASE,
)
#: Names of identifier columns (``ID``, ``CustomerID``, ``client_no``).
_ID_NAME = re.compile(r"(?:^|[_\s.])(?:id|key|no|nr|number)$", re.IGNORECASE)
_CAMEL_ID = re.compile(r"^I[dD]$|[a-z](?:ID|Id)$")
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


#: Personal data: a column that identifies a customer and describes no segment (a name,
#: an e-mail address, a phone number, a street address, a bank account), in the languages
#: of segkit.scaffold.infer's column names. Never clustered by default.
PERSONAL_NAMES = re.compile(
    # names: "FirstName", "last_name", "Name", "customer name"; not "product_name"
    r"^(?:first|last|full|sur|given|family|middle|customer|client|contact|vor|nach|"
    r"familien)?[ _.-]?name$|pr[ée]nom|^nom$|nom[ _.-]de[ _.-]famille|^nombre$|apellido|"
    r"cognome|voornaam|achternaam|^naam$|"
    # e-mail, phone, address; not "email_opens", "phone_orders", "share_channel_mobile"
    r"^e-?mail(?:[ _.-]?(?:address|adresse))?$|courriel|"
    r"(?:tele)?phone(?:[ _.-]?(?:number|no|nr))?$|t[ée]l[ée]phone$|tel[ée]fono$|"
    r"telefon(?:nummer)?$|^tel$|^handy$|^mobile(?:[ _.-]?(?:phone|number|no))?$|^fax$|"
    r"address(?:[ _.-]?(?:line)?[ _.-]?\d*)?$|^street(?:[ _.-]?(?:address|name|line)?\d*)$|"
    r"street$|stra(?:ss|ß)e$|anschrift|"
    r"^adresse|^rue$|direcci[óo]n|^calle$|indirizzo|^adres$|straat$|"
    # accounts and documents
    r"iban|passport|social[ _.-]?security|^ssn$",
    re.IGNORECASE,
)
#: A postal code: a code, not a quantity (Hillstrom's zip_code is Urban/Suburban/Rural).
POSTAL_NAMES = re.compile(
    r"zip|postal|post.?code|plz|postleitzahl|code.?postal|c[óo]digo.?postal|\bcap\b|"
    r"\bcep\b|postnummer|postcode",
    re.IGNORECASE,
)


def is_personal(name: str) -> bool:
    """A column named like personal data (:data:`PERSONAL_NAMES`).

    >>> is_personal("FirstName"), is_personal("Email"), is_personal("Income")
    (True, True, False)
    """
    return bool(PERSONAL_NAMES.search(str(name)))


def infer_outcomes(customers: pd.DataFrame) -> list[str]:
    """Numeric columns taken for outcomes: named like a result (:data:`OUTCOME_NAMES`:
    campaign acceptance, response, complaint, conversion, churn, click…).

    >>> t = pd.DataFrame({"AcceptedCmp1": [0, 1], "Response": [1, 0], "Kidhome": [0, 2]})
    >>> infer_outcomes(t)
    ['AcceptedCmp1', 'Response']
    """
    return [
        c
        for c in customers.columns
        if c != "customer_id"
        and OUTCOME_NAMES.search(str(c))
        and pd.api.types.is_numeric_dtype(customers[c])
    ]


def is_id_like(values: pd.Series) -> bool:
    """A numeric column that is an identifier: named like one (``ID``, ``client_no``) and
    a different whole number for every customer.

    >>> is_id_like(pd.Series([3, 1, 2], name="ID")), is_id_like(pd.Series([3, 1, 2], name="age"))
    (True, False)
    """
    name = str(values.name)
    if not (_ID_NAME.search(name) or _CAMEL_ID.search(name)):
        return False
    if not pd.api.types.is_numeric_dtype(values):
        return False
    v = values.dropna()
    return bool(len(v) > 1 and v.is_unique and (v == np.round(v)).all())


def default_features(
    customers: pd.DataFrame, exclude: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns to cluster on when the parameters give none.

    Parameters
    ----------
    customers : the customer table.
    exclude : columns never to cluster on by default (the outcomes).

    Returns
    -------
    The present :data:`DEFAULT_FEATURES` and ``share_*`` columns plus any other numeric
    column with more than two values; categorical: the remaining columns with at most
    :data:`MAX_LEVELS` levels. Dates, identifier-like columns (:func:`is_id_like`),
    personal data (:func:`is_personal`) and ``exclude`` are left out; a postal code is a
    category (when it has few levels), never a number.

    Examples
    --------
    >>> t = pd.DataFrame({"customer_id": ["a", "b", "c"], "revenue": [1.0, 2, 3],
    ...                   "age": [20, 30, 40], "region": ["n", "s", "n"]})
    >>> default_features(t)
    (['revenue', 'age'], ['region'])
    """
    skip = NOT_FEATURES | set(exclude)
    num = [c for c in DEFAULT_FEATURES if c in customers.columns and c not in skip]
    num += [c for c in customers.columns if c.startswith("share_") and c not in skip]
    skip |= set(num)
    rest = [
        c
        for c in customers.columns
        if c not in skip
        and not pd.api.types.is_datetime64_any_dtype(customers[c])
        and not is_id_like(customers[c])
        and not is_personal(c)
    ]
    num += [
        c
        for c in rest
        if pd.api.types.is_numeric_dtype(customers[c])
        and customers[c].nunique() > 2
        and not POSTAL_NAMES.search(str(c))  # a code: a category when it has few levels
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

    data: pd.DataFrame  # the clustering columns, missing values filled (not capped)
    numeric: list[str]
    categorical: list[str]
    notes: list[str]  # what was dropped, filled or capped, for the report
    logged: list[str] = []  # numeric columns log1p-transformed (is_skewed or LOG_FEATURES)
    bounds: dict[str, tuple[float, float]] = {}  # column -> (low, high) it is capped to
    capped: dict[str, int] = {}  # column -> customers whose value was capped
    dropped: dict[str, str] = {}  # column -> why it was left out


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


def is_skewed(values: pd.Series) -> bool:
    """Whether a numeric column is log1p-transformed before scaling.

    The rule: non-negative, at least three distinct values, and strongly skewed: the
    skewness of the values capped at their 1st and 99th percentiles is above
    :data:`SKEW_LIMIT` (1), or the 99th percentile is more than :data:`RATIO_LIMIT` (10)
    times the median. The percentiles keep one wild value (an income of 666,666) from
    deciding the scale of a column that is otherwise symmetric; that value is capped
    instead (:func:`implausible_bounds`).

    >>> rng = np.random.default_rng(0)
    >>> is_skewed(pd.Series(rng.lognormal(8, 1, 500))), is_skewed(pd.Series(rng.normal(50, 5, 500)))
    (True, False)
    """
    v = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    if len(v) < 3 or v.min() < 0 or v.nunique() < 3:
        return False
    lo, hi = v.quantile([0.01, 0.99])
    skew = v.clip(lo, hi).skew()
    median = v.median()
    return bool(
        (np.isfinite(skew) and skew > SKEW_LIMIT) or (median > 0 and hi > RATIO_LIMIT * median)
    )


def implausible_bounds(values: pd.Series, logged: bool) -> tuple[float, float] | None:
    """(low, high) to cap a column to, or None when no value is implausible.

    The robust rule: on the scale the column is clustered on (log1p when ``logged``), a
    value further than :data:`OUTLIER_MADS` (10) scaled median absolute deviations
    (1.4826 × MAD, about 10 standard deviations for normal data) from the median is
    implausible, as long as such values are rare (at most :data:`MAX_IMPLAUSIBLE_SHARE`,
    1% of the customers, or 3 customers in a small table: a column where more lie that far is zero-inflated or has several
    modes, like a share of purchases, and the MAD does not measure its spread); so is a
    year of birth before :data:`EARLIEST_BIRTH_YEAR` (1900) in a column named like
    birth/born/yob. Implausible values are capped to the most extreme plausible value
    seen. A column whose MAD is 0 (mostly one value) is not judged by the MAD.

    >>> income = pd.Series([40_000.0, 52_000, 61_000, 48_000, 55_000, 666_666])
    >>> implausible_bounds(income, logged=False)
    (40000.0, 61000.0)
    """
    v = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    if len(v) < 3:
        return None
    z = np.log1p(v) if logged else v
    median = z.median()
    mad = 1.4826 * (z - median).abs().median()
    ok = pd.Series(True, index=v.index)
    if mad > 0:
        near = (z - median).abs() <= OUTLIER_MADS * mad
        if (~near).sum() <= max(3, MAX_IMPLAUSIBLE_SHARE * len(v)):
            ok &= near
    if _BIRTH.search(str(values.name)) and 1900 <= v.median() <= 2100:
        ok &= v >= EARLIEST_BIRTH_YEAR
    if ok.all() or not ok.any():
        return None
    return float(v[ok].min()), float(v[ok].max())


def _usable(customers: pd.DataFrame, numeric: list[str], categorical: list[str]) -> tuple:
    """(numeric, categorical, notes, dropped): the columns that can separate customers."""
    notes: list[str] = []
    dropped: dict[str, str] = {}
    num: list[str] = []
    cat: list[str] = []
    for col in numeric + categorical:
        s = customers[col]
        if s.isna().all():
            notes.append(f"{col!r} is empty for every customer and was left out.")
            dropped[col] = "empty for every customer"
        elif s.nunique(dropna=True) < 2 and not s.isna().any():
            notes.append(f"{col!r} has the same value for every customer and was left out.")
            dropped[col] = "the same value for every customer"
        else:
            (num if col in numeric else cat).append(col)
    return num, cat, notes, dropped


def _cap_note(customers: pd.DataFrame, col: str, bounds: tuple, out: Any) -> str:
    values = customers.loc[out, col]
    shown = ", ".join(f"{v:.6g}" for v in sorted(values.unique())[:5])
    rule = (
        f"a year of birth before {EARLIEST_BIRTH_YEAR} or more than {OUTLIER_MADS:g} robust "
        "standard deviations from the median"
        if _BIRTH.search(str(col))
        else f"more than {OUTLIER_MADS:g} robust standard deviations (scaled MADs) from the median"
    )
    return (
        f"{col!r}: {int(out.sum()):,} implausible value(s) ({shown}; the rule: {rule}) capped "
        f"to {bounds[0]:.6g}..{bounds[1]:.6g} for the clustering ({_offenders(customers, out)})."
    )


def prepare(
    customers: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    where: str = "customers",
    *,
    rare_share: float = RARE_LEVEL_SHARE,
    rare_levels: str = "keep",
) -> Prepared:
    """Check and tidy the clustering columns; every problem named, nothing silently changed.

    - a numeric feature that is not numeric, or holds infinite values: an error naming the
      column and the first offending customers;
    - a column with no values at all, or with one value only: dropped, with a note (it
      cannot separate customers); an error if no feature is left;
    - missing values: numeric filled with the column's median, categorical with the level
      ``"missing"``, with a note giving the count;
    - skewed non-negative columns (:func:`is_skewed`, or :data:`LOG_FEATURES`) are marked
      for log1p; implausible values (:func:`implausible_bounds`) get bounds the
      preprocessor caps them to, with a note naming the values and the customers;
    - categorical levels held by under ``rare_share`` of the customers: counted and named
      in a note, kept (``rare_levels="keep"``) or merged into ``"other"`` (``"other"``).

    Parameters
    ----------
    customers : the customer table.
    numeric, categorical : the clustering columns.
    where : what the table is called in messages.
    rare_share, rare_levels : ``cluster.rare_share`` and ``cluster.rare_levels``.

    Returns
    -------
    :class:`Prepared`: the filled columns, the kept numeric and categorical names, notes,
    the logged columns, the capping bounds and counts, the columns left out and why.

    Raises
    ------
    SegkitError
        A column is missing, not numeric, holds infinite values, or no column varies.
    """
    check_columns(customers, numeric + categorical, where)
    _check_numeric(customers, numeric, where)
    num, cat, notes, dropped = _usable(customers, numeric, categorical)
    if not num and not cat:
        raise SegkitError(
            f"{where}: no usable clustering feature: {' '.join(notes)} Give "
            f"cluster.features / cluster.categorical columns that vary between customers."
        )
    data = customers[num + cat].copy()
    logged, bounds, capped = [], {}, {}
    for col in num:
        s = data[col]
        if (col in LOG_FEATURES and s.min() >= 0) or is_skewed(s):
            logged.append(col)
        b = implausible_bounds(s, col in logged)
        if b is not None:
            out = s.notna() & ((s < b[0]) | (s > b[1]))
            bounds[col], capped[col] = b, int(out.sum())
            notes.append(_cap_note(customers, col, b, out.to_numpy()))
        n = int(s.isna().sum())
        if n:
            data[col] = s.fillna(s.median())
            notes.append(f"{col!r}: {n:,} missing value(s) filled with the median.")
    data = _categorical(data, cat, notes, dropped, rare=(rare_share, rare_levels))
    if not num and not cat:
        raise SegkitError(f"{where}: no usable clustering feature: {' '.join(notes)}")
    return Prepared(data, num, cat, notes, logged, bounds, capped, dropped)


def _categorical(
    data: pd.DataFrame,
    cat: list[str],
    notes: list[str],
    dropped: dict[str, str],
    rare: tuple[float, str] = (RARE_LEVEL_SHARE, "keep"),
) -> pd.DataFrame:
    """Categorical columns as levels, rare ones kept or merged (``rare``: share and
    action), capped; identifier-like ones removed from ``cat``."""
    for col in list(cat):
        n = int(data[col].isna().sum())
        data[col] = as_levels(data[col])
        if n:
            notes.append(f"{col!r}: {n:,} missing value(s) kept as the level 'missing'.")
        data[col], rare_note = merge_rare_levels(data[col], col, *rare)
        data[col], note = cap_levels(data[col], col)
        notes += [n for n in (rare_note, note) if n]
        if data[col].nunique() > MAX_LEVELS:  # identifier-like: nothing to group on
            cat.remove(col)
            dropped[col] = "identifier-like: most customers have a level of their own"
            data = data.drop(columns=col)
    return data


def merge_rare_levels(
    values: pd.Series, col: str, share: float = RARE_LEVEL_SHARE, action: str = "keep"
) -> tuple[pd.Series, str | None]:
    """The levels of ``col`` held by fewer than ``share`` of the customers, counted and
    named in a note (the five rarest by name), kept as they are (``action="keep"``) or
    merged into ``"other"`` (``"other"``); the note is None when no level is rare.
    Columns with more than :data:`MAX_LEVELS` levels get :func:`cap_levels`' note instead.

    >>> s = pd.Series(["Single"] * 150 + ["Married"] * 148 + ["YOLO"] * 2)
    >>> merge_rare_levels(s, "Marital_Status")[1]
    "'Marital_Status': 2 customers hold a rare level (under 1% of customers each): 'YOLO' (2); kept as levels of their own (check them for entry errors; cluster.rare_levels: other merges them)."
    >>> merged, note = merge_rare_levels(s, "Marital_Status", 0.01, "other")
    >>> sorted(merged.unique()), note.split("; ")[-1]
    (['Married', 'Single', 'other'], "merged into 'other' (cluster.rare_levels).")
    """
    counts = values.value_counts()
    if len(counts) > MAX_LEVELS:
        return values, None
    rare = counts[counts < share * len(values)].drop(["missing", "other"], errors="ignore")
    if rare.empty:
        return values, None
    rare = rare.sort_values(kind="stable")
    shown = ", ".join(f"{v!r} ({n:,})" for v, n in rare.head(5).items())
    more = f" and {len(rare) - 5:,} more" if len(rare) > 5 else ""
    head = (
        f"{col!r}: {int(rare.sum()):,} customers hold a rare level (under "
        f"{share:.0%} of customers each): {shown}{more}; "
    )
    if action == "other":
        return values.where(~values.isin(rare.index), "other"), (
            head + "merged into 'other' (cluster.rare_levels)."
        )
    return values, head + (
        "kept as levels of their own (check them for entry errors; cluster.rare_levels: "
        "other merges them)."
    )


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
    merged = ", ".join(repr(v) for v in counts.index[MAX_LEVELS - 1 :][-3:])
    note = (
        f"{col!r}: {len(counts):,} levels; the {MAX_LEVELS - 1} most frequent kept, "
        f"{int(rare.sum()):,} customers with one of the {len(counts) - len(keep):,} rarer "
        f"levels (the rarest: {merged}) grouped as 'other'."
    )
    return values.where(~rare, "other"), note


def as_levels(values: pd.Series) -> pd.Series:
    """A categorical column as strings, missing values as the level ``"missing"``; numeric
    codes read as whole numbers ("2", not "2.0").

    >>> as_levels(pd.Series(["a", None, 3])).tolist()
    ['a', 'missing', '3']
    >>> as_levels(pd.Series([1.0, 2.0, None])).tolist()
    ['1', '2', 'missing']
    """
    if pd.api.types.is_float_dtype(values):
        whole = values.dropna()
        if len(whole) and bool((whole == np.round(whole)).all() and whole.abs().max() < 2**53):
            values = values.astype("Int64")
    return values.astype("string").fillna("missing").astype(str)


def clip_columns(X: Any, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``X`` (rows x columns) as floats, each column capped to ``lo``..``hi``.

    >>> clip_columns([[1, 50], [9, -3]], np.array([2.0, -1]), np.array([5.0, 10]))
    array([[ 2., 10.],
           [ 5., -1.]])
    """
    return np.clip(np.asarray(X, dtype=float), lo, hi)


def _numeric_part(
    cols: list[str], bounds: Mapping[str, tuple[float, float]], log: bool
) -> Pipeline:
    steps: list[tuple[str, Any]] = []
    if any(c in bounds for c in cols):
        lo = np.array([bounds.get(c, (-np.inf, np.inf))[0] for c in cols])
        hi = np.array([bounds.get(c, (-np.inf, np.inf))[1] for c in cols])
        steps.append(("clip", FunctionTransformer(clip_columns, kw_args={"lo": lo, "hi": hi})))
    if log:
        steps.append(("log", FunctionTransformer(np.log1p)))
    steps.append(("scale", RobustScaler(quantile_range=QUANTILE_RANGE)))
    return Pipeline(steps)


def preprocessor(
    numeric: list[str],
    categorical: list[str],
    logged: Iterable[str] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> ColumnTransformer:
    """Capping, log1p for skewed columns, robust scaling, one-hot for categories.

    Output columns: the log-transformed numeric features, the other numeric features, then
    one block of indicator columns per categorical attribute (the layout
    :class:`~segkit.segment.kprototypes.KPrototypes` and the gap reference rely on).

    Parameters
    ----------
    numeric, categorical : the (prepared) clustering columns.
    logged : the numeric columns to log1p (:attr:`Prepared.logged`); None: those in
        :data:`LOG_FEATURES`.
    bounds : column -> (low, high) to cap values to first (:attr:`Prepared.bounds`).

    Returns
    -------
    An unfitted ``ColumnTransformer``.
    """
    log_set = set(LOG_FEATURES if logged is None else logged)
    bounds = bounds or {}
    logs = [c for c in numeric if c in log_set]
    plain = [c for c in numeric if c not in log_set]
    parts: list[tuple[str, Any, list[str]]] = []
    if logs:
        parts.append(("log", _numeric_part(logs, bounds, log=True), logs))
    if plain:
        parts.append(("num", _numeric_part(plain, bounds, log=False), plain))
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


def _clip_bounds(est: Any, cols: list[str]) -> dict[str, tuple[float, float]]:
    """Column -> (low, high) of the capping step of a fitted numeric part, finite only."""
    if not isinstance(est, Pipeline) or "clip" not in est.named_steps:
        return {}
    kw = est.named_steps["clip"].kw_args
    return {
        c: (float(lo), float(hi))
        for c, lo, hi in zip(cols, kw["lo"], kw["hi"], strict=True)
        if np.isfinite(lo) or np.isfinite(hi)
    }


@dataclass
class Transform:
    """A fitted :func:`preprocessor` as plain arrays: same output, nothing to unpickle.

    ``x`` capped to ``clip[col]`` when given, then ``(log1p(x) - log_center) / log_scale``
    for ``logged``, ``(x - center) / scale`` for ``plain``, then one indicator block per
    categorical column over ``categories`` (an unseen level gives a block of zeros, as
    ``OneHotEncoder(handle_unknown="ignore")``).
    """

    logged: list[str]
    log_center: np.ndarray
    log_scale: np.ndarray
    plain: list[str]
    center: np.ndarray
    scale: np.ndarray
    categories: dict[str, list[str]]
    clip: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_fitted(cls, prep: ColumnTransformer) -> Transform:
        """The arrays of a fitted :func:`preprocessor`."""
        parts = {name: (est, cols) for name, est, cols in prep.transformers_}
        empty = np.zeros(0)
        log_center, log_scale, center, scale = empty, empty, empty, empty
        logged: list[str] = []
        plain: list[str] = []
        categories: dict[str, list[str]] = {}
        clip: dict[str, tuple[float, float]] = {}
        if "log" in parts:
            est, logged = parts["log"]
            scaler = est[-1]
            log_center, log_scale = scaler.center_, scaler.scale_
            clip.update(_clip_bounds(est, logged))
        if "num" in parts:
            est, plain = parts["num"]
            scaler = est[-1] if isinstance(est, Pipeline) else est
            center, scale = scaler.center_, scaler.scale_
            clip.update(_clip_bounds(est, plain))
        if "cat" in parts:
            est, cols = parts["cat"]
            categories = {
                c: [str(v) for v in lv] for c, lv in zip(cols, est.categories_, strict=True)
            }
        return cls(
            list(logged), log_center, log_scale, list(plain), center, scale, categories, clip
        )

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
                if col in self.clip:
                    x = np.clip(x, *self.clip[col])
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
            "clip": {c: [float(lo), float(hi)] for c, (lo, hi) in self.clip.items()},
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
            {str(c): (float(b[0]), float(b[1])) for c, b in (d.get("clip") or {}).items()},
        )
        for col, levels in t.categories.items():
            if len(set(levels)) != len(levels):
                raise SegkitError(f"transform: the levels of {col!r} repeat: {levels}")
        unknown = sorted(set(t.clip) - set(t.logged) - set(t.plain))
        if unknown or any(not lo <= hi for lo, hi in t.clip.values()):
            raise SegkitError(f"transform: the capping bounds do not fit the columns: {t.clip}")
        shapes = [(t.logged, t.log_center), (t.logged, t.log_scale)]
        shapes += [(t.plain, t.center), (t.plain, t.scale)]
        if any(arr.shape != (len(cols),) for cols, arr in shapes):
            raise SegkitError(
                f"transform: centers/scales do not match the columns {t.logged + t.plain}"
            )
        return t


# ------------------------------------------------------------- what happened to each column
