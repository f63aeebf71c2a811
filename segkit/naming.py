"""Plain words for segments: feature labels and descriptive, unique segment names.

- :func:`feature_label`, :func:`feature_unit`, :func:`is_share`: how a feature reads;
- :func:`numeric_columns`, :func:`categorical_columns`: which customer columns are
  features and which are categorical attributes;
- :func:`align_segments`: one segment per customer row, validated;
- :func:`segment_names`: a descriptive, unique name per segment.

Used by :mod:`segkit.profile`, :mod:`segkit.segment` and the stages.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from segkit.core.checks import SegkitError, check_columns, check_not_empty
from segkit.core.words import NO_WORDS, YES_WORDS

# Feature name -> (plain label, unit phrase placed after a value). "days ago" features read
# "last purchase ≤ 30 days ago"; the others "orders ≥ 5".
_LABELS: dict[str, tuple[str, str]] = {
    "days_since_last": ("last purchase", "days ago"),
    "tenure_days": ("first purchase", "days ago"),
    "orders": ("orders", ""),
    "revenue": ("revenue", ""),
    "aov": ("average order value", ""),
    "mean_ipt_days": ("days between purchases", ""),
    "items": ("items bought", ""),
    "frequency": ("repeat purchases", ""),
    "recency": ("recency", ""),
    "T": ("customer age", ""),
    "monetary": ("average repeat purchase value", ""),
}
_SHARE = re.compile(r"^share_(category|channel|country)_(.+)$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_DAYS_SINCE = re.compile(r"^days_since_(.+)$")
#: Level values that mean "no value" and never appear in a name.
_MISSING_WORDS = {"", "nan", "none", "null", "<na>", "missing", "n/a", "na"}
_RECENCY = ("days_since_last",)
_FREQUENCY = ("orders", "frequency")
_MONETARY = ("revenue", "monetary", "aov")
_EXCLUDE = {"customer_id", "segment", "segment_name"}
#: Categorical values that only make sense next to their attribute's name.
_LEVEL_WORDS = {"low", "mid", "medium", "middle", "high", "none", "yes", "no", "true", "false"}
#: Two-level attributes read as flags (``newbie`` 0/1, yes/no, ja/nein): the "yes" and
#: the "no" values.
_FLAG_YES = {"1", *YES_WORDS}
_FLAG_NO = {"0", *NO_WORDS}


def readable(name: str) -> str:
    """A column name made readable: CamelCase and underscores split, lower case.

    >>> readable("NumWebPurchases"), readable("Detergents_Paper"), readable("ID")
    ('num web purchases', 'detergents paper', 'id')
    """
    words = _CAMEL.sub(" ", str(name)).replace("_", " ").replace(".", " ")
    return " ".join(words.split()).lower()


def feature_label(name: str, labels: dict[str, str] | None = None) -> str:
    """Plain-English label of a feature name (``share_channel_web`` -> "share of web purchases").

    ``labels`` (``data.customers.labels``) win; other names are made readable
    (:func:`readable`). A label keyed ``"column=level"`` names a level of a categorical
    column (``"Channel=2": "retail"``) and is used in segment names.

    >>> feature_label("days_since_last")
    'last purchase'
    >>> feature_label("share_country_united_kingdom")
    'share of purchases from united kingdom'
    >>> feature_label("MntWines"), feature_label("MntWines", {"MntWines": "wine spend"})
    ('mnt wines', 'wine spend')
    >>> feature_label("days_since_Dt_Customer")
    'days since dt customer'
    """
    if labels and name in labels:
        return str(labels[name])
    if name in _LABELS:
        return _LABELS[name][0]
    m = _SHARE.match(name)
    if m:
        kind, value = m.group(1), m.group(2).replace("_", " ")
        return (
            f"share of purchases from {value}"
            if kind == "country"
            else (f"share of {value} purchases")
        )
    days = _DAYS_SINCE.match(name)
    if days and labels and days.group(1) in labels:
        return f"days since {labels[days.group(1)]}"
    return readable(name)


def feature_unit(name: str) -> str:
    """Unit phrase placed after a value of the feature ("days ago"), or "" when none.

    >>> feature_unit("days_since_last"), feature_unit("orders")
    ('days ago', '')
    """
    return _LABELS.get(name, ("", ""))[1]


def is_share(name: str) -> bool:
    """Whether ``name`` is a share-of-purchases feature (``share_channel_web``: 0 to 1).

    >>> is_share("share_category_grocery"), is_share("orders")
    (True, False)
    """
    return _SHARE.match(name) is not None


def numeric_columns(customers: pd.DataFrame) -> list[str]:
    """Numeric, non-boolean columns of ``customers`` other than ids and segment columns.

    >>> numeric_columns(pd.DataFrame({"customer_id": [1], "orders": [2], "vip": [True]}))
    ['orders']
    """
    return [
        c
        for c in customers.columns
        if c not in _EXCLUDE
        and pd.api.types.is_numeric_dtype(customers[c])
        and not pd.api.types.is_bool_dtype(customers[c])
    ]


def categorical_columns(customers: pd.DataFrame, max_levels: int = 30) -> list[str]:
    """Boolean or text columns (not ids or segment columns) with at most ``max_levels`` values.

    >>> categorical_columns(pd.DataFrame({"customer_id": ["a"], "channel": ["web"], "n": [1]}))
    ['channel']
    """
    out = []
    for c in customers.columns:
        if c in _EXCLUDE:
            continue
        s = customers[c]
        if pd.api.types.is_bool_dtype(s) or not (
            pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s)
        ):
            if s.nunique(dropna=True) <= max_levels:
                out.append(c)
    return out


def align_segments(
    customers: pd.DataFrame, labels: pd.Series | pd.DataFrame, name: str = "labels"
) -> pd.Series:
    """Segment per row of ``customers`` (index aligned), validating ids and values.

    Parameters
    ----------
    customers : one row per customer with ``customer_id``.
    labels : a frame with ``customer_id`` and ``segment`` (each id once, every id a
        customer), or one segment per row of ``customers`` (Series or array).
    name : what ``labels`` is called in error messages.

    Returns
    -------
    Series ``segment`` of int64 on the index of ``customers``.

    Raises
    ------
    SegkitError
        When a column is missing, ids repeat or are unknown, the lengths differ, a customer
        has no segment, or a segment is not an integer.

    Examples
    --------
    >>> c = pd.DataFrame({"customer_id": ["a", "b"]})
    >>> align_segments(c, pd.DataFrame({"customer_id": ["b", "a"], "segment": [2, 1]})).tolist()
    [1, 2]
    """
    check_columns(customers, ["customer_id"], "customers")
    check_not_empty(customers, "customers")
    if isinstance(labels, pd.DataFrame):
        check_columns(labels, ["customer_id", "segment"], name)
        if labels["customer_id"].duplicated().any():
            dup = labels.loc[labels["customer_id"].duplicated(), "customer_id"].head(3).tolist()
            raise SegkitError(f"{name} has duplicated customer_id values, e.g. {dup}")
        unknown = ~labels["customer_id"].isin(customers["customer_id"])
        if unknown.any():
            ids = labels.loc[unknown, "customer_id"].head(3).tolist()
            raise SegkitError(
                f"{name} has {int(unknown.sum())} customer_id values not in customers, e.g. {ids}"
            )
        seg = customers["customer_id"].map(labels.set_index("customer_id")["segment"])
    else:
        if len(labels) != len(customers):
            raise SegkitError(
                f"{name} has {len(labels)} values, must have one per customer ({len(customers)})."
            )
        seg = pd.Series(np.asarray(labels), index=customers.index)
    if seg.isna().any():
        raise SegkitError(
            f"{name}: {int(seg.isna().sum())} customers have no segment; expected one each."
        )
    try:
        seg = seg.astype("int64")
    except (TypeError, ValueError):
        raise SegkitError(
            f"{name}: segment values must be integers, found e.g. {seg.iloc[0]!r}"
        ) from None
    return seg.rename("segment")


def _first(cols: tuple[str, ...], available: list[str]) -> str | None:
    return next((c for c in cols if c in available), None)


Trait = tuple[float, str, str]  # (strength, role, phrase)

#: A date column that is a birth date, or the date a customer joined (in the languages of
#: segkit.scaffold.infer's column names).
_BIRTH = re.compile(r"birth|\bdob\b|^dob|geburt|naissance|nacimiento|nascita|geboorte", re.I)
#: A gender column written in letters (f/m/d, German w for weiblich), read as words.
_GENDER = re.compile(r"gender|sex|geschlecht|sexe|sexo|genere|geslacht|anrede", re.I)
_GENDER_LETTERS = {"f": "female", "w": "female", "m": "male", "d": "diverse"}
_ADJECTIVES = frozenset({"older", "younger", "long-standing", "recently joined"})
_JOINED = re.compile(
    r"since|join|sign.?up|regist|enrol|member|dt_customer|customer_?date|seit|eintritt|"
    r"inscri|adh[ée]sion|alta\b|iscrizione|lid_?sinds",
    re.I,
)


def _numeric_phrase(
    customers: pd.DataFrame, c: str, hi: bool, labels: dict[str, str] | None = None
) -> str:
    """A numeric feature that is not R, F or M in words: "mostly web", "high history"."""
    share = _SHARE.match(c)
    if share:  # "from United Kingdom", "mostly web", "little grocery"
        kind, value = share.group(1), share.group(2).replace("_", " ")
        value = value.title() if kind == "country" else value
        if value.lower() == "other":
            value = {"country": "other countries"}.get(kind, f"other {kind}")
        if kind == "country":
            return f"from {value}" if hi else f"not from {value}"
        return f"mostly {value}" if hi else f"little {value}"
    label = feature_label(c, labels)
    values = customers[c].dropna().unique()
    if len(values) <= 2 and set(values) <= {0, 1}:  # a flag
        return label if hi else f"no {label}"
    since = _DAYS_SINCE.match(c)
    if since and not (labels or {}).get(since.group(1)):
        if _BIRTH.search(since.group(1)):  # many days since birth: "older", not "early birth"
            return "older" if hi else "younger"
        if _JOINED.search(since.group(1)):  # "long-standing", not "early member since"
            return "long-standing" if hi else "recently joined"
    if since:  # a date: "recent joining date", not "low days since joining date"
        date = (labels or {}).get(since.group(1)) or readable(since.group(1))
        return f"early {date}" if hi else f"recent {date}"
    return f"{'high' if hi else 'low'} {label}"


def _numeric_trait(
    customers: pd.DataFrame,
    members: pd.Series,
    c: str,
    rank: float,
    rfm: tuple,
    labels: dict[str, str] | None = None,
) -> Trait | None:
    """The trait of numeric feature ``c`` for a segment of mean percentile rank ``rank``."""
    if np.isnan(rank) or abs(rank - 0.5) < 0.15:
        return None
    strength = abs(rank - 0.5)
    hi = rank > 0.5
    rec, freq, mon = rfm
    if c == rec:
        return (strength + 1, "recency", "lapsed" if hi else "recent")
    if c == freq:
        x = customers.loc[members, c]
        one = (x <= (1 if c == "orders" else 0)).mean() >= 0.8
        return (
            strength + 1,
            "frequency",
            "one-time" if one else ("frequent" if hi else "occasional"),
        )
    if c == mon:
        return (strength + 1, "monetary", "high" if hi else "low")
    phrase = _numeric_phrase(customers, c, hi, labels)
    # an age or a membership reads before the noun, as a category's level does:
    # "Older customers, high income", not "Customers, early birth date"
    return (strength, "category" if phrase in _ADJECTIVES else "numeric", phrase)


def _as_text(values: pd.Series) -> pd.Series:
    """Levels as text; numeric codes as whole numbers ("2", not "2.0")."""
    if pd.api.types.is_float_dtype(values):
        v = values.dropna()
        if len(v) and bool((v == np.round(v)).all() and v.abs().max() < 2**53):
            values = values.astype("Int64")
    return values.astype("string")


def _category_trait(
    customers: pd.DataFrame, members: pd.Series, c: str, labels: dict[str, str] | None = None
) -> Trait | None:
    """The segment's most over-represented value of attribute ``c``, if it stands out
    (a missing value never does)."""
    levels = _as_text(customers[c])
    share = levels[members].value_counts(normalize=True)
    pop = levels.value_counts(normalize=True)
    if share.empty:
        return None
    top = share.index[0]
    if str(top).strip().lower() in _MISSING_WORDS:
        return None
    lift = share.iloc[0] / pop[top]
    if share.iloc[0] < 0.5 or lift < 1.2:
        return None
    text = re.sub(r"^\d+\)\s*", "", str(top))  # "1) $0 - $100" -> "$0 - $100"
    kinds = {str(v).strip().lower() for v in pop.index}
    if labels and f"{c}={top}" in labels:  # data.customers.labels {"Channel=2": "retail"}
        word = str(labels[f"{c}={top}"])
    elif len(kinds) == 2 and (kinds <= _FLAG_YES | _FLAG_NO) and kinds & _FLAG_YES:
        # a flag: newbie = 1 reads "newbie", newbie = 0 "not newbie" (not "newbie 1"); what
        # a segment lacks describes it less than what it has: half the strength
        label = feature_label(c, labels)
        if text.strip().lower() not in _FLAG_YES:
            return (min(lift - 1, 1.0) * 0.25, "absent", f"not {label}")
        word = label
    elif _GENDER.search(c) and text.strip().lower() in _GENDER_LETTERS:  # "F customers"
        word = _GENDER_LETTERS[text.strip().lower()]
    elif text.lower() in _LEVEL_WORDS:  # "low income", not a bare "low"
        word = f"{text.lower()} {feature_label(c, labels)}"
    elif text.replace(" ", "").isalpha():  # "PhD", "USA" keep their capitals, "Urban" not
        word = text if any(ch.isupper() for ch in text[1:]) else text.lower()
    else:
        word = f"{feature_label(c, labels)} {text}"
    return (min(lift - 1, 1.0) * 0.5, "category", word)


def _traits(
    customers: pd.DataFrame,
    seg: pd.Series,
    features: tuple[list[str], list[str]] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[int, list[Trait]]:
    """Per segment: (strength, role, phrase) traits, strongest first.

    Numeric features are compared through population percentile ranks (scale-free: the
    segment's mean rank is 0.5 for an average segment); categorical values through lift.
    Only ``features`` (numeric, categorical) count when given: the clustering columns,
    so an outcome or an id never names a segment, and a numeric code clustered as a
    category (a region number) reads as one.
    """
    num = numeric_columns(customers)
    cat = categorical_columns(customers)
    if features is not None:
        num = [c for c in features[0] if c in num]
        cat = [c for c in features[1] if c in customers.columns]
    ranks = customers[num].rank(pct=True) if num else pd.DataFrame(index=customers.index)
    seg_rank = ranks.groupby(seg).mean()
    rfm = (_first(_RECENCY, num), _first(_FREQUENCY, num), _first(_MONETARY, num))
    out: dict[int, list[Trait]] = {}
    for s in sorted(seg.unique()):
        members = seg == s
        found = [
            _numeric_trait(customers, members, c, seg_rank.loc[s, c], rfm, labels) for c in num
        ]
        found += [_category_trait(customers, members, c, labels) for c in cat]
        traits = [t for t in found if t is not None]
        traits.sort(key=lambda t: -t[0])
        out[int(s)] = traits
    return out


def _compose(traits: list[Trait], n_extra: int) -> str:
    roles = {
        role: phrase for _, role, phrase in traits if role in ("recency", "frequency", "monetary")
    }
    others = [t for t in traits if t[1] not in ("recency", "frequency", "monetary")]
    if roles:
        words = [roles[r] for r in ("recency", "frequency") if r in roles]
        mon = roles.get("monetary")
        if mon == "high" or (mon == "low" and roles.get("frequency") != "one-time"):
            words.append(f"{mon} spenders")
        else:
            words.append("buyers")
        name = " ".join(words)
        extra = [p for _, _, p in others[:n_extra]]
    else:
        # the two (three, four… while names clash) traits that most set it apart
        top = others[: 2 + n_extra]
        adjectives = [p for _, role, p in top if role == "category"]
        name = " ".join([*adjectives, "customers"])
        extra = [p for _, role, p in top if role != "category"]  # ", high income, not newbie"
    if name in ("buyers", "customers") and not extra:
        name = "average customers"
    if extra:
        name += ", " + " and ".join(extra)
    return name[0].upper() + name[1:]


def segment_names(
    customers: pd.DataFrame,
    labels: pd.Series | pd.DataFrame,
    overrides: dict | None = None,
    *,
    features: list[str] | None = None,
    categorical: list[str] | None = None,
    readable: dict[str, str] | None = None,
) -> dict[int, str]:
    """A descriptive, unique name per segment, derived from its profile.

    Recency (``days_since_last``), frequency (``orders``/``frequency``) and money
    (``revenue``/``monetary``/``aov``) give names like "Recent frequent high spenders" or
    "Lapsed one-time buyers", comparing each segment's mean percentile rank with the
    population's (0.5): below 0.35 or above 0.65 counts. With attributes only, the most
    over-represented categories and the most distinct numeric attributes are used
    ("Urban web customers, high history"). A two-level attribute reads as a flag
    ("newbie" for ``newbie`` = 1; ", not newbie", a weaker trait, for 0); ``readable`` may
    name a level (``{"newbie=0": "returning"}``). Names that would repeat get the next most
    distinctive trait, then the segment number.

    Parameters
    ----------
    customers : one row per customer (``customer_id`` plus features/attributes).
    labels : segment per row of ``customers`` (Series/array), or a frame with
        ``customer_id`` and ``segment``.
    overrides : segment number -> name; these win (keys may be strings such as ``"1"``).
    features, categorical : the numeric and categorical columns a name may use (the
        clustering features); None = every numeric and categorical column.
    readable : column -> readable name (``data.customers.labels``); other columns are
        made readable from their names (:func:`feature_label`).

    Returns
    -------
    dict mapping segment number -> name.
    """
    seg = align_segments(customers, labels, "labels")
    segments = sorted(int(s) for s in seg.unique())
    fixed: dict[int, str] = {}
    for key, value in (overrides or {}).items():
        try:
            k = int(key)
        except (TypeError, ValueError):
            raise SegkitError(f"overrides key {key!r} must be a segment number") from None
        if k not in segments:
            raise SegkitError(f"overrides names segment {k}, segments are {segments}")
        fixed[k] = str(value)
    if len(set(fixed.values())) < len(fixed):
        raise SegkitError(f"overrides has repeated names: {sorted(fixed.values())}")
    given = (
        None if features is None and categorical is None else (features or [], categorical or [])
    )
    traits = _traits(customers, seg, given, readable)
    names = dict(fixed)
    taken = set(fixed.values())
    free = [s for s in segments if s not in fixed]
    extra = dict.fromkeys(free, 0)
    for _ in range(4):
        proposed = {s: _compose(traits[s], extra[s]) for s in free}
        counts = pd.Series(list(proposed.values()) + list(taken)).value_counts()
        clash = [s for s in free if counts[proposed[s]] > 1]
        if not clash:
            break
        for s in clash:
            extra[s] += 1
    for s in free:  # still equal after adding traits: the segment number settles it
        name = proposed[s]
        if name in taken or list(proposed.values()).count(name) > 1:
            name = f"{name} ({s})"
        names[s] = name
        taken.add(name)
    return {s: names[s] for s in segments}
