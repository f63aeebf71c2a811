"""segkit.clv (the library): published CDNOW estimates, independent numerical integration of
each model's likelihood and predictions, recovery of known parameters, bad input. The stage
is tested in test_clv_stage.py."""

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats
from scipy.special import gammaln

from segkit import clv, features, io
from segkit.core.errors import SegkitError
from segkit.core.params import CLV_MODELS, load_params
from segkit.stages.run import Run


@pytest.fixture(scope="module")
def cdnow_cal():
    """The CDNOW calibration summary, read with the bundled parameter set's table spec."""
    d = load_params("cdnow")["data"]
    t = io.load_transactions(d["transactions"])
    return features.calibration_holdout(
        t.used.df(), d["calibration_end"], d["observation_end"], d["time_unit"]
    )


def sig3(x):
    return float(f"{x:.3g}")


# ---------------------------------------------------------------- published estimates


def test_bgnbd_cdnow_matches_fader_hardie_lee_2005(cdnow_cal):
    """Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to
    the Pareto/NBD model", Marketing Science 24(2), 275-284, section 4: r = 0.243,
    alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4."""
    c = cdnow_cal
    f = clv.fit_purchases("bgnbd", c["frequency"], c["recency"], c["T"])
    assert {k: sig3(v) for k, v in f.params.items()} == {
        "r": 0.243,
        "alpha": 4.41,
        "a": 0.793,
        "b": 2.43,
    }
    assert f.params["alpha"] == pytest.approx(4.414, abs=5e-4)
    assert f.params["b"] == pytest.approx(2.426, abs=5e-4)
    assert f.loglik == pytest.approx(-9582.4, abs=0.05)
    # same paper, section 5: a customer with x = 2, t_x = 30.43, T = 38.86 weeks is
    # expected to make 1.226 purchases in the next 39 weeks
    assert f.expected(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=5e-4)
    assert f.n == 2357 and f.n_unique < 2357  # fitted on compressed histories


def test_pareto_nbd_cdnow_matches_published(cdnow_cal):
    """Fader, Hardie & Lee (2005), Marketing Science 24(2), section 4 (the Pareto/NBD
    benchmark on the same data): r = 0.553, alpha = 10.578, s = 0.606, beta = 11.669,
    LL = -9595.0."""
    c = cdnow_cal
    f = clv.fit_purchases("pareto_nbd", c["frequency"], c["recency"], c["T"])
    want = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    assert {k: sig3(v) for k, v in f.params.items()} == {k: sig3(v) for k, v in want.items()}
    assert f.loglik == pytest.approx(-9595.0, abs=0.05)


def test_gamma_gamma_cdnow_matches_published(cdnow_cal):
    """Fader & Hardie (2013), "The Gamma-Gamma model of monetary value" (note at
    brucehardie.com), CDNOW 946 repeat buyers in weeks 1-39: p = 6.25, q = 3.74,
    gamma = 15.44."""
    c = cdnow_cal
    f = clv.fit_spend(c["frequency"], c["monetary"])
    assert f.n == 946
    assert {k: sig3(v) for k, v in f.params.items()} == {"p": 6.25, "q": 3.74, "v": 15.4}
    assert f.params["v"] == pytest.approx(15.44, abs=5e-3)


def test_cdnow_holdout_tables(cdnow_cal):
    c = cdnow_cal
    fits = {m: clv.fit_purchases(m, c["frequency"], c["recency"], c["T"]) for m in ("bgnbd",)}
    table = clv.holdout_by_frequency(c, fits)
    assert list(table["calibration_frequency"]) == [*map(str, range(7)), "7+", "total"]
    assert table.iloc[-1]["actual"] == 1882  # FHL 2005: 1,882 holdout repeat purchases
    assert table.iloc[:-1]["customers"].sum() == 2357
    errors = clv.holdout_errors(c, fits)
    # the conditional forecast sums per-customer expectations over the 39-week holdout
    want = fits["bgnbd"].expected(39.0, c["frequency"], c["recency"], c["T"]).sum()
    assert errors.loc[0, "predicted_total"] == pytest.approx(want)


# ---------------------------------------------------------------- independent integration

BG = (2.0, 10.0, 2.5, 8.0)  # r, alpha, a, b (a > 1 keeps the Beta density bounded)
HISTORIES = [(0, 0.0, 20.0), (1, 5.0, 30.0), (4, 25.0, 30.0), (12, 10.0, 40.0)]


def _lam(r, alpha, x, c):
    """E over lambda ~ Gamma(r, alpha) of lambda^x exp(-lambda c) (a textbook integral)."""
    return np.exp(gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + c))


def _quad(f, lo, hi, epsrel=1e-12):
    return integrate.quad(f, lo, hi, epsabs=0, epsrel=epsrel, limit=200)[0]


def _bg_integrals(theta, x, tx, T, t, mbg=False):
    """(likelihood, alive part, alive part x E[X(t) | alive]): the purchase rate integrated
    out in closed form, the drop-out probability p by numerical quadrature."""
    r, alpha, a, b = theta
    h = stats.beta(a, b).pdf
    k = 1 if mbg else 0

    def alive(p):
        return (1 - p) ** (x + k) * _lam(r, alpha, x, T) * h(p)

    def dead(p):
        if x == 0 and not mbg:
            return 0.0
        return p * (1 - p) ** (x - 1 + k) * _lam(r, alpha, x, tx) * h(p)

    def future(p):  # E[X(t) | lambda, p, alive at T] = (1 - exp(-lambda p t)) / p
        return (1 - p) ** (x + k) * (_lam(r, alpha, x, T) - _lam(r, alpha, x, T + p * t)) / p * h(p)

    return _quad(alive, 0, 1) + _quad(dead, 0, 1), _quad(alive, 0, 1), _quad(future, 0, 1)


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
@pytest.mark.parametrize("x, tx, T", HISTORIES)
def test_bg_models_agree_with_numerical_integration(model, x, tx, T):
    spec = clv.MODELS[model]
    h = clv.compress([x], [tx], [T])
    like, alive, future = _bg_integrals(BG, x, tx, T, t=26.0, mbg=model == "mbgnbd")
    assert spec.loglik(np.array(BG), h)[0] == pytest.approx(np.log(like), rel=1e-8)
    assert spec.p_alive(BG, x, tx, T) == pytest.approx(alive / like, rel=1e-7)
    assert spec.expected(BG, 26.0, x, tx, T) == pytest.approx(future / like, rel=1e-7)


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pareto_nbd"])
def test_expected_new_is_expected_for_a_fresh_customer(model):
    """E[X(t)] for a new customer equals the conditional formula at x = t_x = T = 0."""
    theta = BG if model != "pareto_nbd" else (1.5, 10.0, 1.3, 12.0)
    spec = clv.MODELS[model]
    t = np.array([1.0, 10.0, 52.0])
    want = [float(spec.expected(theta, ti, 0, 0.0, 0.0)) for ti in t]
    np.testing.assert_allclose(spec.expected_new(theta, t), want, rtol=1e-9)


@pytest.mark.parametrize("theta", [(1.5, 10.0, 1.3, 12.0), (0.55, 14.0, 0.6, 6.0)])
@pytest.mark.parametrize("x, tx, T", HISTORIES)
def test_pareto_nbd_agrees_with_numerical_integration(theta, x, tx, T):
    """Both branches of the closed form (alpha >= beta and alpha < beta) against the
    definition: alive at T, or died at a time tau in (t_x, T] (integrated numerically),
    with the rates integrated out in closed form."""
    r, alpha, s, beta = theta
    t = 26.0
    alive = _lam(r, alpha, x, T) * _lam(s, beta, 0, T)
    # death at tau has density mu exp(-mu tau): E[mu exp(-mu tau)] = _lam(s, beta, 1, tau)
    dead = _quad(lambda tau: _lam(r, alpha, x, tau) * _lam(s, beta, 1, tau), tx, T)
    like = alive + dead
    # E[X(t) | lambda, mu, alive] = lambda / mu (1 - exp(-mu t))
    mu_part = _quad(
        lambda mu: (
            -np.expm1(-mu * t) / mu * np.exp(-mu * T) * stats.gamma.pdf(mu, s, scale=1 / beta)
        ),
        0,
        np.inf,
        epsrel=1e-10,  # the Gamma density is unbounded at 0 when s < 1
    )
    future = _lam(r, alpha, x + 1, T) * mu_part
    spec = clv.MODELS["pareto_nbd"]
    h = clv.compress([x], [tx], [T])
    assert spec.loglik(np.array(theta), h)[0] == pytest.approx(np.log(like), rel=1e-8)
    assert spec.p_alive(theta, x, tx, T) == pytest.approx(alive / like, rel=1e-7)
    assert spec.expected(theta, t, x, tx, T) == pytest.approx(future / like, rel=1e-7)


@pytest.mark.parametrize("x, mx", [(1, 20.0), (3, 35.5), (10, 8.0)])
def test_gamma_gamma_agrees_with_numerical_integration(x, mx):
    """The mean of x Gamma(p, nu) spends is Gamma(p x, nu x); nu ~ Gamma(q, v)."""
    p, q, v = 4.0, 3.0, 40.0
    prior = stats.gamma(q, scale=1 / v)

    def f(nu):
        return stats.gamma(p * x, scale=1 / (nu * x)).pdf(mx) * prior.pdf(nu)

    like = integrate.quad(f, 0, np.inf, limit=200)[0]
    post_mean = integrate.quad(lambda nu: p / nu * f(nu), 0, np.inf, limit=200)[0] / like
    spec = clv.MODELS["gamma_gamma"]
    h = clv.Histories(np.array([x], float), np.array([mx]), np.zeros(1), np.ones(1), np.zeros(1))
    assert spec.loglik(np.array([p, q, v]), h)[0] == pytest.approx(np.log(like), rel=1e-7)
    assert spec.expected_spend((p, q, v), x, mx) == pytest.approx(post_mean, rel=1e-6)


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "gamma_gamma"])
def test_analytic_gradient_matches_finite_differences(model):
    rng = np.random.default_rng(0)
    n = 200
    x = rng.integers(0, 8, n).astype(float)
    tx = np.where(x > 0, rng.uniform(1, 30, n), 0.0)
    T = tx + rng.uniform(0, 20, n)
    if model == "gamma_gamma":
        x = np.maximum(x, 1)
        h = clv.Histories(x, rng.gamma(3, 10, n), np.zeros(n), np.ones(n), np.arange(n))
        theta = np.array([3.0, 4.0, 20.0])
    else:
        h = clv.compress(x, tx, T)
        theta = np.array([0.8, 6.0, 1.2, 3.0])
    spec = clv.MODELS[model]

    def f(th):
        return float(h.weight @ spec.loglik(th, h))

    def g(th):
        return h.weight @ spec.loglik(th, h, grad=True)[1]

    assert optimize.check_grad(f, g, theta, epsilon=1e-6) < 1e-4 * np.abs(g(theta)).max()


# ---------------------------------------------------------------- recovery


def simulate_bgnbd(n, r, alpha, a, b, T_max, seed):
    """BG/NBD histories simulated directly (independently of segkit.datasets)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.uniform(T_max / 2, T_max, n)
    x = np.zeros(n)
    tx = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, bool)
    while alive.any():
        t = t + rng.exponential(1 / lam)
        alive &= t < T
        x[alive] += 1
        tx[alive] = t[alive]
        alive &= rng.random(n) >= p
    return x, tx, T


def test_bgnbd_recovers_simulated_parameters_within_intervals():
    truth = {"r": 1.2, "alpha": 8.0, "a": 1.5, "b": 6.0}
    x, tx, T = simulate_bgnbd(20000, *truth.values(), T_max=52.0, seed=3)
    f = clv.fit_purchases("bgnbd", x, tx, T)
    for k, v in truth.items():
        assert f.ci_low[k] <= v <= f.ci_high[k], (k, f.ci_low[k], v, f.ci_high[k])
    # the fit on compressed histories has the log-likelihood of the customers one by one
    per_customer = clv.MODELS["bgnbd"].loglik(
        f.theta, clv.Histories(x, tx, T, np.ones(len(x)), None)
    )
    assert f.loglik == pytest.approx(per_customer.sum(), rel=1e-10)


def test_demo_recovers_generator_parameters_per_true_segment(tmp_path):
    """Fitted per true segment of the synthetic retailer (weeks: alpha per day / 7)."""
    run = Run.open("demo", tmp_path / "run")
    c = run.load("customers").merge(
        pd.read_parquet(run.path("truth_segments.parquet")), on="customer_id"
    )
    truth = pd.read_csv(run.path("truth_params.csv")).set_index("segment")
    misses = []
    for k, g in c.groupby("true_segment"):
        t = truth.loc[k]
        want = {"r": t.r, "alpha": t.alpha / 7, "a": t.a, "b": t.b, "p": t.p, "q": t.q, "v": t.v}
        for fit in (
            clv.fit_purchases("bgnbd", g["frequency"], g["recency"], g["T"]),
            clv.fit_spend(g["frequency"], g["monetary"]),
        ):
            misses += [(k, n) for n in fit.params if not fit.ci_low[n] <= want[n] <= fit.ci_high[n]]
    # 28 intervals at 95 %: expect about 1.4 misses by chance; 4 or more is a failure
    assert len(misses) <= 3, misses


# ---------------------------------------------------------------- predictions and CLV


def test_clv_without_discount_is_margin_times_purchases_times_spend(cdnow_cal):
    c = cdnow_cal
    bg = clv.fit_purchases("bgnbd", c["frequency"], c["recency"], c["T"])
    gg = clv.fit_spend(c["frequency"], c["monetary"])
    pred = clv.predict(bg, gg, c, horizon_months=12, margin=0.25, discount_rate=0.0, time_unit="W")
    weeks = 12 * clv.DAYS_PER_MONTH / 7
    exp = bg.expected(weeks, c["frequency"], c["recency"], c["T"])
    np.testing.assert_allclose(pred["expected_purchases"], exp, rtol=1e-10)
    spend = gg.expected_spend(c["frequency"], c["monetary"])
    np.testing.assert_allclose(pred["clv"], 0.25 * exp * spend, rtol=1e-8)
    assert (pred["clv_low"] <= pred["clv"]).all() and (pred["clv"] <= pred["clv_high"]).all()
    disc = clv.predict(bg, gg, c, horizon_months=12, margin=0.25, discount_rate=0.1, time_unit="W")
    assert (disc["clv"] < pred["clv"]).all()
    assert (disc["clv"] > pred["clv"] / 1.1).all()  # no month is discounted by a full year


# ---------------------------------------------------------------- bad input


def test_no_repeat_buyers_is_a_clear_error():
    with pytest.raises(SegkitError, match="none of the 3 customers made a repeat purchase"):
        clv.fit_purchases("bgnbd", [0, 0, 0], [0, 0, 0], [5, 6, 7])


def test_recency_after_T_names_rows():
    with pytest.raises(SegkitError, match=r"recency .* greater than T .* rows \[1\]"):
        clv.fit_purchases("bgnbd", [0, 2, 1], [0, 9, 3], [5, 6, 7])


def test_non_positive_monetary_names_rows():
    with pytest.raises(SegkitError, match=r"monetary must be > 0 .* rows \[2\]"):
        clv.fit_spend([1] * 12 + [0], [5.0, 6.0, 0.0] + [4.0] * 9 + [0.0])
    with pytest.raises(SegkitError, match=r"monetary .* must be > 0"):
        clv.check_summary([1, 2], [1.0, 2.0], [3.0, 3.0], [-1.0, 5.0])


def test_zero_horizon_is_a_clear_error(cdnow_cal):
    c = cdnow_cal.head(500)
    bg = clv.fit_purchases("bgnbd", c["frequency"], c["recency"], c["T"])
    with pytest.raises(SegkitError, match="horizon_months == 0, must be > 0"):
        clv.predict(bg, None, c, horizon_months=0)


def test_zero_horizon_parameter_is_refused_before_any_kernel():
    with pytest.raises(SegkitError, match="clv.horizon_months == 0, must be > 0"):
        load_params("demo", ["clv.horizon_months=0"])


def test_unidentified_drop_out_raises_or_is_flagged():
    """Customers who never stop buying: drop-out is not identified."""
    rng = np.random.default_rng(1)
    n = 3000
    T = rng.uniform(20, 52, n)
    x = rng.poisson(0.5 * T).astype(float)
    tx = np.where(x > 0, T - rng.exponential(1.0, n).clip(0, None), 0.0).clip(0.01, None)
    tx = np.where(x > 0, np.minimum(tx, T), 0.0)
    try:
        f = clv.fit_purchases("bgnbd", x, tx, T)
    except SegkitError as exc:
        assert "cannot identify" in str(exc)
    else:
        assert set(f.weak) & {"a", "b"}


# ---------------------------------------------------------------- value per segment


def test_small_segments_are_not_detailed():
    df = pd.DataFrame(
        {
            "segment": [1] * 30 + [2] * 5,
            "clv": np.arange(35.0),
            "clv_low": 0.0,
            "clv_high": 1.0,
            "p_alive": 0.5,
            "expected_purchases": 1.0,
        }
    )
    out = clv.segment_value(df, min_size=20).set_index("segment")
    assert out.loc[2, "suppressed"] and np.isnan(out.loc[2, "clv_per_customer"])
    assert out.loc[2, "customers"] == 5
    assert not out.loc[1, "suppressed"]


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_summed_fast_path_equals_per_history_sums(model):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 9, 500).astype(float)
    tx = np.where(x > 0, rng.uniform(1, 30, 500), 0.0)
    h = clv.compress(x, tx, tx + rng.uniform(0, 20, 500))
    spec = clv.MODELS[model]
    theta = np.array([0.7, 5.0, 1.3, 2.5])
    ll, g = spec.loglik(theta, h, grad=True)
    tot, gt = spec.total(theta, h, spec.cache(h))
    assert tot == pytest.approx(h.weight @ ll, rel=1e-12)
    np.testing.assert_allclose(gt, h.weight @ g, rtol=1e-10)


# ---------------------------------------------------------------- layout and parameters


def test_models_are_the_parameter_schemas_models():
    assert tuple(clv.MODELS) == CLV_MODELS
    assert clv.PURCHASE_MODELS == tuple(m for m in CLV_MODELS if m != clv.SPEND_MODEL)


def test_warm_start_seed_is_a_parameter(monkeypatch):
    """Above WARM_START distinct histories the fit starts from a sample drawn with ``seed``;
    the default is seed 0, and another seed reaches the same optimum."""
    x, tx, T = simulate_bgnbd(3000, 1.2, 8.0, 1.5, 6.0, T_max=52.0, seed=4)
    monkeypatch.setattr("segkit.clv.fit.WARM_START", 500)
    default = clv.fit_purchases("bgnbd", x, tx, T)
    seed0 = clv.fit_purchases("bgnbd", x, tx, T, seed=0)
    seed1 = clv.fit_purchases("bgnbd", x, tx, T, seed=1)
    assert default.params == seed0.params
    for k, v in seed0.params.items():
        assert seed1.params[k] == pytest.approx(v, rel=1e-3)


def test_unknown_time_unit_is_a_clear_error():
    with pytest.raises(SegkitError, match=r"time_unit == 'M', must be one of \['D', 'W'\]"):
        clv.months_in_units("M")


def test_tracking_without_calibration_cohort_names_the_date(tmp_path):
    tx = pd.DataFrame(
        {"customer_id": ["a", "a"], "timestamp": pd.to_datetime(["2024-03-01", "2024-04-01"])}
    )
    path = tmp_path / "tx.parquet"
    tx.to_parquet(path)
    with pytest.raises(SegkitError, match=r"no customers bought on or before .*2024-01-31"):
        clv.tracking(
            path.as_posix(),
            {},
            calibration_end="2024-01-31",
            observation_end="2024-06-30",
            time_unit="D",
        )


def test_tracking_quotes_the_path(tmp_path):
    """A path with an apostrophe is read, not broken into SQL."""
    folder = tmp_path / "o'brien"
    folder.mkdir()
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-09", "2024-01-02"]),
        }
    )
    tx.to_parquet(folder / "tx.parquet")
    out = clv.tracking(
        (folder / "tx.parquet").as_posix(),
        {},
        calibration_end="2024-01-05",
        observation_end="2024-01-14",
        time_unit="D",
    )
    assert out["actual"].tolist() == [0.0, 1.0]


# ---------------------------------------------------------------- the interval of a total


@pytest.fixture(scope="module")
def cdnow_pred(cdnow_cal):
    c = cdnow_cal.copy()
    bg = clv.fit_purchases("bgnbd", c["frequency"], c["recency"], c["T"])
    gg = clv.fit_spend(c["frequency"], c["monetary"])
    kw = {"horizon_months": 12, "margin": 0.3, "discount_rate": 0.1, "time_unit": "W"}
    pred = clv.predict(bg, gg, c, **kw)
    pred["segment"] = np.select([c["frequency"] == 0, c["frequency"] <= 2], [1, 2], 3)
    return c, bg, gg, kw, pred


def _totals_at(c, bg, gg, kw, z_bg, z_gg, groups):
    """CLV totals per group with the log-parameters z (perturbed fits)."""
    import dataclasses

    f_bg = dataclasses.replace(bg, params=dict(zip(bg.params, np.exp(z_bg), strict=True)))
    f_gg = dataclasses.replace(gg, params=dict(zip(gg.params, np.exp(z_gg), strict=True)))
    v = clv.predict(f_bg, f_gg, c, **kw)["clv"].to_numpy()
    return np.array([v[g].sum() for g in groups])


def test_total_interval_is_the_delta_method_on_the_sum(cdnow_pred):
    """g' Σ g with g the gradient of each total (central differences over whole
    predictions, written here), BG/NBD and Gamma-Gamma independent."""
    c, bg, gg, kw, pred = cdnow_pred
    groups = [np.ones(len(c), bool)] + [(pred["segment"] == s).to_numpy() for s in (1, 2, 3)]
    zb, zg = np.log(bg.theta), np.log(gg.theta)
    var = np.zeros(len(groups))
    for z, cov, which in ((zb, bg.cov_log, 0), (zg, gg.cov_log, 1)):
        grads = []
        for j in range(len(z)):
            dz = np.zeros_like(z)
            dz[j] = 1e-5
            args = [(zb + dz, zg), (zb - dz, zg)] if which == 0 else [(zb, zg + dz), (zb, zg - dz)]
            up, down = (_totals_at(c, bg, gg, kw, *a, groups) for a in args)
            grads.append((up - down) / 2e-5)
        G = np.column_stack(grads)
        var += np.einsum("ij,jk,ik->i", G, cov, G)
    z95 = stats.norm.ppf(0.975)
    seg = clv.segment_value(pred, min_size=1).set_index("segment")
    for g, v, key in zip(groups, var, ["all", 1, 2, 3], strict=True):
        total, low, high = clv.total_interval(pred[g])
        sd_log = np.sqrt(v) / total
        assert (low, high) == pytest.approx(
            (total * np.exp(-z95 * sd_log), total * np.exp(z95 * sd_log)), rel=2e-4
        )
        if key != "all":
            assert (seg.loc[key, "clv_low_total"], seg.loc[key, "clv_high_total"]) == (
                pytest.approx((low, high), rel=1e-12)
            )
            # summing the customers' bounds (the old report) is wider than the total's
            part = pred[g]
            assert part["clv_low"].sum() < low and high < part["clv_high"].sum()


def test_total_interval_matches_a_parametric_bootstrap(cdnow_pred):
    """Draws of the log-parameters from their fitted normal: the sd of log total is the
    delta method's (within 10 % on 300 draws)."""
    c, bg, gg, kw, pred = cdnow_pred
    rng = np.random.default_rng(0)
    everyone = [np.ones(len(c), bool)]
    draws = [
        _totals_at(
            c,
            bg,
            gg,
            kw,
            rng.multivariate_normal(np.log(bg.theta), bg.cov_log),
            rng.multivariate_normal(np.log(gg.theta), gg.cov_log),
            everyone,
        )[0]
        for _ in range(300)
    ]
    total, low, high = clv.total_interval(pred)
    sd_delta = (np.log(high) - np.log(low)) / (2 * stats.norm.ppf(0.975))
    assert np.std(np.log(draws), ddof=1) == pytest.approx(sd_delta, rel=0.1)


def test_total_interval_without_delta_columns_is_nan():
    total, low, high = clv.total_interval(pd.DataFrame({"clv": [1.0, 2.0]}))
    assert total == 3.0 and np.isnan(low) and np.isnan(high)


@pytest.mark.parametrize("theta", [(0.8, 6.0, 1.2, 3.0), (0.55, 10.0, 0.6, 12.0)])
def test_pareto_nbd_gradient_matches_central_differences(theta):
    """Pareto/NBD's gradient (analytic, with central differences of 2F1 in its
    parameters per distinct pair) against central differences of the summed likelihood,
    on both branches (alpha >= beta and alpha < beta); ``total`` sums the same."""
    rng = np.random.default_rng(1)
    n = 300
    x = rng.integers(0, 12, n).astype(float)
    tx = np.where(x > 0, rng.uniform(1, 30, n), 0.0)
    T = tx + rng.uniform(0, 20, n)
    T[:5] = tx[:5]  # last purchase at the end: the 'died' term is zero
    h = clv.compress(x, tx, T)
    spec = clv.MODELS["pareto_nbd"]
    theta = np.array(theta)

    def f(th):
        return float(h.weight @ spec.loglik(th, h))

    num = []
    for j in range(4):
        step = np.zeros(4)
        step[j] = 1e-5 * theta[j]
        num.append((f(theta + step) - f(theta - step)) / (2 * step[j]))
    g = h.weight @ spec.loglik(theta, h, grad=True)[1]
    np.testing.assert_allclose(g, num, rtol=1e-7)
    tot, g_total = spec.total(theta, h, spec.cache(h))
    assert tot == pytest.approx(f(theta), rel=1e-12)
    np.testing.assert_allclose(g_total, g, rtol=1e-10)


# ---------------------------------------------------------------- one spend level for all


def _one_level(n=2000, seed=11):
    """Repeat buyers whose purchases are all Gamma(2, scale 25) (mean 50): no spread of the
    spend level between customers. On this sample Gamma-Gamma's q and v run off to their
    bound (about half of such samples do; the CLV stage failed on them)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 8, n).astype(float)
    m = np.array([rng.gamma(2.0, 25.0, int(k)).mean() for k in x])
    return x, m


def test_spend_without_spread_is_fitted_at_the_limit_against_statsmodels():
    """The limit model (each mean of x purchases ~ Gamma(p x, rate nu x)) against an
    independent fit: statsmodels' GenericLikelihoodModel on scipy's gamma density, with
    its standard errors from its own numerical Hessian."""
    from statsmodels.base.model import GenericLikelihoodModel

    x, m = _one_level()

    class Limit(GenericLikelihoodModel):
        def loglike(self, params):
            lp, ln = params
            p, nu = np.exp(lp), np.exp(ln)
            return stats.gamma.logpdf(m, a=p * x, scale=1 / (nu * x)).sum()

    ref = Limit(m, np.ones((len(m), 1))).fit(
        start_params=[0.0, np.log(0.02)], method="bfgs", gtol=1e-6, maxiter=2000, disp=0
    )
    f = clv.fit_spend(x, m)
    assert f.limit and "does not vary between customers" in f.limit
    p, q, v = f.theta
    assert p == pytest.approx(np.exp(ref.params[0]), rel=1e-5)
    assert q / v == pytest.approx(np.exp(ref.params[1]), rel=1e-5)  # nu
    se_log = np.sqrt(np.diag(f.cov_log))
    assert se_log[0] == pytest.approx(ref.bse[0], rel=1e-3)
    assert se_log[2] == pytest.approx(ref.bse[1], rel=1e-3)  # log v = log q - log nu
    # every customer's expected spend is the common mean p / nu, near the true 50
    es = f.expected_spend(x, m)
    assert np.ptp(es) < 1e-5 * es.mean() and es.mean() == pytest.approx(50, rel=0.02)
    assert f.weak == []
    table = f.table()
    assert table["parameter"].tolist() == ["p", "mean spend per purchase (q, v: no spread)"]
    assert table["estimate"].iloc[1] == pytest.approx(es.mean(), rel=1e-6)


def test_spend_at_the_limit_with_one_purchase_each_is_scipys_gamma_fit():
    """x = 1 for all: i.i.d. Gamma(p, nu); scipy.stats.gamma.fit with loc 0 is the MLE."""
    from segkit.clv.fit import _fit_one_spend_level

    rng = np.random.default_rng(1)
    m = rng.gamma(3.0, 10.0, 3000)
    f = _fit_one_spend_level(np.ones(3000), m)
    a, _, scale = stats.gamma.fit(m, floc=0)
    assert f.limit and f.params["p"] == pytest.approx(a, rel=1e-4)
    assert f.params["v"] / f.params["q"] == pytest.approx(scale, rel=1e-4)  # 1 / nu


def test_spend_with_spread_is_an_ordinary_gamma_gamma_fit():
    rng = np.random.default_rng(2)
    x = rng.integers(1, 8, 4000).astype(float)
    nu = rng.gamma(3.0, 1 / 37.5, 4000)  # the spend level varies between customers
    m = np.array([rng.gamma(2.0, 1 / r, int(k)).mean() for k, r in zip(x, nu, strict=True)])
    f = clv.fit_spend(x, m)
    assert not f.limit and f.params["q"] < 100


def test_a_fit_at_the_limit_round_trips_through_clv_params_json():
    x, m = _one_level()
    f = clv.fit_spend(x, m)
    back = clv.Fit.from_dict("gamma_gamma", f.to_dict())
    assert back.limit == f.limit and np.allclose(back.expected_spend(x, m), f.expected_spend(x, m))
