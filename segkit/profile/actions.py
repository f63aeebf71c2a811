"""A suggested action per segment, with the reason in words.

- :func:`suggest_actions`: from the recency, frequency, money and tenure indexes of a
  transaction log (retain, develop, win back, nurture or leave alone), revisited with the
  CLV value index; for a customer table from the value index of ``cluster.value`` and the
  outcome rates, see :func:`attribute_action`.
- :func:`attribute_action`: reward and upsell, fix service first, use the offer they
  respond to, low-cost channel only… from a segment's value index and its outcomes
  (:class:`Response`).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from segkit.core.checks import SegkitError, check_columns
from segkit.naming import feature_label
from segkit.profile.profiles import profiled
from segkit.profile.rules import Labels, fmt_number

_VALUE_COLS = ("clv_per_customer", "mean_clv", "clv_mean", "value_per_customer", "clv")


def suggest_actions(
    profiles: pd.DataFrame,
    clv_segments: pd.DataFrame | None = None,
    *,
    rates: pd.DataFrame | None = None,
    value_col: str | None = None,
    labels: Labels = None,
) -> pd.DataFrame:
    """A short suggested action per segment, with the reason, from its indexes.

    **Transaction data** (the profiles have recency, frequency or money indexes):
    recency (``index_days_since_last``), frequency (``index_orders`` or
    ``index_frequency``), money (``index_revenue``/``index_monetary``/``index_aov``) and
    tenure (``index_tenure_days``), 100 = population average:

    - recent (≤ 80), frequent and high-spending (≥ 120 both): **retain and reward**;
    - lapsed (≥ 130) but frequent or high-spending (≥ 100): **win back**;
    - lapsed and low on both: **leave alone / low-cost**;
    - recent with short tenure (≤ 60) and few orders: **nurture new**;
    - otherwise: **develop / cross-sell**.

    With ``clv_segments`` (``segment`` plus a value-per-customer column such as
    ``clv_per_customer``), a lapsed low segment whose value index is ≥ 150 is moved to win
    back and a win-back segment whose value index is < 50 to leave alone.

    **A customer table** (no purchase history): from the value index of ``value_col``
    (``cluster.value``) and the outcome ``rates`` (:func:`outcome_rates`), see
    :func:`attribute_action`. ``labels`` name the columns in the reasons.
    """
    p = profiled(profiles)

    def idx(*cols: str) -> pd.Series:
        for c in cols:
            if f"index_{c}" in p.columns:
                return p[f"index_{c}"].astype("float64")
        return pd.Series(np.nan, index=p.index)

    r, f = idx("days_since_last"), idx("orders", "frequency")
    m, ten = idx("revenue", "monetary", "aov"), idx("tenure_days")
    if r.isna().all() and f.isna().all() and m.isna().all():
        return _attribute_actions(p, rates, value_col, labels)
    value = _value_index(p, clv_segments)
    rows = []
    for i in p.index:
        action, reason = _action(r[i], f[i], m[i], ten[i])
        action, reason = _with_value(action, reason, value[i])
        rows.append(
            {
                "segment": int(p.at[i, "segment"]),
                "segment_name": p.at[i, "segment_name"],
                "action": action,
                "reason": reason,
                "value_index": value[i],
            }
        )
    return pd.DataFrame(rows)


def _value_index(p: pd.DataFrame, clv_segments: pd.DataFrame | None) -> pd.Series:
    """Each profiled segment's value per customer / the customer-weighted mean × 100."""
    value = pd.Series(np.nan, index=p.index)
    if clv_segments is None:
        return value
    check_columns(clv_segments, ["segment"], "clv_segments")
    vcol = next((c for c in _VALUE_COLS if c in clv_segments.columns), None)
    if vcol is None:
        raise SegkitError(
            f"clv_segments has no value column (one of {list(_VALUE_COLS)}); "
            f"columns are {list(clv_segments.columns)}"
        )
    v = p["segment"].map(clv_segments.set_index("segment")[vcol])
    pop = np.average(v.dropna(), weights=p.loc[v.notna(), "n"]) if v.notna().any() else 0
    return v / pop * 100 if pop > 0 else value


def _action(ri: float, fi: float, mi: float, ti: float) -> tuple[str, str]:
    """Action and reason from the recency, frequency, money and tenure indexes."""
    if np.isnan(ri) and np.isnan(fi) and np.isnan(mi):
        return "test and learn", "no purchase history to go by; compare offers with an A/B test"
    if ri <= 80 and fi >= 120 and mi >= 120:
        reason = f"buys recently (recency index {ri:.0f}), often ({fi:.0f}) and a lot ({mi:.0f})"
        return "retain and reward", reason
    if ri >= 130 and (fi >= 100 or mi >= 100):
        reason = f"valuable (frequency {fi:.0f}, spend {mi:.0f}) but lapsed (recency {ri:.0f})"
        return "win back", reason
    if ri >= 130:
        reason = f"lapsed (recency {ri:.0f}) with low frequency ({fi:.0f}) and spend ({mi:.0f})"
        return "leave alone / low-cost", reason
    if ri <= 100 and ti <= 60 and fi < 100:
        reason = f"recent first purchases (tenure index {ti:.0f}), few orders ({fi:.0f})"
        return "nurture new", reason
    reason = f"active (recency {ri:.0f}) with room to grow (frequency {fi:.0f}, spend {mi:.0f})"
    return "develop / cross-sell", reason


def _with_value(action: str, reason: str, vi: float) -> tuple[str, str]:
    """The action revisited with the segment's value index ``vi`` (NaN: unchanged)."""
    if np.isnan(vi):
        return action, reason
    if action == "leave alone / low-cost" and vi >= 150:
        return "win back", reason + f"; but expected value is high (index {vi:.0f})"
    if action == "win back" and vi < 50:
        return "leave alone / low-cost", reason + f"; but expected value is low (index {vi:.0f})"
    return action, reason + f"; expected value index {vi:.0f}"


# --------------------------------------------------------- actions for a customer table

#: Value index (segment mean of ``cluster.value`` / all customers' × 100) from which a
#: segment counts as high value, and up to which as low value.
HIGH_VALUE, LOW_VALUE = 120.0, 80.0
#: Index from which a deals feature (purchases on deals, discounts, coupons…) says a
#: segment goes for deals.
DEALS_INDEX = 150.0
_COMPLAINT = re.compile(r"complain", re.IGNORECASE)
_DEALS = re.compile(r"deal|discount|promo|coupon|voucher", re.IGNORECASE)


class Response(NamedTuple):
    """One outcome of one segment against all customers (a row of :func:`outcome_rates`)."""

    outcome: str
    kind: str  # "rate" or "mean"
    estimate: float
    low: float  # 95% interval
    high: float
    overall: float  # all customers
    direction: int  # +1: the interval lies above ``overall``; -1: below; 0: overlaps it


def _amount(kind: str, v: float) -> str:
    """A rate in % (one decimal under 10%), a mean to three significant digits."""
    if kind == "rate":
        return f"{v:.1%}" if v < 0.1 else f"{v:.0%}"
    return fmt_number(v)


def _responses(rates: pd.DataFrame | None, segment: int) -> list[Response]:
    """The segment's outcomes with a known interval, in the order of ``rates``."""
    if rates is None:
        return []
    rows = rates[(rates["segment"] == segment) & ~rates["suppressed"].astype(bool)]
    out = []
    for r in rows.itertuples():
        if not (np.isfinite(r.ci_low) and np.isfinite(r.ci_high) and np.isfinite(r.overall)):
            continue
        sign = 1 if r.ci_low > r.overall else (-1 if r.ci_high < r.overall else 0)
        out.append(
            Response(str(r.outcome), str(r.kind), r.estimate, r.ci_low, r.ci_high, r.overall, sign)
        )
    return out


def _response_text(r: Response, labels: Labels) -> str:
    """ "response 34% vs 18% of all customers (95% interval 30%-38%)"."""
    return (
        f"{feature_label(r.outcome, labels)} {_amount(r.kind, r.estimate)} vs "
        f"{_amount(r.kind, r.overall)} of all customers (95% interval "
        f"{_amount(r.kind, r.low)}-{_amount(r.kind, r.high)})"
    )


def _value_text(p: pd.DataFrame, i: Any, value_col: str | None, labels: Labels) -> str:
    """ "value index 138 (mean total spend 45,847 vs 33,227 for all customers)"."""
    if not value_col or not np.isfinite(_index_of(p, i, value_col)):
        return "no value column (cluster.value) says what these customers are worth"
    vi = _index_of(p, i, value_col)
    mean = float(p.at[i, f"mean_{value_col}"])
    label = feature_label(value_col, labels)
    return (
        f"value index {vi:.0f} (mean {label} {fmt_number(mean)} vs "
        f"{fmt_number(mean / vi * 100)} for all customers)"
    )


def _index_of(p: pd.DataFrame, i: Any, col: str | None) -> float:
    key = f"index_{col}"
    return float(p.at[i, key]) if col and key in p.columns and pd.notna(p.at[i, key]) else np.nan


def _deals(p: pd.DataFrame, i: Any, labels: Labels) -> str:
    """The segment's strongest deals feature at index ≥ :data:`DEALS_INDEX`, in words."""
    found = [
        (float(p.at[i, c]), c[len("index_") :])
        for c in p.columns
        if c.startswith("index_") and _DEALS.search(c[len("index_") :]) and pd.notna(p.at[i, c])
    ]
    best = max(found, default=(np.nan, ""))
    return f"{feature_label(best[1], labels)} index {best[0]:.0f}" if best[0] >= DEALS_INDEX else ""


def attribute_action(
    vi: float, responses: list[Response], deals: str = "", labels: Labels = None
) -> tuple[str, str]:
    """(action, the outcomes that decided it in words; "" when none stood out) for a
    segment of a customer table.

    ``vi`` is the value index (NaN: no value column), ``responses`` the segment's outcomes
    (a complaint outcome is one named like "complain"), ``deals`` a deals feature the
    segment stands out on ("" = none). A response counts as high or low only when its 95%
    interval excludes the all-customer rate:

    - complaints clearly above all customers: **fix service first**;
    - high value (index ≥ :data:`HIGH_VALUE`): high response **reward and upsell**; low
      response **retain with service, contact sparingly**; neither **retain and reward**;
    - otherwise a clearly high response, or deals: **use the offer they respond to**;
    - low value (index ≤ :data:`LOW_VALUE`), or no value column, with a low response:
      **low-cost channel only**; low value and no clear response, the same;
    - average value: low response **develop at low cost, contact sparingly**, else
      **develop / cross-sell**; no value column and no clear response: **test and learn**.

    >>> attribute_action(150.0, [Response("Response", "rate", .3, .25, .35, .2, 1)])[0]
    'reward and upsell'
    """
    complaints = [r for r in responses if _COMPLAINT.search(r.outcome) and r.direction > 0]
    answers = [r for r in responses if not _COMPLAINT.search(r.outcome)]
    high = sorted((r for r in answers if r.direction > 0), key=lambda r: -r.estimate / r.overall)
    low = [r for r in answers if r.direction < 0]
    words = [_response_text(r, labels) for r in complaints + high + low]
    why = "; ".join(words)
    if complaints:
        return "fix service first", why
    if vi >= HIGH_VALUE:
        if high:
            return "reward and upsell", why
        return (
            ("retain with service, contact sparingly", why) if low else ("retain and reward", why)
        )
    if high or deals:
        what = ", ".join([feature_label(r.outcome, labels) for r in high] + ["deals"] * bool(deals))
        why = "; ".join(w for w in (why, deals) if w)
        return f"use the offer they respond to ({what})", why
    if vi <= LOW_VALUE or (np.isnan(vi) and low):
        return "low-cost channel only", why
    if low:
        return "develop at low cost, contact sparingly", why
    return ("test and learn" if np.isnan(vi) else "develop / cross-sell"), why


def _attribute_actions(
    p: pd.DataFrame, rates: pd.DataFrame | None, value_col: str | None, labels: Labels
) -> pd.DataFrame:
    """:func:`suggest_actions` for a customer table: value index and outcome rates."""
    rows = []
    for i in p.index:
        segment = int(p.at[i, "segment"])
        vi = _index_of(p, i, value_col)
        responses = _responses(rates, segment)
        action, why = attribute_action(vi, responses, _deals(p, i, labels), labels)
        if not why:
            why = (
                "no outcomes (campaign acceptance, response…) to go by"
                if rates is None
                else "no outcome clearly above or below all customers (95% intervals)"
            )
        reason = "; ".join(w for w in (_value_text(p, i, value_col, labels), why) if w)
        rows.append((segment, p.at[i, "segment_name"], action, reason, vi))
    return pd.DataFrame(
        rows, columns=["segment", "segment_name", "action", "reason", "value_index"]
    )
