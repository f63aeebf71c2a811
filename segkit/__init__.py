"""segkit: reproducible customer segmentation ("cluster marketing") in Jupyter.

Submodules, one per pipeline stage plus shared helpers:

- :mod:`segkit.io` — load and validate transactions, customers and experiments (rejects kept).
- :mod:`segkit.features` — customer features from the transaction log in DuckDB (BTYD summary).
- :mod:`segkit.explore` — data-quality summary, cohorts, concentration (stage 01).
- :mod:`segkit.segment` — clustering, choice of k, stability, RFM scores (stage 02).
- :mod:`segkit.profile` — segment profiles, index table, rules, names, migration (stage 03).
- :mod:`segkit.clv` — BG/NBD, Pareto/NBD, Gamma-Gamma maximum-likelihood CLV (stage 04).
- :mod:`segkit.abtest` — A/B evaluation overall and per segment, with money (stage 05).
- :mod:`segkit.config` — parameters and run folders; :mod:`segkit.pipeline` — papermill
  runs, manifest, HTML reports; :mod:`segkit.cli` — the ``segkit`` command;
  :mod:`segkit.datasets` — bundled data and the synthetic retailer; :mod:`segkit.plots`.
"""

from segkit._checks import SegkitError
from segkit.config import Run, Skipped, load_params, show_findings

__version__ = "0.1.0"
__all__ = ["Run", "SegkitError", "Skipped", "load_params", "show_findings", "__version__"]
