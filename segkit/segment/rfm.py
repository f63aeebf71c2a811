"""RFM: recency, frequency and money quintile scores and the named R x FM grid.

The rule-based segmentation marketers know (``cluster.method = rfm``), also shown next to
the data-driven segments whenever the customers come from a transaction log.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

#: Feature columns behind R, F and M.
RFM_COLUMNS = {"recency": "days_since_last", "frequency": "orders", "monetary": "revenue"}
#: Named cells of the recency score R (rows, 1..5) by the combined frequency-money score
#: FM = floor((F + M) / 2) (columns, 1..5). The cells follow the widely used ten-segment
#: RFM map (Putler, "RFM Analysis for Successful Customer Segmentation"; the same grid on
#: recency against combined frequency and money is in churned.io's RFM model docs), made
#: non-overlapping so that every one of the 125 (R, F, M) combinations has exactly one name.
RFM_GRID = [
    # FM = 1           2                      3                      4                  5
    ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],  # R = 1
    ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],  # R = 2
    ["About to Sleep", "About to Sleep", "Need Attention", "Loyal", "Loyal"],  # R = 3
    ["Promising", "Potential Loyalists", "Potential Loyalists", "Loyal", "Loyal"],  # R = 4
    ["New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"],
]
#: The RFM segments, best first, and what marketers usually do with each.
RFM_SEGMENTS = {
    "Champions": "reward; ask for reviews and referrals",
    "Loyal": "upsell; loyalty programme",
    "Potential Loyalists": "membership or a second-category offer",
    "New Customers": "onboarding; make the second purchase easy",
    "Promising": "build awareness; small incentives",
    "Need Attention": "limited-time offer based on past purchases",
    "Can't Lose Them": "win back with a personal offer; ask what went wrong",
    "At Risk": "reconnect with personal e-mails and offers",
    "About to Sleep": "reactivate with popular products",
    "Hibernating": "low-cost reminders only",
}
#: Quantiles that cut each of R, F and M into five scores.
QUINTILES = [0.2, 0.4, 0.6, 0.8]


def quintile_edges(values: np.ndarray) -> np.ndarray:
    """Four cut points that split ``values`` into five scores as near quintiles as ties allow.

    Score = 1 + the number of cut points below the value (a value equal to a cut point
    takes the lower score). Each cut point starts at the largest value at or below its
    20/40/60/80 % quantile; one that is not above the previous moves up to the next
    distinct value, then (from the top) one that would leave no value above it, or is not
    below the next, moves down to the previous distinct value. With at least five distinct
    values every score is used; with fewer, the cut points repeat and scores stay empty.

    Parameters
    ----------
    values : the fitted customers' values (finite).

    Returns
    -------
    The four cut points, non-decreasing.

    >>> quintile_edges(np.array([1, 1, 1, 1, 1, 1, 2, 2, 3, 4, 5, 9]))
    array([1., 2., 3., 4.])
    >>> quintile_edges(np.arange(1.0, 101.0))
    array([20., 40., 60., 80.])
    """
    u = np.unique(values)
    if len(u) == 0:
        return np.zeros(len(QUINTILES))
    q = np.quantile(values, QUINTILES)
    idx = np.searchsorted(u, q, side="right") - 1  # largest distinct value <= quantile
    for i in range(1, len(idx)):  # strictly increasing
        idx[i] = max(idx[i], idx[i - 1] + 1)
    top = len(u) - 2  # the last cut point below the largest value
    for i in range(len(idx) - 1, -1, -1):
        idx[i] = min(idx[i], top if i == len(idx) - 1 else idx[i + 1] - 1)
    return u[np.clip(idx, 0, max(top, 0))].astype(float)


def rfm_segment_name(r: int, f: int, m: int) -> str:
    """The named cell of scores (r, f, m), each 1..5.

    >>> rfm_segment_name(5, 5, 4)
    'Champions'
    """
    return RFM_GRID[r - 1][(f + m) // 2 - 1]


class RFMScorer(BaseEstimator):
    """Quintile scores 1-5 for recency, frequency and money, and the named RFM segment.

    The cut points are the 20/40/60/80 % quantiles of the customers it is fitted on, each
    moved to the largest observed value at or below it, and are kept, so new customers are
    scored on the same scale. A value equal to a cut point takes the lower score and tied
    values share a score (so a class can hold more than 20 %, e.g. all one-time buyers get
    F = 1). When ties make cut points coincide (on CDNOW 52 % buy once, so the 20 % and 40 %
    quantiles of the orders are both 1), a coinciding cut point moves up to the next
    observed value, and one that would leave the top score empty moves down: with at least
    five distinct values every score 1..5 is used (CDNOW's F: 1, 2, 3, 4 and 5+ orders).
    With fewer, some scores stay empty; ``empty_scores_`` names them. R is reversed: the
    most recent get 5.

    Parameters
    ----------
    columns : role (recency, frequency, monetary) -> column; None = :data:`RFM_COLUMNS`.
    """

    def __init__(self, columns: dict[str, str] | None = None) -> None:
        self.columns = columns

    def role_columns(self) -> dict[str, str]:
        """Role (recency, frequency, monetary) -> the column scored."""
        return self.columns or RFM_COLUMNS

    def fit(self, data: pd.DataFrame, y: Any = None) -> RFMScorer:
        """Keep the quintile cut points of ``data``; ``labels_`` = its segment indices."""
        self.edges_ = {
            role: quintile_edges(data[col].to_numpy(float))
            for role, col in self.role_columns().items()
        }
        s = self.scores(data)
        self.empty_scores_ = {
            role: sorted(set(range(1, 6)) - set(s[f"{role[0]}_score"].tolist()))
            for role in self.edges_
        }
        self.labels_ = self.predict(data)
        return self

    def notes(self) -> list[str]:
        """Sentences naming the scores no fitted customer has (empty if all five are used)."""
        cols = self.role_columns()
        return [
            f"The {role} score (column '{cols[role]}') has too few distinct values for five "
            f"levels: no customer scores {', '.join(map(str, empty))}."
            for role, empty in getattr(self, "empty_scores_", {}).items()
            if empty
        ]

    def scores(self, data: pd.DataFrame) -> pd.DataFrame:
        """r_score, f_score, m_score (int8, 1..5) of each row."""
        out = {}
        for role, col in self.role_columns().items():
            up = 1 + np.searchsorted(self.edges_[role], data[col].to_numpy(float), side="left")
            out[f"{role[0]}_score"] = (6 - up if role == "recency" else up).astype("int8")
        return pd.DataFrame(out, index=data.index)

    def _cells(self, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        s = self.scores(data)
        fm = (s["f_score"].to_numpy() + s["m_score"].to_numpy()) // 2
        return s["r_score"].to_numpy() - 1, fm - 1

    def names(self, data: pd.DataFrame) -> np.ndarray:
        """The RFM segment name of each row."""
        return np.array(RFM_GRID, dtype=object)[self._cells(data)]

    def predict(self, data: pd.DataFrame) -> np.ndarray:
        """Index of each customer's RFM segment in :data:`RFM_SEGMENTS`."""
        order = {name: i for i, name in enumerate(RFM_SEGMENTS)}
        grid = np.array([[order[n] for n in row] for row in RFM_GRID])
        return grid[self._cells(data)]


def rfm_table(customers: pd.DataFrame, scorer: RFMScorer) -> pd.DataFrame:
    """Customers, share of customers and revenue, mean scores per RFM segment (all ten).

    Parameters
    ----------
    customers : the customer table (the scorer's columns).
    scorer : a fitted :class:`RFMScorer`.

    Returns
    -------
    One row per RFM segment, best first: rfm_segment, customers, revenue, mean_r_score,
    mean_f_score, mean_m_score, share_customers, share_revenue, action.
    """
    s = scorer.scores(customers)
    s["rfm_segment"] = scorer.names(customers)
    s["revenue"] = customers[scorer.role_columns()["monetary"]].to_numpy()
    g = s.groupby("rfm_segment")
    out = pd.DataFrame({"customers": g.size(), "revenue": g["revenue"].sum()})
    out = out.reindex(list(RFM_SEGMENTS), fill_value=0)
    for col in ("r_score", "f_score", "m_score"):
        out[f"mean_{col}"] = g[col].mean().reindex(out.index)
    out["share_customers"] = out["customers"] / len(s)
    out["share_revenue"] = out["revenue"] / max(s["revenue"].sum(), 1e-12)
    out["action"] = [RFM_SEGMENTS[n] for n in out.index]
    return out.rename_axis("rfm_segment").reset_index()
