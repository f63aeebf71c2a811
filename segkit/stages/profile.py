"""Stage 03, profiles: who is in each segment, in words a marketing team can act on.

:func:`run` reads a run's customers and segments, profiles them with :mod:`segkit.profile`
(sizes, shares, indexes, categorical mix, surrogate-tree rules, suggested actions) and
writes ``profiles.csv``, ``index_table.csv``, ``rules.csv``, ``actions.csv``,
``segment_names.json``, ``migration.csv`` (with ``profile.compare_run`` or
``profile.compare_date``), ``outcome_rates.csv`` (when the customer table has outcomes:
campaign acceptance, response, complaints…) and the findings. Segments under
``profile.min_segment_size`` are pooled into one suppressed row, described by no rule
(privacy) and named with their size in the findings.

The customer table is profiled as :func:`view` sees it: the value column
(``cluster.value``, else revenue) is the money of the profiles, the size chart and the
findings; integer codes (a region 1/2/3) are categories; outcomes, identifiers and
constants are left to ``outcome_rates.csv`` or out. Actions come from recency, frequency
and money for a transaction log, else from the value index and the outcome rates.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd

from segkit import derive, features, io
from segkit.core import paths
from segkit.core.errors import SegkitError
from segkit.core.params import parse_date
from segkit.core.sql import literal
from segkit.naming import align_segments, feature_label, segment_names
from segkit.profile import (
    SUPPRESSED,
    Rules,
    category_mix,
    describe_rules,
    index_table,
    migration,
    outcome_rates,
    profile,
    profiled,
    suggest_actions,
    with_levels,
)
from segkit.stages.run import Run, Skipped, readable_labels  # the notebook calls it here
from segkit.stages.text import md


class Profiles(NamedTuple):
    """What the 03_profile notebook shows."""

    profiles: pd.DataFrame
    index: pd.DataFrame  # segment name × feature, 100 = average
    standardized: pd.DataFrame  # segment name × feature, z of the segment mean
    categories: pd.DataFrame  # segment_name, attribute, value, share
    rules: pd.DataFrame
    fidelity: float
    actions: pd.DataFrame
    names: dict[int, str]
    migration: pd.DataFrame | None
    findings: list[str]
    outcome_rates: pd.DataFrame | None = None  # segkit.profile.outcome_rates; None: no outcomes


class Migration(NamedTuple):
    """Movement between an earlier segmentation and this run's."""

    table: pd.DataFrame  # segkit.profile.migration
    since: str  # "the earlier run" or the compare date
    outside: int  # customers whose features on the date lay outside the fitted range


# ---------------------------------------------------------------------- migration


def segments_at(
    run: Run, date: str | pd.Timestamp, customers: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, int]:
    """Each customer's segment as of an earlier ``date``, for the migration matrix.

    The customer features are rebuilt from the run's transactions up to ``date`` (the
    whole day), customer attributes joined on, and assigned by the run's fitted segmenter.
    Customers whose first purchase came after ``date`` are absent ("new" in the matrix).

    Parameters
    ----------
    run : the run; its ``transactions.parquet`` and fitted segmenter are read.
    date : the earlier date, ``YYYY-MM-DD``.
    customers : the run's customer table when the caller has it loaded already.

    Returns
    -------
    (customer_id, segment) frame, and the number of customers whose features on ``date``
    were outside the fitted range (counted in their nearest segment, not dropped).

    Raises
    ------
    SegkitError
        When the run has no transaction log, or ``date`` is before the first transaction.
    """
    from segkit.segment import Segmenter  # 1 s of imports, only for compare_date

    when = parse_date(date, "profile.compare_date")
    if not run.has("transactions.parquet"):
        raise SegkitError(
            "profile.compare_date needs a transaction log to rebuild the customers' "
            "features at that date; this run has none (use profile.compare_run instead)"
        )
    now = run.load("customers") if customers is None else customers
    tx = run.path("transactions.parquet")  # a file, or a Parquet folder on the Spark path
    src = paths.parquet_source(tx)  # DuckDB reads a folder through a glob of its files
    on = {
        "engine": run.params.get("engine", "duckdb"),
        "spark": run.params.get("spark"),
    }  # duckdb | spark
    with io.connect(temp_dir=run.artifacts / ".duckdb_tmp") as con:  # closed on leaving
        first_sql = f"SELECT min(timestamp) FROM read_parquet({literal(src)})"
        first = pd.Timestamp(con.sql(first_sql).fetchall()[0][0]).normalize()
        if when < first:
            raise SegkitError(
                f"profile.compare_date == {when.date()} is before the first transaction "
                f"({first.date()}): no customer existed yet"
            )
        earlier = features.customer_features(
            tx.as_posix() if on["engine"] != "duckdb" else src,
            when,
            run.params["data"]["time_unit"],
            con=con,
            **on,
        )
    attrs = [c for c in now.columns if c not in earlier.columns]
    earlier = earlier.merge(now[["customer_id", *attrs]], on="customer_id", how="left")
    seg = Segmenter.load(run.folder)
    for col in seg.numeric:  # a share column for a category first bought later
        if col not in earlier.columns:
            earlier[col] = 0.0
    scored = seg.score(earlier, where=f"customers on {when.date()}")
    before = pd.DataFrame(
        {"customer_id": scored["customer_id"], "segment": scored["nearest_segment"].astype(int)}
    )
    return before, int(scored["segment"].isna().sum())


def compare(
    run: Run, segments: pd.DataFrame, customers: pd.DataFrame | None = None
) -> Migration | None:
    """The migration asked for by ``profile.compare_run`` or ``profile.compare_date``.

    Raises
    ------
    SegkitError
        When ``profile.compare_run`` has no ``artifacts/segments.parquet``.
    """
    params = run.params["profile"]
    if params.get("compare_run"):
        old = Path(params["compare_run"]) / "artifacts" / "segments.parquet"
        if not old.exists():
            raise SegkitError(f"profile.compare_run == {params['compare_run']!r}: no {old}")
        return Migration(migration(pd.read_parquet(old), segments), "the earlier run", 0)
    if params.get("compare_date"):
        before, outside = segments_at(run, params["compare_date"], customers)
        since = str(parse_date(params["compare_date"]).date())
        return Migration(migration(before, segments), since, outside)
    return None


# ------------------------------------------------------------------------ findings


def _value_share(p: pd.DataFrame) -> tuple[str, str]:
    """(share column, how the value reads) of the profiles; ("", "") without a value."""
    for col in ("share_revenue", "share_value"):
        if col in p.columns and p[col].notna().any():
            return col, md(p.attrs.get("value_label") or "revenue")
    return "", ""


def _headline(p: pd.DataFrame) -> str:
    q = profiled(p)
    share, label = _value_share(q)
    if share:
        top = q.loc[q[share].idxmax()]
        return (
            f"'{top['segment_name']}': {top['share_customers']:.0%} of customers, "
            f"{top[share]:.0%} of {label}"
        )
    top = q.loc[q["n"].idxmax()]
    return (
        f"'{top['segment_name']}' is the largest segment: {top['share_customers']:.0%} of customers"
    )


def _segment_sentence(
    row: pd.Series, *, actions: pd.DataFrame, rules: pd.DataFrame, value: tuple[str, str]
) -> str:
    """One profiled segment: size, value share, suggested action, its best rule."""
    act = actions.loc[actions["segment"] == row["segment"], "action"].iloc[0]
    share, label = value
    rev = f", {row[share]:.0%} of {label}" if share and pd.notna(row.get(share)) else ""
    seg_rules = rules[rules["segment"] == row["segment"]]
    best = seg_rules.iloc[0] if len(seg_rules) and seg_rules["customers"].iloc[0] else None
    typical = (
        f" Typically: {best['rule']} ({best['recall']:.0%} of the segment match this, "
        f"{best['precision']:.0%} of those who match are in it)."
        if best is not None
        else ""
    )
    return (
        f"Segment {row['segment']} '{row['segment_name']}': {row['n']:,} customers "
        f"({row['share_customers']:.0%}){rev}; suggested action: {act}.{typical}"
    )


def _suppressed_sentence(
    prof: pd.DataFrame, small: dict[int, tuple[str, int]], min_size: int
) -> str:
    """The segments left out of the detail, each named with its size."""
    n = int(prof.loc[prof["segment"] == SUPPRESSED, "n"].iloc[0])
    listed = "; ".join(
        f"segment {s} '{md(name)}' ({size:,} customer{'s' * (size != 1)})"
        for s, (name, size) in sorted(small.items())
    )
    return (
        f"{n:,} customers in segments smaller than {min_size} are not profiled in detail, "
        "to protect their privacy" + (f": {listed}." if listed else ".")
    )


def _migration_sentence(mig: Migration) -> str:
    t = mig.table
    stay = t[t["from_segment"] == t["to_segment"]]["customers"].sum()
    old_n = t[t["from_segment"] != "new"]["customers"].sum()
    new = t[t["from_segment"] == "new"]["customers"].sum()
    gone = t[t["to_segment"] == "gone"]["customers"].sum()
    outside = (
        f" {mig.outside:,} customers' features on {mig.since} lay outside the range the "
        f"segmenter was fitted on; they are counted in their nearest segment."
        if mig.outside
        else ""
    )
    return (
        f"Since {mig.since}, {stay / old_n:.0%} of customers stayed in the same segment "
        f"number; {new:,} customers are new and {gone:,} are gone." + outside
    )


def findings(
    prof: pd.DataFrame,
    *,
    actions: pd.DataFrame,
    rules: Rules,
    params: dict,
    mig: Migration | None,
    small: dict[int, tuple[str, int]] | None = None,
) -> list[str]:
    """The stage's findings in plain words; the first one is the headline.

    ``params`` is the run's ``profile`` section (``tree_depth``, ``min_segment_size``);
    ``small`` the segments under that size: number -> (name, customers), named with their
    size. Without a value share in ``prof`` no segment is called valuable: the headline is
    the largest segment.
    """
    out = [_headline(prof)]
    out += [
        _segment_sentence(row, actions=actions, rules=rules.rules, value=_value_share(prof))
        for _, row in profiled(prof).iterrows()
    ]
    out.append(
        f"Simple rules (a decision tree {params['tree_depth']} questions deep) put "
        f"{rules.fidelity:.0%} of customers in their own segment."
    )
    if (prof["segment"] == SUPPRESSED).any():
        out.append(_suppressed_sentence(prof, small or {}, params["min_segment_size"]))
    if mig is not None:
        out.append(_migration_sentence(mig))
    return out


# -------------------------------------------------------------------------- outcomes


def outcome_columns(run: Run, customers: pd.DataFrame) -> list[str]:
    """The customer table's outcomes: ``data.customers.outcomes`` when listed, else the
    columns ``cluster_features.csv`` gives the role "outcome", else those named like a
    result (:func:`segkit.segment.prepare.infer_outcomes`); numeric columns present only."""
    spec = run.params["data"].get("customers") or {}
    if spec.get("outcomes"):
        cols = list(spec["outcomes"])
    elif run.has("cluster_features.csv"):
        table = run.load("cluster_features")
        cols = table.loc[table["role"] == "outcome", "feature"].astype(str).tolist()
    else:
        from segkit.segment.prepare import infer_outcomes  # the segment package: 1 s to import

        cols = infer_outcomes(customers)
    return [
        c for c in cols if c in customers.columns and pd.api.types.is_numeric_dtype(customers[c])
    ]


def _amount(kind: str, v: float) -> str:
    """A rate as a percentage (one decimal under 10%), a mean to three significant digits.

    >>> _amount("rate", 0.214), _amount("rate", 0.016), _amount("mean", 1234.5)
    ('21%', '1.6%', '1,234')
    """
    if kind == "rate":
        return f"{v:.1%}" if v < 0.1 else f"{v:.0%}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _outcome_sentence(rows: pd.DataFrame, label: str) -> str:
    """The segment with the highest rate (or mean) of one outcome, in words."""
    top = rows.loc[rows["estimate"].idxmax()]
    kind = top["kind"]
    what = "rate" if kind == "rate" else "mean"
    index = f"index {top['index']:.0f}, " if pd.notna(top["index"]) else ""
    known = pd.notna(top["ci_low"])
    interval = (
        f"95% interval {_amount(kind, top['ci_low'])} to {_amount(kind, top['ci_high'])}"
        if known
        else "too few customers for an interval"
    )
    above = known and top["ci_low"] > top["overall"]
    return (
        f"Segment {top['segment']} '{md(top['segment_name'])}' has the highest {what} of "
        f"{md(label)}: {_amount(kind, top['estimate'])} ({index}{interval}); "
        f"{'clearly above' if above else 'not clearly above'} the "
        f"{_amount(kind, top['overall'])} of all customers."
    )


def outcome_findings(rates: pd.DataFrame, *, labels: dict[str, str], experiment: bool) -> list[str]:
    """Per outcome, the segment with the highest rate or mean and its index; and, without a
    randomized experiment, that these are associations, not effects of the campaigns."""
    shown = rates[~rates["suppressed"] & rates["estimate"].notna()]
    out = [
        _outcome_sentence(rows, labels.get(str(name), feature_label(str(name))))
        for name, rows in shown.groupby("outcome", sort=False)
    ]
    if out and not experiment:
        out.append(
            "These outcome rates are associations, not effects: they show who responded "
            "(accepted, complained…), not what the campaigns caused. Segments differ in more "
            "than the campaigns they got, and no randomized experiment (data.experiment) is "
            "declared to measure an effect."
        )
    return out


# --------------------------------------------------------------------------- stage


def _names(
    run: Run, customers: pd.DataFrame, segments: pd.DataFrame, seg: pd.Series
) -> dict[int, str]:
    """The segment names the cluster stage gave, else derived; ``cluster.names`` win."""
    overrides = run.params["cluster"].get("names") or {}
    if "segment_name" not in segments.columns:
        return segment_names(customers, seg, overrides)
    given = segments.drop_duplicates("segment").set_index("segment")["segment_name"]
    names = {int(k): str(v) for k, v in given.items()}
    names.update({int(k): str(v) for k, v in overrides.items()})
    return names


class View(NamedTuple):
    """The customer table as the profiles see it, and what the parameters say of it."""

    table: pd.DataFrame  # codes as levels; no ids, constants or outcomes
    outcomes: list[str]  # profiled by outcome_rates, not as features
    value: str  # cluster.value (or revenue): the money in the profiles; "" = none
    readable: dict[str, str]  # data.customers.labels
    customers: pd.DataFrame  # the whole table with the derived columns (for the outcomes)


def code_columns(run: Run, customers: pd.DataFrame, readable: dict[str, str]) -> list[str]:
    """Numeric columns that are categories (a region 1/2/3): listed in
    ``cluster.categorical``, with labelled levels (``"Region=1"``), or one-hot coded by the
    cluster stage (``cluster_features.csv``)."""
    cols = list(run.params["cluster"].get("categorical") or [])
    cols += [k.split("=", 1)[0] for k in readable if "=" in k]
    if run.has("cluster_features.csv"):
        table = run.load("cluster_features")
        if "transform" in table.columns:
            onehot = table["transform"].fillna("").astype(str).str.startswith("one-hot")
            cols += table.loc[onehot, "feature"].astype(str).tolist()
    return [
        c
        for c in dict.fromkeys(cols)
        if c in customers.columns
        and pd.api.types.is_numeric_dtype(customers[c])
        and not pd.api.types.is_bool_dtype(customers[c])
    ]


def _left_out(customers: pd.DataFrame, outcomes: list[str]) -> list[str]:
    """Columns with nothing to profile: outcomes (they get outcome_rates), identifiers,
    constant or empty columns."""
    from segkit.segment.prepare import is_id_like  # the segment package: 1 s to import

    return [
        c
        for c in customers.columns
        if c != "customer_id"
        and (c in outcomes or is_id_like(customers[c]) or customers[c].nunique(dropna=False) < 2)
    ]


def view(run: Run, customers: pd.DataFrame) -> View:
    """The customer table to profile: derived columns added (``data.customers.derive``),
    integer codes as their levels (:func:`code_columns`), labelled levels by their labels
    (``data.customers.labels``, ``"Education=PhD": "doctorate"``), outcomes, identifiers and
    constants left out; with the value column (:func:`segkit.stages.cluster.value_column`)."""
    from segkit.stages.cluster import value_column

    spec = run.params["data"].get("customers") or {}
    readable = readable_labels(run)
    customers, _ = derive.apply_spec(customers, spec)
    outcomes = outcome_columns(run, customers)
    value = value_column(customers, run.params["cluster"])
    levels = code_columns(run, customers, readable) + [
        k.split("=", 1)[0] for k in readable if "=" in k
    ]
    table = with_levels(customers, list(dict.fromkeys(levels)), readable)
    table = table.drop(columns=[c for c in _left_out(table, outcomes) if c != value])
    return View(table, outcomes, value, readable, customers)


def _small_segments(seg: pd.Series, names: dict[int, str], min_size: int) -> dict:
    sizes = seg.value_counts()
    return {
        int(s): (names.get(int(s), f"Segment {s}"), int(n))
        for s, n in sizes.items()
        if n < min_size
    }


def _rates(run: Run, seg: pd.Series, v: View, names: dict) -> pd.DataFrame | None:
    """:func:`segkit.profile.outcome_rates` of the view's outcomes; None without any."""
    if not v.outcomes:
        return None
    size = run.params["profile"]["min_segment_size"]
    return outcome_rates(v.customers, seg, v.outcomes, min_size=size, names=names)


def _save(run: Run, res: Profiles, rules: Rules) -> None:
    run.save("profiles.csv", res.profiles)
    run.save("index_table.csv", res.index.reset_index())
    run.save("rules.csv", rules.rules)
    run.save("actions.csv", res.actions)
    run.save("segment_names.json", {str(k): v for k, v in res.names.items()})
    if res.migration is not None:
        run.save("migration.csv", res.migration)
    if res.outcome_rates is not None:
        run.save("outcome_rates.csv", res.outcome_rates)
    run.save_findings("profile", res.findings)


def run(run: Run) -> Profiles | Skipped:
    """Profile the segments of ``run`` and write the profile artifacts and findings.

    Writes ``profiles.csv``, ``index_table.csv``, ``rules.csv``, ``actions.csv``,
    ``segment_names.json``, ``migration.csv`` (when a comparison is asked for),
    ``outcome_rates.csv`` (when the customers have outcomes, :func:`outcome_columns`) and
    ``findings_profile.json``. The value column (``cluster.value``, else revenue) is the
    money in the profiles and findings; actions come from the recency/frequency/money
    indexes of a transaction log, else from the value index and the outcome rates.
    Returns :class:`Skipped` when there are no segments.
    """
    params = run.params["profile"]
    customers = run.load("customers")
    segments = run.load("segments")
    if segments is None or len(segments) == 0:
        reason = "there are no segments to profile"
        run.save_findings("profile", [f"Skipped: {reason}"], status="skipped")
        return Skipped("profile", reason)
    seg = align_segments(customers, segments, "segments")
    names = _names(run, customers, segments, seg)
    v = view(run, customers)
    label = v.readable.get(v.value) or (feature_label(v.value) if v.value else "")
    prof = profile(
        v.table,
        seg,
        params["min_segment_size"],
        names=names,
        value_col=v.value or None,
        value_label=label,
    )
    rules = describe_rules(
        v.table, seg, params["tree_depth"], seed=run.seed, names=names, readable=v.readable
    )
    shown = rules.rules["segment"].isin(profiled(prof)["segment"])  # privacy: no small ones
    rules = rules._replace(rules=rules.rules[shown].reset_index(drop=True))
    rates = _rates(run, seg, v, names)
    # from the profile alone: the CLV stage (later) revisits them with each segment's value,
    # so this stage's output never depends on whether a CLV run happened in the folder
    actions = suggest_actions(prof, rates=rates, value_col=v.value or None, labels=v.readable)
    mig = compare(run, segments, customers)
    small = _small_segments(seg, names, params["min_segment_size"])
    words = findings(prof, actions=actions, rules=rules, params=params, mig=mig, small=small)
    if rates is not None:
        words += outcome_findings(
            rates, labels=v.readable, experiment=run.params["data"].get("experiment") is not None
        )
    result = Profiles(
        profiles=prof,
        index=index_table(prof),
        standardized=index_table(prof, prefix="z_"),
        categories=category_mix(prof),
        rules=rules.rules,
        fidelity=rules.fidelity,
        actions=actions,
        names=names,
        migration=None if mig is None else mig.table,
        findings=words,
        outcome_rates=rates,
    )
    _save(run, result, rules)
    return result
