"""The campaign plan: which campaign to send to which segment, on which channel, within a
budget, with a random holdout per targeted segment, and the contact list for the CRM.

Submodules, by concern:

- :mod:`segkit.plan.decide`: profit per contact of every segment × campaign × channel
  from the A/B lifts, its interval, the probability that it is positive, and the
  decision rule (Holm over the whole plan, one-sided);
- :mod:`segkit.plan.allocate`: contacts per option under the budget and caps
  (:func:`scipy.optimize.milp`), holdout sizes from the power of the next measurement;
- :mod:`segkit.plan.customers`: consent and suppression, the seeded draw of holdouts and
  contacts, the contact list and the customers left out by reason;
- :mod:`segkit.plan.build`: :func:`build_plan`, the above end to end, and the comparison
  with "send everyone the best campaign" and "send nobody";
- :mod:`segkit.plan.report`: tables and words for the report.

The stage (run folders, artifacts, findings) is :mod:`segkit.stages.plan`.
"""

from segkit.plan.allocate import allocate, holdout_size
from segkit.plan.build import PLAN_COLUMNS, Plan, Settings, build_plan, compare
from segkit.plan.customers import CONTACT_COLUMNS, REASONS, consent, exclusions
from segkit.plan.decide import candidates, cost_table, holm

__all__ = [
    "CONTACT_COLUMNS",
    "PLAN_COLUMNS",
    "REASONS",
    "Plan",
    "Settings",
    "allocate",
    "build_plan",
    "candidates",
    "compare",
    "consent",
    "cost_table",
    "exclusions",
    "holdout_size",
    "holm",
]
