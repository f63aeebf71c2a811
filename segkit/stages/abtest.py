"""Stage 05 'abtest': evaluate the campaign overall and per segment; write the A/B artifacts.

:func:`run` reads the cleaned experiment of a run (``experiment.parquet``), joins the
segments and customer attributes it is broken down by, evaluates it with
:func:`segkit.abtest.evaluate`, writes ``ab_effects.csv``, ``ab_heterogeneity.csv``,
``ab_srm.csv``, ``ab_planning.csv``, ``ab_checks.json`` (and with a value metric
``ab_value.csv``, ``ab_recommendations.csv``) and words the findings.

What cleaning did to the experiment is said plainly: an arm that is in the file but lost
all its rows, an outcome with values that are not numbers (rows set aside, or the column
not read as an outcome). Every data-derived string in the findings is escaped for
Markdown and HTML (:func:`segkit.stages.text.md`). :func:`preflight` checks ``abtest.control`` against the
arms of the experiment file before any stage runs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import duckdb
import pandas as pd

from segkit import abtest, io
from segkit.abtest.money import LEAVE_ALONE, SEND, TEST_FURTHER
from segkit.core import paths
from segkit.core.checks import check_columns
from segkit.core.errors import SegkitError
from segkit.core.params import table_spec
from segkit.core.sql import ident, literal
from segkit.stages.run import Run, Skipped
from segkit.stages.text import md

STAGE = "abtest"
#: Segment columns that come from the segmentation (the others are customer attributes).
SEGMENT_COLS = ("segment", "segment_name")


class ABResult(NamedTuple):
    """What the stage returns (and the notebook shows)."""

    findings: list[str]
    effects: pd.DataFrame  # ab_effects.csv
    srm: pd.DataFrame
    heterogeneity: pd.DataFrame
    value: pd.DataFrame | None
    recommendations: pd.DataFrame | None
    metrics: list[dict]
    control: str
    planning: pd.DataFrame
    segment_names: dict[str, str] | None  # segment number (text) -> name, for the plots


class RawCheck(NamedTuple):
    """What cleaning removed from the experiment file."""

    lost_arms: dict[str, int]  # arm in the file with no row left -> its rows in the file
    rejected: list[tuple[str, int, str]]  # outcome: rows set aside (not a number), example
    dropped: list[tuple[str, int, str]]  # column not read as an outcome for such values
    reasons: dict[str, int]  # cleaning rule -> experiment rows it set aside


NO_RAW_ISSUES = RawCheck({}, [], [], {})


# ----------------------------------------------------------------------------- escaping


# ----------------------------------------------------------------------------- inputs


def _skip(run: Run) -> Skipped:
    reason = (
        f"parameter set '{md(run.params['name'])}' has no experiment table "
        "(data.experiment), so there is no campaign to evaluate."
    )
    run.save_findings(STAGE, [f"Skipped: {reason}"], status="skipped")
    return Skipped(STAGE, reason)


def _raw_spec(run: Run, quality: dict) -> dict:
    """The table spec the experiment was read with (the demo's file is in the run)."""
    if run.params["data"]["source"] == "demo":
        spec = table_spec({"path": str(run.folder / quality["file"])}, "experiment")
        return spec or {}
    return run.params["data"]["experiment"]


def _raw_profile(con: Any, spec: dict, outcomes: list[str] | None) -> tuple[dict, list[str]]:
    """Profile of the raw file: arms and (non-)numeric values of the outcome candidates."""
    rel, _ = io.read_raw(con, spec, "experiment")
    rel.create_view("raw_experiment")
    roles = spec.get("columns") or {}
    arm_col = roles.get("arm") or "arm"
    keys = {"_row", arm_col, roles.get("customer_id") or "customer_id"}
    cols = outcomes if outcomes is not None else [c for c in rel.columns if c not in keys]
    return abtest.raw_profile(con, "raw_experiment", arm_col, cols), cols


def raw_check(run: Run, con: Any) -> RawCheck:
    """Compare the experiment file with what cleaning kept (``data_quality.json``).

    The file is read again only when cleaning set rows aside or the outcomes were
    inferred (a column with a stray non-numeric value is then not read as an outcome).
    """
    dq = run.load("data_quality")
    q = dq["experiment"]
    spec = _raw_spec(run, q)
    explicit = spec.get("outcomes") is not None
    if explicit and not q["rows_rejected"]:
        return NO_RAW_ISSUES
    named = [*q["outcomes"], *[c for c in q["covariates"] if c not in q["outcomes"]]]
    prof, cols = _raw_profile(con, spec, named if explicit else None)
    used = dq["summary"].get("experiment_arms", {})
    lost = {a: n for a, n in prof["arms"].items() if a is not None and a not in used}
    rejected, dropped = [], []
    for c in cols:
        bad, ok = prof["non_numeric"][c], prof["numeric"][c]
        if bad and c in named:
            rejected.append((c, bad, prof["example"][c]))
        elif bad and ok >= bad:  # mostly numbers: meant as an outcome
            dropped.append((c, bad, prof["example"][c]))
    return RawCheck(lost, rejected, dropped, dict(q["rejected"]))


def _check_control(arms: list[str], given: str | None, raw: RawCheck) -> None:
    """Fail now, before the segments (and the stages that make them) are computed."""
    if given is not None and given in raw.lost_arms:
        raise SegkitError(
            f"abtest.control == {given!r}: that arm has {raw.lost_arms[given]:,} rows in the "
            f"experiment file but none left after cleaning (rows set aside: {raw.reasons}; "
            f"see artifacts/rejects.parquet); arms after cleaning are {arms}"
        )
    abtest.choose_control(arms, given)


def preflight(params: dict) -> None:
    """Check ``abtest.control`` against the arms of the experiment file, before any stage.

    Only for ``data.source: files`` with an experiment and a control given; reads the
    arm column of the file once.

    Raises
    ------
    SegkitError
        ``abtest.control`` is not an arm of the file.
    """
    spec, control = params["data"]["experiment"], params["abtest"]["control"]
    if params["data"]["source"] != "files" or not spec or control is None:
        return
    con = io.connect()
    try:
        prof, _ = _raw_profile(con, spec, [])
    finally:
        con.close()
    arms = sorted(a for a in prof["arms"] if a is not None)
    if control not in arms:
        raise SegkitError(
            f"abtest.control == {control!r} is not an arm of the experiment file "
            f"{spec['path']!r}; arms are {arms}"
        )


class Joined(NamedTuple):
    """Segment information joined to the experiment."""

    sizes: dict[str, pd.Series]  # segment column -> customers per value (text)
    labels: dict[str, dict]  # segment column -> {value: name}
    attrs: list[str]  # customer attribute columns joined (segment columns, covariates)


def _join_segments(run: Run, con: Any, seg_cols: list[str], joined: Joined) -> list[str]:
    """Register the segments as ``seg_df``; the SELECT terms and sizes/labels filled in."""
    segs = run.load("segments")
    con.register("seg_df", segs)
    for c in SEGMENT_COLS:
        if c in seg_cols:
            joined.sizes[c] = segs[c].astype(str).value_counts()
    joined.labels["segment"] = dict(
        zip(segs["segment"].astype(str), segs["segment_name"], strict=False)
    )
    return [f"s.{ident(c)}" for c in SEGMENT_COLS if c in seg_cols]


def _attribute_frame(customers: pd.DataFrame, attrs: list[str], seg_cols: list[str], sizes):
    attr_df = customers[["customer_id", *attrs]].copy()
    for c in seg_cols:
        if c in attrs:
            col = attr_df[c]  # 0.0/1.0 flags are segments 0/1, not "0.0"/"1.0"
            if pd.api.types.is_float_dtype(col) and (col.dropna() % 1 == 0).all():
                attr_df[c] = col.astype("Int64")
            sizes[c] = attr_df[c].astype(str).value_counts()
    return attr_df


def join_inputs(run: Run, con: Any, seg_cols: list[str], metrics: list | None) -> Joined:
    """View ``x``: the experiment ``e`` with the segments and customer attributes it needs
    (and ``run_ids``, the run's customer ids).

    Raises
    ------
    SegkitError
        A segment column or covariate that is neither in the experiment nor a customer
        attribute.
    """
    joined = Joined({}, {}, [])
    joins, sel = [], ["e.*"]
    if any(c in seg_cols for c in SEGMENT_COLS):
        sel += _join_segments(run, con, seg_cols, joined)
        joins.append("LEFT JOIN seg_df s USING (customer_id)")
    customers = run.load("customers")
    con.register("run_ids", customers[["customer_id"]].astype(str))  # for _unsegmented
    want = [c for c in seg_cols if c not in SEGMENT_COLS]
    e_cols = abtest.aggregation.columns_of(con, "e")
    covs = [m.get("covariate") for m in (metrics or []) if isinstance(m, dict)]
    want += [c for c in covs if c and c not in e_cols]
    if want:
        check_columns(customers, want, "customers (abtest.segment_cols / covariate)")
        joined.attrs.extend(dict.fromkeys(want))
        con.register("attr_df", _attribute_frame(customers, joined.attrs, seg_cols, joined.sizes))
        joins.append("LEFT JOIN attr_df c USING (customer_id)")
        sel += [f"c.{ident(c)}" for c in joined.attrs]
    con.execute(f"CREATE VIEW x AS SELECT {', '.join(sel)} FROM e {' '.join(joins)}")
    return joined


def _arms(con: Any) -> list[str]:
    rows = con.execute(f"SELECT DISTINCT CAST({ident('arm')} AS VARCHAR) FROM e").fetchall()
    return sorted(r[0] for r in rows if r[0] is not None)


def _evaluate(run: Run, con: Any) -> tuple[abtest.Evaluation, RawCheck, Joined]:
    p = run.params["abtest"]
    raw = raw_check(run, con)
    exp = paths.parquet_source(run.path("experiment.parquet"))  # a file, or a Spark-written folder
    con.execute(f"CREATE VIEW e AS SELECT * FROM read_parquet({literal(exp)})")
    _check_control(_arms(con), p["control"], raw)
    seg_cols = list(p["segment_cols"] or [])
    joined = join_inputs(run, con, seg_cols, p["metrics"])
    margin = run.params["clv"]["margin"]
    on = abtest.aggregation.on_engine(
        con, "x", run.params.get("engine", "duckdb"), run.params.get("spark")
    )
    ev = abtest.evaluate(
        *on, p, seg_cols, joined.sizes, margin, joined.labels, exclude=joined.attrs
    )
    return ev, raw, joined


# ----------------------------------------------------------------------------- findings


def _fmt(v: float, kind: str) -> str:
    return f"{100 * v:+.2f} points" if kind == "proportion" else f"{v:+,.3f}"


def _overall(ev: abtest.Evaluation, p: dict) -> list[str]:
    table = ev.effects
    overall = table[(table["segment_col"] == "all") & table["evaluated"]]
    first = ev.metrics[0]["name"]
    o1 = overall[overall["metric"] == first]
    out = []
    if len(o1):
        b = o1.sort_values("abs_lift", ascending=False).iloc[0]
        out.append(
            f"Overall, '{md(b['arm'])}' moves {md(first)} by {_fmt(b['abs_lift'], b['kind'])} "
            f"against '{md(ev.control)}' (95% CI {_fmt(b['abs_ci_low'], b['kind'])} to "
            f"{_fmt(b['abs_ci_high'], b['kind'])}; {b['rel_lift']:+.0%} relative)."
        )
    sig = overall[overall["p_adjusted"] < p["alpha"]]
    out.append(
        f"{len(sig)} of {len(overall)} overall comparisons (metric × campaign) are significant "
        f"after {method_name(p['correction'])} correction at {p['alpha']:.0%}."
    )
    return out


def _heterogeneity(het: pd.DataFrame, p: dict) -> list[str]:
    """How many segment differences survive the correction, with the strongest example."""
    tested = het[het["p_value"].notna()]
    if not len(tested):
        return []
    alpha, corr = p["alpha"], p["correction"]
    raw = int((tested["p_value"] < alpha).sum())
    sig = tested[tested["p_adjusted"] < alpha]
    after = "" if corr == "none" else f" after {method_name(corr)} correction"
    scales = (
        "Cochran's Q of the lifts for means and ratios, a logistic arm × segment "
        "likelihood-ratio test for rates"
    )
    if not len(sig):
        return [
            f"No evidence that the effects differ between segments{after} ({raw} of "
            f"{len(tested)} tests below {alpha:.0%} uncorrected; {scales})."
        ]
    ex = sig.sort_values("p_value").iloc[0]
    return [
        f"The effect differs between segments in {len(sig)} of {len(tested)} tests{after} "
        f"({raw} below {alpha:.0%} uncorrected; {scales}), e.g. {md(ex['metric'])} of "
        f"'{md(ex['arm'])}' across {md(ex['segment_col'])} ({ex['test']} p = "
        f"{ex['p_value']:.2g}): target by segment rather than send one campaign to all."
    ]


def _balance(srm: pd.DataFrame, raw: RawCheck) -> list[str]:
    bad = srm[srm["mismatch"]]
    if len(bad):
        first = bad.iloc[0]
        return [
            f"Warning: sample-ratio mismatch (p < {abtest.statistics.SRM_P:g}) in {len(bad)} "
            f"group(s), e.g. {md(first['segment_col'])} = {md(first['segment'])}: the "
            "randomization or the data join may be broken; treat those results with suspicion."
        ]
    if raw.lost_arms:
        return ["The arms left after cleaning are balanced (no sample-ratio mismatch among them)."]
    return ["The arms are balanced as planned (no sample-ratio mismatch)."]


def _cleaning(raw: RawCheck) -> list[str]:
    out = []
    reasons = "; ".join(f"{n:,} {io.REASONS.get(r, r)}" for r, n in raw.reasons.items())
    for arm, n in raw.lost_arms.items():
        out.append(
            f"Warning: arm '{md(arm)}' has {n:,} rows in the experiment file but none left "
            f"after cleaning (experiment rows set aside: {md(reasons)}; see "
            "artifacts/rejects.parquet), so it is not evaluated."
        )
    for col, n, example in raw.rejected:
        out.append(
            f"Warning: {n:,} experiment rows have a value of {md(col)} that is not a number "
            f"(e.g. '{md(example)}'); they were set aside in cleaning and every metric "
            "leaves them out."
        )
    for col, n, example in raw.dropped:
        out.append(
            f"Warning: column {md(col)} of the experiment has {n:,} values that are not "
            f"numbers (e.g. '{md(example)}'), so it was not read as an outcome; name it in "
            "data.experiment.outcomes to evaluate it (those rows are then set aside)."
        )
    return out


#: How the findings name each ``abtest.correction``.
METHOD_NAMES = {"holm": "Holm", "fdr_bh": "Benjamini-Hochberg", "bonferroni": "Bonferroni"}


def method_name(correction: str) -> str:
    """The name of a multiple-testing correction in the findings: "holm" -> "Holm"."""
    return METHOD_NAMES.get(correction, correction)


def _p_text(r: Any, correction: str) -> str:
    """'p = 0.021, 0.13 after Holm': the one-sided p-value of 'profit <= 0'."""
    name = method_name(correction)
    after = "" if correction == "none" else f", {r.p_profit_adjusted:.2g} after {name}"
    return f"p = {r.p_profit:.2g}{after}"


def _recommendations(recs: pd.DataFrame | None, p: dict) -> list[str]:
    """One sentence per breakdown (send, with the p-values; not proven; leave alone), then
    the decision rule."""
    out: list[str] = []
    if recs is None or not len(recs):
        return out
    corr = p["correction"]
    for col, g in recs.groupby("segment_col", sort=False):
        send = g[g["action"] == SEND]
        further = g[g["action"] == TEST_FURTHER]
        leave = g[g["action"] == LEAVE_ALONE]
        parts = [f"{md(r.label)}: {md(r.campaign)} ({_p_text(r, corr)})" for r in send.itertuples()]
        unproven = [f"{md(r.label)} ({_p_text(r, corr)})" for r in further.itertuples()]
        head = "For all customers" if col == "all" else f"By {md(col)}"
        out.append(
            f"{head}: send "
            + ("; ".join(parts) if parts else "nothing with confidence")
            + (f"; profit not proven for {'; '.join(unproven)}" if unproven else "")
            + (f"; leave alone {', '.join(map(md, leave['label']))}" if len(leave) else "")
            + "."
        )
    fam = (
        ""
        if corr == "none"
        else (
            f" after {method_name(corr)} correction over the segments × campaigns of its breakdown"
        )
    )
    out.append(
        f"A segment gets 'send' only when its profit after {p['cost_per_contact']:g} per "
        f"contact is above zero at one-sided {p['alpha'] / 2:.1%}{fam} (p-values of 'profit "
        "≤ 0', raw and corrected: ab_recommendations.csv)."
    )
    return out


def _value_scope(ev: abtest.Evaluation, p: dict) -> list[str]:
    vm = p["value_metric"]
    if not vm:
        return []
    why = f"fewer than abtest.min_n = {p['min_n']} customers in an arm"
    if ev.value_scope is None:
        return [f"The value of {md(vm)} is not computed: even overall there are {why}."]
    if ev.value_scope == "all" and p["segment_cols"]:
        return [
            f"No segment is evaluated for {md(vm)} (each has {why}), so the value is "
            "reported for all customers together."
        ]
    return []


def findings(ev: abtest.Evaluation, p: dict, raw: RawCheck = NO_RAW_ISSUES) -> list[str]:
    """The stage's findings, in plain words (the first is the headline).

    Parameters
    ----------
    ev
        The evaluation (:func:`segkit.abtest.evaluate`).
    p
        The ``abtest`` parameters.
    raw
        What cleaning removed from the experiment file (:func:`raw_check`).
    """
    out = _overall(ev, p)
    out += _heterogeneity(ev.heterogeneity, p)
    out += _balance(ev.srm, raw)
    out += _cleaning(raw)
    out += _recommendations(ev.recommendations, p)
    out += _value_scope(ev, p)
    for name, k in ev.missing.items():
        out.append(f"{k:,} rows have no value for {md(name)}; they are left out of that metric.")
    skipped = ev.effects[~ev.effects["evaluated"]]
    if len(skipped):
        out.append(
            f"{skipped['segment'].nunique()} segment(s) have fewer than {p['min_n']} "
            "customers in an arm and are not evaluated."
        )
    return out


# ----------------------------------------------------------------------------- the stage


def _save(run: Run, res: ABResult, p: dict) -> None:
    run.save("ab_effects.csv", res.effects)
    run.save("ab_heterogeneity.csv", res.heterogeneity)
    run.save("ab_srm.csv", res.srm)
    run.save("ab_planning.csv", res.planning)
    if res.value is not None:
        run.save("ab_value.csv", res.value)
        run.save("ab_recommendations.csv", res.recommendations)
    run.save(
        "ab_checks.json",
        {
            "control": res.control,
            "metrics": res.metrics,
            "sample_ratio_mismatch": bool(res.srm["mismatch"].any()),
            "correction": p["correction"],
            "alpha": p["alpha"],
        },
    )
    run.save_findings(STAGE, res.findings)


def balance_attributes(customers: pd.DataFrame, experiment: pd.DataFrame) -> list[str]:
    """Customer attributes to check the randomization on: numeric ones and categorical ones
    with at most 20 levels, not the experiment's outcomes nor the table's past outcomes."""
    from segkit.segment.prepare import infer_outcomes

    skip = {"customer_id", *experiment.columns, *infer_outcomes(customers)}
    return [
        c
        for c in customers.columns
        if c not in skip
        and (pd.api.types.is_numeric_dtype(customers[c]) or customers[c].nunique() <= 20)
    ]


def _randomization(run: Run, control: str) -> tuple[pd.DataFrame | None, str | None]:
    """``ab_balance.csv`` (standardized differences, arm vs control) and, when an arm is
    clearly not randomized, the finding that must come first."""
    customers, experiment = run.load("customers"), run.load("experiment")
    attrs = balance_attributes(customers, experiment)
    if not attrs:
        return None, None
    table = abtest.balance(customers, experiment, attrs, control=control)
    run.save("ab_balance.csv", table)
    bad = table[table["imbalanced"]]
    if bad.empty:
        return table, None
    worst = bad.loc[bad["smd"].abs().idxmax()]
    what = worst["attribute"] + (f" = {worst['level']}" if str(worst["level"]) else "")
    return table, (
        f"Arm '{md(worst['arm'])}' does not look randomized: its customers differ from the "
        f"control '{md(control)}' on {md(what)} (standardized difference "
        f"{worst['smd']:+.2f}, above {abtest.SMD_LIMIT}) and {len(bad) - 1} more; the "
        "differences below are associations, not effects of the campaign."
    )


def _unsegmented(run: Run, con: Any) -> str | None:
    """How many experiment customers are not among the run's customers (no segment, no
    attributes) and, with ids that are not pseudonymized, how many would be if written
    alike (the experiment file writes ids differently). Counted in DuckDB: the experiment's
    rows never come to pandas; the run's ids are the ``run_ids`` :func:`join_inputs`
    registered."""
    lost = (
        "SELECT CAST(e.customer_id AS VARCHAR) AS customer_id FROM e LEFT JOIN run_ids r "
        "ON CAST(e.customer_id AS VARCHAR) = r.customer_id "
        "WHERE e.customer_id IS NOT NULL AND r.customer_id IS NULL"
    )
    n = con.execute("SELECT count(customer_id) FROM e").fetchall()[0][0]
    missing = con.execute(f"SELECT count(*) FROM ({lost})").fetchall()[0][0]
    if not missing:
        return None
    text = (
        f"{missing:,} of the {n:,} customers in the experiment are not among the "
        "customers segmented (no purchase history or attributes): they count in the overall "
        "effect, not in any segment's."
    )
    if run.params["data"].get("pseudonymize"):
        return text
    loose = io.clean.loose_id_sql("customer_id")
    alike = con.execute(
        f"SELECT count(*) FROM ({lost}) WHERE {loose} IN (SELECT {loose} FROM run_ids)"
    ).fetchall()[0][0]
    if alike:
        text += (
            f" {alike:,} of them would be if leading zeros, case and blanks were ignored: the "
            "experiment file writes the ids differently from the customer data; write them "
            "alike."
        )
    return text


def run(run: Run) -> ABResult | Skipped:
    """Evaluate the campaign of ``run`` overall and per segment; write the A/B artifacts.

    Returns
    -------
    ABResult or Skipped
        Skipped when the run has no experiment table.

    Raises
    ------
    SegkitError
        An unknown ``abtest.control`` (before the segments are computed), and the errors
        of :func:`segkit.abtest.evaluate`.
    """
    if not run.has("experiment"):
        run.load("customers")  # the exploration writes experiment.parquet when there is one
    if not run.has("experiment"):
        return _skip(run)
    con = duckdb.connect()
    try:
        ev, raw, joined = _evaluate(run, con)
        unsegmented = _unsegmented(run, con)
    finally:
        con.close()
    p = run.params["abtest"]
    words = findings(ev, p, raw)
    if unsegmented:
        words.append(unsegmented)
    _, warning = _randomization(run, ev.control)
    if warning:
        words.insert(0, warning)
    res = ABResult(
        findings=words,
        effects=ev.effects,
        srm=ev.srm,
        heterogeneity=ev.heterogeneity,
        value=ev.value,
        recommendations=ev.recommendations,
        metrics=ev.metrics,
        control=ev.control,
        planning=ev.planning,
        segment_names=joined.labels.get("segment"),
    )
    _save(run, res, p)
    return res
