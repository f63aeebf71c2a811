"""The plan in words and in tables for the report.

Every data-derived string (segment, campaign, channel names) goes through ``escape``, which
the stage sets to its Markdown/HTML escaping (:func:`segkit.stages.text.md`).
"""

from __future__ import annotations

from collections.abc import Callable

from segkit.plan.build import SEND, Plan
from segkit.plan.customers import (
    BELOW_BUDGET,
    CONTACTED,
    HOLDOUT,
    NO_CONSENT,
    NO_SEGMENT,
    NOT_PROVEN,
    SUPPRESSED,
    TOO_SMALL,
)

Escape = Callable[[object], str]


def money(v: float, currency: str = "") -> str:
    """A sum of money: thousands separated, cents below 100."""
    sign = "-" if v < 0 else ""
    v = abs(float(v))
    return f"{sign}{currency}{v:,.0f}" if v >= 100 else f"{sign}{currency}{v:,.2f}"


def _interval(low: float, high: float, currency: str) -> str:
    return f"95% interval {money(low, currency)} to {money(high, currency)}"


def _headline(plan: Plan, currency: str, alpha: float, md: Escape) -> str:
    t, comp = plan.table, plan.comparison
    sent = t[t["decision"] == SEND].sort_values("expected_profit", ascending=False)
    if sent.empty:
        best = t.sort_values("p_adjusted").iloc[0] if len(t) else None
        tail = (
            f" (closest: '{md(best['campaign'])}' for {md(best['segment_name'])}, adjusted "
            f"p = {best['p_adjusted']:.2g})"
            if best is not None
            else ""
        )
        return (
            "The plan sends nothing: no segment × campaign has a profit per contact proven "
            f"above zero at the plan's error rate {alpha:g}{tail}; keep testing instead."
        )
    parts = [
        f"'{md(r.campaign)}' by {md(r.channel)} to {md(r.segment_name)} ({r.contacts:,} contacts, "
        f"cost {money(r.cost, currency)})"
        for r in sent.itertuples()
    ]
    p = comp.iloc[0]
    return (
        "The plan: send "
        + "; ".join(parts)
        + f". Expected incremental profit {money(p['expected_profit'], currency)} "
        f"({_interval(p['expected_profit_low'], p['expected_profit_high'], currency)})."
    )


def _comparison(plan: Plan, currency: str, md: Escape) -> str:
    c = plan.comparison
    alt = c.iloc[1]
    return (
        f"Against the alternatives: {md(alt['strategy'])} (every contactable customer of the "
        f"evaluated segments, {int(alt['contacts']):,} contacts, no budget limit) is expected "
        f"to make {money(alt['expected_profit'], currency)} "
        f"({_interval(alt['expected_profit_low'], alt['expected_profit_high'], currency)}); "
        "sending nobody makes 0."
    )


def _holdouts(plan: Plan) -> list[str]:
    t = plan.table[plan.table["holdout"] > 0]
    if t.empty:
        return []
    low = t[t["holdout_power"] < 0.8]
    weak = (
        f"; in {len(low)} segment(s) the holdout is capped (plan.max_holdout_share) and the "
        f"power is lower (lowest {t['holdout_power'].min():.0%})"
        if len(low)
        else ""
    )
    return [
        f"A random holdout is kept in every targeted segment ({int(t['holdout'].sum()):,} "
        "customers in all, not contacted) so that the next campaign can be measured: each is "
        "sized to detect the lift seen now with the A/B stage's power, given the contacts"
        + weak
        + "."
    ]


def _counts(plan: Plan) -> str:
    n = dict(zip(plan.counts["reason"], plan.counts["customers"], strict=True))
    left = [
        (NO_CONSENT, "no consent"),
        (SUPPRESSED, "suppressed"),
        (NO_SEGMENT, "no segment"),
        (TOO_SMALL, "in a segment too small or not evaluated in the experiment"),
        (NOT_PROVEN, "in a segment with no proven profit"),
        (BELOW_BUDGET, "below the budget or caps"),
    ]
    out = ", ".join(f"{n[k]:,} {w}" for k, w in left if n.get(k))
    return (
        f"Of {n['total']:,} customers, {n[CONTACTED]:,} are contacted and {n[HOLDOUT]:,} held "
        f"out (artifacts/contacts.csv); left out: {out or 'none'} (artifacts/plan_counts.csv)."
    )


def _rule(plan: Plan, p: dict) -> str:
    q = plan.table
    return (
        f"The rule: a segment × campaign × channel is sent only when its profit per contact "
        f"(lift × margin {p['clv']['margin']:g} − cost) is above zero after Holm's correction "
        f"over all {len(q)} of them, one-sided at plan.alpha = {p['plan']['alpha']:g}: the "
        "chance of any false 'send' in the plan stays below that. Among those, contacts go to "
        "the most profitable under the budget and caps (an exact integer program). The "
        "probability of profit is the normal approximation of the lift's uncertainty."
    )


def findings(
    plan: Plan,
    params: dict,
    *,
    currency: str = "",
    value_source: str = "none",
    escape: Escape = str,
) -> list[str]:
    """The plan's findings, in plain words (the first is the headline)."""
    q = params["plan"]
    out = [_headline(plan, currency, q["alpha"], escape), _comparison(plan, currency, escape)]
    out += _holdouts(plan)
    out.append(_counts(plan))
    if q["budget"] is not None:
        used = float(plan.table["cost"].sum())
        out.append(f"Budget {money(q['budget'], currency)}: {money(used, currency)} used.")
    if len(q["channels"]) > 1:
        out.append(
            "Every channel is assumed to move customers as the experiment's did; only the costs "
            "and caps differ by channel."
        )
    out.append(_rule(plan, params))
    out.append(f"Expected value per customer in the contact list: {escape(value_source)}.")
    return out
