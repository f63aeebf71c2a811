"""Stage 01, exploration: clean inputs, data quality and the first look at the customers.

:func:`run` loads every input of a run (the synthetic retailer for ``data.source: demo``,
else the table specs under ``data``), cleans them with :mod:`segkit.io` (every row used or
rejected with its reason), builds the customer features with :mod:`segkit.features`,
summarizes them with :mod:`segkit.explore` and writes the artifacts every later stage reads:

- ``transactions.parquet``, ``experiment.parquet``: the clean inputs;
- ``rejects.parquet``: ``input, row, reason, values`` for every row not used;
- ``data_quality.json``: per input ``rows_in``, ``rows_used``, ``rows_rejected``,
  ``rejected`` (reason → count), file, format, encoding; plus a ``summary``;
- ``customers.parquet``: one row per customer, features plus attributes;
- ``calibration.parquet`` when ``data.calibration_end`` is set (the CLV holdout split);
- ``truth_*`` tables for the demo data (what the generator really did).

With ``data.pseudonymize: true`` every customer id in these artifacts, the rejects'
raw rows included, is replaced by ``P`` + 16 hex digits of sha256(salt || id), the salt
taken from the ``SEGKIT_SALT`` environment variable (required: see :func:`secret_salt`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from segkit import derive, explore, features, io
from segkit.core.errors import SegkitError
from segkit.core.params import TABLE_NAMES, parse_date
from segkit.core.sql import ident, idents, literal
from segkit.explore import Exploration
from segkit.io.clean import id_expr, loose_ids
from segkit.stages.run import Run
from segkit.stages.text import md

#: Environment variable holding the secret salt of the pseudonymized ids.
SALT_VARIABLE = "SEGKIT_SALT"

# ---------------------------------------------------------------------------- inputs


def _demo_inputs(run: Run, salt: str | None) -> dict[str, dict]:
    """Generate the synthetic retailer into ``artifacts/inputs/`` and return its specs.

    Its ground truth is saved as ``truth_*`` artifacts (ids pseudonymized with ``salt``).
    """
    from segkit import datasets  # the generator is only needed for the demo source

    d = run.params["data"]["demo"]
    folder = run.artifacts / "inputs"
    folder.mkdir(exist_ok=True)
    shop = datasets.make_retailer(
        n_customers=d["n_customers"], start=d["start"], end=d["end"], seed=run.seed
    )
    specs: dict[str, dict] = {}
    for name in TABLE_NAMES:
        path = folder / f"{name}.parquet"
        getattr(shop, name).to_parquet(path, index=False)
        specs[name] = {"path": str(path)}
    specs["experiment"]["covariates"] = ["pre_spend"]
    specs["experiment"]["outcomes"] = ["visit", "conversion", "spend"]
    truth = shop.truth
    segments = truth.segments
    if salt is not None:
        with duckdb.connect() as con:
            ids = pseudonymize(con.from_df(segments[["customer_id"]]), salt).df()
        segments = segments.assign(customer_id=ids["customer_id"].to_numpy())
    run.save("truth_segments.parquet", segments)
    run.save("truth_params.csv", truth.params)
    run.save("truth_effects.csv", truth.effects.astype({"segment": str}))
    return specs


def input_specs(run: Run, salt: str | None = None) -> dict[str, dict]:
    """The table specs of a run's inputs (generating the demo data when asked for).

    ``salt``: pseudonymize the ids of the demo's ground truth (see :func:`secret_salt`).
    """
    d = run.params["data"]
    if d["source"] == "demo":
        return _demo_inputs(run, salt)
    return {n: d[n] for n in TABLE_NAMES if d[n]}


def observation_end(data: dict) -> pd.Timestamp | None:
    """``data.observation_end``; for the demo its last day; else None (the last purchase)."""
    if data["observation_end"]:
        return parse_date(data["observation_end"], "data.observation_end")
    if data["source"] == "demo":
        return parse_date(data["demo"]["end"])
    return None


def secret_salt(pseudonymize: bool) -> str | None:
    """The secret salt of the pseudonymized ids, or None when ids are kept.

    Raises
    ------
    SegkitError
        When ``pseudonymize`` is set and ``SEGKIT_SALT`` is unset or empty: a salt anyone
        knows would let anyone re-identify customers by hashing candidate ids.
    """
    if not pseudonymize:
        return None
    value = os.environ.get(SALT_VARIABLE, "")
    if not value:
        raise SegkitError(
            f"data.pseudonymize is true but {SALT_VARIABLE} is not set: without a secret salt "
            "anyone could re-identify customers by hashing candidate ids. Set one (and keep it "
            "to pseudonymize later runs the same way), e.g. "
            f'export {SALT_VARIABLE}=$(python -c "import secrets; print(secrets.token_hex(16))")'
        )
    return value


# --------------------------------------------------------------- load and clean


def _load_tables(
    specs: dict[str, dict], obs_end: pd.Timestamp | None, con: duckdb.DuckDBPyConnection
) -> dict[str, io.Table]:
    tables: dict[str, io.Table] = {}
    if "transactions" in specs:
        tables["transactions"] = io.load_transactions(specs["transactions"], obs_end, con=con)
    if "customers" in specs:
        tables["customers"] = io.load_customers(
            specs["customers"], con=con, observation_end=obs_end
        )
    if "experiment" in specs:
        tables["experiment"] = io.load_experiment(specs["experiment"], con=con)
    return tables


def _hash_sql(expr: str, salt: str) -> str:
    """SQL for the pseudonym of the id ``expr``: 'P' + 16 hex digits of sha256(salt || id)."""
    return f"'P' || substr(sha256({literal(salt)} || {expr}), 1, 16)"


def pseudonymize(rel: duckdb.DuckDBPyRelation, salt: str) -> duckdb.DuckDBPyRelation:
    """``rel`` with ``customer_id`` replaced by its pseudonym (see :func:`secret_salt`)."""
    return rel.select(f"* REPLACE ({_hash_sql('customer_id', salt)} AS customer_id)")


def _raw_id_column(spec: dict | str | Path, name: str) -> str | None:
    """The file column an input's customer ids are read from (None: not mapped)."""
    columns = (io.table_spec(spec, name) or {}).get("columns") or {}
    return columns.get("customer_id", "customer_id")


def _rejects(
    con: duckdb.DuckDBPyConnection,
    tables: dict[str, io.Table],
    *,
    id_columns: dict[str, str | None],
    salt: str | None,
    widths: dict[str, int | None] | None = None,
) -> duckdb.DuckDBPyRelation:
    """One rejects table for every input: ``input, row, reason, values`` (the raw row).

    With a ``salt``, the raw column holding the customer id shows its pseudonym instead.
    """
    parts = []
    for name, t in tables.items():
        cols = [c for c in t.rejects.columns if c not in ("input", "row", "reason")]
        pairs = []
        for c in cols:
            value = f"CAST({ident(c)} AS VARCHAR)"
            if salt is not None and c == id_columns.get(name):
                # the cleaning the loader applies to ids, so that a rejected row's pseudonym is
                # the same customer's pseudonym as in the used rows
                value = _hash_sql(id_expr(c, (widths or {}).get(name)), salt)
            pairs.append(f"{literal(c + '=')} || coalesce({value}, '')")
        view = f"_rej_{name}"
        t.rejects.create_view(view, replace=True)
        text = " || ' | ' || ".join(pairs) or "''"
        parts.append(
            f"SELECT input, CAST(row AS BIGINT) AS row, reason, {text} AS values FROM {ident(view)}"
        )
    return con.sql(" UNION ALL ".join(parts) + " ORDER BY input, row")


def _write(rel: duckdb.DuckDBPyRelation, path: Path) -> Path:
    """Write a relation to Parquet atomically (temp file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    rel.write_parquet(str(tmp))
    if path.is_dir():  # a Parquet folder an engine wrote in an earlier run
        shutil.rmtree(path)
    tmp.replace(path)
    return path


# ------------------------------------------------------------ features and tables


def _explore_transactions(
    run: Run,
    con: duckdb.DuckDBPyConnection,
    tx_path: Path,
    obs_end: pd.Timestamp | None,
    backend: Any = None,
) -> dict[str, Any]:
    """Customer features, the calibration split and the summaries of the clean log.

    ``tx_path``: the clean transactions (a Parquet file, or the folder an engine wrote);
    ``backend``: the ibis backend that computes the summaries, None for DuckDB SQL.
    """
    d = run.params["data"]
    if backend is not None:
        from segkit import engine
        from segkit.engine import explore as on_engine

        t = engine.table(backend, tx_path.as_posix())
        log = on_engine.log_summary(t)
    else:
        tx = con.sql(f"SELECT * FROM {features.source_sql(con, tx_path)}")
        order_key = idents(
            ["order_id"] if "order_id" in tx.columns else ["customer_id", "timestamp"]
        )
        first, last, n_tx, n_orders, revenue = tx.aggregate(
            f"min(timestamp), max(timestamp), count(*), count(DISTINCT ({order_key})), sum(amount)"
        ).fetchall()[0]
        log = {"first": first, "last": last, "transactions": n_tx, "orders": n_orders}
        log["revenue"] = revenue
    if obs_end is None:
        obs_end = pd.Timestamp(log["last"]).normalize()
    on = {
        "engine": run.params.get("engine", "duckdb"),
        "spark": run.params.get("spark"),
    }  # duckdb | spark
    customers = features.customer_features(str(tx_path), obs_end, d["time_unit"], con=con, **on)
    if d["calibration_end"]:
        cal = features.calibration_holdout(
            str(tx_path), parse_date(d["calibration_end"]), obs_end, d["time_unit"], con=con, **on
        )
        run.save("calibration.parquet", cal.round(9))
    concentration = explore.revenue_concentration(customers)
    summary = {
        "transactions": int(log["transactions"]),
        "orders": int(log["orders"]),
        "revenue": round(float(log["revenue"]), 6),
        "first_date": pd.Timestamp(log["first"]).date().isoformat(),
        "last_date": pd.Timestamp(log["last"]).date().isoformat(),
        "observation_end": obs_end.date().isoformat(),
        "time_unit": d["time_unit"],
        "top_10_share": concentration["top_10"],
        "top_20_share": concentration["top_20"],
        "gini": concentration["gini"],
    }
    if backend is not None:
        monthly = on_engine.monthly_summary(t)
        cohorts = on_engine.cohort_retention(t, observation_end=obs_end)
    else:
        monthly = explore.monthly_summary(str(tx_path), con=con)
        cohorts = explore.cohort_retention(str(tx_path), observation_end=obs_end, con=con)
    return {
        "customers": customers,
        "monthly": monthly,
        "cohorts": cohorts,
        "concentration": concentration,
        "summary": summary,
    }


def _clean_on_engine(
    run: Run, spec: dict, obs_end: pd.Timestamp | None, salt: str | None
) -> tuple[Any, dict]:
    """Read and clean the transactions on the engine; it writes the clean rows and rejects.

    Returns the backend and the quality dict; ``transactions.parquet`` and
    ``rejects.parquet`` are Parquet folders written by the engine
    (:mod:`segkit.engine.clean`).
    """
    from segkit import engine
    from segkit.engine import clean as on_engine

    backend = engine.connect(run.params["engine"], run.params.get("spark"))
    cleaned = on_engine.clean_transactions(backend, spec, obs_end, salt=salt)
    try:
        on_engine.write_parquet(backend, cleaned.used, run.artifacts / "transactions.parquet")
        on_engine.write_parquet(backend, cleaned.rejects, run.artifacts / "rejects.parquet")
    finally:
        cleaned.release()
    return backend, cleaned.quality


def _engine_cleans(run: Run, specs: dict[str, dict]) -> bool:
    """Whether the engine reads and cleans the transactions itself (engine: spark, Parquet).

    Raises
    ------
    SegkitError
        ``format: table`` (a Spark catalog table) without engine: spark, or for an input
        other than the transactions.
    """
    engine = run.params.get("engine", "duckdb")
    filled = {n: io.table_spec(s, n) or {} for n, s in specs.items()}
    for name, spec in filled.items():
        if spec.get("format") == "table" and (engine == "duckdb" or name != "transactions"):
            raise SegkitError(
                f"data.{name}.format: table reads {spec['path']!r} from the Spark catalog; "
                "only data.transactions can be a table, and only with engine: spark "
                f"(engine is {engine!r})"
            )
    if engine == "duckdb" or "transactions" not in specs:
        return False
    from segkit.engine import clean as on_engine

    return on_engine.reads(filled["transactions"])


def _with_attributes(
    customers: pd.DataFrame | None,
    attrs: pd.DataFrame,
    summary: dict,
    *,
    pseudonymized: bool = False,
) -> pd.DataFrame:
    """The customer features joined with the attributes (clashing names get ``attr_``);
    ``summary`` gets how many customers of each side the other lacks (and, for ids that are
    not pseudonymized, how many more would match written alike: :func:`_loose_matches`)."""
    if customers is None:
        return attrs
    clash = sorted(set(attrs.columns) & set(customers.columns) - {"customer_id"})
    attrs = attrs.rename(columns={c: f"attr_{c}" for c in clash})
    customers = customers.merge(attrs, on="customer_id", how="left")
    # membership on integer codes: Series.isin on Arrow strings took seconds per million
    codes, _ = pd.factorize(
        pd.concat([attrs["customer_id"], customers["customer_id"]], ignore_index=True)
    )
    known = np.isin(codes[: len(attrs)], codes[len(attrs) :])
    matched = int(np.isin(codes[len(attrs) :], codes[: len(attrs)]).sum())
    summary["customers_without_attributes"] = len(customers) - matched
    summary["attribute_rows_without_transactions"] = int(len(attrs) - known.sum())
    if matched < len(customers) and not pseudonymized:
        summary["ids_matching_loosely"] = _loose_matches(attrs, customers) - matched
    return customers


def _loose_matches(attrs: pd.DataFrame, customers: pd.DataFrame) -> int:
    """Customers of the log whose id matches a customer-table id written loosely
    (:func:`segkit.io.clean.loose_ids`): the two files write ids differently."""
    ids = set(loose_ids(attrs["customer_id"]))
    return int(loose_ids(customers["customer_id"]).isin(ids).sum())


def _tidy(customers: pd.DataFrame) -> pd.DataFrame:
    """Sorted by id, floats rounded to 1e-9: the same inputs give byte-identical tables."""
    customers = customers.sort_values("customer_id", kind="stable").reset_index(drop=True)
    # DuckDB sums floats in parallel, so the last bits depend on thread timing.
    floats = customers.select_dtypes("float").columns
    customers[floats] = customers[floats].round(9)
    return customers


# ------------------------------------------------------------------------ findings

#: Plain words for the cleaning rules of segkit.io.REASONS, for the findings.
REASON_WORDS = {
    "missing_customer_id": "without a customer id",
    "unparseable_timestamp": "with an unreadable date",
    "non_numeric_amount": "with a non-numeric amount",
    "cancellation": "cancellations",
    "excluded_value": "excluded by exclude_values (e.g. cancelled orders)",
    "negative_quantity": "returns (negative quantity)",
    "non_positive_amount": "with a zero or negative amount",
    "after_observation_end": "after the observation end",
    "duplicate_row": "exact duplicates",
    "missing_arm": "without an experiment arm",
    "duplicate_customer_id": "repeating a customer id",
    "non_numeric_outcome": "with a non-numeric outcome",
    "non_finite_amount": "with an infinite or NaN amount",
    "unknown_currency": "in a currency without a rate (currencies.rates)",
    "implausible_amount": "with an implausibly large amount",
    "future_timestamp": "dated in the future",
}


def _money(x: float) -> str:
    for div, unit in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:,.1f}{unit}"
    return f"{x:,.0f}"


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


def input_notes(name: str, q: dict) -> list[str]:
    """What reading ``name`` had to decide or repair, in words (from its quality dict).

    >>> input_notes("transactions", {"encoding": "latin-1", "ids_trimmed": 3})
    ['The transactions file is not UTF-8; it was read as latin-1: check accented names.', '3 transactions customer ids had surrounding blanks, trimmed.']
    """
    out = []
    if q.get("encoding") not in (None, "utf-8", "utf-8-sig", "auto"):
        out.append(
            f"The {name} file is not UTF-8; it was read as {q['encoding']}: check accented names."
        )
    if q.get("ids_trimmed"):
        out.append(f"{q['ids_trimmed']:,} {name} customer ids had surrounding blanks, trimmed.")
    if q.get("timestamps_converted_to_utc"):
        out.append(
            f"{q['timestamps_converted_to_utc']:,} {name} timestamps carried a UTC offset and "
            "were converted to UTC (set local_time: true to keep the day as written, the day "
            "the shop and its customers saw)."
        )
    if q.get("timestamps_offset_dropped"):
        out.append(
            f"{q['timestamps_offset_dropped']:,} {name} timestamps carried a UTC offset; the "
            "time as written was kept and the offset dropped (local_time: true)."
        )
    converted = [c for c in q.get("currencies") or [] if c["rate"] != 1]
    if converted:
        same = [c["currency"] for c in q["currencies"] if c["rate"] == 1]
        into = f" into {', '.join(same)}" if same else ""
        out.append(
            f"Money was converted{into} by currencies.rates: "
            + ", ".join(
                f"{c['rows']:,} {name} rows in {c['currency']} at {c['rate']:g}" for c in converted
            )
            + "."
        )
    order = q.get("date_order") or {}
    if str(order.get("basis", "")).startswith("assumed"):
        out.append(
            f"{order['ambiguous_values']:,} {name} dates could be read either way (like "
            f"01/02); they were read {order['order']}, as data.{name}.dayfirst says."
        )
    out += [str(n) for n in q.get("notes") or []]
    return out


def _match_sentences(summary: dict) -> list[str]:
    """How well the transaction log's customers and the customer table's rows match."""
    missing = summary.get("customers_without_attributes", 0)
    if not missing:
        return []
    n, rows = summary["customers"], summary["customers"] - missing
    spare = summary.get("attribute_rows_without_transactions", 0)
    loose = summary.get("ids_matching_loosely", 0)
    cause = (
        f" {loose:,} more would match if leading zeros, case and blanks were ignored: the two "
        "files write the ids differently (one with leading zeros, say); write them alike, "
        "or give the file of shorter numbers id_width (the other's number of digits)."
        if loose
        else ""
    )
    if rows == 0:
        return [
            f"No customer of the transaction log has a row in the customer table ({spare:,} "
            "rows, all without purchases): the attributes are empty for everyone and only the "
            f"purchase history describes the customers.{cause}"
        ]
    return [
        f"{rows:,} of the {n:,} customers in the transaction log ({rows / n:.0%}) have a row "
        f"in the customer table ({missing:,} without attributes; {spare:,} customer-table "
        f"rows without purchases).{cause}"
    ]


def findings(
    *,
    summary: dict,
    quality: dict[str, dict],
    source: str,
    concentration: dict | None,
    cohorts: pd.DataFrame | None,
) -> list[str]:
    """The stage's findings in plain words; the first one is the headline (that the log's
    customers have no row in the customer table, when none has)."""
    match = _match_sentences(summary)
    none_match = bool(match) and match[0].startswith("No customer")
    out = match if none_match else []  # nothing joins: that comes first, before the headline
    out += [_headline(summary, source)]
    out += [_quality_sentence(n, q) for n, q in quality.items()]
    out += [] if none_match else match
    out += [note for n, q in quality.items() for note in input_notes(n, q)]
    if concentration:
        out.append(
            f"Revenue is concentrated: the top 10% of customers bring "
            f"{concentration['top_10']:.0%} of it, the top 20% bring "
            f"{concentration['top_20']:.0%} (Gini {concentration['gini']:.2f})."
        )
    if cohorts is not None and cohorts.shape[1] > 2:
        m1 = cohorts[1].mean()
        out.append(f"On average {m1:.0%} of a month's new customers buy again the next month.")
    if "experiment_arms" in summary:
        arms = ", ".join(f"{a} ({n:,})" for a, n in summary["experiment_arms"].items())
        out.append(f"The campaign experiment has arms {arms}.")
    return out


# --------------------------------------------------------------------------- stage


def _load(
    run: Run,
    specs: dict[str, dict],
    obs_end: pd.Timestamp | None,
    secret: str | None,
    con: duckdb.DuckDBPyConnection,
) -> tuple[dict[str, duckdb.DuckDBPyRelation], dict[str, dict], Any]:
    """Load and clean the inputs; write the rejects.

    Returns the used rows of the inputs DuckDB loaded, the quality dict of every input,
    and the engine that cleaned the transactions and wrote them (None: DuckDB did).
    """
    on_engine = _engine_cleans(run, specs)
    backend, quality = None, {}
    if on_engine:  # Spark reads, cleans and writes the transactions and their rejects
        backend, quality["transactions"] = _clean_on_engine(
            run, specs["transactions"], obs_end, secret
        )
    local = {n: s for n, s in specs.items() if not (on_engine and n == "transactions")}
    tables = _load_tables(local, obs_end, con)
    used = {
        n: (t.used if secret is None else pseudonymize(t.used, secret)) for n, t in tables.items()
    }
    id_columns = {n: _raw_id_column(specs[n], n) for n in tables}
    widths = {n: (io.table_spec(specs[n], n) or {}).get("id_width") for n in tables}
    rejects = run.artifacts / "rejects.parquet"
    if not on_engine:
        _write(_rejects(con, tables, id_columns=id_columns, salt=secret, widths=widths), rejects)
    elif tables:  # the other inputs' rejects: one more part of the engine's folder
        part = rejects / f"part-{len(list(rejects.glob('*.parquet'))):05d}.parquet"
        _write(_rejects(con, tables, id_columns=id_columns, salt=secret, widths=widths), part)
    quality.update({n: t.quality for n, t in tables.items()})
    if run.params["data"]["source"] == "demo":  # generated inside the run folder
        for n, q in quality.items():
            q["file"] = f"artifacts/inputs/{n}.parquet"
    return used, quality, backend


def run(run: Run) -> Exploration:
    """Load, clean and summarize the inputs of ``run``; write the exploration artifacts.

    Raises
    ------
    SegkitError
        When no input is given, when the experiment is the only input (no customers to
        segment), or when ``data.pseudonymize`` is set without ``SEGKIT_SALT``.
    """
    d = run.params["data"]
    secret = secret_salt(d["pseudonymize"])
    specs = input_specs(run, secret)
    if not specs:
        raise SegkitError("data: no input given (data.transactions, customers or experiment)")
    con = io.connect(temp_dir=run.artifacts / ".duckdb_tmp")
    obs_end = observation_end(d)
    used, quality, backend = _load(run, specs, obs_end, secret, con)
    tx: dict[str, Any] = {"customers": None, "monthly": None, "cohorts": None}
    tx.update(concentration=None, summary={"observation_end": None})
    if "transactions" in used:
        tx_path = _write(used["transactions"], run.artifacts / "transactions.parquet")
        tx = _explore_transactions(run, con, tx_path, obs_end)
    elif backend is not None:  # the engine wrote the clean transactions
        tx_path = run.artifacts / "transactions.parquet"
        tx = _explore_transactions(run, con, tx_path, obs_end, backend)
    summary, customers = tx["summary"], tx["customers"]
    if "customers" in used:
        customers = _with_attributes(
            customers, used["customers"].df(), summary, pseudonymized=secret is not None
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
    customers = _tidy(customers)
    derive_notes: list[str] = []
    if "customers" in specs:  # derived columns (data.customers.derive), e.g. total spend
        customers, derive_notes = derive.apply_spec(customers, specs["customers"])
    summary["customers"] = int(len(customers))
    run.save("customers.parquet", customers)
    run.save("data_quality.json", {**quality, "summary": summary})
    words = findings(
        summary=summary,
        quality=quality,
        source=d["source"],
        concentration=tx["concentration"],
        cohorts=tx["cohorts"],
    ) + [md(n) for n in derive_notes]
    run.save_findings("explore", words)
    con.close()
    return Exploration(
        findings=words,
        quality=explore.quality_table(quality),
        summary=summary,
        features=explore.feature_summary(customers),
        customers=customers,
        monthly=tx["monthly"],
        cohorts=tx["cohorts"],
        concentration=tx["concentration"],
    )
