"""Plain words for segments: feature labels and descriptive, unique segment names.

Used by :mod:`segkit.profile` (and the clustering stage, through
``segkit.profile.segment_names``). Kept apart so each module stays readable.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from segkit.core.checks import SegkitError, check_columns, check_not_empty

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
_RECENCY = ("days_since_last",)
_FREQUENCY = ("orders", "frequency")
_MONETARY = ("revenue", "monetary", "aov")
_EXCLUDE = {"customer_id", "segment", "segment_name"}
#: Categorical values that only make sense next to their attribute's name.
_LEVEL_WORDS = {"low", "mid", "medium", "middle", "high", "none", "yes", "no", "true", "false"}


def feature_label(name: str) -> str:
    """Plain-English label of a feature name (``share_channel_web`` -> "share of web purchases").

    >>> feature_label("days_since_last")
    'last purchase'
    >>> feature_label("share_country_united_kingdom")
    'share of purchases from united kingdom'
    """
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
    return name.replace("_", " ")


def _numeric_cols(customers: pd.DataFrame) -> list[str]:
    return [
        c
        for c in customers.columns
        if c not in _EXCLUDE
        and pd.api.types.is_numeric_dtype(customers[c])
        and not pd.api.types.is_bool_dtype(customers[c])
    ]


def _categorical_cols(customers: pd.DataFrame, max_levels: int = 30) -> list[str]:
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


def _aligned(customers: pd.DataFrame, labels: pd.Series | pd.DataFrame, name: str) -> pd.Series:
    """Segment per row of ``customers`` (index aligned), validating ids and values."""
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


def _traits(customers: pd.DataFrame, seg: pd.Series) -> dict[int, list[tuple[float, str, str]]]:
    """Per segment: (strength, role, phrase) traits, strongest first.

    Numeric features are compared through population percentile ranks (scale-free: the
    segment's mean rank is 0.5 for an average segment); categorical values through lift.
    """
    num = _numeric_cols(customers)
    cat = _categorical_cols(customers)
    ranks = customers[num].rank(pct=True) if num else pd.DataFrame(index=customers.index)
    seg_rank = ranks.groupby(seg).mean()
    rec, freq, mon = _first(_RECENCY, num), _first(_FREQUENCY, num), _first(_MONETARY, num)
    out: dict[int, list[tuple[float, str, str]]] = {}
    for s in sorted(seg.unique()):
        traits: list[tuple[float, str, str]] = []
        members = seg == s
        for c in num:
            r = seg_rank.loc[s, c]
            if np.isnan(r) or abs(r - 0.5) < 0.15:
                continue
            strength = abs(r - 0.5)
            hi = r > 0.5
            if c == rec:
                traits.append((strength + 1, "recency", "lapsed" if hi else "recent"))
            elif c == freq:
                x = customers.loc[members, c]
                one = (x <= (1 if c == "orders" else 0)).mean() >= 0.8
                word = "one-time" if one else ("frequent" if hi else "occasional")
                traits.append((strength + 1, "frequency", word))
            elif c == mon:
                traits.append((strength + 1, "monetary", "high" if hi else "low"))
            else:
                values = customers[c].dropna().unique()
                binary = len(values) <= 2 and set(values) <= {0, 1}
                label = feature_label(c)
                share = _SHARE.match(c)
                if share:  # "from United Kingdom", "mostly web", "little grocery"
                    kind, value = share.group(1), share.group(2).replace("_", " ")
                    value = value.title() if kind == "country" else value
                    if value.lower() == "other":
                        value = {"country": "other countries"}.get(kind, f"other {kind}")
                    if kind == "country":
                        phrase = f"from {value}" if hi else f"not from {value}"
                    else:
                        phrase = f"mostly {value}" if hi else f"little {value}"
                elif binary:
                    phrase = label if hi else f"no {label}"
                else:
                    phrase = f"{'high' if hi else 'low'} {label}"
                traits.append((strength, "numeric", phrase))
        for c in cat:
            share = customers.loc[members, c].astype("string").value_counts(normalize=True)
            pop = customers[c].astype("string").value_counts(normalize=True)
            if share.empty:
                continue
            top = share.index[0]
            lift = share.iloc[0] / pop[top]
            if share.iloc[0] >= 0.5 and lift >= 1.2:
                text = re.sub(r"^\d+\)\s*", "", str(top))  # "1) $0 - $100" -> "$0 - $100"
                if text.lower() in _LEVEL_WORDS:  # "low income", not a bare "low"
                    word = f"{text.lower()} {feature_label(c)}"
                elif text.replace(" ", "").isalpha():
                    word = text.lower()
                else:
                    word = f"{feature_label(c)} {text}"
                traits.append((min(lift - 1, 1.0) * 0.5, "category", word))
        traits.sort(key=lambda t: -t[0])
        out[int(s)] = traits
    return out


def _compose(traits: list[tuple[float, str, str]], n_extra: int) -> str:
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
        adjectives = [p for _, role, p in others if role == "category"][:2]
        numeric = [p for _, role, p in others if role == "numeric"]
        k = max(0, 2 - len(adjectives)) + n_extra
        name = " ".join([*adjectives, "customers"])
        extra = numeric[:k]
    if name in ("buyers", "customers") and not extra:
        name = "average customers"
    if extra:
        name += ", " + " and ".join(extra)
    return name[0].upper() + name[1:]


def segment_names(
    customers: pd.DataFrame,
    labels: pd.Series | pd.DataFrame,
    overrides: dict | None = None,
) -> dict[int, str]:
    """A descriptive, unique name per segment, derived from its profile.

    Recency (``days_since_last``), frequency (``orders``/``frequency``) and money
    (``revenue``/``monetary``/``aov``) give names like "Recent frequent high spenders" or
    "Lapsed one-time buyers", comparing each segment's mean percentile rank with the
    population's (0.5): below 0.35 or above 0.65 counts. With attributes only, the most
    over-represented categories and the most distinct numeric attributes are used
    ("Urban web customers, high history"). Names that would repeat get the next most
    distinctive trait, then the segment number.

    Parameters
    ----------
    customers : one row per customer (``customer_id`` plus features/attributes).
    labels : segment per row of ``customers`` (Series/array), or a frame with
        ``customer_id`` and ``segment``.
    overrides : segment number -> name; these win (keys may be strings such as ``"1"``).

    Returns
    -------
    dict mapping segment number -> name.
    """
    seg = _aligned(customers, labels, "labels")
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
    traits = _traits(customers, seg)
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
