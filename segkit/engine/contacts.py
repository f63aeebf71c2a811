"""A campaign plan's contact list drawn on the engine, for customers too many for pandas.

The engine side of :mod:`segkit.plan.customers`: from a plan (``plan.csv``: per segment
and option the contacts, the holdout, the decision) and one row per customer (the group
the plan is made by, the expected value, the consent and last-contact columns), each
customer gets the reason the plan stage would give them, in the same order:

1. ``no consent`` (the consent column is not a yes: :data:`~segkit.plan.customers.YES`),
   ``suppressed`` (the id on the suppression list, or contacted fewer than
   ``suppress_days`` days before the plan date);
2. ``no segment``; ``segment too small`` (not evaluated, or below ``plan.min_segment_size``);
   ``no proven profit`` (no option passed);
3. in a targeted segment, in the order of ``sha256(f"{seed}:plan:{customer_id}")`` (the
   pandas draw's order, :func:`segkit.plan.customers.assign`): the holdout first (with the
   campaign of the segment's most-contacted option), then the contacts of each option,
   the rest ``below budget``.

The contact list (contacted and holdout customers, :data:`CONTACT_COLUMNS` and
``send_date``) is written by the engine; only the counts per reason come back.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pandas as pd

from segkit.core.errors import SegkitError
from segkit.engine.backend import flt, ibis_module, table
from segkit.plan import customers as cu

#: The contact file's columns (those of the plan stage's ``contacts.parquet``).
CONTACT_COLUMNS = [*cu.CONTACT_COLUMNS, "send_date"]
#: plan.csv decisions of an option that passed (sent, or passed but not chosen).
_PASSED = ("send", "not chosen")


class Exclusions(NamedTuple):
    """Who may not be contacted: the consent column, the suppressed ids (as in the
    customer table: pseudonyms when the run pseudonymizes), and the last contact as
    ``days_since_<column>`` with the days from that column's reference date to the plan
    date (``recent`` when ``days + offset < suppress_days``)."""

    consent_column: str | None = None
    suppressed_ids: tuple[str, ...] = ()
    last_contact_days: str | None = None
    last_contact_offset: int = 0
    suppress_days: int = 0


def _group(t: Any, segment_col: str) -> tuple[Any, Any]:
    """The plan's group of each customer as text (NULL: none) and its name."""
    ibis = ibis_module()
    if segment_col == "all":
        return ibis.literal("all"), ibis.literal("all customers")
    if segment_col not in t.columns:
        raise SegkitError(
            f"customer table has no column {segment_col!r}, the plan's segment column "
            f"(plan.segment_col); columns are {list(t.columns)}"
        )
    c = t[segment_col]
    if segment_col == "segment":
        name = t["segment_name"] if "segment_name" in t.columns else c.cast("string")
        return c.cast("int64").cast("string"), name
    if c.type().is_floating():  # whole 0.0 / 1.0 flags read as 0 / 1, as the A/B stage does
        c = c.cast("int64")
    text = c.cast("string")
    return text, ibis.literal(f"{segment_col} = ") + text


def _excluded(t: Any, ex: Exclusions) -> Any:
    """``no consent``, ``suppressed`` or NULL per customer (first matching rule)."""
    ibis = ibis_module()
    cases = []
    if ex.consent_column:
        if ex.consent_column not in t.columns:
            raise SegkitError(
                f"customer table has no column {ex.consent_column!r} (plan.consent_column)"
            )
        text = t[ex.consent_column].cast("string").strip().lower()
        yes = text.isin(sorted(cu.YES)).fill_null(False)
        cases.append((~yes, cu.NO_CONSENT))
    if ex.suppressed_ids:
        ids = table(
            t.get_backend(),
            pd.DataFrame({"customer_id": list(ex.suppressed_ids)}),
            what="suppressed_ids",
        )
        cases.append((t["customer_id"].cast("string").isin(ids["customer_id"]), cu.SUPPRESSED))
    if ex.last_contact_days and ex.suppress_days > 0:
        if ex.last_contact_days not in t.columns:
            raise SegkitError(
                f"customer table has no column {ex.last_contact_days!r} (plan."
                "last_contact_column, as days before its reference date)"
            )
        days = t[ex.last_contact_days].cast("float64") + flt(ex.last_contact_offset)
        cases.append(((days < flt(ex.suppress_days)).fill_null(False), cu.SUPPRESSED))
    if not cases:
        return ibis.null("string")
    return ibis.cases(*((cond, ibis.literal(r)) for cond, r in cases), else_=ibis.null("string"))


def _plan_parts(plan: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int], set[str], set[str]]:
    """From plan.csv: the options drawn (segment, campaign, channel, contacts in the draw's
    order), each segment's holdout, the targeted and the too-small segments."""
    need = ["segment", "campaign", "channel", "contacts", "holdout", "decision"]
    missing = [c for c in need if c not in plan.columns]
    if missing:
        raise SegkitError(f"plan.csv lacks columns {missing}: not a plan written by segkit")
    plan = plan.assign(segment=plan["segment"].astype(str))
    chosen = plan[plan["contacts"] > 0].sort_values(
        ["segment", "contacts"], ascending=[True, False], kind="stable"
    )
    holdouts = {str(k): int(v) for k, v in plan.groupby("segment")["holdout"].sum().items()}
    targeted = set(plan.loc[plan["decision"].isin(_PASSED), "segment"])
    too_small = set(plan.loc[plan["decision"] == "too small", "segment"])
    return chosen, holdouts, targeted - too_small, too_small


def contact_expr(
    t: Any,
    plan: pd.DataFrame,
    *,
    seed: int,
    segment_col: str,
    value_col: str | None,
    exclusions: Exclusions | None = None,
    send_date: str = "",
) -> Any:
    """Every customer of ibis table ``t`` with its reason, campaign, channel and holdout
    flag (see the module); columns ``customer_id``, ``segment``, ``segment_name``,
    ``reason``, ``campaign``, ``channel``, ``holdout``, ``expected_clv``, ``send_date``.

    Raises
    ------
    SegkitError
        A column the plan needs is missing; plan.csv is not segkit's.
    """
    ibis = ibis_module()
    exclusions = exclusions or Exclusions()
    chosen, holdouts, targeted, too_small = _plan_parts(plan)
    evaluated = set(plan["segment"].astype(str))
    group, name = _group(t, segment_col)
    if value_col and value_col not in t.columns:
        raise SegkitError(f"customer table has no column {value_col!r} (the expected value)")
    value = t[value_col].cast("float64") if value_col else ibis.null("float64")
    base = t.select(
        customer_id=t["customer_id"].cast("string"),
        segment=group,
        segment_name=name,
        expected_clv=value,
        _excluded=_excluded(t, exclusions),
    )
    lit = ibis.literal
    before = ibis.cases(
        (base._excluded.notnull(), base._excluded),
        (base.segment.isnull(), lit(cu.NO_SEGMENT)),
        (
            ~base.segment.isin(sorted(evaluated)) | base.segment.isin(sorted(too_small)),
            lit(cu.TOO_SMALL),
        ),
        (~base.segment.isin(sorted(targeted)), lit(cu.NOT_PROVEN)),
        else_=lit(""),
    )
    base = base.mutate(reason=before)
    key = (lit(cu.draw_prefix(seed)) + base.customer_id).hexdigest("sha256")
    pool = base.filter(base.reason == "").mutate(_key=key)
    w = ibis.window(group_by=pool.segment, order_by=pool._key)
    pool = pool.mutate(_rank=ibis.row_number().over(w))  # 0-based
    cases, campaigns, channels = [], [], []
    for seg, rows in chosen.groupby("segment", sort=True):
        first = rows.iloc[0]
        bound = int(holdouts.get(str(seg), 0))
        here = pool.segment == str(seg)
        cases.append((here & (pool._rank < bound), cu.HOLDOUT))
        campaigns.append(str(first["campaign"]))
        channels.append(str(first["channel"]))
        for r in rows.itertuples():
            bound += int(r.contacts)
            cases.append((here & (pool._rank < bound), cu.CONTACTED))
            campaigns.append(str(r.campaign))
            channels.append(str(r.channel))
    if cases:
        reason = ibis.cases(*((c, lit(r)) for c, r in cases), else_=lit(cu.BELOW_BUDGET))
        campaign = ibis.cases(
            *((c, lit(v)) for (c, _), v in zip(cases, campaigns, strict=True)),
            else_=ibis.null("string"),
        )
        channel = ibis.cases(
            *((c, lit(v)) for (c, _), v in zip(cases, channels, strict=True)),
            else_=ibis.null("string"),
        )
    else:
        reason, campaign, channel = lit(cu.BELOW_BUDGET), ibis.null("string"), ibis.null("string")
    drawn = pool.select(
        "customer_id",
        "segment",
        "segment_name",
        "expected_clv",
        reason=reason,
        campaign=campaign,
        channel=channel,
    )
    rest = base.filter(base.reason != "").select(
        "customer_id",
        "segment",
        "segment_name",
        "expected_clv",
        "reason",
        campaign=ibis.null("string"),
        channel=ibis.null("string"),
    )
    every = drawn.union(rest)
    return every.mutate(holdout=every.reason == cu.HOLDOUT, send_date=lit(send_date))


def contact_list(every: Any) -> Any:
    """The contact file of :func:`contact_expr`'s table: contacted and holdout customers,
    :data:`CONTACT_COLUMNS` (``reason_code`` for the CRM)."""
    ibis = ibis_module()
    keep = every.filter(every.reason.isin([cu.CONTACTED, cu.HOLDOUT]))
    code = ibis.cases(
        *((keep.reason == r, ibis.literal(c)) for r, c in cu.REASON_CODES.items()),
        else_=ibis.null("string"),
    )
    return keep.mutate(reason_code=code).select(*CONTACT_COLUMNS)


def reason_counts(every: Any) -> pd.DataFrame:
    """Customers per reason (every reason listed, zeros included), with the total, as
    :func:`segkit.plan.customers.reason_counts` gives them."""
    got = every.group_by("reason").agg(customers=every.count()).to_pandas()
    counts = dict(zip(got["reason"].astype(str), got["customers"].astype(int), strict=True))
    rows = [(r, int(counts.get(r, 0))) for r in cu.REASONS]
    rows.append(("total", sum(n for _, n in rows)))
    return pd.DataFrame(rows, columns=["reason", "customers"])
