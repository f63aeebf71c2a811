"""Every customer's CLV on the engine, from a saved CLV model (``clv_params.json``).

What :meth:`segkit.clv.ValueModel.predict` computes in numpy, where the customers are:

- the purchase model's terms (P(alive), expected and discounted purchases, and the
  gradient of log discounted purchases for the delta method) depend on a customer's
  (frequency, recency, T) only. The engine sends the *distinct* histories to this process,
  :func:`segkit.clv.predict.purchase_terms` computes them (the same code as the CLV stage:
  hypergeometric functions and all), and the engine joins them back to every customer;
- the Gamma-Gamma expected spend and its gradient are formulas of (frequency, monetary),
  written once (:meth:`segkit.clv.models.GammaGamma.spend_formula`, ``log_gradient``)
  and evaluated here over engine columns;
- CLV, its delta-method interval, the model-error band and the ``clv_delta_*`` columns
  are arithmetic over those columns.

So no per-customer row comes to the driver, only the distinct histories: fewer than the
customers, since a history is whole days over a bounded period (CDNOW: 1,218 of 2,357;
simulated two-year logs: 59 % of 1M customers, 22 % of 10M,
``benchmarks/results/bench_score_clv.md``), about 200 bytes each on the driver; and
Spark's executors need no Python.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from segkit.clv.models import GammaGamma, check_summary
from segkit.clv.predict import (
    DELTA_PREFIX,
    ValueModel,
    cov_root,
    purchase_terms,
)
from segkit.core.errors import SegkitError
from segkit.engine.backend import flt, ibis_module, table

#: Columns a customer table needs for its CLV (the BTYD summary, in the model's time unit).
HISTORY = ["frequency", "recency", "T"]


def _histories(t: Any, model: ValueModel) -> pd.DataFrame:
    """The distinct (frequency, recency, T) of ``t`` with the purchase model's terms."""
    keys = t.select(**{f"_h_{c}": t[c].cast("float64") for c in HISTORY}).distinct()
    h = keys.to_pandas()
    h.columns = HISTORY
    if h.empty:
        raise SegkitError("customer table: no customer rows to value")
    check_summary(h["frequency"], h["recency"], h["T"], name="customer table (CLV)")
    terms = purchase_terms(
        model.purchases,
        h["frequency"],
        h["recency"],
        h["T"],
        horizon_months=model.horizon_months,
        discount_rate=model.discount_rate,
        time_unit=model.time_unit,
    )
    terms.index = h.index
    return pd.concat([h, terms], axis=1).add_prefix("_v_")


def _quadratic(g: list[Any], cov: np.ndarray) -> Any:
    """``g' cov g`` over expression columns."""
    total = None
    for i, gi in enumerate(g):
        for j, gj in enumerate(g):
            term = gi * gj * flt(cov[i, j])
            total = term if total is None else total + term
    return total


def value_expr(t: Any, model: ValueModel, carry: list[str] | tuple[str, ...] = ()) -> Any:
    """The CLV of every customer of ibis table ``t`` (``customer_id``, ``frequency``,
    ``recency``, ``T`` and, with a spend model, ``monetary``, in the model's time unit).

    Returns an ibis table with the columns of :meth:`ValueModel.predict`, in its order,
    then the columns ``carry`` of ``t`` as they are; the numbers are those of ``predict``
    to rounding (1e-12 relative on the bundled data).

    Raises
    ------
    SegkitError
        A column missing; a history the models cannot take (negative, recency above T).
    """
    ibis = ibis_module()
    need = ["customer_id", *HISTORY] + (["monetary"] if model.spend is not None else [])
    missing = [c for c in need if c not in t.columns]
    if missing:
        raise SegkitError(
            f"customer table is missing {missing} for its CLV (the BTYD summary in the "
            f"model's time unit, {model.time_unit!r}); columns are {list(t.columns)}"
        )
    terms = table(t.get_backend(), _histories(t, model), what="clv_histories")
    kept = list(dict.fromkeys([*need, *carry]))
    cond = [t[c].cast("float64") == terms[f"_v_{c}"] for c in HISTORY]
    j = t.select(*kept).inner_join(terms, cond)  # every history is there: no row lost
    k = model.purchases.theta.size
    g_p = [j[f"_v_g_{i + 1}"] for i in range(k)]
    disc = j["_v_discounted_purchases"]
    cols: dict[str, Any] = {
        "customer_id": j["customer_id"],
        "frequency": j["frequency"],
        "p_alive": j["_v_p_alive"],
        "expected_purchases": j["_v_expected_purchases"],
    }
    if model.spend is None:
        cols["clv"] = disc
        low = high = ibis.null("float64")
    else:
        x = j["frequency"].cast("float64")
        m = j["monetary"].cast("float64")
        mx = ibis.ifelse(m.isnull() | m.isnan(), flt(0.0), m)  # numpy's nan_to_num

        theta = [flt(v) for v in model.spend.theta]
        es = GammaGamma.spend_formula(theta, x, mx)
        g_s = GammaGamma.log_gradient(theta, x, mx)
        var = _quadratic(g_p, model.purchases.cov_log) + _quadratic(g_s, model.spend.cov_log)
        zq = float(stats.norm.ppf(1 - model.alpha / 2))
        sd = ibis.ifelse(var.isnull() | var.isnan(), flt(0.0), var.sqrt())
        clv = flt(model.margin) * disc * es
        cols["expected_spend"] = es
        cols["clv"] = clv
        low = clv * (flt(-zq) * sd).exp()
        high = clv * (flt(zq) * sd).exp()
        deltas = []
        for gs, fit in ((g_p, model.purchases), (g_s, model.spend)):
            root = cov_root(fit.cov_log)
            parts = [(clv * g).fill_null(flt(0.0)) for g in gs]
            for col in range(root.shape[1]):
                d = parts[0] * flt(root[0, col])
                for i in range(1, len(parts)):
                    d = d + parts[i] * flt(root[i, col])
                deltas.append(d)
    f = model.model_error
    cols["clv_low"] = low / flt(f) if np.isfinite(f) else low * flt(0.0)
    cols["clv_high"] = high * flt(f)
    if model.spend is not None:
        cols.update({f"{DELTA_PREFIX}{i + 1}": d for i, d in enumerate(deltas)})
    cols["discounted_purchases"] = disc
    cols.update({c: j[c] for c in carry if c not in cols})
    return j.select(**cols)


def value(t: Any, model: ValueModel) -> pd.DataFrame:
    """:func:`value_expr` as a pandas frame sorted by customer id (for tests and small
    tables; large ones are written with :func:`segkit.engine.backend.write_parquet`)."""
    out = value_expr(t, model).order_by("customer_id").to_pandas().reset_index(drop=True)
    return out
