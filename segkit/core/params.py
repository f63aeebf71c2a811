"""The parameter schema: every parameter, table spec key and metric spec, declared once.

A *parameter set* is a YAML file (the bundled ones: ``segkit params --list``) laid over
:data:`DEFAULTS`. :func:`load_params` reads one, applies ``key.sub=value`` overrides and
validates everything before any kernel starts: an unknown name (with "did you mean …"), a
wrong type, an impossible value, an unknown table-spec key, column role, metric kind or
model name is a :class:`~segkit.core.errors.SegkitError` that says what is accepted.
Relative file paths in a parameter file are made absolute against that file's folder.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from segkit.core import paths
from segkit.core.checks import check_scalar
from segkit.core.errors import SegkitError, TodoError

#: Segments smaller than this are not recommended (cluster) nor detailed (profile, CLV).
MIN_SEGMENT_SIZE = 20
#: Bootstrap Jaccard at or above this: a stable segment; below UNSTABLE: it falls apart
#: (Hennig's clusterboot cut-offs).
STABLE, UNSTABLE = 0.75, 0.6
#: Most levels a categorical clustering column keeps (rarer ones become "other").
MAX_LEVELS = 30
#: Days per time unit of the BTYD summaries and the CLV models.
UNIT_DAYS = {"D": 1.0, "W": 7.0}
#: Purchase and spend models of the CLV stage.
CLV_MODELS = ("bgnbd", "pareto_nbd", "mbgnbd", "gamma_gamma")
#: Metric kinds of the A/B stage.
METRIC_KINDS = ("proportion", "mean", "ratio")
METRIC_KEYS = ("name", "kind", "col", "num", "den", "covariate")
TABLE_NAMES = ("transactions", "customers", "experiment")

#: Every parameter with its default. A value of ``None`` means "not given".
DEFAULTS: dict[str, Any] = {
    "name": "demo",  # run name: the run folder is reports/<name>/
    "seed": 42,  # seed of every random step
    "data": {
        "source": "demo",  # demo (the synthetic retailer) | files (the table specs below)
        "demo": {  # the synthetic retailer (source: demo)
            "n_customers": 4000,
            "start": "2023-01-01",
            "end": "2024-12-31",
        },
        "transactions": None,  # table spec: {path, columns, ...}; see io.TABLE_DEFAULTS
        "customers": None,  # customer attribute table spec
        "experiment": None,  # experiment table spec
        "observation_end": None,  # "YYYY-MM-DD"; None = last transaction date
        "calibration_end": None,  # "YYYY-MM-DD" split for the CLV holdout; None = none
        "time_unit": "D",  # D (days) or W (weeks) for recency, T and CLV
        "pseudonymize": False,  # replace customer ids by salted hashes in artifacts
    },
    "cluster": {
        "method": "kmeans",  # kmeans | gmm | kprototypes | rfm
        "features": None,  # numeric features to cluster on; None = the default set
        "categorical": None,  # categorical attributes (kprototypes / one-hot)
        "k": 0,  # number of segments; 0 = the recommended one
        "k_min": 3,
        "k_max": 10,
        "n_bootstrap": 20,  # resamples for the stability (Jaccard) of each k
        "gap_references": 10,  # reference data sets for the gap statistic (0 = no gap)
        "gamma": None,  # kprototypes: weight of one categorical mismatch; None = Huang's rule
        "sample_size": 20000,  # fit on a sample of this many customers, assign everyone
        "min_segment_size": MIN_SEGMENT_SIZE,  # smallest segment a k may produce to be recommended
        # categorical levels held by under this share of the customers are rare: counted and
        # named in the findings, and kept as levels (rare_levels: keep) or merged into
        # "other" (rare_levels: other)
        "rare_share": 0.01,
        "rare_levels": "keep",
        "names": {},  # segment number -> name, overriding the derived names
        # column (or data.customers.derive name) whose mean per customer measures value: it
        # orders the segments (1 = most valuable); None = revenue of a transaction log, else
        # the segments are numbered by size and none is called the most valuable
        "value": None,
    },
    "profile": {
        "min_segment_size": MIN_SEGMENT_SIZE,  # segments smaller than this are not profiled in detail
        "tree_depth": 3,  # depth of the surrogate tree that describes segments
        "compare_run": None,  # run folder of an earlier run for the migration matrix
        "compare_date": None,  # "YYYY-MM-DD": migration from the segments as of that date
    },
    "clv": {
        "models": ["bgnbd", "pareto_nbd", "gamma_gamma"],
        "horizon_months": 12,  # CLV horizon
        "margin": 0.3,  # profit margin applied to revenue
        "discount_rate": 0.1,  # annual discount rate
    },
    "abtest": {
        "control": None,  # name of the control arm; None = the arm named like control/none
        "metrics": None,  # list of {name, kind: proportion|mean|ratio, col | num+den, covariate}
        "segment_cols": ["segment"],  # columns to break effects down by
        "correction": "holm",  # holm | fdr_bh: multiple testing across segments
        "alpha": 0.05,
        "power": 0.8,
        "cost_per_contact": 0.1,  # cost of one contact, same currency as the value metric
        "value_metric": None,  # metric whose lift is money (for ROI); None = none
        "min_n": 100,  # fewest customers per arm for a segment to be evaluated
        "target_lift": 0.1,  # relative lift the test should detect (power, planning)
    },
    "plan": {
        # breakdown of the A/B effects the plan targets: "segment" (the segments), another
        # of abtest.segment_cols (e.g. a customer attribute), or "all" (one group)
        "segment_col": "segment",
        "channels": ["email"],  # channels a campaign can go out on (same lift on each)
        # cost of one contact: None = abtest.cost_per_contact everywhere; a number; per
        # channel {email: 0.1, sms: 0.3}; or per campaign {discount: {email: 0.6}, ...}
        "cost_per_contact": None,
        "budget": None,  # most money to spend on contacts; None = no limit
        "max_contacts_segment": None,  # most contacts per segment: a number or {segment: n}
        "max_contacts_channel": None,  # most contacts per channel: {channel: n}
        # one-sided family-wise error rate of false "send" decisions across the whole plan
        # (Holm over every segment x campaign x channel); 0.025 = the A/B stage's alpha / 2
        "alpha": 0.025,
        "min_segment_size": 100,  # segments with fewer contactable customers are left out
        "min_holdout": 100,  # smallest random holdout kept per targeted segment
        "max_holdout_share": 0.5,  # largest share of a segment's contactable customers held out
        "consent_column": None,  # customer column saying yes to contact (1/true/yes); None = all
        "suppression_file": None,  # CSV/Parquet of customer ids never to contact; None = none
        "last_contact_column": None,  # customer column with the last contact date (YYYY-MM-DD)
        "suppress_days": 0,  # leave out customers contacted fewer than this many days ago
        "date": None,  # "YYYY-MM-DD" the campaign goes out; None = data.observation_end / demo end
        "lookup_dir": None,  # where the id -> pseudonym lookup goes; None = <run>.private/ beside it
    },
    "report": {
        "currency": "",  # shown before money in the reports, e.g. "€" or "$"; "" = none
    },
    # where the customer features and the A/B sums are aggregated: duckdb (embedded, the
    # default) | spark (the same aggregation as ibis expressions on Spark: pip install
    # "segkit[spark]" and Java 17; the transactions must be Parquet or a Spark table)
    "engine": "duckdb",
    "spark": {  # engine: spark; an active SparkSession (spark-submit, Databricks) wins
        "master": "local[2]",  # Spark master URL of a session segkit builds itself
        "app_name": "segkit",
        "driver_memory": "2g",  # JVM heap of the driver (spark.driver.memory)
        "shuffle_partitions": 8,  # spark.sql.shuffle.partitions: ~2-4 per core in the cluster
        # extra JVM flags of the driver, e.g. "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
        # (a session starts in half the time, for small data and tests)
        "java_options": "",
        "conf": {},  # any other Spark settings, e.g. {"spark.executor.memory": "8g"}
    },
}

#: Engines of the aggregation (``engine``).
ENGINES = ("duckdb", "spark")


#: Keys of a table spec and their defaults.
TABLE_DEFAULTS: dict[str, Any] = {
    # file path, or a pattern of several files with the same columns (orders_*.csv), read in
    # name order; relative paths are relative to the parameter file's folder
    "path": None,
    "format": "auto",  # auto | csv | parquet | json | excel | whitespace | table (Spark catalog)
    "sep": "auto",  # CSV delimiter; auto = sniffed
    "header": True,  # first line holds column names
    # lines (CSV) or rows (Excel) above the header to skip: a report's title lines
    "skip_rows": 0,
    # customer ids of fewer digits get leading zeros up to this width ('123' -> '000123'),
    # as the other file writes them (a CRM's '0000123456' and a shop's '123456'); None = as is
    "id_width": None,
    "names": None,  # column names when header is false
    "encoding": "auto",  # auto = utf-8, falling back to latin-1 (recorded)
    "sheet": 0,  # Excel sheet: its number (0 = first) or name, or "all" (stacked)
    "columns": {},  # segkit role -> column name in the file (see ROLES)
    "date_formats": None,  # strptime formats tried in order; None = ISO then common ones
    "dayfirst": None,  # 01/02/2011: None = the data decide (an error if they cannot); true | false
    # transactions: timestamps written as numbers since 1970-01-01 UTC, as API and database
    # exports write them (1704067200): "s", "ms" or "us"; or "excel": days since 1899-12-30
    # with the time as a fraction (45292.5 is 2024-01-01 12:00), as a CSV saved from an
    # Excel sheet keeps dates it did not format; None = dates as text
    "epoch": None,
    # transactions: money in minor units (cents, pence: 1250 is 12.50): amount and unit
    # price divided by 100
    "cents": False,
    # transactions: a column with the part of the row's amount refunded (Stripe's "Amount
    # Refunded"): revenue counts the amount less it, a row refunded in full is rejected as
    # non_positive_amount; an empty cell is no refund
    "refunded": None,
    "cancel_prefix": None,  # order ids starting with this are cancellations (e.g. "C")
    # transactions: rows whose column holds one of the values are not purchases, e.g.
    # {status: [cancelled, refunded]} (compared trimmed and ignoring case); rejected as
    # excluded_value, with an order_id every row of such an order (shop exports write an
    # order's status on its first line only)
    "exclude_values": None,
    # transactions: money in several currencies, converted to one: {column: Currency,
    # rates: {EUR: 1, USD: 0.92}, default: null}. Amount and unit price are multiplied by
    # the rate of the row's currency: the value of column, or without one the sign or code
    # written around the number (12.50 USD, €12.50); rates are the report currency per unit
    # (its own rate is 1). A row whose currency has no rate, or none (unless default names
    # one), is rejected as unknown_currency
    "currencies": None,
    "dedupe": True,  # exact duplicate rows are rejected (first kept)
    # text timestamps with a UTC offset (2024-03-01 00:30:00 +0100; with date_formats, a
    # format ending in %z): false = converted to UTC (that purchase falls on Feb 29); true =
    # the wall time as written, the offset dropped (the day the shop and its customers saw)
    "local_time": False,
    "allow_zero_amount": False,  # keep zero-value purchases (free items still count as visits)
    "attributes": None,  # customers: attribute columns to keep; None = all others
    # experiment: outcome columns (None = all numeric others). customers: results such as
    # campaign acceptance, response, complaints: profiled per segment, never clustered unless
    # listed in cluster.features (None = columns named like a response/acceptance/complaint)
    "outcomes": None,
    "covariates": None,  # experiment: pre-period covariates
    "id_from_row": False,  # no id column: ids are the file's row numbers ("R000001")
    "decimal": ".",  # decimal mark of numbers in the file: "." or "," (12,50)
    "thousands": None,  # thousands separator to drop from numbers ("." in 1.234,50); None = none
    # customers: derived columns {name: expression}, column arithmetic checked against the
    # columns (segkit.derive), e.g. {total_spend: "MntWines + MntFruits", age: "2014 - Year_Birth"}
    "derive": None,
    # customers: readable names of columns in segment names and reports, e.g.
    # {MntWines: "wine spend"}; None = the column names made readable ("num web purchases")
    "labels": None,
}

ROLES = {
    "transactions": (
        "customer_id",
        "timestamp",
        "amount",
        "quantity",
        "unit_price",
        "order_id",
        "product",
        "category",
        "channel",
        "country",
    ),
    "customers": ("customer_id",),
    "experiment": ("customer_id", "arm"),
}

#: ``table``: ``path`` names a table of the Spark session's catalog (engine: spark only).
TABLE_FORMATS = ("auto", "csv", "parquet", "json", "excel", "whitespace", "table")

#: Keys whose value is a free-form mapping or list, checked by their own rule below.
_FREE = {
    ("data", "transactions"),
    ("data", "customers"),
    ("data", "experiment"),
    ("cluster", "names"),
    ("cluster", "features"),
    ("cluster", "categorical"),
    ("clv", "models"),
    ("abtest", "metrics"),
    ("abtest", "segment_cols"),
    ("plan", "channels"),
    ("plan", "cost_per_contact"),
    ("plan", "max_contacts_segment"),
    ("plan", "max_contacts_channel"),
    ("spark", "conf"),
}

_CHOICES = {
    ("data", "source"): {"demo", "files"},
    ("data", "time_unit"): set(UNIT_DAYS),
    ("cluster", "method"): {"kmeans", "gmm", "kprototypes", "rfm"},
    ("cluster", "rare_levels"): {"keep", "other"},
    ("abtest", "correction"): {"holm", "fdr_bh", "bonferroni", "none"},
    ("engine",): set(ENGINES),
}


def _unknown(where: str, what: str, key: str, accepted: Any) -> SegkitError:
    close = difflib.get_close_matches(str(key), [str(a) for a in accepted], n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return SegkitError(f"{where}: unknown {what} {key!r}{hint} Accepted: {sorted(accepted)}")


def _walk_validate(given: dict, defaults: dict, path: tuple[str, ...], where: str) -> None:
    for key, value in given.items():
        here = (*path, key)
        dotted = ".".join(here)
        if key not in defaults:
            raise _unknown(where, "parameter", dotted, [".".join((*path, k)) for k in defaults])
        default = defaults[key]
        if here in _FREE or value is None:
            continue
        if isinstance(default, dict) and default:
            if not isinstance(value, dict):
                raise SegkitError(f"{where}: {dotted} == {value!r}, must be a mapping.")
            _walk_validate(value, default, here, where)
        elif default is not None and not isinstance(default, dict):
            typ = float if isinstance(default, float) else type(default)
            check_scalar(value, f"{where}: {dotted}", typ, in_=_CHOICES.get(here))


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and out[key]:
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``cluster.k=5`` into (["cluster", "k"], 5); the value is read as YAML.

    >>> parse_override("cluster.k=5")
    (['cluster', 'k'], 5)
    """
    if "=" not in text:
        raise SegkitError(f"--set {text!r}: expected key=value, e.g. cluster.k=5")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except (yaml.YAMLError, ValueError):  # e.g. '2024-13-01' looks like a date but is not
        value = raw
    return key.strip().split("."), value


def _set_dotted(params: dict, keys: list[str], value: Any) -> None:
    node = params
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise SegkitError(f"--set {'.'.join(keys)}: {k!r} is not a section")
    node[keys[-1]] = value


def table_spec(spec: dict | str | Path | None, name: str, where: str = "parameters") -> dict | None:
    """A table spec filled with :data:`TABLE_DEFAULTS`; a bare path is ``{"path": path}``.

    Unknown keys and column roles raise with "did you mean …".

    >>> table_spec("sales.csv", "transactions")["format"]
    'auto'
    >>> table_spec({"path": "x.csv", "colums": {}}, "transactions")
    Traceback (most recent call last):
    ...
    segkit.core.errors.SegkitError: parameters: unknown key 'data.transactions.colums'; did you mean 'data.transactions.columns'? Accepted: [...]
    """
    if spec is None:
        return None
    check_scalar(name, "table", str, in_=TABLE_NAMES)
    if isinstance(spec, str | Path):
        spec = {"path": str(spec)}
    if not isinstance(spec, dict):
        raise SegkitError(f"{where}: data.{name} == {spec!r}, must be a path or a mapping.")
    for key in spec:
        if key not in TABLE_DEFAULTS:
            accepted = [f"data.{name}.{k}" for k in TABLE_DEFAULTS]
            raise _unknown(where, "key", f"data.{name}.{key}", accepted)
    out = {**TABLE_DEFAULTS, **spec}
    if not out["path"]:
        raise SegkitError(f"{where}: data.{name}.path is empty; give the file to read")
    columns = out["columns"] or {}
    if not isinstance(columns, dict):
        raise SegkitError(
            f"{where}: data.{name}.columns == {columns!r}, must be a mapping role: column"
        )
    for role in columns:
        if role not in ROLES[name]:
            raise _unknown(where, f"column role in data.{name}.columns", role, ROLES[name])
    _check_spec_types(out, f"{where}: data.{name}")
    return out


def _check_spec_types(spec: dict, at: str) -> None:
    check_scalar(spec["format"], f"{at}.format", str, in_=TABLE_FORMATS)
    for key in ("header", "dedupe", "allow_zero_amount", "id_from_row", "local_time", "cents"):
        check_scalar(spec[key], f"{at}.{key}", bool)
    if isinstance(spec["skip_rows"], bool):
        raise SegkitError(f"{at}.skip_rows == {spec['skip_rows']!r}, must be a whole number")
    check_scalar(spec["skip_rows"], f"{at}.skip_rows", int, ge=0)
    if spec["id_width"] is not None:
        if isinstance(spec["id_width"], bool):
            raise SegkitError(f"{at}.id_width == {spec['id_width']!r}, must be a whole number")
        check_scalar(spec["id_width"], f"{at}.id_width", int, ge=1, le=64)
    if spec["dayfirst"] is not None:
        check_scalar(spec["dayfirst"], f"{at}.dayfirst", bool)
    if spec["refunded"] is not None:
        check_scalar(spec["refunded"], f"{at}.refunded", str)
    if spec["epoch"] is not None:
        check_scalar(spec["epoch"], f"{at}.epoch", str, in_=EPOCH_UNITS)
    for key in ("attributes", "outcomes", "covariates", "date_formats", "names"):
        if spec[key] is not None and not isinstance(spec[key], list):
            raise SegkitError(f"{at}.{key} == {spec[key]!r}, must be a list.")
    ex = spec["exclude_values"]
    if ex is not None and not (
        isinstance(ex, dict)
        and all(isinstance(v, list) and v and all(_scalar(x) for x in v) for v in ex.values())
    ):
        raise SegkitError(
            f"{at}.exclude_values == {ex!r}, must be a mapping column: [values], e.g. "
            "{status: [cancelled, refunded]}"
        )
    if spec["currencies"] is not None:
        _check_currencies(spec["currencies"], at)


#: Units of ``epoch`` timestamps, as microseconds.
EPOCH_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "excel": 86_400_000_000}
#: Where an ``epoch`` unit counts from, in its units before 1970-01-01 (Excel: 1899-12-30).
EPOCH_ORIGINS = {"excel": 25_569}

#: Keys of ``currencies`` in a table spec.
CURRENCY_KEYS = ("column", "rates", "default")


#: Currency signs that name one currency, read as its code ('€12.50' is '12.50 EUR'); '$'
#: and '¥' name several and stay signs.
CURRENCY_SIGNS = {"€": "EUR", "£": "GBP", "₹": "INR"}


def currency_key(value: Any) -> str:
    """A currency as ``currencies`` compares it: trimmed, upper case, a sign of one
    currency as its code ('usd ' -> 'USD', '€' -> 'EUR')."""
    key = str(value).strip().upper()
    return CURRENCY_SIGNS.get(key, key)


def _check_currencies(cur: Any, at: str) -> None:
    """``currencies``: a mapping with a column (or none), positive rates and a default."""
    at = f"{at}.currencies"
    example = "e.g. {column: Currency, rates: {EUR: 1, USD: 0.92}}"
    if not isinstance(cur, dict):
        raise SegkitError(f"{at} == {cur!r}, must be a mapping {example}")
    for key in cur:
        if key not in CURRENCY_KEYS:
            raise _unknown(at, "key", key, CURRENCY_KEYS)
    if cur.get("column") is not None and not isinstance(cur["column"], str):
        raise SegkitError(f"{at}.column == {cur['column']!r}, must be a column name or null")
    rates = cur.get("rates")
    if not isinstance(rates, dict) or not rates:
        raise SegkitError(
            f"{at}.rates == {rates!r}, must map each currency to its rate, {example}: how "
            "much of the report currency one unit is worth (the report currency's own rate is 1)"
        )
    seen: dict[str, Any] = {}
    base = next((str(k) for k, v in rates.items() if v == 1), "the report currency")
    for code, rate in rates.items():
        if not _scalar(code) or not currency_key(code):
            raise SegkitError(f"{at}.rates: {code!r} is not a currency code or sign")
        if rate is None:
            raise TodoError(
                f"{at}.rates.{code} is empty: give how much {base} one {code} is worth (the "
                f"report currency's own rate is 1), {example}; or remove currencies if the "
                "amounts are in one currency already"
            )
        if not _scalar(rate) or isinstance(rate, str) or not 0 < float(rate) < float("inf"):
            raise SegkitError(f"{at}.rates.{code} == {rate!r}, must be a number above 0")
        if currency_key(code) in seen:
            raise SegkitError(
                f"{at}.rates names {seen[currency_key(code)]!r} and {code!r}, the same currency "
                "once trimmed and upper-cased"
            )
        seen[currency_key(code)] = code
    default = cur.get("default")
    if default is not None and (not _scalar(default) or currency_key(default) not in seen):
        raise SegkitError(
            f"{at}.default == {default!r}, must be one of the currencies in rates: {list(rates)}"
        )


def _scalar(x: Any) -> bool:
    return isinstance(x, str | int | float) and not isinstance(x, bool)


def metric_specs(metrics: list | None, where: str = "parameters") -> list[dict] | None:
    """Check ``abtest.metrics``: kinds, the keys each kind needs, no unknown keys.

    Whether the named columns exist is checked against the experiment when it is read.
    """
    if metrics is None:
        return None
    if not isinstance(metrics, list):
        raise SegkitError(f"{where}: abtest.metrics == {metrics!r}, must be a list of mappings.")
    for i, m in enumerate(metrics):
        at = f"{where}: abtest.metrics[{i}]"
        if not isinstance(m, dict):
            raise SegkitError(f"{at} == {m!r}, must be a mapping like {{name, kind, col}}")
        for key in m:
            if key not in METRIC_KEYS:
                raise _unknown(at, "key", key, METRIC_KEYS)
        check_scalar(m.get("kind"), f"{at}.kind", str, in_=METRIC_KINDS)
        need = ["num", "den"] if m["kind"] == "ratio" else ["col"]
        missing = [k for k in need if not m.get(k)]
        if missing:
            raise SegkitError(f"{at} ({m['kind']}) needs {need}; given {sorted(m)}")
    return metrics


def _check_lists(p: dict, where: str) -> None:
    for section, key in (
        ("cluster", "features"),
        ("cluster", "categorical"),
        ("abtest", "segment_cols"),
    ):
        value = p[section][key]
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise SegkitError(
                f"{where}: {section}.{key} == {value!r}, must be a list of column names."
            )
    names = p["cluster"]["names"]
    if not isinstance(names, dict):
        raise SegkitError(f"{where}: cluster.names == {names!r}, must be a mapping segment: name.")
    models = p["clv"]["models"]
    if not isinstance(models, list) or not models:
        raise SegkitError(f"{where}: clv.models == {models!r}, must be a non-empty list.")
    for m in models:
        if m not in CLV_MODELS:
            raise _unknown(f"{where}: clv.models", "model", m, CLV_MODELS)
    metric_specs(p["abtest"]["metrics"], where)
    for name in TABLE_NAMES:
        p["data"][name] = table_spec(p["data"][name], name, where)


def _check_values(p: dict, where: str) -> None:
    c, d = p["cluster"], p["data"]
    check_scalar(p["name"], f"{where}: name", str)
    check_scalar(p["seed"], f"{where}: seed", int, ge=0)
    check_scalar(c["k_min"], f"{where}: cluster.k_min", int, ge=2)
    check_scalar(c["k_max"], f"{where}: cluster.k_max", int, ge=c["k_min"])
    if c["k"] != 0:
        check_scalar(c["k"], f"{where}: cluster.k", int, ge=2)
    check_scalar(c["n_bootstrap"], f"{where}: cluster.n_bootstrap", int, ge=0)
    check_scalar(c["gap_references"], f"{where}: cluster.gap_references", int, ge=0)
    if c["gamma"] is not None:
        check_scalar(c["gamma"], f"{where}: cluster.gamma", float, gt=0)
    check_scalar(c["sample_size"], f"{where}: cluster.sample_size", int, ge=100)
    check_scalar(c["min_segment_size"], f"{where}: cluster.min_segment_size", int, ge=1)
    check_scalar(c["rare_share"], f"{where}: cluster.rare_share", float, ge=0.0, lt=0.5)
    check_scalar(p["profile"]["min_segment_size"], f"{where}: profile.min_segment_size", int, ge=1)
    check_scalar(p["profile"]["tree_depth"], f"{where}: profile.tree_depth", int, ge=1)
    if p["profile"]["compare_date"] is not None:
        parse_date(p["profile"]["compare_date"], f"{where}: profile.compare_date")
    check_scalar(p["clv"]["horizon_months"], f"{where}: clv.horizon_months", int, gt=0)
    check_scalar(p["clv"]["margin"], f"{where}: clv.margin", float, gt=0, le=1)
    check_scalar(p["clv"]["discount_rate"], f"{where}: clv.discount_rate", float, ge=0, lt=1)
    check_scalar(p["abtest"]["alpha"], f"{where}: abtest.alpha", float, gt=0, lt=1)
    check_scalar(p["abtest"]["power"], f"{where}: abtest.power", float, gt=0, lt=1)
    check_scalar(p["abtest"]["cost_per_contact"], f"{where}: abtest.cost_per_contact", float, ge=0)
    check_scalar(p["abtest"]["target_lift"], f"{where}: abtest.target_lift", float, gt=0)
    check_scalar(p["abtest"]["min_n"], f"{where}: abtest.min_n", int, ge=2)
    _check_engine(p, where)
    check_scalar(d["demo"]["n_customers"], f"{where}: data.demo.n_customers", int, ge=50)
    for key in ("start", "end"):
        parse_date(d["demo"][key], f"{where}: data.demo.{key}")
    for key in ("observation_end", "calibration_end"):
        if d[key] is not None:
            parse_date(d[key], f"{where}: data.{key}")
    if d["observation_end"] and d["calibration_end"]:
        if parse_date(d["calibration_end"]) >= parse_date(d["observation_end"]):
            raise SegkitError(
                f"{where}: data.calibration_end == {d['calibration_end']!r}, must be before "
                f"data.observation_end == {d['observation_end']!r}."
            )
    if d["source"] == "files" and not any(d[t] for t in TABLE_NAMES):
        raise SegkitError(
            f"{where}: data.source == 'files' needs at least one of data.transactions, "
            "data.customers, data.experiment"
        )
    _check_lists(p, where)
    _check_plan(p["plan"], where)


def _check_costs(cost: Any, at: str) -> None:
    """A cost is a number >= 0, or a mapping (channel or campaign) of costs, one level deep
    per campaign; campaign and channel names are checked against the data by the stage."""
    if isinstance(cost, dict):
        if not cost:
            raise SegkitError(f"{at} == {{}}, must name at least one channel or campaign.")
        for key, value in cost.items():
            if isinstance(value, dict):
                for ch, c in value.items():
                    check_scalar(c, f"{at}.{key}.{ch}", float, ge=0)
            else:
                check_scalar(value, f"{at}.{key}", float, ge=0)
    else:
        check_scalar(cost, at, float, ge=0)


def _check_caps(caps: Any, at: str, mapping_only: bool = False) -> None:
    if caps is None:
        return
    if isinstance(caps, dict):
        for key, value in caps.items():
            check_scalar(value, f"{at}.{key}", int, ge=0)
    elif mapping_only:
        raise SegkitError(f"{at} == {caps!r}, must be a mapping channel: most contacts.")
    else:
        check_scalar(caps, at, int, ge=0)


def _check_plan(q: dict, where: str) -> None:
    """The ``plan`` section: channels, costs, caps, levels and the suppression rules."""
    at = f"{where}: plan"
    chans = q["channels"]
    if not isinstance(chans, list) or not chans or not all(isinstance(c, str) for c in chans):
        raise SegkitError(f"{at}.channels == {chans!r}, must be a non-empty list of names.")
    if len(set(chans)) != len(chans):
        raise SegkitError(f"{at}.channels == {chans!r}: a channel is named twice.")
    check_scalar(q["segment_col"], f"{at}.segment_col", str)
    if q["cost_per_contact"] is not None:
        _check_costs(q["cost_per_contact"], f"{at}.cost_per_contact")
    if q["budget"] is not None:
        check_scalar(q["budget"], f"{at}.budget", float, ge=0)
    _check_caps(q["max_contacts_segment"], f"{at}.max_contacts_segment")
    _check_caps(q["max_contacts_channel"], f"{at}.max_contacts_channel", mapping_only=True)
    for ch in q["max_contacts_channel"] or {}:
        check_scalar(ch, f"{at}.max_contacts_channel key", str, in_=chans)
    check_scalar(q["alpha"], f"{at}.alpha", float, gt=0, lt=0.5)
    check_scalar(q["min_segment_size"], f"{at}.min_segment_size", int, ge=1)
    check_scalar(q["min_holdout"], f"{at}.min_holdout", int, ge=2)
    check_scalar(q["max_holdout_share"], f"{at}.max_holdout_share", float, gt=0, lt=1)
    check_scalar(q["suppress_days"], f"{at}.suppress_days", int, ge=0)
    for key in ("consent_column", "last_contact_column", "suppression_file", "lookup_dir"):
        if q[key] is not None:
            check_scalar(q[key], f"{at}.{key}", str)
    if q["suppress_days"] and not q["last_contact_column"]:
        raise SegkitError(
            f"{at}.suppress_days == {q['suppress_days']} needs plan.last_contact_column "
            "(the customer column with the date of the last contact)."
        )
    if q["date"] is not None:
        parse_date(q["date"], f"{at}.date")


def _check_engine(p: dict, where: str) -> None:
    """``engine`` is known; the ``spark`` settings are usable (checked also with duckdb)."""
    check_scalar(p["engine"], f"{where}: engine", str, in_=set(ENGINES))
    s = p["spark"]
    for key in ("master", "app_name", "driver_memory", "java_options"):
        check_scalar(s[key], f"{where}: spark.{key}", str)
    check_scalar(s["shuffle_partitions"], f"{where}: spark.shuffle_partitions", int, ge=1)
    conf = s["conf"]
    if not isinstance(conf, dict) or not all(isinstance(k, str) for k in conf):
        raise SegkitError(f"{where}: spark.conf == {conf!r}, must be a mapping setting: value.")


def parse_date(value: Any, name: str = "date") -> pd.Timestamp:
    """Read a ``YYYY-MM-DD`` string (or date) into a Timestamp, or raise naming ``name``.

    >>> parse_date("2024-06-30")
    Timestamp('2024-06-30 00:00:00')
    """
    if isinstance(value, dt.date | pd.Timestamp):
        return pd.Timestamp(value)
    try:
        return pd.Timestamp(dt.date.fromisoformat(str(value)))
    except ValueError:
        raise SegkitError(f"{name} == {value!r}, must be a date 'YYYY-MM-DD'.") from None


def bundled_sets() -> dict[str, str]:
    """Bundled parameter sets and grids: name -> "parameter set" or "grid"."""
    out = {}
    for path in sorted(paths.params_dir().glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            continue
        out[path.stem] = "grid" if isinstance(data, dict) and "runs" in data else "parameter set"
    return out


def resolve_params_path(params: str | Path) -> Path:
    """A parameter-set name (``demo``) or a path to a YAML file, as an existing path."""
    p = Path(params).expanduser()
    folder = paths.params_dir()
    for c in (p, folder / p, folder / f"{p}.yaml"):
        if c.is_file():
            return c.resolve()
    sets = [n for n, kind in bundled_sets().items() if kind == "parameter set"]
    raise SegkitError(
        f"parameter set {str(params)!r} not found: not a file, nor a bundled set; "
        f"bundled sets are {sets}"
    )


def _is_uri(path: str | Path) -> bool:
    """A path with a scheme (``s3a://bucket/x``) that only an engine reads: kept as it is."""
    return "://" in str(path)


def _absolute_paths(given: dict, base: Path) -> None:
    """Make the table specs' relative paths absolute against ``base``, in place.

    URIs and table names (``format: table``) are left as they are.
    """
    data = given.get("data")
    if not isinstance(data, dict):
        return
    for name in TABLE_NAMES:
        spec = data.get(name)
        if isinstance(spec, str | Path) and not _is_uri(spec):
            data[name] = paths.resolve_against(spec, base)
        elif isinstance(spec, dict) and isinstance(spec.get("path"), str | Path):
            if spec.get("format") != "table" and not _is_uri(spec["path"]):
                spec["path"] = paths.resolve_against(spec["path"], base)
    plan = given.get("plan")
    if isinstance(plan, dict):
        for key in ("suppression_file", "lookup_dir"):
            if isinstance(plan.get(key), str | Path):
                plan[key] = paths.resolve_against(plan[key], base)
    prof = given.get("profile")
    if isinstance(prof, dict) and isinstance(prof.get("compare_run"), str | Path):
        prof["compare_run"] = paths.resolve_against(prof["compare_run"], base)


def read_yaml_mapping(path: Path, what: str = "parameters") -> dict:
    """A YAML file that must hold a mapping; errors name the file and the line."""
    try:
        given = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SegkitError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise SegkitError(f"{path}: not a UTF-8 text file; expected YAML {what}") from None
    if not isinstance(given, dict):
        raise SegkitError(f"{path}: expected a mapping of {what}, found {type(given).__name__}")
    return given


def load_params(
    params: str | Path | dict | None = None, overrides: list[str] | dict | None = None
) -> dict:
    """Resolve a parameter set: DEFAULTS < YAML file (or dict) < overrides; validated.

    Parameters
    ----------
    params
        Name of a bundled set (``"demo"``), path to a YAML file, a dict, or None.
        Relative data paths in a file are relative to its folder; in a dict or an
        override, to the working directory.
    overrides
        ``["cluster.k=5", ...]`` strings or a ``{"cluster.k": 5}`` mapping.

    Returns
    -------
    dict
        Every parameter, defaults filled in, table specs completed.

    Raises
    ------
    SegkitError
        An unknown parameter (with "did you mean …"), a wrong type or value; a bad
        ``--set`` is named as such.

    Examples
    --------
    >>> load_params("demo", ["cluster.k=5"])["cluster"]["k"]
    5
    """
    where = "parameters"
    given: dict = {}
    if isinstance(params, dict):
        given = copy.deepcopy(params)
    elif params is not None:
        path = resolve_params_path(params)
        where = str(path)
        given = read_yaml_mapping(path)
        if "runs" in given:
            raise SegkitError(
                f"{path} is a batch grid (it has 'runs'), not a parameter set: "
                f"run it with `segkit batch {path}`"
            )
        _absolute_paths(given, path.parent)
    _walk_validate(given, DEFAULTS, (), where)
    items = (
        overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides or [])
    )
    labels: dict[str, str] = {}
    for key, value in items:
        keys = key.split(".") if isinstance(key, str) else list(key)
        layer: dict = {}
        _set_dotted(layer, keys, value)
        label = f"--set {'.'.join(keys)}={value}"
        _walk_validate(layer, DEFAULTS, (), label)  # a wrong type is named by its --set
        _absolute_paths(layer, Path.cwd())
        labels[".".join(keys)] = label
        given = _merge(given, layer)
    _absolute_paths(given, Path.cwd())
    resolved = _merge(DEFAULTS, given)
    try:
        _check_values(resolved, where)
    except SegkitError as exc:
        text = str(exc)
        for dotted, label in labels.items():
            if f"{where}: {dotted}" in text:  # the value that broke it came from a --set
                raise SegkitError(text.replace(where, label, 1)) from None
        raise
    return resolved
