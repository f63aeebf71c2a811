"""Stage 06 'plan': the campaign plan and the contact list for the CRM.

:func:`run` reads the A/B effects of a run (``ab_effects.csv``), the segments, the
customers (consent, suppression) and their expected value (CLV, else ``cluster.value``),
builds the plan with :func:`segkit.plan.build_plan` and writes:

- ``plan.csv``: one row per segment × campaign × channel (contacts, cost, expected profit
  with its interval, probability of profit, holdout, decision and reason);
- ``contacts.csv`` / ``contacts.parquet``: one row per customer contacted or held out
  (UTF-8, one header row; ``holdout`` as ``true``/``false``);
- ``plan_counts.csv``: customers by reason (contacted, holdout, left out and why) with the
  total, which equals the customers of the run; ``plan_comparison.csv``: the plan against
  "send everyone the best campaign" and "send nobody".

With ``data.pseudonymize: true`` the ids in the contact list are the run's pseudonyms; the
lookup pseudonym → customer id a CRM needs goes to ``plan.lookup_dir`` (default: the
folder ``<run>.private/`` beside the run folder), never into the run folder or a report.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from segkit import io
from segkit import plan as planlib
from segkit.core.errors import SegkitError
from segkit.core.params import parse_date
from segkit.io.clean import id_expr
from segkit.plan import report as words
from segkit.stages import explore as explore_stage
from segkit.stages.run import Run, Skipped
from segkit.stages.tables import Col, Table, show
from segkit.stages.text import md

STAGE = "plan"
#: The marker and name pattern of the temporary folder a run is built in (the pipeline's
#: segkit.pipeline.folders): the lookup belongs beside the final folder, not the temporary one.
_TMP_MARKER, _TMP_NAME = ".segkit-tmp", re.compile(r"^\.(.+)\.tmp-[^/]+$")


class PlanResult(NamedTuple):
    """What the stage returns (and the notebook shows)."""

    findings: list[str]
    table: pd.DataFrame  # plan.csv
    counts: pd.DataFrame  # plan_counts.csv
    comparison: pd.DataFrame  # plan_comparison.csv
    currency: str
    lookup: Path | None  # where the pseudonym lookup was written, if anywhere


def _skip(run: Run, reason: str) -> Skipped:
    run.save_findings(STAGE, [f"Skipped: {reason}"], status="skipped")
    return Skipped(STAGE, reason)


def _why_not(run: Run) -> str | None:
    """Why the plan cannot be made for this run (None: it can)."""
    name = run.params["name"]
    if not run.has("experiment"):
        run.load("customers")  # the exploration writes experiment.parquet when there is one
    if not run.has("experiment"):
        return (
            f"parameter set '{name}' has no experiment table (data.experiment), so no campaign "
            "has a measured lift to plan with."
        )
    if not run.params["abtest"]["value_metric"]:
        return (
            f"parameter set '{name}' has no abtest.value_metric: the plan needs the lift of an "
            "outcome in money (e.g. spend) to weigh profit against the cost of a contact."
        )
    return None


# ----------------------------------------------------------------------------- inputs


def _segment_col(run: Run, effects: pd.DataFrame) -> tuple[str, list[str]]:
    """``plan.segment_col``, checked; the default falls back to 'all' when no segment of
    the value metric was evaluated (with a note)."""
    col = run.params["plan"]["segment_col"]
    metric = run.params["abtest"]["value_metric"]
    allowed = ["all", *(run.params["abtest"]["segment_cols"] or [])]
    if col not in allowed:
        raise SegkitError(
            f"plan.segment_col == {col!r} is not a breakdown of the A/B stage; choose one of "
            f"{allowed} (abtest.segment_cols, or 'all')"
        )
    rows = effects[(effects["metric"] == metric) & effects["evaluated"].astype(bool)]
    if col != "all" and not (rows["segment_col"] == col).any():
        return "all", [
            f"No {col} has enough customers per arm in the experiment (abtest.min_n) for the "
            f"lift of {metric}, so the plan treats all customers as one group."
        ]
    return col, []


def _groups(run: Run, col: str) -> pd.DataFrame:
    """customer_id, segment (text, missing = none) and segment_name of every customer."""
    customers = run.load("customers")
    if col == "all":
        return pd.DataFrame(
            {
                "customer_id": customers["customer_id"],
                "segment": "all",
                "segment_name": "all customers",
            }
        )
    if col == "segment":
        segs = run.load("segments")[["customer_id", "segment", "segment_name"]]
        out = customers[["customer_id"]].merge(segs, on="customer_id", how="left")
        out["segment"] = out["segment"].astype("Int64").astype("string")
        return out
    values = customers[col]
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")  # as the A/B stage reads 0.0/1.0 flags
    text = values.astype("string")
    return pd.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "segment": text,
            "segment_name": col + " = " + text,
        }
    )


def _expected_value(run: Run, ids: pd.Series) -> tuple[np.ndarray, str]:
    """Expected value per customer: the CLV when the CLV stage has run, else the
    ``cluster.value`` column, else missing; and its source in words.

    The CLV is optional here, so it is not rebuilt when missing: a failed or skipped CLV
    stage must not stop the plan."""
    if run.has("clv"):
        clv = run.load("clv")[["customer_id", "clv"]]
        v = ids.to_frame().merge(clv, on="customer_id", how="left")["clv"]
        return v.to_numpy(float), "12-month CLV in margin (CLV stage)"
    col = run.params["cluster"]["value"]
    customers = run.load("customers")
    if col and col in customers:
        v = ids.to_frame().merge(customers[["customer_id", col]], on="customer_id", how="left")
        return pd.to_numeric(v[col], errors="coerce").to_numpy(float), f"column {col}"
    return np.full(len(ids), np.nan), "none (no CLV stage result and no cluster.value column)"


def _suppressed_ids(run: Run) -> set[str]:
    """Ids of ``plan.suppression_file`` (column customer_id, else the first), pseudonymized
    like the run's ids when ``data.pseudonymize`` is on."""
    path = run.params["plan"]["suppression_file"]
    if not path:
        return set()
    p = Path(path)
    if not p.is_file():
        raise SegkitError(f"plan.suppression_file: {path} does not exist; expected CSV or Parquet")
    table = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p, dtype=str)
    if table.shape[1] == 0:
        raise SegkitError(f"plan.suppression_file: {path} has no columns; expected customer ids")
    col = "customer_id" if "customer_id" in table else table.columns[0]
    salt = explore_stage.secret_salt(run.params["data"]["pseudonymize"])
    con = io.connect()
    try:  # the ids as the loader reads them (io.clean.id_expr), then pseudonymized
        raw = con.from_df(pd.DataFrame({"id": table[col].astype("string")}))
        rel = raw.select(f"{id_expr('id')} AS customer_id").filter("customer_id IS NOT NULL")
        rel = rel if salt is None else explore_stage.pseudonymize(rel, salt)
        return set(rel.df()["customer_id"])
    finally:
        con.close()


def _plan_date(run: Run) -> pd.Timestamp | None:
    q = run.params["plan"]
    if q["date"]:
        return parse_date(q["date"], "plan.date")
    return explore_stage.observation_end(run.params["data"])


def _send_date(run: Run) -> str:
    """The day the campaign goes out, ISO (YYYY-MM-DD) as CRM and e-mail tools import it;
    "" without a plan date."""
    day = _plan_date(run)
    return day.date().isoformat() if day is not None else ""


def _with_last_contact(run: Run, customers: pd.DataFrame) -> pd.DataFrame:
    """The customers with ``plan.last_contact_column`` as dates: the loader turns a date
    column into ``days_since_<column>`` before a reference date (``data_quality.json``),
    so the dates are rebuilt from the two."""
    col = run.params["plan"]["last_contact_column"]
    if not col or col in customers or f"days_since_{col}" not in customers:
        return customers
    info = run.load("data_quality").get("customers", {}).get("dates", {}).get(col)
    if not info:
        return customers
    days = pd.to_timedelta(customers[f"days_since_{col}"], unit="D")
    return customers.assign(**{col: pd.Timestamp(info["at"]) - days})


def customer_frame(run: Run, col: str) -> tuple[pd.DataFrame, str]:
    """One row per customer: segment, name, expected value and why they may not be
    contacted (consent, suppression); and the source of the expected value."""
    q = run.params["plan"]
    frame = _groups(run, col)
    frame["expected_clv"], source = _expected_value(run, frame["customer_id"])
    frame["reason"] = planlib.exclusions(
        _with_last_contact(run, run.load("customers")),
        consent_column=q["consent_column"],
        suppressed_ids=_suppressed_ids(run),
        last_contact_column=q["last_contact_column"],
        suppress_days=q["suppress_days"],
        date=_plan_date(run),
    )
    return frame, source


# ----------------------------------------------------------------------------- outputs


def lookup_folder(run: Run) -> Path:
    """Where the pseudonym lookup goes: ``plan.lookup_dir``, else ``<run>.private/``
    beside the run folder (beside the final folder while ``segkit run`` builds it in a
    temporary one)."""
    given = run.params["plan"]["lookup_dir"]
    if given:
        folder = Path(given).resolve()
    else:
        m = _TMP_NAME.match(run.folder.name)
        name = m.group(1) if m and (run.folder / _TMP_MARKER).exists() else run.folder.name
        folder = run.folder.parent / f"{name}.private"
    if folder == run.folder or run.folder in folder.parents:
        raise SegkitError(
            f"plan.lookup_dir == {str(folder)!r} is inside the run folder {run.folder}; the "
            "lookup of pseudonyms must stay outside the reports"
        )
    return folder


def _raw_ids(run: Run, salt: str, wanted: set[str]) -> pd.DataFrame:
    """pseudonym -> customer id of the ``wanted`` pseudonyms, from the run's inputs."""
    d = run.params["data"]
    if d["source"] == "demo":
        specs = {
            n: {"path": str(run.artifacts / "inputs" / f"{n}.parquet")}
            for n in ("customers", "transactions")
        }
    else:
        specs = {n: d[n] for n in ("customers", "transactions") if d[n]}
    con = io.connect()
    try:
        if "customers" in specs:
            table = io.load_customers(specs["customers"], con=con)
        else:
            table = io.load_transactions(
                specs["transactions"], explore_stage.observation_end(d), con=con
            )
        ids = table.used.select("customer_id AS raw_id, customer_id").distinct()
        out = explore_stage.pseudonymize(ids, salt).df()
    finally:
        con.close()
    out = out[out["customer_id"].isin(wanted)]
    return out.rename(columns={"customer_id": "pseudonym", "raw_id": "customer_id"})[
        ["pseudonym", "customer_id"]
    ].sort_values("pseudonym", ignore_index=True)


def write_lookup(run: Run, contacts: pd.DataFrame) -> Path | None:
    """The salted lookup pseudonym → customer id of the contact list, outside the run
    folder and readable by its owner only; None when ids are not pseudonymized."""
    salt = explore_stage.secret_salt(run.params["data"]["pseudonymize"])
    if salt is None:
        return None
    folder = lookup_folder(run)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    path = folder / "contacts_lookup.csv"
    table = _raw_ids(run, salt, set(contacts["customer_id"]))
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        table.to_csv(fh, index=False, lineterminator="\n")
    tmp.replace(path)
    return path


def _save(run: Run, plan: planlib.Plan, findings: list[str]) -> None:
    run.save("plan.csv", plan.table)
    contacts = plan.contacts.assign(send_date=_send_date(run))
    run.save("contacts.parquet", contacts)
    csv = contacts.assign(holdout=np.where(contacts["holdout"], "true", "false"))
    run.save("contacts.csv", csv)
    run.save("plan_counts.csv", plan.counts)
    run.save("plan_comparison.csv", plan.comparison)
    run.save_findings(STAGE, findings)


def run(run: Run) -> PlanResult | Skipped:
    """Make the campaign plan of ``run`` and its contact list; write the plan artifacts.

    Returns
    -------
    PlanResult or Skipped
        Skipped without an experiment or without ``abtest.value_metric``.

    Raises
    ------
    SegkitError
        An unknown ``plan.segment_col``, a consent or last-contact column that the
        customers do not have, a missing suppression file, a cost for an unknown campaign
        or channel, a lookup folder inside the run folder.
    """
    why = _why_not(run)
    if why:
        return _skip(run, why)
    effects = run.load("ab_effects")
    col, notes = _segment_col(run, effects)
    frame, source = customer_frame(run, col)
    p = run.params
    campaigns = sorted(effects.loc[effects["arm"].notna(), "arm"].astype(str).unique())
    costs = planlib.cost_table(
        p["plan"]["cost_per_contact"],
        campaigns,
        p["plan"]["channels"],
        p["abtest"]["cost_per_contact"],
    )
    settings = planlib.Settings.from_params(p, costs)._replace(segment_col=col)
    plan = planlib.build_plan(effects, frame, settings)
    currency = p["report"]["currency"]
    lookup = write_lookup(run, plan.contacts)
    found = words.findings(plan, p, currency=currency, value_source=source, escape=md) + notes
    _save(run, plan, found)
    return PlanResult(found, plan.table, plan.counts, plan.comparison, currency, lookup)


# ----------------------------------------------------------------------------- at scale


def engine_inputs(run: Run) -> dict:
    """What the contact draw on the engine needs from ``run``: the plan (``plan.csv``),
    its group column, the exclusions and the send date (:mod:`segkit.engine.contacts`).

    Raises
    ------
    SegkitError
        The run has no plan (its plan stage did not run or was skipped).
    """
    from segkit.engine.contacts import Exclusions

    if not run.has("plan.csv"):
        raise SegkitError(
            f"run {run.folder} has no campaign plan (artifacts/plan.csv): run its plan stage "
            "first (segkit plan RUN), or score without --contacts"
        )
    plan = pd.read_csv(run.path("plan.csv"), dtype={"segment": str})
    q = run.params["plan"]
    # the stage falls back to 'all' when no breakdown had enough customers (_segment_col)
    col = "all" if set(plan["segment"]) <= {"all"} else q["segment_col"]
    day = _plan_date(run)
    last = q["last_contact_column"]
    days_col, offset = None, 0
    if last and q["suppress_days"] > 0:
        info = run.load("data_quality").get("customers", {}).get("dates", {}).get(last)
        if not info:
            raise SegkitError(
                f"plan.last_contact_column == {last!r}: the run's customers have no date "
                f"column {last!r} (data_quality.json), so no last contact can be checked"
            )
        if day is None:
            raise SegkitError(
                "plan.last_contact_column on the engine needs a plan date: set plan.date "
                "(or data.observation_end)"
            )
        days_col, offset = f"days_since_{last}", int((day - pd.Timestamp(info["at"])).days)
    exclusions = Exclusions(
        consent_column=q["consent_column"] or None,
        suppressed_ids=tuple(sorted(_suppressed_ids(run))),
        last_contact_days=days_col,
        last_contact_offset=offset,
        suppress_days=int(q["suppress_days"]),
    )
    return {
        "plan": plan,
        "seed": run.seed,
        "segment_col": col,
        "exclusions": exclusions,
        "send_date": _send_date(run),
        "value": run.params["cluster"]["value"],
    }


# ----------------------------------------------------------------------------- tables


def plan_table(table: pd.DataFrame, run: Run | None = None) -> Table:
    """``plan.csv`` for the report: what is sent where, what it costs and earns, and why."""
    cols = [
        Col("segment_name", "segment"),
        Col("campaign", "campaign"),
        Col("channel", "channel"),
        Col("decision", "decision"),
        Col("customers", "contactable", "int"),
        Col("contacts", "contacts", "int"),
        Col("holdout", "holdout", "int"),
        Col("cost", "cost", "money"),
        Col("profit_per_contact", "profit per contact", "money"),
        Col(
            ("profit_per_contact_low", "profit_per_contact_high"),
            "95% interval",
            "money",
            "profit_per_contact",
        ),
        Col("expected_profit", "expected profit", "money"),
        Col("prob_profit", "chance of profit", "pct"),
        Col("p_adjusted", "p (Holm, whole plan)", "p"),
        Col("reason", "why"),
    ]
    return show(table, cols, run=run, full="plan.csv")


def comparison_table(comparison: pd.DataFrame, run: Run | None = None) -> Table:
    """The plan against sending everyone the best campaign and sending nobody."""
    cols = [
        Col("strategy", "strategy"),
        Col("contacts", "contacts", "int"),
        Col("cost", "cost", "money"),
        Col("expected_profit", "expected profit", "money"),
        Col(
            ("expected_profit_low", "expected_profit_high"),
            "95% interval",
            "money",
            "expected_profit",
        ),
    ]
    return show(comparison, cols, run=run, full="plan_comparison.csv")


def counts_table(counts: pd.DataFrame, run: Run | None = None) -> Table:
    """Customers by reason: contacted, held out, or left out and why; the total last."""
    cols = [Col("reason", "customers"), Col("customers", "number", "int")]
    return show(counts, cols, run=run, full="plan_counts.csv")
