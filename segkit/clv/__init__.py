"""Customer lifetime value: BTYD models fitted by maximum likelihood (library layer).

Submodules
----------
- :mod:`segkit.clv.models`: BTYD summaries (:class:`Histories`, :func:`compress`,
  :func:`check_summary`) and the models' likelihoods and predictions (:class:`BGNBD`,
  :class:`MBGNBD`, :class:`ParetoNBD`, :class:`GammaGamma`, :data:`MODELS`);
- :mod:`segkit.clv.fit`: maximum-likelihood fits (:func:`fit_purchases`,
  :func:`fit_spend`, :func:`fit_histories`) with standard errors (:class:`Fit`);
- :mod:`segkit.clv.predict`: discounted expected purchases, CLV with delta-method
  intervals (:func:`predict`), the interval of a total (:func:`total_interval`) and CLV
  per segment (:func:`segment_value`);
- :mod:`segkit.clv.diagnostics`: holdout checks (:func:`holdout_by_frequency`,
  :func:`holdout_errors`) and the tracking plots' data (:func:`tracking`).

The CLV stage of a run (inputs, artifacts, findings) is :mod:`segkit.stages.clv`.

Why segkit carries its own models
---------------------------------
``lifetimes``, the light library everyone used, is archived and partly broken on pandas 3
(``calibration_and_holdout_data`` and ``plot_history_alive`` fail); ``pymc-marketing`` is
maintained but fits through PyMC (about 12 s to compile on first use, ~4 s per BG/NBD fit
of a million customers, and default priors that do not give the maximum-likelihood
answer). The models here are plain maximum-likelihood fits in numpy/scipy:

- log-space likelihoods (``logaddexp`` of the two likelihood branches, ``gammaln`` /
  ``betaln``), so that customers with hundreds of purchases do not overflow;
- analytic gradients for BG/NBD, MBG/NBD and Gamma-Gamma (digamma terms). The Pareto/NBD
  likelihood contains Gauss's hypergeometric function, whose derivative in its parameters
  scipy does not provide, so its gradient is by central differences;
- parameters optimized on the log scale (L-BFGS-B), standard errors from the observed
  information (a finite-difference Hessian at the optimum), confidence intervals
  ``exp(log θ ± z·se)`` that stay positive;
- fitted on the unique (frequency, recency, T) histories weighted by their counts, so the
  cost grows with the number of distinct histories, not of customers; the terms that
  depend on one of x, t_x or T alone are computed once per distinct value.

Models: ``bgnbd`` (Fader, Hardie & Lee 2005, "Counting your customers the easy way"),
``pareto_nbd`` (Schmittlein, Morrison & Colombo 1987; likelihood as in Fader & Hardie 2005,
"A note on deriving the Pareto/NBD model"), ``mbgnbd`` (Batislam, Denizel & Filiztekin
2007) and ``gamma_gamma`` for spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV";
Fader & Hardie 2013, "The Gamma-Gamma model of monetary value").
"""

from segkit.clv.diagnostics import (
    HoldoutTest,
    holdout_by_frequency,
    holdout_errors,
    holdout_predictions,
    holdout_test,
    tracking,
)
from segkit.clv.fit import (
    WARM_START,
    Fit,
    fit_histories,
    fit_purchases,
    fit_spend,
    spend_frequency_correlation,
)
from segkit.clv.models import (
    BGNBD,
    MBGNBD,
    MODELS,
    PURCHASE_MODELS,
    SPEND_MODEL,
    GammaGamma,
    Histories,
    ParetoNBD,
    check_summary,
    compress,
    pair_index,
)
from segkit.clv.predict import (
    DAYS_PER_MONTH,
    DELTA_PREFIX,
    ValueModel,
    discounted_purchases,
    model_error_band,
    months_in_units,
    predict,
    segment_value,
    total_interval,
)
from segkit.core.params import UNIT_DAYS

__all__ = [
    "BGNBD",
    "DAYS_PER_MONTH",
    "DELTA_PREFIX",
    "MBGNBD",
    "MODELS",
    "PURCHASE_MODELS",
    "SPEND_MODEL",
    "UNIT_DAYS",
    "WARM_START",
    "ValueModel",
    "Fit",
    "GammaGamma",
    "HoldoutTest",
    "Histories",
    "ParetoNBD",
    "check_summary",
    "compress",
    "discounted_purchases",
    "fit_histories",
    "fit_purchases",
    "fit_spend",
    "holdout_by_frequency",
    "holdout_errors",
    "holdout_predictions",
    "holdout_test",
    "model_error_band",
    "months_in_units",
    "pair_index",
    "predict",
    "segment_value",
    "spend_frequency_correlation",
    "total_interval",
    "tracking",
]
