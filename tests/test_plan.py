"""The campaign plan library (segkit.plan): the allocation against independent solvers, the
decision rule against statsmodels' Holm, holdout sizes against statsmodels' power, consent
and suppression, the draw of contacts, and the parameter checks."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

from segkit import plan
from segkit.core.errors import SegkitError
from segkit.core.params import load_params
from segkit.plan import customers as cu
from segkit.plan.allocate import full_holdout, holdout_size

# ----------------------------------------------------------------------------- allocation


def random_instance(rng, n_seg=4, n_opt=3, with_caps=True):
    rows = []
    for s in range(n_seg):
        for o in range(n_opt):
            rows.append(
                {
                    "segment": str(s),
                    "channel": ["email", "sms"][o % 2],
                    "cost_per_contact": float(rng.choice([0.1, 0.5, 1.0, 2.0])),
                    "profit_per_contact": float(rng.normal(0.5, 1.0)),
                }
            )
    options = pd.DataFrame(rows)
    capacity = {str(s): int(rng.integers(0, 60)) for s in range(n_seg)}
    budget = float(rng.uniform(5, 80))
    seg_caps = {"0": int(rng.integers(0, 40))} if with_caps else None
    chan_caps = {"sms": int(rng.integers(0, 50))} if with_caps else None
    return options, capacity, budget, seg_caps, chan_caps


def milp_reference(options, capacity, budget, seg_caps, chan_caps):
    """The same problem written independently: one equality-free row per constraint kind,
    built by loops over the options (not the module's code)."""
    n = len(options)
    a, ub = [], []
    for s, cap in capacity.items():
        row = [1.0 if options["segment"].iloc[i] == s else 0.0 for i in range(n)]
        a.append(row)
        ub.append(min(cap, (seg_caps or {}).get(s, 10**9)))
    for c, cap in (chan_caps or {}).items():
        a.append([1.0 if options["channel"].iloc[i] == c else 0.0 for i in range(n)])
        ub.append(cap)
    a.append(list(options["cost_per_contact"]))
    ub.append(budget)
    res = optimize.milp(
        c=-options["profit_per_contact"].to_numpy(),
        integrality=np.ones(n),
        bounds=optimize.Bounds(0, np.inf),
        constraints=optimize.LinearConstraint(np.array(a), -np.inf, np.array(ub)),
    )
    return -res.fun


def feasible(x, options, capacity, budget, seg_caps, chan_caps):
    seg = options["segment"].to_numpy()
    chan = options["channel"].to_numpy()
    for s, cap in capacity.items():
        assert x[seg == s].sum() <= min(cap, (seg_caps or {}).get(s, 10**9))
    for c, cap in (chan_caps or {}).items():
        assert x[chan == c].sum() <= cap
    assert (x * options["cost_per_contact"].to_numpy()).sum() <= budget + 1e-9
    assert (x >= 0).all()


@pytest.mark.parametrize("seed", range(25))
def test_allocation_matches_an_independent_milp(seed):
    rng = np.random.default_rng(seed)
    options, capacity, budget, seg_caps, chan_caps = random_instance(rng)
    x = plan.allocate(
        options, capacity, budget=budget, segment_caps=seg_caps, channel_caps=chan_caps
    )
    feasible(x, options, capacity, budget, seg_caps, chan_caps)
    got = float((x * options["profit_per_contact"]).sum())
    assert got == pytest.approx(milp_reference(options, capacity, budget, seg_caps, chan_caps))


@pytest.mark.parametrize("seed", range(10))
def test_allocation_matches_brute_force_on_tiny_instances(seed):
    rng = np.random.default_rng(100 + seed)
    options, _, _, _, _ = random_instance(rng, n_seg=2, n_opt=2, with_caps=False)
    capacity = {"0": int(rng.integers(0, 5)), "1": int(rng.integers(0, 5))}
    budget = float(rng.uniform(0, 6))
    x = plan.allocate(options, capacity, budget=budget)
    best = 0.0
    for combo in itertools.product(range(5), repeat=len(options)):
        k = np.array(combo)
        seg = options["segment"].to_numpy()
        if any(k[seg == s].sum() > c for s, c in capacity.items()):
            continue
        if (k * options["cost_per_contact"]).sum() > budget:
            continue
        best = max(best, float((k * options["profit_per_contact"]).sum()))
    assert float((x * options["profit_per_contact"]).sum()) == pytest.approx(best)


def test_greedy_by_ratio_is_not_what_is_chosen_when_it_is_not_optimal():
    """One segment of 100, a cheap option (profit/cost 2) and a dear one (1.5): with a
    budget of 1000 the dear one for everyone (1500) beats greedy's cheap one (200)."""
    options = pd.DataFrame(
        {
            "segment": ["a", "a"],
            "channel": ["email", "letter"],
            "cost_per_contact": [1.0, 10.0],
            "profit_per_contact": [2.0, 15.0],
        }
    )
    x = plan.allocate(options, {"a": 100}, budget=1000)
    assert list(x) == [0, 100]


def test_money_losing_options_get_no_contacts():
    options = pd.DataFrame(
        {
            "segment": ["a"],
            "channel": ["email"],
            "cost_per_contact": [0.1],
            "profit_per_contact": [-0.2],
        }
    )
    assert list(plan.allocate(options, {"a": 50})) == [0]


# ----------------------------------------------------------------------------- decision rule


def effects_table(lifts, se=1.0, df=np.inf, n=500):
    rows = []
    for (seg, arm), lift in lifts.items():
        rows.append(
            {
                "metric": "spend",
                "segment_col": "segment",
                "segment": seg,
                "arm": arm,
                "abs_lift": lift,
                "se": se,
                "df": df,
                "n_control": n,
                "n_treatment": n,
                "evaluated": True,
            }
        )
    return pd.DataFrame(rows)


def test_decision_rule_is_holm_over_the_whole_plan_one_sided():
    lifts = {("1", "a"): 3.0, ("1", "b"): 1.5, ("2", "a"): 2.4, ("2", "b"): -1.0, ("3", "a"): 2.6}
    eff = effects_table(lifts, se=0.8, df=300)
    costs = {("a", "email"): 0.1, ("b", "email"): 0.1, ("a", "sms"): 0.3, ("b", "sms"): 0.3}
    c = plan.candidates(eff, "spend", "segment", costs, margin=0.3, alpha=0.025)
    assert len(c) == 10  # every segment x campaign x channel is one hypothesis
    be = c["cost_per_contact"] / 0.3
    p = stats.t.sf((c["lift"] - be) / 0.8, 300)
    np.testing.assert_allclose(c["p_profit"], p, rtol=1e-10)
    reject, adjusted, _, _ = multipletests(p, alpha=0.025, method="holm")
    np.testing.assert_allclose(c["p_adjusted"], adjusted, rtol=1e-10)
    assert c["passes"].tolist() == list(reject & (c["profit_per_contact"] > 0))
    assert c["passes"].any() and not c["passes"].all()
    # probability of profit: the normal approximation of the lift's uncertainty
    np.testing.assert_allclose(c["prob_profit"], stats.norm.cdf((c["lift"] - be) / 0.8))
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(
        c["profit_per_contact_low"], (c["lift"] - z * 0.8) * 0.3 - c["cost_per_contact"]
    )


def test_candidates_without_the_breakdown_name_what_there_is():
    eff = effects_table({("1", "a"): 1.0})
    with pytest.raises(SegkitError, match=r"plan.segment_col == 'region'.*\['segment'\]"):
        plan.candidates(eff, "spend", "region", {("a", "email"): 0.1}, 0.3)


def test_candidates_need_a_cost_for_a_campaign_of_the_effects():
    eff = effects_table({("1", "a"): 1.0})
    with pytest.raises(SegkitError, match=r"no campaign of the A/B effects \['a'\] has a cost"):
        plan.candidates(eff, "spend", "segment", {("z", "email"): 0.1}, 0.3)


def test_cost_table_reads_every_form_and_names_unknown_keys():
    assert plan.cost_table(None, ["a"], ["email"], 0.2) == {("a", "email"): 0.2}
    assert plan.cost_table(0.5, ["a"], ["email"], 0.2) == {("a", "email"): 0.5}
    t = plan.cost_table({"a": {"sms": 0.4}, "email": 0.05}, ["a", "b"], ["email", "sms"], 0.2)
    assert t == {("a", "email"): 0.05, ("a", "sms"): 0.4, ("b", "email"): 0.05, ("b", "sms"): 0.2}
    with pytest.raises(SegkitError, match="'fax' is neither a channel"):
        plan.cost_table({"fax": 1.0}, ["a"], ["email"], 0.2)
    with pytest.raises(SegkitError, match="'fax' is not in plan.channels"):
        plan.cost_table({"a": {"fax": 1.0}}, ["a"], ["email"], 0.2)


# ----------------------------------------------------------------------------- holdouts


@pytest.mark.parametrize(
    ("lift", "sd", "n_t"), [(2.0, 10.0, 5000), (0.5, 4.0, 20000), (1.0, 3.0, 800)]
)
def test_holdout_reaches_the_power_and_one_less_does_not(lift, sd, n_t):
    n_bal = plan.allocate.__globals__["balanced_n"](lift, sd, 0.05, 0.8)
    h = holdout_size(n_t, n_bal, available=10**6, min_holdout=2, max_holdout=10**6)
    power = NormalIndPower()
    es = lift / sd
    assert power.power(es, nobs1=n_t, ratio=h / n_t, alpha=0.05) >= 0.8 - 1e-3
    assert power.power(es, nobs1=n_t, ratio=(h - 2) / n_t, alpha=0.05) < 0.8


def test_holdout_is_capped_and_floored():
    # n_t too small for any holdout to reach the power: the cap
    assert holdout_size(100, 393, available=900, min_holdout=50, max_holdout=300) == 300
    assert holdout_size(10**6, 393, available=900, min_holdout=50, max_holdout=300) == 197
    assert holdout_size(10**6, 393, available=30, min_holdout=50, max_holdout=300) == 30
    h = full_holdout(10_000, 393, min_holdout=50, max_share=0.5)  # smallest h reaching power
    assert 1 / (10_000 - h) + 1 / h <= 2 / 393 < 1 / (10_001 - h) + 1 / (h - 1)
    assert full_holdout(300, 393, min_holdout=50, max_share=0.5) == 150


# ----------------------------------------------------------------------------- customers


def test_consent_and_suppression_rules():
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "f"],
            "opt_in": ["yes", "no", "Yes", None, 1, "true"],
            "last": ["2024-06-25", "2024-06-29", None, "2024-01-01", "2024-06-01", "2024-05-31"],
        }
    )
    why = plan.exclusions(
        customers,
        consent_column="opt_in",
        suppressed_ids=["c"],
        last_contact_column="last",
        suppress_days=30,
        date=pd.Timestamp("2024-06-30"),
    )
    assert why.tolist() == [
        "suppressed",
        "no consent",
        "suppressed",
        "no consent",
        "suppressed",
        "",
    ]


def test_exclusions_name_bad_columns_and_dates():
    customers = pd.DataFrame({"customer_id": ["a"], "last": ["yesterday"]})
    with pytest.raises(
        SegkitError, match=r"plan.consent_column\) is missing column 'email_opt_in'"
    ):
        plan.exclusions(customers, consent_column="email_opt_in")
    with pytest.raises(SegkitError, match=r"'last'.*1 values are not dates, e.g. 'yesterday'"):
        plan.exclusions(customers, last_contact_column="last", suppress_days=3)


# ----------------------------------------------------------------------------- the plan


def toy(n=3000, seed=0, opt_in_share=0.8):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "segment": rng.choice(["1", "2", "3"], n, p=[0.5, 0.3, 0.2]).astype(object),
            "expected_clv": rng.gamma(2, 20, n),
        }
    )
    frame["segment_name"] = "segment " + frame["segment"]
    frame.loc[:9, "segment"] = None  # no segment
    frame["reason"] = np.where(rng.random(n) < opt_in_share, "", "no consent")
    eff = effects_table(
        {("1", "a"): 3.0, ("1", "b"): 1.0, ("2", "a"): 0.2, ("2", "b"): 2.5, ("3", "a"): 4.0},
        se=0.5,
        df=800,
    )
    return frame, eff


def settings(**kw):
    base = dict(
        metric="spend",
        segment_col="segment",
        costs={("a", "email"): 0.1, ("b", "email"): 0.1},
        margin=0.3,
        alpha=0.025,
        test_alpha=0.05,
        power=0.8,
        budget=None,
        segment_caps={},
        channel_caps={},
        min_segment_size=100,
        min_holdout=50,
        max_holdout_share=0.5,
        seed=7,
    )
    base.update(kw)
    return plan.Settings(**base)


@pytest.mark.parametrize("budget", [None, 40.0])
def test_counts_reconcile_and_contacts_respect_consent(budget):
    frame, eff = toy()
    p = plan.build_plan(eff, frame, settings(budget=budget))
    counts = dict(zip(p.counts["reason"], p.counts["customers"], strict=True))
    assert counts["total"] == len(frame) == sum(v for k, v in counts.items() if k != "total")
    assert counts["no consent"] == int((frame["reason"] == "no consent").sum())
    assert counts["no segment"] == int(((frame["reason"] == "") & frame["segment"].isna()).sum())
    ok_ids = set(frame.loc[(frame["reason"] == ""), "customer_id"])
    assert set(p.contacts["customer_id"]) <= ok_ids
    assert counts["contacted"] == int((~p.contacts["holdout"]).sum()) == p.table["contacts"].sum()
    assert counts["holdout"] == int(p.contacts["holdout"].sum()) == p.table["holdout"].sum()
    assert list(p.contacts.columns) == plan.CONTACT_COLUMNS
    if budget is not None:
        assert p.table["cost"].sum() <= budget + 1e-9
        assert counts["below budget"] > 0
    # a segment is sent its most profitable proven campaign when there is no budget
    if budget is None:
        sent = p.table[p.table["decision"] == "send"]
        assert set(zip(sent["segment"], sent["campaign"], strict=True)) == {
            ("1", "a"),
            ("2", "b"),
            ("3", "a"),
        }


def test_holdouts_are_random_within_the_segment_and_reproducible():
    frame, eff = toy()
    a = plan.build_plan(eff, frame, settings(seed=1)).contacts
    b = plan.build_plan(eff, frame, settings(seed=1)).contacts
    c = plan.build_plan(eff, frame, settings(seed=2)).contacts
    pd.testing.assert_frame_equal(a, b)
    held = lambda t: set(t.loc[t["holdout"], "customer_id"])  # noqa: E731
    assert held(a) != held(c) and len(held(a)) == len(held(c))
    # holdout customers get the campaign of their segment: the next test compares like with like
    h = a[a["holdout"]]
    assert (h.groupby("segment")["campaign"].nunique() == 1).all()


def test_caps_and_too_small_segments():
    frame, eff = toy(opt_in_share=0.8)
    caps = settings(segment_caps={"1": 300}, channel_caps={"email": 700}, min_segment_size=600)
    p = plan.build_plan(eff, frame, caps)
    t = p.table
    assert t.loc[t["segment"] == "1", "contacts"].sum() <= 300
    assert t["contacts"].sum() <= 700
    small = t[t["customers"] < 600]
    assert (
        len(small) and (small["decision"] == "too small").all() and (small["contacts"] == 0).all()
    )
    counts = dict(zip(p.counts["reason"], p.counts["customers"], strict=True))
    assert counts["segment too small"] == int(small.drop_duplicates("segment")["customers"].sum())


def test_comparison_send_all_uses_every_contactable_customer():
    frame, eff = toy()
    p = plan.build_plan(eff, frame, settings())
    comp = p.comparison.set_index("campaign")
    # campaign 'a' sent to all: sum over segments of N_s * (lift*margin - cost)
    n = frame[frame["reason"] == ""]["segment"].value_counts()
    lift_a = {"1": 3.0, "2": 0.2, "3": 4.0}
    expected = sum(n[s] * (lift_a[s] * 0.3 - 0.1) for s in lift_a)
    assert comp.loc["a", "expected_profit"] == pytest.approx(expected)
    se = np.sqrt(sum((n[s] * 0.3 * 0.5) ** 2 for s in lift_a))
    assert comp.loc["a", "se"] == pytest.approx(se)
    assert comp.loc["none", "expected_profit"] == 0


# ----------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("plan.budget=-5", r"plan.budget == -5, must be >= 0"),
        ("plan.alpha=0.7", r"plan.alpha == 0.7, must be < 0.5"),
        ("plan.channels=[]", r"plan.channels == \[\], must be a non-empty list"),
        ("plan.suppress_days=30", r"needs plan.last_contact_column"),
        ("plan.max_contacts_channel={fax: 3}", r"max_contacts_channel key == 'fax'"),
        ("plan.max_contacts_segment=-1", r"max_contacts_segment == -1, must be >= 0"),
        ("plan.cost_per_contact={email: -1}", r"plan.cost_per_contact.email == -1"),
        ("plan.date=2024-13-01", r"plan.date == '2024-13-01'"),
        ("plan.budgit=5", r"did you mean 'plan.budget'"),
        ("plan.channels=[email,email]", r"a channel is named twice"),
        ("plan.cost_per_contact={}", r"must name at least one channel or campaign"),
        ("plan.max_contacts_channel=5", r"must be a mapping channel: most contacts"),
    ],
)
def test_bad_plan_parameters_are_named(override, message):
    with pytest.raises(SegkitError, match=message):
        load_params("demo", [override])


def test_consent_helper_reads_yes_values():
    assert cu.consent(pd.Series(["Y", "opt-in", "0", "", None, 1.0])).tolist() == [
        True,
        True,
        False,
        False,
        False,
        True,
    ]
    # a German, French or Spanish CRM export says yes in its language ("nein" is no)
    answers = pd.Series(["ja", "Oui", "sí", "nein", "non", "no"])
    assert cu.consent(answers).tolist() == [True, True, True, False, False, False]


# ----------------------------------------------------------------------------- plots


def test_plots_show_one_row_per_segment_with_intervals():
    import matplotlib

    matplotlib.use("Agg")
    from segkit import plots

    frame, eff = toy()
    p = plan.build_plan(eff, frame, settings())
    ax = plots.plot_plan_profit(p.table, currency="€")
    assert len(ax.get_yticks()) == p.table["segment"].nunique() == 3
    assert "€" in ax.get_xlabel() and ax.get_title()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert any("segment 1 · a / email" == t for t in labels)
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"send"}
    ax = plots.plot_plan_strategies(p.comparison)
    assert len(ax.patches) == 3 and ax.get_title()
    ticks = dict(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()], strict=True))
    bars = {ticks[round(b.get_y() + b.get_height() / 2)]: b.get_width() for b in ax.patches}
    assert bars["the plan"] == pytest.approx(p.comparison["expected_profit"].iloc[0])
    assert bars["send nobody"] == 0
