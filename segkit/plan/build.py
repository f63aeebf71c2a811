"""The plan end to end: decide, allocate, keep holdouts, draw the contact list, compare.

:func:`build_plan` is what the stage calls; it knows nothing of run folders. Its inputs
are the A/B effects, one row per customer (segment, what excludes them, expected value)
and the settings (:class:`Settings`, read from the parameters by
:meth:`Settings.from_params`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from segkit.plan import customers as cu
from segkit.plan.allocate import allocate, balanced_n, full_holdout, holdout_size, power_of
from segkit.plan.decide import candidates

#: Decisions of :data:`PLAN_COLUMNS`' ``decision``.
SEND, NOT_CHOSEN, NOT_PROVEN, NO_PROFIT, TOO_SMALL = (
    "send",
    "not chosen",
    "not proven",
    "do not send",
    "too small",
)

PLAN_COLUMNS = [
    "segment",
    "segment_name",
    "campaign",
    "channel",
    "customers",
    "contacts",
    "cost",
    "cost_per_contact",
    "profit_per_contact",
    "profit_per_contact_low",
    "profit_per_contact_high",
    "expected_profit",
    "expected_profit_low",
    "expected_profit_high",
    "prob_profit",
    "p_profit",
    "p_adjusted",
    "holdout",
    "holdout_power",
    "decision",
    "reason",
]


class Settings(NamedTuple):
    """What the plan needs from the parameters."""

    metric: str  # abtest.value_metric
    segment_col: str
    costs: dict[tuple[str, str], float]
    margin: float
    alpha: float  # plan.alpha: one-sided FWER of false "send"
    test_alpha: float  # abtest.alpha: two-sided level of the next measurement
    power: float  # abtest.power
    budget: float | None
    segment_caps: dict[str, int]
    channel_caps: dict[str, int]
    min_segment_size: int
    min_holdout: int
    max_holdout_share: float
    seed: int

    @classmethod
    def from_params(cls, params: dict, costs: dict[tuple[str, str], float]) -> Settings:
        """Read the settings from resolved parameters (costs from :func:`cost_table`)."""
        q, a = params["plan"], params["abtest"]
        seg_caps = q["max_contacts_segment"]
        return cls(
            metric=a["value_metric"],
            segment_col=q["segment_col"],
            costs=costs,
            margin=float(params["clv"]["margin"]),
            alpha=float(q["alpha"]),
            test_alpha=float(a["alpha"]),
            power=float(a["power"]),
            budget=None if q["budget"] is None else float(q["budget"]),
            segment_caps=(
                {str(k): int(v) for k, v in seg_caps.items()}
                if isinstance(seg_caps, dict)
                else {}
                if seg_caps is None
                else {"*": int(seg_caps)}
            ),
            channel_caps={str(k): int(v) for k, v in (q["max_contacts_channel"] or {}).items()},
            min_segment_size=int(q["min_segment_size"]),
            min_holdout=int(q["min_holdout"]),
            max_holdout_share=float(q["max_holdout_share"]),
            seed=int(params["seed"]),
        )


class Plan(NamedTuple):
    """A campaign plan."""

    table: pd.DataFrame  # plan.csv: PLAN_COLUMNS
    contacts: pd.DataFrame  # contacts.csv: customers.CONTACT_COLUMNS
    counts: pd.DataFrame  # customers per reason, with the total
    comparison: pd.DataFrame  # the plan vs send everyone the best campaign vs send nobody
    assigned: pd.DataFrame  # every customer with its reason (not written: raw rows)


def _segment_caps(s: Settings, segments: list[str]) -> dict[str, int]:
    if "*" in s.segment_caps:
        return dict.fromkeys(segments, s.segment_caps["*"])
    return s.segment_caps


def _main_option(c: pd.DataFrame) -> pd.Series:
    """The option of a segment with the highest profit per contact (ties: first)."""
    return c.sort_values("profit_per_contact", ascending=False, kind="stable").iloc[0]


def _holdouts(cands, contactable, s: Settings):
    """Balanced n, holdout reserved before allocating, and capacity, per targeted segment."""
    n_bal, reserve, capacity = {}, {}, {}
    for seg, c in cands[cands["passes"]].groupby("segment"):
        best = _main_option(c)
        n = int(contactable.get(seg, 0))
        n_bal[seg] = balanced_n(best["lift"], best["lift_sd"], s.test_alpha, s.power)
        reserve[seg] = full_holdout(
            n, n_bal[seg], min_holdout=s.min_holdout, max_share=s.max_holdout_share
        )
        capacity[seg] = n - reserve[seg]
    return n_bal, capacity


def _decide(table: pd.DataFrame, too_small: set[str], alpha: float) -> pd.DataFrame:
    """``decision`` and ``reason`` of every row."""
    decision, reason = [], []
    sent = set(table.loc[table["contacts"] > 0, "segment"])
    for r in table.itertuples():
        if r.segment in too_small:
            decision.append(TOO_SMALL)
            reason.append(
                f"{r.customers:,} contactable customers, fewer than plan.min_segment_size"
            )
        elif r.contacts > 0:
            decision.append(SEND)
            reason.append(f"profit proven: adjusted p = {r.p_adjusted:.3g} < {alpha:g}")
        elif r.p_adjusted < alpha and r.profit_per_contact > 0:
            decision.append(NOT_CHOSEN)
            reason.append(
                "another campaign or channel pays more here"
                if r.segment in sent
                else "budget or contact caps used up on better pairs"
            )
        elif r.profit_per_contact > 0:
            decision.append(NOT_PROVEN)
            reason.append(f"profit not proven: adjusted p = {r.p_adjusted:.3g} ≥ {alpha:g}")
        else:
            decision.append(NO_PROFIT)
            reason.append(f"expected profit per contact {r.profit_per_contact:+.3g} ≤ 0")
    return table.assign(decision=decision, reason=reason)


def _plan_rows(cands, x, options_idx, contactable, names) -> pd.DataFrame:
    t = cands.copy()
    t["contacts"] = 0
    t.loc[options_idx, "contacts"] = x
    t["customers"] = t["segment"].map(contactable).fillna(0).astype(int)
    t["segment_name"] = t["segment"].map(names)
    t["cost"] = t["contacts"] * t["cost_per_contact"]
    for suffix in ("", "_low", "_high"):
        t[f"expected_profit{suffix}"] = t["contacts"] * t[f"profit_per_contact{suffix}"] + 0.0
    return t


def _add_holdouts(t: pd.DataFrame, n_bal: dict, s: Settings) -> tuple[pd.DataFrame, dict]:
    """The holdout of each segment that gets contacts, on its most-contacted row."""
    t = t.assign(holdout=0, holdout_power=np.nan)
    sizes: dict[str, int] = {}
    for seg, g in t[t["contacts"] > 0].groupby("segment"):
        n_t = int(g["contacts"].sum())
        n = int(g["customers"].iloc[0])
        main = g.sort_values("contacts", ascending=False, kind="stable").iloc[0]
        h = holdout_size(
            n_t,
            n_bal[seg],
            available=n - n_t,
            min_holdout=s.min_holdout,
            max_holdout=int(np.floor(s.max_holdout_share * n)),
        )
        sizes[seg] = h
        t.loc[main.name, "holdout"] = h
        t.loc[main.name, "holdout_power"] = power_of(
            main["lift"], main["lift_sd"], n_t, h, s.test_alpha
        )
    return t, sizes


def _reasons(frame: pd.DataFrame, cands, too_small: set[str], evaluated: set[str]) -> pd.Series:
    """Reason of every customer before the draw: exclusions, then segment-level reasons."""
    seg = frame["segment"]
    targeted = set(cands.loc[cands["passes"], "segment"]) - too_small
    reason = frame["reason"].copy()
    free = reason == ""
    reason[free & seg.isna()] = cu.NO_SEGMENT
    reason[free & seg.notna() & (~seg.isin(evaluated) | seg.isin(too_small))] = cu.TOO_SMALL
    reason[(reason == "") & ~seg.isin(targeted)] = cu.NOT_PROVEN
    return reason


def build_plan(effects: pd.DataFrame, frame: pd.DataFrame, s: Settings) -> Plan:
    """The campaign plan.

    Parameters
    ----------
    effects
        The A/B effects table (``ab_effects.csv``).
    frame
        One row per customer: ``customer_id``, ``segment`` (text; missing = none),
        ``segment_name``, ``expected_clv``, ``reason`` (``""``, ``no consent`` or
        ``suppressed``: :func:`segkit.plan.customers.exclusions`).
    s
        The settings.

    Returns
    -------
    Plan
    """
    frame = frame.assign(segment=frame["segment"].astype("string"))
    cands = candidates(effects, s.metric, s.segment_col, s.costs, s.margin, s.alpha)
    free = frame[frame["reason"] == ""]
    contactable = free["segment"].value_counts().to_dict()
    names = frame.dropna(subset=["segment"]).groupby("segment")["segment_name"].first().to_dict()
    evaluated = set(cands["segment"])
    too_small = {g for g in evaluated if contactable.get(g, 0) < s.min_segment_size}
    n_bal, capacity = _holdouts(cands[~cands["segment"].isin(too_small)], contactable, s)
    ok = cands["passes"] & ~cands["segment"].isin(too_small)
    x = allocate(
        cands[ok],
        capacity,
        budget=s.budget,
        segment_caps=_segment_caps(s, sorted(evaluated)),
        channel_caps=s.channel_caps,
    )
    table = _plan_rows(cands, x, cands.index[ok], contactable, names)
    table, holdouts = _add_holdouts(table, n_bal, s)
    table = _decide(table, too_small, s.alpha)[PLAN_COLUMNS]
    frame = frame.assign(reason=_reasons(frame, cands, too_small, evaluated))
    chosen = table[table["contacts"] > 0].sort_values(
        ["segment", "contacts"], ascending=[True, False], kind="stable"
    )
    assigned = cu.assign(frame, chosen, holdouts, s.seed)
    return Plan(
        table=table,
        contacts=cu.contact_list(assigned),
        counts=cu.reason_counts(assigned),
        comparison=compare(table, cands, contactable, s.margin),
        assigned=assigned,
    )


def _total(contacts: pd.Series, rows: pd.DataFrame, margin: float) -> tuple[float, float]:
    """Expected profit of ``contacts`` per row and its standard error from the lifts'
    uncertainty: rows of one segment added linearly (they share the control group and,
    across channels, the same lift: perfectly correlated is the safe bound), segments in
    quadrature (independent samples)."""
    k = contacts.to_numpy(float)
    profit = float((k * rows["profit_per_contact"].to_numpy(float)).sum())
    per_seg = pd.Series(k * margin * rows["lift_se"].to_numpy(float)).groupby(
        rows["segment"].to_numpy()
    )
    return profit, float(np.sqrt((per_seg.sum() ** 2).sum()))


def compare(
    table: pd.DataFrame, cands: pd.DataFrame, contactable: dict[str, Any], margin: float
) -> pd.DataFrame:
    """Expected profit with its 95 % interval of the plan, of sending every contactable
    customer of the evaluated segments the single best campaign (on its cheapest channel,
    no budget), and of sending nobody."""
    z = stats.norm.ppf(0.975)
    merged = table.merge(cands[["segment", "campaign", "channel", "lift_se"]])
    plan_p, plan_se = _total(merged["contacts"], merged, margin)
    everyone = int(sum(contactable.get(g, 0) for g in set(cands["segment"])))
    best = (-np.inf, 0.0, "", 0.0)
    for camp, g in cands.groupby("campaign"):
        cheapest = g.sort_values("cost_per_contact", kind="stable").drop_duplicates("segment")
        n = cheapest["segment"].map(contactable).fillna(0)
        p, se = _total(n, cheapest, margin)
        if p > best[0]:
            best = (p, se, str(camp), float((n * cheapest["cost_per_contact"]).sum()))
    rows = [
        ("the plan", plan_p, plan_se, int(table["contacts"].sum()), float(table["cost"].sum())),
        (f"send everyone '{best[2]}'", best[0], best[1], everyone, best[3]),
        ("send nobody", 0.0, 0.0, 0, 0.0),
    ]
    out = pd.DataFrame(rows, columns=["strategy", "expected_profit", "se", "contacts", "cost"])
    out["expected_profit_low"] = out["expected_profit"] - z * out["se"]
    out["expected_profit_high"] = out["expected_profit"] + z * out["se"]
    out["campaign"] = ["plan", best[2], "none"]
    return out
