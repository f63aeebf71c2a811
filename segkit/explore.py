"""Stage 01, exploration: clean inputs, data quality and the first look at the customers.

:func:`run_stage` loads every input of a run (the synthetic retailer for ``data.source:
demo``, else the table specs under ``data``), cleans them with :mod:`segkit.io` (every row
used or rejected with its reason), builds the customer features with
:mod:`segkit.features` and writes the artifacts every later stage reads:

- ``transactions.parquet``, ``experiment.parquet``: the clean inputs;
- ``rejects.parquet``: ``input, row, reason, values`` for every row not used;
- ``data_quality.json``: per input ``rows_in``, ``rows_used``, ``rows_rejected``,
  ``rejected`` (reason → count), file, format, encoding; plus a ``summary``;
- ``customers.parquet``: one row per customer, features plus attributes;
- ``calibration.parquet`` when ``data.calibration_end`` is set (the CLV holdout split);
- ``truth_*`` tables for the demo data (what the generator really did).

The exploration helpers (:func:`quality_table`, :func:`monthly_summary`,
:func:`cohort_retention`, :func:`revenue_concentration`, :func:`feature_summary`) are pure
functions; the aggregations over transactions run in DuckDB, so they grow with the log and
not with memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import numpy as np
import pandas as pd

from segkit import features, io
from segkit.core.checks import SegkitError, check_columns, check_scalar
from segkit.core.params import parse_date
from segkit.stages.run import Run

#: Key features shown in the distributions, with whether a log scale suits them.
KEY_FEATURES = {
    "orders": True,
    "revenue": True,
    "aov": True,
    "days_since_last": False,
    "tenure_days": False,
    "mean_ipt_days": True,
}


def distribution_features(customers: pd.DataFrame, max_features: int = 6) -> dict[str, bool]:
    """Features to plot: the key ones present, else numeric attributes; log scale if skewed."""
    present = {c: log for c, log in KEY_FEATURES.items() if c in customers.columns}
    if present:
        return present
    num = customers.select_dtypes("number")
    num = num.loc[:, num.nunique() > 2].iloc[:, :max_features]
    return {c: bool(num[c].min() > 0 and num[c].skew() > 2) for c in num.columns}


class Exploration(NamedTuple):
    """What the ``01_explore`` notebook shows."""

    findings: list[str]
    quality: pd.DataFrame  # one row per input: rows in/used/rejected and per reason
    summary: dict  # customers, transactions, revenue, date range, observation end
    features: pd.DataFrame  # feature_summary of the customers
    customers: pd.DataFrame  # for the distribution plots (aggregated there, never listed)
    monthly: pd.DataFrame | None
    cohorts: pd.DataFrame | None
    concentration: dict | None


# ---------------------------------------------------------------- pure helpers


def quality_table(quality: dict[str, dict]) -> pd.DataFrame:
    """One row per input: ``rows_in, rows_used, rows_rejected`` and one column per reason.

    ``quality`` maps an input name to the ``quality`` dict of a :class:`segkit.io.Table`.
    The table reconciles: ``rows_in == rows_used + rows_rejected == rows_used + sum(reasons)``.

    >>> q = {"transactions": {"rows_in": 10, "rows_used": 7, "rows_rejected": 3,
    ...                       "rejected": {"cancellation": 2, "duplicate_row": 1}}}
    >>> quality_table(q).loc["transactions"].tolist()
    [10, 7, 3, 2, 1]
    """
    rows = []
    for name, q in quality.items():
        row = {
            "input": name,
            "rows_in": q["rows_in"],
            "rows_used": q["rows_used"],
            "rows_rejected": q["rows_rejected"],
        }
        row.update({reason: n for reason, n in q["rejected"].items()})
        rows.append(row)
    reasons = [r for r in io.REASONS if any(r in q["rejected"] for q in quality.values())]
    out = pd.DataFrame(rows, columns=["input", "rows_in", "rows_used", "rows_rejected", *reasons])
    out[reasons] = out[reasons].fillna(0)
    return out.set_index("input").astype("int64")


def _src(con, transactions) -> str:
    return features._source(con, transactions)


def monthly_summary(transactions, con=None) -> pd.DataFrame:
    """Revenue, purchasing customers, new customers and orders per calendar month."""
    con = con or duckdb.connect()
    src = _src(con, transactions)
    order_key = "order_id" if "order_id" in features._columns(con, src) else "timestamp"
    return con.execute(f"""
        WITH f AS (SELECT customer_id, date_trunc('month', min(timestamp)) AS first_month
                   FROM {src} GROUP BY 1)
        SELECT CAST(date_trunc('month', t.timestamp) AS DATE) AS month,
               sum(t.amount) AS revenue,
               count(DISTINCT t.customer_id) AS customers,
               count(DISTINCT t.customer_id) FILTER (
                   WHERE date_trunc('month', t.timestamp) = f.first_month) AS new_customers,
               count(DISTINCT t.{order_key}) AS orders
        FROM {src} t JOIN f USING (customer_id)
        GROUP BY 1 ORDER BY 1""").df()


def cohort_retention(
    transactions, max_months: int = 12, observation_end=None, con=None
) -> pd.DataFrame:
    """Share of each first-purchase-month cohort buying again k months later.

    Rows: cohort month (``YYYY-MM``); columns: months since the first purchase, 0 to
    ``max_months``; values: share of the cohort's customers who bought in that month
    (month 0 is 1.0 by definition). A column ``size`` holds the cohort size. Months not
    fully observed (after ``observation_end``, or the month it cuts short) are NaN, not
    zero, so the last diagonal does not look like a collapse.
    """
    check_scalar(max_months, "max_months", int, ge=1)
    con = con or duckdb.connect()
    src = _src(con, transactions)
    long = con.execute(f"""
        WITH m AS (SELECT DISTINCT customer_id, date_trunc('month', timestamp) AS month
                   FROM {src}),
             f AS (SELECT customer_id, min(month) AS cohort FROM m GROUP BY 1)
        SELECT strftime(f.cohort, '%Y-%m') AS cohort,
               date_diff('month', f.cohort, m.month) AS k,
               count(*) AS n
        FROM m JOIN f USING (customer_id)
        WHERE date_diff('month', f.cohort, m.month) <= {max_months}
        GROUP BY 1, 2 ORDER BY 1, 2""").df()
    wide = long.pivot(index="cohort", columns="k", values="n").fillna(0)
    wide = wide.reindex(columns=range(max_months + 1), fill_value=0)
    size = wide[0]
    out = wide.div(size, axis=0)
    # Months that lie after the observation end are unknown, not zero; a month the
    # observation end cuts short is incomplete and left out too.
    last = pd.Period(long["cohort"].max(), "M")
    if observation_end is not None:
        end = pd.Timestamp(observation_end)
        last = pd.Period(end, "M") - (0 if end.is_month_end else 1)
    for cohort in out.index:
        open_months = (last - pd.Period(cohort, "M")).n
        out.loc[cohort, [k for k in out.columns if k > open_months]] = np.nan
    out.columns = [int(c) for c in out.columns]
    out.insert(0, "size", size.astype("int64"))
    return out


def revenue_concentration(customers: pd.DataFrame, revenue_col: str = "revenue") -> dict:
    """Share of revenue from the top 10 % and 20 % of customers, Gini, and the Lorenz curve.

    >>> c = pd.DataFrame({"revenue": [1.0] * 8 + [46.0, 46.0]})
    >>> revenue_concentration(c)["top_10"], revenue_concentration(c)["top_20"]
    (0.46, 0.92)
    """
    check_columns(customers, [revenue_col], "customers")
    r = np.sort(customers[revenue_col].to_numpy(dtype=float))[::-1]
    if len(r) == 0 or r.sum() <= 0:
        raise SegkitError(f"customers.{revenue_col} has no positive revenue to concentrate")
    cum = np.cumsum(r) / r.sum()
    n = len(r)

    def top(share: float) -> float:
        k = max(1, int(round(share * n)))
        return round(float(cum[k - 1]), 6)

    # Lorenz curve (ascending) on at most 200 points: an aggregate, never customer rows.
    asc = np.concatenate([[0.0], np.cumsum(r[::-1]) / r.sum()])
    x = np.linspace(0, 1, n + 1)
    idx = np.unique(np.linspace(0, n, min(n, 200) + 1).round().astype(int))
    gini = float(1 - 2 * np.trapezoid(asc, x))
    return {
        "top_10": top(0.10),
        "top_20": top(0.20),
        "gini": round(gini, 6),
        "lorenz": pd.DataFrame({"customers_share": x[idx], "revenue_share": asc[idx]}),
    }


def feature_summary(customers: pd.DataFrame) -> pd.DataFrame:
    """Count, missing, mean, quartiles and skewness of every numeric feature."""
    num = customers.select_dtypes("number")
    out = num.describe(percentiles=[0.25, 0.5, 0.75, 0.95]).T
    out.insert(1, "missing", num.isna().sum())
    out["skew"] = num.skew()
    return out


# ---------------------------------------------------------------- the stage


def _demo_inputs(run: Run) -> dict[str, dict]:
    """Generate the synthetic retailer into ``artifacts/inputs/`` and return its specs."""
    from segkit import datasets

    d = run.params["data"]["demo"]
    folder = run.artifacts / "inputs"
    folder.mkdir(exist_ok=True)
    shop = datasets.make_retailer(
        n_customers=d["n_customers"], start=d["start"], end=d["end"], seed=run.seed
    )
    specs = {}
    for name in ("transactions", "customers", "experiment"):
        df = getattr(shop, name)
        path = folder / f"{name}.parquet"
        df.to_parquet(path, index=False)
        specs[name] = {"path": str(path)}
    specs["experiment"]["covariates"] = ["pre_spend"]
    specs["experiment"]["outcomes"] = ["visit", "conversion", "spend"]
    truth = shop.truth
    run.save("truth_segments.parquet", truth.segments)
    run.save("truth_params.csv", truth.params)
    run.save("truth_effects.csv", truth.effects.astype({"segment": str}))
    return specs


def input_specs(run: Run) -> dict[str, dict]:
    """The table specs of a run's inputs (generating the demo data when asked for)."""
    d = run.params["data"]
    if d["source"] == "demo":
        return _demo_inputs(run)
    return {n: d[n] for n in ("transactions", "customers", "experiment") if d[n]}


def _salt() -> str:
    return os.environ.get("SEGKIT_SALT", "segkit")


def _pseudo(rel: duckdb.DuckDBPyRelation, salt: str) -> duckdb.DuckDBPyRelation:
    """Replace ``customer_id`` by the first 16 hex digits of sha256(salt || id)."""
    lit = salt.replace("'", "''")
    return rel.select(
        f"* REPLACE ('P' || substr(sha256('{lit}' || customer_id), 1, 16) AS customer_id)"
    )


def _write(rel: duckdb.DuckDBPyRelation, path: Path) -> Path:
    """Write a relation to Parquet atomically (temp file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    rel.write_parquet(str(tmp))
    tmp.replace(path)
    return path


def _rejects(con, tables: dict[str, io.Table]) -> duckdb.DuckDBPyRelation:
    """One rejects table for every input: ``input, row, reason, values`` (the raw row)."""
    parts = []
    for t in tables.values():
        cols = [c for c in t.rejects.columns if c not in ("input", "row", "reason")]
        pairs = " || ' | ' || ".join(
            f"'{c.replace(chr(39), chr(39) * 2)}=' || coalesce(CAST(\"{c}\" AS VARCHAR), '')"
            for c in cols
        )
        name = f"_rej_{t.name}"
        t.rejects.create_view(name, replace=True)
        pairs = pairs or "''"
        parts.append(
            f"SELECT input, CAST(row AS BIGINT) AS row, reason, {pairs} AS values FROM {name}"
        )
    return con.sql(" UNION ALL ".join(parts) + " ORDER BY input, row")


def _money(x: float) -> str:
    for div, unit in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:,.1f}{unit}"
    return f"{x:,.0f}"


#: Plain words for the cleaning rules of segkit.io.REASONS, for the findings.
REASON_WORDS = {
    "missing_customer_id": "without a customer id",
    "unparseable_timestamp": "with an unreadable date",
    "non_numeric_amount": "with a non-numeric amount",
    "cancellation": "cancellations",
    "negative_quantity": "returns (negative quantity)",
    "non_positive_amount": "with a zero or negative amount",
    "after_observation_end": "after the observation end",
    "duplicate_row": "exact duplicates",
    "missing_arm": "without an experiment arm",
    "duplicate_customer_id": "repeating a customer id",
    "non_numeric_outcome": "with a non-numeric outcome",
}


def _quality_sentence(name: str, q: dict) -> str:
    if q["rows_rejected"] == 0:
        return f"All {q['rows_in']:,} {name} rows were usable."
    parts = [
        f"{n:,} {REASON_WORDS.get(r, r)}"
        for r, n in sorted(q["rejected"].items(), key=lambda kv: -kv[1])
    ]
    return (
        f"Of {q['rows_in']:,} {name} rows, {q['rows_used']:,} "
        f"({q['rows_used'] / q['rows_in']:.0%}) were usable; set aside: " + "; ".join(parts) + "."
    )


def run_stage(run: Run) -> Exploration:
    """Load, clean and summarize the inputs of ``run``; write the exploration artifacts."""
    d = run.params["data"]
    specs = input_specs(run)
    if not specs:
        raise SegkitError("data: no input given (data.transactions, customers or experiment)")
    con = io.connect(temp_dir=run.artifacts / ".duckdb_tmp")
    obs_end = (
        parse_date(d["observation_end"], "data.observation_end")
        if d["observation_end"]
        else (parse_date(d["demo"]["end"]) if d["source"] == "demo" else None)
    )
    tables: dict[str, io.Table] = {}
    if "transactions" in specs:
        tables["transactions"] = io.load_transactions(specs["transactions"], obs_end, con=con)
    if "customers" in specs:
        tables["customers"] = io.load_customers(specs["customers"], con=con)
    if "experiment" in specs:
        tables["experiment"] = io.load_experiment(specs["experiment"], con=con)

    salt = _salt()
    used = {n: (_pseudo(t.used, salt) if d["pseudonymize"] else t.used) for n, t in tables.items()}
    _write(_rejects(con, tables), run.artifacts / "rejects.parquet")
    quality = {n: t.quality for n, t in tables.items()}
    if d["source"] == "demo":  # generated inside the run folder: record it relative to it
        for n, q in quality.items():
            q["file"] = f"artifacts/inputs/{n}.parquet"

    customers = None
    monthly = cohorts = concentration = None
    summary: dict[str, Any] = {"observation_end": None}
    if "transactions" in used:
        tx_path = _write(used["transactions"], run.artifacts / "transactions.parquet")
        tx = con.sql(f"SELECT * FROM read_parquet('{tx_path.as_posix()}')")
        if obs_end is None:
            obs_end = pd.Timestamp(tx.aggregate("max(timestamp)").fetchall()[0][0]).normalize()
        customers = features.customer_features(str(tx_path), obs_end, d["time_unit"], con=con)
        if d["calibration_end"]:
            cal = features.calibration_holdout(
                str(tx_path), parse_date(d["calibration_end"]), obs_end, d["time_unit"], con=con
            )
            run.save("calibration.parquet", cal.round(9))
        monthly = monthly_summary(str(tx_path), con=con)
        cohorts = cohort_retention(str(tx_path), observation_end=obs_end, con=con)
        concentration = revenue_concentration(customers)
        order_key = "order_id" if "order_id" in tx.columns else "customer_id, timestamp"
        first, last, n_tx, n_orders, revenue = tx.aggregate(
            f"min(timestamp), max(timestamp), count(*), count(DISTINCT ({order_key})), sum(amount)"
        ).fetchall()[0]
        summary.update(
            transactions=int(n_tx),
            orders=int(n_orders),
            revenue=round(float(revenue), 6),
            first_date=pd.Timestamp(first).date().isoformat(),
            last_date=pd.Timestamp(last).date().isoformat(),
            observation_end=obs_end.date().isoformat(),
            time_unit=d["time_unit"],
            top_10_share=concentration["top_10"],
            top_20_share=concentration["top_20"],
            gini=concentration["gini"],
        )
    if "customers" in used:
        attrs = used["customers"].df()
        if customers is None:
            customers = attrs
        else:
            clash = sorted(set(attrs.columns) & set(customers.columns) - {"customer_id"})
            attrs = attrs.rename(columns={c: f"attr_{c}" for c in clash})
            customers = customers.merge(attrs, on="customer_id", how="left")
            summary["customers_without_attributes"] = (
                int(customers[attrs.columns[1]].isna().sum()) if attrs.shape[1] > 1 else 0
            )
            summary["attribute_rows_without_transactions"] = int(
                len(attrs) - attrs["customer_id"].isin(customers["customer_id"]).sum()
            )
    if "experiment" in used:
        _write(used["experiment"], run.artifacts / "experiment.parquet")
        exp_arms = used["experiment"].aggregate("arm, count(*)").fetchall()
        summary["experiment_arms"] = {str(a): int(n) for a, n in sorted(exp_arms)}
    if customers is None:
        raise SegkitError(
            "data: the experiment alone gives no customers to segment; "
            "add data.transactions or data.customers"
        )
    customers = customers.sort_values("customer_id", kind="stable").reset_index(drop=True)
    # DuckDB sums floats in parallel, so the last bits depend on thread timing: round to
    # 1e-9 so that the same inputs give byte-identical tables.
    floats = customers.select_dtypes("float").columns
    customers[floats] = customers[floats].round(9)
    summary["customers"] = int(len(customers))
    run.save("customers.parquet", customers)
    run.save("data_quality.json", {**quality, "summary": summary})

    qt = quality_table(quality)
    findings = [_headline(summary, d["source"])]
    findings += [_quality_sentence(n, q) for n, q in quality.items()]
    if concentration:
        findings.append(
            f"Revenue is concentrated: the top 10% of customers bring "
            f"{concentration['top_10']:.0%} of it, the top 20% bring "
            f"{concentration['top_20']:.0%} (Gini {concentration['gini']:.2f})."
        )
    if cohorts is not None and cohorts.shape[1] > 2:
        m1 = cohorts[1].mean()
        findings.append(f"On average {m1:.0%} of a month's new customers buy again the next month.")
    if "experiment_arms" in summary:
        arms = ", ".join(f"{a} ({n:,})" for a, n in summary["experiment_arms"].items())
        findings.append(f"The campaign experiment has arms {arms}.")
    run.save_findings("explore", findings)
    con.close()
    return Exploration(
        findings=findings,
        quality=qt,
        summary=summary,
        features=feature_summary(customers),
        customers=customers,
        monthly=monthly,
        cohorts=cohorts,
        concentration=concentration,
    )


def _headline(summary: dict, source: str) -> str:
    what = "the synthetic demo retailer" if source == "demo" else "the data"
    if "transactions" not in summary:
        return f"{summary['customers']:,} customers with attributes in {what}; no transaction log."
    first = pd.Timestamp(summary["first_date"]).strftime("%b %Y")
    last = pd.Timestamp(summary["last_date"]).strftime("%b %Y")
    return (
        f"{summary['customers']:,} customers placed {summary['orders']:,} orders worth "
        f"{_money(summary['revenue'])} between {first} and {last}; the top 20% of customers "
        f"bring {summary['top_20_share']:.0%} of revenue."
    )
