"""A/B evaluation: every number cross-checked against statsmodels/scipy computed
independently from the raw rows (Hillstrom e-mail experiment), plus planning, coverage of
the synthetic retailer's true effects, and bad input."""

import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    proportions_ztest,
)
from statsmodels.stats.weightstats import CompareMeans

from segkit import abtest, datasets
from segkit.core.errors import SegkitError
from segkit.core.params import DEFAULTS
from segkit.stages import abtest as abtest_stage

CONTROL, MENS, WOMENS = "No E-Mail", "Mens E-Mail", "Womens E-Mail"
METRICS = [
    {"name": "visit", "kind": "proportion", "col": "visit"},
    {"name": "conversion", "kind": "proportion", "col": "conversion"},
    {"name": "spend", "kind": "mean", "col": "spend"},
    {"name": "spend_cuped", "kind": "mean", "col": "spend", "covariate": "history"},
    {"name": "spend_per_visit", "kind": "ratio", "num": "spend", "den": "visit"},
]


@pytest.fixture(scope="module")
def hill():
    df = pd.read_csv("data/hillstrom.csv.gz")
    return df.rename(columns={"segment": "arm"})


def params(**kw):
    return {**DEFAULTS["abtest"], "control": CONTROL, "metrics": METRICS, **kw}


@pytest.fixture(scope="module")
def result(hill):
    con = duckdb.connect()
    con.register("h", hill)
    return abtest.evaluate(con, "h", params(), ["newbie", "zip_code"])


def row(res, metric, arm, col="all", seg="all"):
    e = res.effects
    r = e[(e.metric == metric) & (e.arm == arm) & (e.segment_col == col) & (e.segment == seg)]
    assert len(r) == 1
    return r.iloc[0]


@pytest.mark.parametrize("arm", [MENS, WOMENS])
@pytest.mark.parametrize("metric", ["visit", "conversion"])
@pytest.mark.parametrize("col, seg", [("all", "all"), ("zip_code", "Urban"), ("newbie", "1")])
def test_proportions_match_statsmodels(hill, result, arm, metric, col, seg):
    d = hill if col == "all" else hill[hill[col].astype(str) == seg]
    c, t = d[d.arm == CONTROL][metric], d[d.arm == arm][metric]
    r = row(result, metric, arm, col, seg)
    count, nobs = [t.sum(), c.sum()], [len(t), len(c)]
    assert r["p_value"] == pytest.approx(proportions_ztest(count, nobs)[1], rel=1e-9)
    low, high = confint_proportions_2indep(count[0], nobs[0], count[1], nobs[1], method="wald")
    assert (r["abs_ci_low"], r["abs_ci_high"]) == pytest.approx((low, high), rel=1e-9)
    assert r["abs_lift"] == pytest.approx(t.mean() - c.mean(), rel=1e-12)
    assert (r["n_control"], r["n_treatment"]) == (len(c), len(t))


@pytest.mark.parametrize("arm", [MENS, WOMENS])
@pytest.mark.parametrize("col, seg", [("all", "all"), ("zip_code", "Rural")])
def test_welch_means_match_scipy_and_statsmodels(hill, result, arm, col, seg):
    d = hill if col == "all" else hill[hill[col].astype(str) == seg]
    c, t = d[d.arm == CONTROL]["spend"], d[d.arm == arm]["spend"]
    r = row(result, "spend", arm, col, seg)
    assert r["p_value"] == pytest.approx(stats.ttest_ind(t, c, equal_var=False).pvalue, rel=1e-7)
    low, high = CompareMeans.from_data(t, c).tconfint_diff(usevar="unequal")
    assert (r["abs_ci_low"], r["abs_ci_high"]) == pytest.approx((low, high), rel=1e-7)


@pytest.mark.parametrize("arm", [MENS, WOMENS])
def test_cuped_matches_adjusted_welch(hill, result, arm):
    """CUPED (Deng et al. 2013) written from the rows: theta = cov(x, y) / var(x) pooled
    over all arms of the segment, then Welch on the adjusted outcome."""
    x, y = hill["history"], hill["spend"]
    theta = np.cov(x, y)[0, 1] / x.var()
    adj = y - theta * (x - x.mean())
    c, t = adj[hill.arm == CONTROL], adj[hill.arm == arm]
    r = row(result, "spend_cuped", arm)
    assert r["abs_lift"] == pytest.approx(t.mean() - c.mean(), rel=1e-9)
    assert r["p_value"] == pytest.approx(stats.ttest_ind(t, c, equal_var=False).pvalue, rel=1e-6)
    assert r["variance_reduction"] == pytest.approx(1 - adj.var() / y.var(), rel=1e-6)


@pytest.mark.parametrize("arm", [MENS, WOMENS])
def test_ratio_delta_method_from_rows(hill, result, arm):
    def ratio(d):
        n, m = d["spend"].to_numpy(), d["visit"].to_numpy()
        r = n.sum() / m.sum()
        v = np.var(n - r * m, ddof=1) / (len(d) * m.mean() ** 2)  # linearization
        return r, v

    rc, vc = ratio(hill[hill.arm == CONTROL])
    rt, vt = ratio(hill[hill.arm == arm])
    r = row(result, "spend_per_visit", arm)
    assert r["abs_lift"] == pytest.approx(rt - rc, rel=1e-9)
    se = np.sqrt(vc + vt)
    assert r["abs_ci_high"] - r["abs_lift"] == pytest.approx(1.959964 * se, rel=1e-5)
    assert r["p_value"] == pytest.approx(2 * stats.norm.sf(abs(rt - rc) / se), rel=1e-6)


def test_relative_lift_is_ratio_of_means(result):
    r = row(result, "visit", MENS)
    assert r["rel_lift"] == pytest.approx(r["mean_treatment"] / r["mean_control"] - 1)
    assert r["rel_ci_low"] < r["rel_lift"] < r["rel_ci_high"]


def test_corrections_match_statsmodels(hill):
    con = duckdb.connect()
    con.register("h", hill)
    for method in ("holm", "fdr_bh"):
        res = abtest.evaluate(con, "h", params(correction=method), ["zip_code"])
        fam = res.effects[(res.effects.segment_col == "zip_code") & (res.effects.metric == "visit")]
        want = multipletests(fam["p_value"], method=method)[1]
        np.testing.assert_allclose(fam["p_adjusted"], want, rtol=1e-12)


def test_heterogeneity_matches_statsmodels_meta_analysis(result):
    e = result.effects
    seg = e[(e.segment_col == "zip_code") & (e.metric == "visit") & (e.arm == WOMENS)]
    se = (seg["abs_ci_high"] - seg["abs_ci_low"]) / (2 * stats.norm.ppf(0.975))
    q = combine_effects(seg["abs_lift"].to_numpy(), (se**2).to_numpy()).q
    h = result.heterogeneity.set_index(["segment_col", "metric", "arm"])
    assert h.loc[("zip_code", "visit", WOMENS), "q"] == pytest.approx(q, rel=1e-9)


@pytest.mark.parametrize("arm", [MENS, WOMENS])
def test_cochran_q_of_means_uses_the_exact_standard_errors(hill, result, arm):
    """Welch intervals use t quantiles: an SE recovered from their width with z = 1.96 is
    too large (Q too low). The SEs here come from the raw rows."""
    lifts, variances = [], []
    for zone in ["Rural", "Surburban", "Urban"]:
        d = hill[hill["zip_code"] == zone]
        c, t = d[d.arm == CONTROL]["spend"], d[d.arm == arm]["spend"]
        lifts.append(t.mean() - c.mean())
        variances.append(t.var() / len(t) + c.var() / len(c))
    meta = combine_effects(np.array(lifts), np.array(variances))
    h = result.heterogeneity.set_index(["segment_col", "metric", "arm"]).loc[
        ("zip_code", "spend", arm)
    ]
    assert h["q"] == pytest.approx(meta.q, rel=1e-9)
    assert h["q_p_value"] == pytest.approx(stats.chi2.sf(meta.q, 2), rel=1e-8)
    assert h["test"] == "Cochran's Q" and h["p_value"] == h["q_p_value"] and np.isnan(h["lr"])


def _glm_interaction_lr(counts):
    """LR statistic of arm x segment from grouped counts (statsmodels GLM Binomial)."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    counts = counts.assign(fail=counts["n"] - counts["y"])
    fam = sm.families.Binomial()
    with warnings.catch_warnings():  # the full model is saturated: 'perfect prediction'
        warnings.simplefilter("ignore")
        full = smf.glm("y + fail ~ C(segment) * C(arm)", counts, family=fam).fit()
        none = smf.glm("y + fail ~ C(segment) + C(arm)", counts, family=fam).fit()
    return none.deviance - full.deviance, int(none.df_resid - full.df_resid)


def test_logistic_interaction_lr_matches_statsmodels_glm_on_a_small_data_set():
    rng = np.random.default_rng(3)
    rows = []
    for seg, (p0, p1) in enumerate([(0.10, 0.15), (0.30, 0.32), (0.05, 0.20), (0.5, 0.5)]):
        for arm, pr in (("c", p0), ("t", p1)):
            n = int(rng.integers(80, 200))
            rows.append({"segment": seg, "arm": arm, "n": n, "y": int(rng.binomial(n, pr))})
    counts = pd.DataFrame(rows)
    want, df = _glm_interaction_lr(counts)
    c, t = counts[counts.arm == "c"], counts[counts.arm == "t"]
    got, got_df = abtest.statistics.logistic_interaction_lr(c["y"], c["n"], t["y"], t["n"])
    assert got_df == df == 3
    assert got == pytest.approx(want, rel=1e-8)
    # a segment where nobody converts in either arm carries no information: left out
    c2 = pd.concat([c, pd.DataFrame({"segment": [9], "arm": ["c"], "n": [50], "y": [0]})])
    t2 = pd.concat([t, pd.DataFrame({"segment": [9], "arm": ["t"], "n": [60], "y": [0]})])
    again = abtest.statistics.logistic_interaction_lr(c2["y"], c2["n"], t2["y"], t2["n"])
    assert again == pytest.approx((want, 3), rel=1e-8)
    assert np.isnan(abtest.statistics.logistic_interaction_lr([1], [10], [2], [10])[0])


@pytest.mark.parametrize("arm", [MENS, WOMENS])
def test_newbie_visit_heterogeneity_is_tested_on_the_logistic_scale(hill, result, arm):
    """Hillstrom newbie x visit: Q on the additive scale sees nothing (p = 0.71 Mens, 0.11
    Womens), the logistic interaction does (statsmodels GLM on the grouped counts; the
    2-df test of all three arms together gives the audit's p = 1.2e-4)."""
    d = hill[hill.arm.isin([CONTROL, arm])]
    counts = d.groupby(["newbie", "arm"])["visit"].agg(y="sum", n="count").reset_index()
    want, df = _glm_interaction_lr(counts.rename(columns={"newbie": "segment"}))
    h = result.heterogeneity.set_index(["segment_col", "metric", "arm"]).loc[
        ("newbie", "visit", arm)
    ]
    assert h["test"] == "logistic interaction LR" and df == 1
    assert h["lr"] == pytest.approx(want, rel=1e-7)
    assert h["p_value"] == h["lr_p_value"] == pytest.approx(stats.chi2.sf(want, 1), rel=1e-6)
    assert h["p_value"] < 1e-3 < 0.1 < h["q_p_value"]


def test_heterogeneity_p_values_are_corrected_across_the_table(result):
    h = result.heterogeneity
    ok = h["p_value"].notna()
    want = multipletests(h.loc[ok, "p_value"], method="holm")[1]
    np.testing.assert_allclose(h.loc[ok, "p_adjusted"], want, rtol=1e-12)
    assert (h["significant"] == (h["p_adjusted"] < 0.05)).all()
    assert set(h["test"]) == {"Cochran's Q", "logistic interaction LR"}


def test_srm_matches_scipy_chisquare(hill, result):
    counts = hill["arm"].value_counts().sort_index()
    want = stats.chisquare(counts).pvalue
    got = result.srm[(result.srm.segment_col == "all")].iloc[0]
    assert got["p_value"] == pytest.approx(want, rel=1e-9)
    assert not result.srm["mismatch"].any()  # Hillstrom was randomized


def test_hillstrom_overall_lifts_are_the_known_ones(result):
    """MineThatData (Hillstrom 2008): visit 10.6% without e-mail, 18.3% Mens, 15.1% Womens;
    spend $0.65, $1.42, $1.08 per customer."""
    assert row(result, "visit", MENS)["mean_control"] == pytest.approx(0.1062, abs=5e-4)
    assert row(result, "visit", MENS)["mean_treatment"] == pytest.approx(0.1828, abs=5e-4)
    assert row(result, "visit", WOMENS)["mean_treatment"] == pytest.approx(0.1514, abs=5e-4)
    assert row(result, "spend", MENS)["mean_treatment"] == pytest.approx(1.42, abs=5e-3)


# ---------------------------------------------------------------- planning


def test_sample_size_5_to_6_percent():
    """Pooled-variance formula (Fleiss, Levin & Paik 2003): 8,158 per arm; statsmodels'
    NormalIndPower with Cohen's h (arcsine) gives 8,143: within 0.2 %."""
    n = abtest.sample_size_proportions(0.05, 0.06, 0.05, 0.8)
    assert n == 8158
    h = proportion_effectsize(0.06, 0.05)
    other = NormalIndPower().solve_power(effect_size=h, alpha=0.05, power=0.8)
    assert abs(n - other) / other < 0.005


def test_mde_inverts_sample_size():
    n = abtest.sample_size_means(delta=2.0, sd=10.0)
    assert abtest.mde_mean(10.0, n) <= 2.0 < abtest.mde_mean(10.0, n - 5)
    p = abtest.mde_proportion(0.05, 8158)
    assert 0.009 < p < 0.0105


# ---------------------------------------------------------------- coverage on the demo


def test_demo_true_effects_are_covered():
    """By true segment, over seeds: the 95 % intervals cover the generator's effects."""
    hits = total = 0
    for seed in range(6):
        shop = datasets.make_retailer(6000, seed=seed)
        d = shop.experiment.merge(shop.truth.segments, on="customer_id")
        con = duckdb.connect()
        con.register("d", d)
        p = {**DEFAULTS["abtest"], "control": "control", "min_n": 20}
        p["metrics"] = [
            {"name": "visit", "kind": "proportion", "col": "visit"},
            {"name": "conversion", "kind": "proportion", "col": "conversion"},
            {"name": "spend", "kind": "mean", "col": "spend"},
        ]
        res = abtest.evaluate(con, "d", p, ["true_segment"])
        e = res.effects[res.effects.segment_col == "true_segment"].copy()
        e["segment"] = e["segment"].astype(int)
        m = e.merge(shop.truth.effects, on=["segment", "arm", "metric"])
        assert len(m) == 24
        hits += ((m["abs_ci_low"] <= m["abs_effect"]) & (m["abs_effect"] <= m["abs_ci_high"])).sum()
        total += len(m)
    assert 0.88 <= hits / total <= 1.0, hits / total  # 144 intervals at 95 %


# ---------------------------------------------------------------- bad input


@pytest.fixture()
def small():
    rng = np.random.default_rng(0)
    n = 600
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "arm": np.where(np.arange(n) % 2, "treat", "control"),
            "conv": rng.integers(0, 2, n).astype(float),
            "spend": rng.gamma(2, 5, n),
            "seg": "only",
        }
    )


def run_on(df, **kw):
    con = duckdb.connect()
    con.register("d", df)
    p = {**DEFAULTS["abtest"], "control": "control", **kw}
    return abtest.evaluate(con, "d", p, kw.pop("segment_cols", ["seg"]))


def test_unknown_control(small):
    with pytest.raises(
        SegkitError,
        match=r"abtest.control == 'ctrl' is not an arm; arms are \['control', 'treat'\]",
    ):
        run_on(small, control="ctrl")


def test_arm_without_outcomes(small):
    small.loc[small.arm == "treat", "spend"] = np.nan
    with pytest.raises(SegkitError, match="arm 'treat' has no rows with a value of 'spend'"):
        run_on(small)


def test_non_binary_proportion(small):
    small.loc[3, "conv"] = 2.0
    with pytest.raises(
        SegkitError, match=r"'conv' .* values other than 0/1: \(row, value\) \[\(3, 2.0\)\]"
    ):
        run_on(small, metrics=[{"name": "conv", "kind": "proportion", "col": "conv"}])


def test_missing_outcomes_are_left_out_and_counted(small):
    small.loc[:9, "spend"] = np.nan
    res = run_on(small)
    r = res.effects[(res.effects.metric == "spend") & (res.effects.segment_col == "all")].iloc[0]
    assert r["n_control"] + r["n_treatment"] == 590
    assert res.missing == {"spend": 10}
    findings = abtest_stage.findings(res, {**DEFAULTS["abtest"], "control": "control"})
    assert any("10 rows have no value for spend" in f for f in findings)


def test_single_segment_is_documented(small):
    res = run_on(small)
    assert (res.heterogeneity["note"] == "one segment: nothing to compare").all()
    seg = res.effects[res.effects.segment_col == "seg"]
    overall = res.effects[res.effects.segment_col == "all"]
    np.testing.assert_allclose(seg["abs_lift"], overall["abs_lift"])


def test_small_segments_are_not_evaluated(small):
    small["seg"] = np.where(np.arange(len(small)) < 50, "tiny", "big")
    res = run_on(small, min_n=100)
    tiny = res.effects[res.effects.segment == "tiny"]
    assert not tiny["evaluated"].any() and tiny["p_value"].isna().all()


def test_a_single_arm_is_an_error(small):
    with pytest.raises(SegkitError, match="needs two or more"):
        run_on(small[small.arm == "control"])


def test_stage_writes_the_contract(tmp_path):
    from segkit.stages.run import Run

    run = Run.open(
        "demo",
        tmp_path / "run",
        {"data.demo.n_customers": 1500, "cluster.n_bootstrap": 3, "cluster.k_max": 5},
    )
    res = abtest_stage.run(run)
    e = pd.read_csv(run.path("ab_effects.csv"))
    need = (
        "metric, arm, control, segment, n_control, n_treatment, mean_control, mean_treatment, "
        "abs_lift, abs_ci_low, abs_ci_high, rel_lift, rel_ci_low, rel_ci_high, p_value, p_adjusted"
    ).split(", ")
    assert set(need) <= set(e.columns)
    assert (e.loc[e.segment_col == "all", "segment"] == "all").all()
    assert set(e["arm"]) == {"discount", "content"} and set(e["control"]) == {"control"}
    recs = pd.read_csv(run.path("ab_recommendations.csv"))
    assert set(recs["action"]) <= {"send", "test further", "leave alone"}
    assert res.findings


# ---------------------------------------------------------------- quoting, value, names


def test_columns_with_quotes_work(small):
    """Column names go through segkit.core.sql: quotes inside them are plain text."""
    df = small.rename(columns={"spend": 'spend "usd"', "conv": "it's", "seg": "o'seg"})
    df['pre "usd"'] = df['spend "usd"'] * 0.5 + np.random.default_rng(1).normal(0, 2, len(df))
    df["o'seg"] = np.where(np.arange(len(df)) % 3 == 0, "Men's", 'say "hi"')
    metrics = [
        {"name": "conv", "kind": "proportion", "col": "it's"},
        {"name": "spend", "kind": "mean", "col": 'spend "usd"', "covariate": 'pre "usd"'},
        {"name": "ratio", "kind": "ratio", "num": 'spend "usd"', "den": "it's"},
    ]
    res = run_on(df, metrics=metrics, segment_cols=["o'seg"])
    assert set(res.effects["segment"]) == {"all", "Men's", 'say "hi"'}
    small["pre"] = df['pre "usd"']
    cuped = {"name": "spend", "kind": "mean", "col": "spend", "covariate": "pre"}
    plain = run_on(small, metrics=[cuped])
    got = row(res, "spend", "treat")["abs_lift"]
    assert got == pytest.approx(row(plain, "spend", "treat")["abs_lift"], rel=1e-12)
    inferred = run_on(df.drop(columns=['pre "usd"']), segment_cols=["o'seg"])
    assert {m["name"] for m in inferred.metrics} >= {"it's", 'spend "usd"'}


def test_unknown_metric_column_is_named(small):
    with pytest.raises(
        SegkitError, match=r"abtest.metrics\[0\].col == 'spnd' is not a column of the experiment"
    ):
        run_on(small, metrics=[{"kind": "mean", "col": "spnd"}])


def test_bad_metric_kind_is_caught_by_the_parameter_schema(small):
    with pytest.raises(SegkitError, match=r"abtest.metrics\[0\].kind == 'avg', must be one of"):
        run_on(small, metrics=[{"kind": "avg", "col": "spend"}])


def test_unknown_value_metric(small):
    with pytest.raises(
        SegkitError, match=r"abtest.value_metric == 'revenue' is not a metric; metrics are"
    ):
        run_on(small, value_metric="revenue")


def test_value_falls_back_to_all_customers_when_no_segment_is_evaluated(small):
    """Bug (b): every segment below min_n used to fail the stage."""
    small["seg"] = np.where(np.arange(len(small)) < 300, "a", "b")  # 150 per arm and segment
    p = {**DEFAULTS["abtest"], "control": "control", "value_metric": "spend", "min_n": 200}
    res = run_on(small, **{k: p[k] for k in ("value_metric", "min_n")})
    assert res.value_scope == "all"
    assert list(res.value["segment_col"]) == ["all"]
    assert list(res.recommendations["label"]) == ["all customers"]
    findings = abtest_stage.findings(res, {**p, "segment_cols": ["seg"]})
    assert any("No segment is evaluated for spend" in f for f in findings)
    assert any(f.startswith("For all customers: ") for f in findings)
    none = run_on(small, value_metric="spend", min_n=400)
    assert none.value is None and none.recommendations is None and none.value_scope is None
    findings = abtest_stage.findings(none, {**p, "min_n": 400})
    assert any("is not computed: even overall" in f for f in findings)


def test_money_without_evaluated_rows_is_an_error(result):
    with pytest.raises(SegkitError, match=r"abtest.value_metric == 'nope': no evaluated rows"):
        abtest.money(result.effects, "nope", {}, 0.1, 0.3)


def test_markup_in_arm_names_is_escaped(small):
    """Bug (d): data-derived text in the findings is escaped for Markdown and HTML."""
    evil = "<img src=x onerror=alert(1)>"
    small["arm"] = np.where(small["arm"] == "treat", evil, "control")
    small["seg"] = np.where(np.arange(len(small)) % 3 == 0, "$x$ *y*", "`z`")
    p = {**DEFAULTS["abtest"], "control": "control", "value_metric": "spend", "min_n": 20}
    res = run_on(small, value_metric="spend", min_n=20, cost_per_contact=-100.0)
    findings = abtest_stage.findings(res, p)
    text = "\n".join(findings)
    assert evil in set(res.effects["arm"])
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "seg = \\$x\\$ \\*y\\*" in text and "seg = \\`z\\`" in text


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # zero variance: 0/0 on purpose
def test_planning_skips_a_metric_without_variance(small):
    small["pre"] = small["spend"] * 2  # explains all of the variance of spend
    metrics = [{"name": "spend", "kind": "mean", "col": "spend", "covariate": "pre"}]
    res = run_on(small, metrics=metrics)
    assert res.planning.empty and res.effects["evaluated"].all()


# ---------------------------------------------------------------- the send decision


@pytest.fixture(scope="module")
def zip_value(hill):
    """The audit's case: Hillstrom, CUPED spend (history), by zip code, 0.1 a contact."""
    con = duckdb.connect()
    con.register("h", hill)
    cuped = {"name": "spend", "kind": "mean", "col": "spend", "covariate": "history"}
    p = params(metrics=[cuped], value_metric="spend", cost_per_contact=0.1)
    return {
        corr: abtest.evaluate(con, "h", {**p, "correction": corr}, ["zip_code"], margin=0.3)
        for corr in ("holm", "none")
    }


def test_profit_p_values_match_scipy_and_holm(hill, zip_value):
    value = zip_value["holm"].value
    fam = value[value.segment_col == "zip_code"]
    assert len(fam) == 6  # 3 zones x 2 arms: one family
    for r in fam.itertuples():
        d = hill[hill["zip_code"] == r.segment]
        x, y = d["history"], d["spend"]
        adj = y - np.cov(x, y)[0, 1] / x.var() * (x - x.mean())  # CUPED within the zone
        t, c = adj[d.arm == r.arm], adj[d.arm == CONTROL]
        # H0: profit <= 0  <=>  lift <= cost / margin; Welch, one-sided
        want = stats.ttest_ind(t - 0.1 / 0.3, c, equal_var=False, alternative="greater")
        assert r.p_profit == pytest.approx(want.pvalue, rel=1e-6)
    holm = multipletests(fam["p_profit"], method="holm")[1]
    np.testing.assert_allclose(fam["p_profit_adjusted"], holm, rtol=1e-12)


def test_send_survives_holm_within_the_breakdown(zip_value):
    """Surburban: profit interval above zero (one-sided p = 0.021), but 0.128 after Holm
    over the 6 zone x campaign comparisons: no longer 'send'."""
    recs = zip_value["holm"].recommendations.set_index("segment")
    sub = recs.loc["Surburban"]
    assert sub["campaign"] == MENS and sub["profit_ci_low"] > 0
    assert sub["p_profit"] == pytest.approx(0.021, abs=5e-4)
    assert sub["p_profit_adjusted"] == pytest.approx(0.128, abs=5e-4)
    assert sub["action"] == "test further"
    assert ((recs["action"] == "send") == (recs["p_profit_adjusted"] < 0.025)).all()
    # without a correction the rule is the old one: the 95 % interval above zero
    plain = zip_value["none"].recommendations.set_index("segment")
    assert plain.loc["Surburban", "action"] == "send"
    assert ((plain["action"] == "send") == (plain["profit_ci_low"] > 0)).all()
    text = "\n".join(abtest_stage.findings(zip_value["holm"], params(value_metric="spend")))
    assert "zip\\_code = Surburban (p = 0.021, 0.13 after Holm)" in text
    assert "send nothing with confidence" in text
    assert "above zero at one-sided 2.5% after Holm correction" in text


def test_profit_p_value_of_a_zero_standard_error():
    r = pd.DataFrame({"abs_lift": [1.0, 0.2, 1.0], "se": [0.0, 0.0, 0.5], "df": [np.inf, 5, 5]})
    from segkit.abtest.money import profit_p_values

    got = profit_p_values(r, 0.5)
    assert got[0] == 0.0 and got[1] == 1.0
    assert got[2] == pytest.approx(stats.t.sf(1.0, 5), rel=1e-12)


# ------------------------------------------------------------------------------ balance


def test_balance_standardized_mean_differences_by_hand():
    from segkit.abtest.balance import balance

    customers = pd.DataFrame(
        {
            "customer_id": list(range(1, 9)),
            "age": [20, 30, 40, 50, 22, 32, 42, 52],
            "income": [10, 20, 10, 20, 15, 15, np.nan, 15],
            "region": ["n", "n", "s", "s", "n", "n", "n", "s"],
        }
    )
    experiment = pd.DataFrame(
        {"customer_id": [1, 2, 3, 4, 5, 6, 7, 8, 99], "arm": ["control"] * 4 + ["mail"] * 5}
    )
    b = balance(customers, experiment, ["age", "income", "region"])
    assert b["arm"].unique().tolist() == ["mail"] and b["control"].unique().tolist() == ["control"]
    row = b.set_index(["attribute", "level"])
    # age: means 37 vs 35, both sample variances 500 / 3
    assert row.loc[("age", ""), "smd"] == pytest.approx(2 / np.sqrt(500 / 3))
    assert row.loc[("age", ""), "imbalanced"]  # 0.155 > 0.1
    assert row.loc[("age", ""), "n_arm"] == 4  # customer 99 has no attributes
    # income: 15, 15, 15 (one missing) vs 10, 20, 10, 20: same mean
    assert row.loc[("income", ""), "smd"] == 0.0 and row.loc[("income", ""), "n_arm"] == 3
    assert not row.loc[("income", ""), "imbalanced"]
    # region n: shares 0.75 vs 0.5, p(1 - p) variances 0.1875 and 0.25
    want = 0.25 / np.sqrt((0.1875 + 0.25) / 2)
    assert row.loc[("region", "n"), "smd"] == pytest.approx(want)
    assert row.loc[("region", "s"), "smd"] == pytest.approx(-want)
    assert row.loc[("region", "n"), "mean_arm"] == 0.75


def test_balance_errors():
    from segkit.abtest.balance import balance

    customers = pd.DataFrame({"customer_id": [1, 2], "age": [20, 30]})
    experiment = pd.DataFrame({"customer_id": [1, 2], "arm": ["a", "b"]})
    with pytest.raises(SegkitError, match="customers has no column 'income'"):
        balance(customers, experiment, ["income"])
    with pytest.raises(SegkitError, match="experiment has no column 'arm'"):
        balance(customers, experiment.rename(columns={"arm": "group"}), ["age"])
    with pytest.raises(SegkitError, match="no arm looks like a control"):
        balance(customers, experiment, ["age"])
    got = balance(customers, experiment, ["age"], control="a")
    assert got["arm"].tolist() == ["b"] and np.isnan(got["smd"].item())  # one each: no SD
