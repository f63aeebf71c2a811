"""segkit: reproducible customer segmentation ("cluster marketing") in Jupyter.

The package is built in layers, lowest first; each imports only from the layers below it
(``tests/test_layers.py`` keeps it so):

1. core (:mod:`segkit.core`): errors and checks, the parameter schema, SQL quoting, paths.
2. library, pure functions by concern, knowing nothing of runs or notebooks:
   :mod:`segkit.io` (load and clean, with rejects), :mod:`segkit.features` (customer
   features in DuckDB), :mod:`segkit.explore` (quality, cohorts, concentration),
   :mod:`segkit.segment` (clustering, choice of k, RFM, the segmenter), :mod:`segkit.naming`
   and :mod:`segkit.profile` (profiles, rules, names, actions), :mod:`segkit.clv`
   (BG/NBD, Pareto/NBD, Gamma-Gamma), :mod:`segkit.abtest` (A/B statistics and money),
   :mod:`segkit.datasets` (bundled and synthetic data).
3. stages (:mod:`segkit.stages`): one module per stage, ``run(run) -> result``; the
   :class:`Run` folder; the stage registry; :mod:`segkit.plots`.
4. :mod:`segkit.pipeline` (papermill, kernels, HTML, manifest) and :mod:`segkit.cli`.
"""

from segkit.core import threads as _threads
from segkit.core.errors import SegkitError
from segkit.core.params import DEFAULTS, load_params
from segkit.stages import STAGES, Run, Skipped, Stage, show_findings

# Kernels of the notebooks (JupyterLab's too) import segkit: cap BLAS/OpenMP threads there
# (see segkit.core.threads: spinning threads on a busy machine cost tens of times the time).
_threads.apply()

__version__ = "0.1.0"
__all__ = [
    "DEFAULTS",
    "STAGES",
    "Run",
    "SegkitError",
    "Skipped",
    "Stage",
    "load_params",
    "show_findings",
    "__version__",
]
