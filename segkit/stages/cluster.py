"""Stage 'cluster': segments of the run's customers, the evidence for their number, the
segmenter that assigns new customers (``segkit score``), and the findings in words.

:func:`run` reads the customer table, fits through :mod:`segkit.segment`, writes
``segments.parquet``, ``k_selection.csv``, ``stability.csv``, ``rfm.csv`` (transaction
data), ``cluster_features.csv`` (every column of the customer table and what happened to
it) and ``segmenter.json``, and records the findings. :func:`score_file` scores a
customer table with a saved segmenter.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from segkit import derive, segment
from segkit.core.checks import check_columns
from segkit.core.errors import SegkitError
from segkit.naming import feature_label, segment_names
from segkit.segment import scorefile
from segkit.segment.prepare import infer_outcomes
from segkit.segment.roles import Declared, feature_table
from segkit.stages.run import Run, verify_artifact
from segkit.stages.text import md

#: Customers per segment the data must hold for the largest k tried.
ROWS_PER_SEGMENT = 10
#: How each method is called in the findings.
METHOD_WORDS = {
    "kmeans": "k-means",
    "gmm": "Gaussian mixtures",
    "kprototypes": "k-prototypes (mixed numeric and categorical)",
    "rfm": "RFM scores",
}


class Clustering(NamedTuple):
    """What the cluster stage returns (notebook 02 shows it)."""

    findings: list[str]
    k_selection: pd.DataFrame
    stability: pd.DataFrame
    segments: pd.DataFrame
    sizes: pd.DataFrame
    features: list[str]
    k: int
    explanation: str
    method: str
    rfm: pd.DataFrame | None  # RFM segment table (transaction data), else None
    notes: list[str]  # columns dropped or filled before clustering
    segmenter: segment.Segmenter
    feature_table: pd.DataFrame  # every input column: role, used, transform, reason
    value: str  # the column whose mean orders the segments; "" = ordered by size


class Choice(NamedTuple):
    """The fitted model and the evidence for its number of segments."""

    model: Any
    raw: np.ndarray  # model label of every customer
    k: int
    table: pd.DataFrame
    stability: pd.DataFrame
    explanation: str


# ------------------------------------------------------------------------ read inputs


def _has_rfm(customers: pd.DataFrame) -> bool:
    return set(segment.RFM_COLUMNS.values()) <= set(customers.columns)


def choose_features(
    customers: pd.DataFrame, p: dict[str, Any], outcomes: list[str] | tuple[str, ...] = ()
) -> tuple[list[str], list[str]]:
    """(numeric, categorical) clustering columns from the ``cluster`` parameters ``p``;
    ``outcomes`` are never chosen by default (only when listed).

    Raises
    ------
    SegkitError
        Fewer than two customers; rfm without transaction features; a listed column
        missing; too few customers for ``cluster.k_max``.
    """
    n = len(customers)
    if n < 2:
        raise SegkitError(f"customers has {n} row(s): a single customer cannot be segmented")
    if p["method"] == "rfm":
        if not _has_rfm(customers):
            raise SegkitError(
                f"cluster.method == 'rfm' needs the columns "
                f"{sorted(segment.RFM_COLUMNS.values())} of a transaction log; customers has "
                f"{sorted(customers.columns)}. Use kmeans or kprototypes on customer attributes."
            )
        return list(segment.RFM_COLUMNS.values()), []
    num, cat = segment.default_features(customers, exclude=outcomes)
    if p["features"]:
        check_columns(customers, p["features"], "customers (cluster.features)")
        num = list(p["features"])
    if p["categorical"] is not None:
        check_columns(customers, p["categorical"], "customers (cluster.categorical)")
        cat = list(p["categorical"])
    name, k = ("cluster.k", p["k"]) if p["k"] else ("cluster.k_max", p["k_max"])
    need = ROWS_PER_SEGMENT * k
    if n < need:
        lower = "cluster.k" if p["k"] else "cluster.k_max (and cluster.k_min)"
        raise SegkitError(
            f"customers has {n} rows; {name} == {k} needs at least {need} "
            f"({ROWS_PER_SEGMENT} customers per segment). Lower {lower} or give more customers."
        )
    return num, cat


# ---------------------------------------------------------------------------- compute


def _rfm_choice(scorer: segment.RFMScorer, X_all: np.ndarray, rng: np.random.Generator) -> Choice:
    """The RFM 'choice': the number of non-empty RFM cells, with the indices for reference."""
    raw = scorer.labels_
    present = np.unique(raw)
    k = len(present)
    dense = np.searchsorted(present, raw)
    n = len(raw)
    probe = rng.choice(n, min(n, segment.PROBE_SIZE), replace=False)
    row = {
        "k": k,
        **segment.indices(X_all, dense, probe),
        "gap": np.nan,
        "gap_se": np.nan,
        "bic": np.nan,
        "stability": np.nan,
        "min_stability": np.nan,
        "min_size": int(np.bincount(dense).min()),
        "admissible": True,
        "votes": "rule-based (RFM)",
        "recommended": True,
    }
    explanation = (
        f"RFM segmentation (cluster.method = rfm): quintile scores and the named R × FM "
        f"grid give {k} non-empty segments; the number is set by the rules, not chosen."
    )
    stab = pd.DataFrame(columns=["k", "segment_label", "jaccard"])
    return Choice(scorer, raw, k, pd.DataFrame([row]), stab, explanation)


def _cluster_choice(
    X: np.ndarray,
    X_all: np.ndarray,
    *,
    p: dict[str, Any],
    layout: tuple[int, list[int]],
    seed: int,
    progress: Callable[[int], Any] | None,
) -> Choice:
    """Select k (or take ``cluster.k``), fit on the sample ``X``, assign everyone."""
    gamma = p["gamma"]
    if p["method"] == "kprototypes" and gamma is None and layout[0]:
        # Huang's rule on the whole sample
        gamma = 0.5 * float(X[:, : layout[0]].std(axis=0).mean()) or 1.0

    def factory(k: int, seed: int, n_init: int = 10) -> Any:
        return segment.make_model(
            p["method"], k, seed=seed, layout=layout, n_init=n_init, gamma=gamma
        )

    table, stab = segment.select_k(
        X,
        factory,
        layout=layout,
        k_min=p["k_min"],
        k_max=p["k_max"],
        seed=seed,
        n_boot=p["n_bootstrap"],
        min_size=p["min_segment_size"],
        n_refs=p["gap_references"],
        X_all=X_all,
        progress=progress,
    )
    k = p["k"] or int(table.loc[table["recommended"], "k"].iloc[0])
    model = factory(k, seed).fit(X)
    explanation = segment.explain_choice(table, p["k"], p["min_segment_size"], p["n_bootstrap"])
    return Choice(model, model.predict(X_all), k, table, stab, explanation)


def _names(
    customers: pd.DataFrame,
    choice: Choice,
    relabel: dict[int, int],
    p: dict[str, Any],
    *,
    features: tuple[list[str], list[str]],
    readable: dict[str, str],
) -> dict[int, str]:
    """Segment number -> name: the RFM cell names (rfm) or names derived from the profiles
    of the clustering ``features`` (``readable`` labels); ``cluster.names`` overrides."""
    if p["method"] != "rfm":
        labels = pd.Series([relabel[int(x)] for x in choice.raw], index=customers.index)
        return segment_names(
            customers,
            labels,
            p["names"] or None,
            features=features[0],
            categorical=features[1],
            readable=readable,
        )
    rfm_names = list(segment.RFM_SEGMENTS)
    names = {relabel[int(r)]: rfm_names[int(r)] for r in np.unique(choice.raw)}
    for key, val in (p["names"] or {}).items():
        names[int(key)] = str(val)
    return names


def value_column(customers: pd.DataFrame, p: dict[str, Any]) -> str:
    """The column whose mean per customer orders the segments: ``cluster.value``, else
    the first of :data:`segkit.segment.VALUE_COLUMNS` present (revenue of a transaction
    log), else "" (the segments are ordered by size).

    Raises
    ------
    SegkitError
        ``cluster.value`` is not a numeric column of the customer table.
    """
    value = p["value"]
    if value is None:
        return next((c for c in segment.VALUE_COLUMNS if c in customers.columns), "")
    if not isinstance(value, str) or not value:
        raise SegkitError(f"cluster.value == {value!r}, must be a column name (text)")
    if value not in customers.columns:
        columns = [str(c) for c in customers.columns]
        close = difflib.get_close_matches(value, columns, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SegkitError(
            f"cluster.value == {value!r} is not a column of the customer table{hint} "
            f"Columns: {columns} (a data.customers.derive name counts too)"
        )
    if not pd.api.types.is_numeric_dtype(customers[value]) or customers[value].isna().all():
        raise SegkitError(
            f"cluster.value == {value!r}: the column must hold numbers (the value of each "
            f"customer, e.g. spend), found {customers[value].dtype}"
        )
    return value


def _segments(
    customers: pd.DataFrame,
    labels: np.ndarray,
    names: dict[int, str],
    scorer: segment.RFMScorer | None,
) -> pd.DataFrame:
    """customer_id, segment, segment_name (and the RFM scores and segment)."""
    out = pd.DataFrame({"customer_id": customers["customer_id"], "segment": labels})
    out["segment_name"] = out["segment"].map(names)
    if scorer is not None:
        out = pd.concat([out, scorer.scores(customers).reset_index(drop=True)], axis=1)
        out["rfm_segment"] = scorer.names(customers)
    return out


def _sizes(segments: pd.DataFrame, customers: pd.DataFrame, value: str) -> pd.DataFrame:
    """Customers, share (and mean value) per segment."""
    sizes = segments.groupby(["segment", "segment_name"]).size().rename("customers").reset_index()
    sizes["share"] = sizes["customers"] / len(segments)
    if value:
        mean = customers[value].groupby(segments["segment"].to_numpy()).mean()
        sizes[f"mean_{value}"] = mean.reindex(sizes["segment"]).to_numpy()
    return sizes


# --------------------------------------------------------------------------- findings


def _headline(method: str, k: int, sizes: pd.DataFrame, value: str, readable: dict) -> str:
    if value:
        top = sizes.iloc[0]
        label = md(readable.get(value) or feature_label(value))
        return (
            f"{k} segments ({METHOD_WORDS[method]}), numbered by mean {label} per customer; "
            f"the most valuable, '{top['segment_name']}', holds {top['share']:.0%} of "
            "customers."
        )
    big = sizes.sort_values("customers", ascending=False, kind="stable").iloc[0]
    return (
        f"{k} segments ({METHOD_WORDS[method]}), numbered by size: no cluster.value and no "
        f"revenue column says what a customer is worth; the largest, '{big['segment_name']}', "
        f"holds {big['share']:.0%} of customers."
    )


def _features_finding(table: pd.DataFrame) -> str:
    """Which columns were clustered, which left out and why (in groups)."""
    used = table[table["used"]]
    logged = used.loc[used["transform"].str.startswith("log1p"), "feature"]
    text = f"Clustered on {len(used)} column(s): {', '.join(md(f) for f in used['feature'])}"
    if len(logged):
        text += f" (log1p for the skewed {', '.join(md(f) for f in logged)})"
    out = table[~table["used"] & (table["role"] != "id")]
    groups = out.groupby("role", sort=False)["feature"].agg(lambda f: ", ".join(md(x) for x in f))
    if len(groups):
        text += "; left out: " + "; ".join(f"{role}: {cols}" for role, cols in groups.items())
    return text + " (cluster_features.csv says why for each)."


def _tiny_finding(sizes: pd.DataFrame, min_size: int) -> str | None:
    tiny = sizes[sizes["customers"] < min_size]
    if tiny.empty:
        return None
    listed = ", ".join(
        f"{r.segment} '{r.segment_name}' ({r.customers:,} customer{'s' * (r.customers != 1)})"
        for r in tiny.itertuples()
    )
    return (
        f"Too small to act on (under cluster.min_segment_size = {min_size}): segment {listed}; "
        "the profiles leave segments under profile.min_segment_size out of the detail."
    )


def findings(
    *,
    method: str,
    k: int,
    explanation: str,
    sizes: pd.DataFrame,
    rfm: pd.DataFrame | None,
    notes: list[str],
    value: str = "revenue",
    table: pd.DataFrame | None = None,
    min_size: int = 0,
    readable: dict[str, str] | None = None,
) -> list[str]:
    """The stage's findings in plain words (the first is the one-line summary).

    Segments are called "most valuable" only when a ``value`` column orders them;
    without one they are numbered by size and the summary says so.
    """
    out = [_headline(method, k, sizes, value, readable or {}), explanation]
    out += [
        f"Segment {r.segment} '{r.segment_name}': {r.customers:,} customers ({r.share:.0%})."
        for r in sizes.itertuples()
    ]
    tiny = _tiny_finding(sizes, min_size)
    if tiny:
        out.append(tiny)
    if table is not None and method != "rfm":
        out.append(_features_finding(table))
    if rfm is not None and method != "rfm":
        out.append(_rfm_finding(rfm))
    return out + [f"Data note: {note}" for note in notes]


def _rfm_finding(rfm: pd.DataFrame) -> str:
    big = rfm.sort_values("customers", ascending=False).iloc[0]
    champ = rfm.set_index("rfm_segment").loc["Champions"]
    return (
        f"RFM view: the largest RFM group is '{big['rfm_segment']}' "
        f"({big['share_customers']:.0%} of customers); Champions are "
        f"{champ['share_customers']:.0%} of customers and {champ['share_revenue']:.0%} of "
        f"revenue."
    )


# ----------------------------------------------------------------------------- the stage


def _write(run: Run, result: Clustering) -> None:
    """The artifacts: rfm.csv, segments, k_selection, stability, segmenter.json, findings."""
    if result.rfm is not None:
        run.save("rfm.csv", result.rfm)
    run.save("segments.parquet", result.segments)
    run.save("k_selection.csv", result.k_selection)
    run.save("stability.csv", result.stability)
    run.save("cluster_features.csv", result.feature_table)
    result.segmenter.save(run.artifacts / segment.FILE_NAME)
    run.save_findings("cluster", result.findings)


class Fitted(NamedTuple):
    """The prepared columns, the fitted preprocessor, the chosen model, the RFM scorer."""

    prepared: segment.Prepared
    prep: Any
    choice: Choice
    scorer: segment.RFMScorer | None


def fit(
    customers: pd.DataFrame,
    p: dict[str, Any],
    *,
    seed: int,
    progress: Callable[[int], Any] | None = None,
    outcomes: list[str] | tuple[str, ...] = (),
) -> Fitted:
    """Prepare the features, fit the preprocessor on a sample of ``cluster.sample_size``
    customers (those with the smallest seeded hash of their id,
    :func:`segkit.segment.fit_sample`: the same whatever the row order or engine), choose
    k and fit the model (or score RFM), assign everyone. ``outcomes`` are not clustered
    unless listed in ``cluster.features``.

    Raises
    ------
    SegkitError
        See :func:`choose_features` and :func:`segkit.segment.prepare`.
    """
    num, cat = choose_features(customers, p, outcomes)
    prepared = segment.prepare(
        customers,
        num,
        cat,
        "customers (clustering features)",
        rare_share=p["rare_share"],
        rare_levels=p["rare_levels"],
    )
    num, cat = prepared.numeric, prepared.categorical
    if p["method"] == "rfm" and len(num) < 3:
        raise SegkitError(f"cluster.method == 'rfm': {' '.join(prepared.notes)}")
    n = len(customers)
    prep = segment.preprocessor(num, cat, prepared.logged, prepared.bounds)
    rng = np.random.default_rng(seed)
    # the draw of the former random sample, kept so that the later draws of this stream
    # (the RFM probe) are those of earlier runs; the sample itself is the customers with
    # the smallest seeded hash of their id, the same on every engine and row order
    rng.choice(n, min(n, p["sample_size"]), replace=False)
    fit_idx = segment.fit_sample(customers["customer_id"], p["sample_size"], seed)
    X_all = prep.fit(prepared.data.iloc[fit_idx]).transform(prepared.data)
    scorer = segment.RFMScorer().fit(customers) if _has_rfm(customers) else None
    if p["method"] == "rfm":
        assert scorer is not None  # choose_features checked the columns
        choice = _rfm_choice(scorer, X_all, rng)
    else:
        layout = (len(num), segment.onehot_layout(prep))
        choice = _cluster_choice(
            X_all[fit_idx], X_all, p=p, layout=layout, seed=seed, progress=progress
        )
    return Fitted(prepared, prep, choice, scorer)


class Roles(NamedTuple):
    """What the table spec says about the customer table's columns."""

    outcomes: tuple[str, ...] = ()  # given or inferred
    outcomes_given: bool = False
    labels: dict[str, str] = {}  # column -> readable name
    derived: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what deriving the columns left empty
    consent: tuple[str, ...] = ()  # plan.consent_column, when the table has it


def roles(
    customers: pd.DataFrame,
    spec: dict[str, Any] | None,
    notes: list[str] | None = None,
    consent: str | None = None,
) -> Roles:
    """The roles of ``data.customers`` (``spec``): outcomes as listed, else inferred from
    their names (:func:`segkit.segment.prepare.infer_outcomes`); labels; derived names;
    the ``consent`` column (``plan.consent_column``), never an outcome or a default
    clustering feature: it says who may be contacted, not what a customer is like."""
    spec = spec or {}
    given = spec.get("outcomes")
    outcomes = [c for c in given if c in customers.columns] if given else None
    held = (consent,) if consent and consent in customers.columns else ()
    inferred = [c for c in infer_outcomes(customers) if c not in held]
    return Roles(
        tuple(outcomes if outcomes is not None else inferred),
        outcomes is not None,
        {str(k): str(v) for k, v in (spec.get("labels") or {}).items()},
        tuple(spec.get("derive") or ()),
        tuple(notes or ()),
        held,
    )


def _result(
    customers: pd.DataFrame,
    fitted: Fitted,
    p: dict[str, Any],
    run_name: str,
    spec_roles: Roles | None = None,
) -> Clustering:
    """Number and name the segments, tabulate them, build the segmenter, word the findings."""
    r = spec_roles or Roles()
    choice, prepared, scorer = fitted.choice, fitted.prepared, fitted.scorer
    num, cat = prepared.numeric, prepared.categorical
    value = value_column(customers, p)
    relabel = segment.order_labels(customers, choice.raw, value)
    names = _names(customers, choice, relabel, p, features=(num, cat), readable=r.labels)
    labels = np.array([relabel[int(x)] for x in choice.raw])
    segments = _segments(customers, labels, names, scorer)
    rfm = segment.rfm_table(customers, scorer) if scorer is not None else None
    sizes = _sizes(segments, customers, value)
    segmenter = segment.Segmenter.from_fitted(
        method=p["method"],
        prep=None if p["method"] == "rfm" else fitted.prep,
        model=choice.model,
        data=prepared.data,
        numeric=num,
        categorical=cat,
        relabel=relabel,
        names=names,
        n_customers=len(customers),
        run=run_name,
    )
    declared = Declared(
        p["features"],
        p["categorical"],
        r.outcomes,
        r.outcomes_given,
        value,
        r.derived,
        r.consent,
    )
    table = feature_table(customers, prepared, declared)
    words = findings(
        method=p["method"],
        k=choice.k,
        explanation=choice.explanation,
        sizes=sizes,
        rfm=rfm,
        notes=[*r.notes, *prepared.notes, *(scorer.notes() if scorer is not None else [])],
        value=value,
        table=table,
        min_size=p["min_segment_size"],
        readable=r.labels,
    )
    return Clustering(
        words,
        choice.table,
        choice.stability,
        segments,
        sizes,
        num + cat,
        choice.k,
        choice.explanation,
        p["method"],
        rfm,
        prepared.notes,
        segmenter,
        table,
        value,
    )


def run(run: Run, progress: Callable[[int], Any] | None = None) -> Clustering:
    """Segment the customers of ``run``; writes segments, k_selection, stability, rfm,
    cluster_features, segmenter.json and the findings.

    Parameters
    ----------
    run : the run folder (its ``cluster`` parameters and ``customers`` artifact).
    progress : called with each k of the sweep when it is done (benchmarks).

    Raises
    ------
    SegkitError
        See :func:`fit`.
    """
    p = run.params["cluster"]
    customers = run.load("customers")
    if progress is None:
        total = p["k_max"] - p["k_min"] + 1

        def progress(k: int) -> None:
            run.report_progress("cluster", k - p["k_min"] + 1, total, f"k = {k} measured")

    spec = run.params["data"]["customers"]
    customers, derive_notes = derive.apply_spec(customers, spec)
    consent = (run.params.get("plan") or {}).get("consent_column")
    spec_roles = roles(customers, spec, derive_notes, consent)
    kept = (*spec_roles.outcomes, *spec_roles.consent)  # never clustered unless listed
    fitted = fit(customers, p, seed=run.seed, progress=progress, outcomes=kept)
    result = _result(customers, fitted, p, run.params["name"], spec_roles)
    _write(run, result)
    return result


def verify_segmenter(where: Path) -> None:
    """Check ``segmenter.json`` against the sha256 its run's manifest recorded.

    A run folder written by ``segkit run`` lists every artifact's sha256 in
    ``manifest.json``; a segmenter that changed since is refused before it is used. A
    segmenter without a manifest (a notebook run, a file copied alone) is not checked.

    Raises
    ------
    SegkitError
        The file's sha256 differs from the manifest's.
    """
    folder = where if where.is_dir() else where.parent.parent
    path = where / "artifacts" / "segmenter.json" if where.is_dir() else where
    verify_artifact(folder, path, "the segmenter", "the clustering")


def score_file(
    run_or_segmenter: str | Path, customers: str | Path, out: str | Path | None = None
) -> tuple[Path, pd.DataFrame]:
    """Score a customer table with a saved segmenter; write CSV; return (path, scored).

    Parameters
    ----------
    run_or_segmenter : a run folder or a ``segmenter.json`` file.
    customers : the customer table (Parquet or CSV) with the segmenter's feature columns.
    out : the CSV to write; default ``<customers name>.segments.csv`` next to the table.

    Raises
    ------
    SegkitError
        No valid segmenter there, the table is missing or empty, or lacks a feature column.
    """
    verify_segmenter(Path(run_or_segmenter))
    seg = segment.Segmenter.load(run_or_segmenter)
    target = scorefile.default_target(customers, out)
    _, scored = scorefile.score_to_csv(seg, customers, target, keep=True)
    assert scored is not None
    return target, scored
