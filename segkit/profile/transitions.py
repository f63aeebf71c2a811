"""Migration: how customers moved between two segmentations (incl. new and gone)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from segkit.core.checks import SegkitError, check_columns


def migration(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Transition matrix of customers between two segmentations, in long form.

    Parameters
    ----------
    before, after : frames with ``customer_id`` and ``segment`` (e.g. last month's and this
        month's ``segments.parquet``).

    Returns
    -------
    DataFrame ``from_segment, to_segment, customers, row_share`` over every pair of a
    ``before`` segment (or "new": customers only in ``after``) and an ``after`` segment (or
    "gone": customers only in ``before``); segments as strings; ``row_share`` = customers /
    all customers of ``from_segment``. The pair new -> gone is left out.
    """
    for name, df in (("before", before), ("after", after)):
        check_columns(df, ["customer_id", "segment"], name)
        if df["customer_id"].duplicated().any():
            dup = df.loc[df["customer_id"].duplicated(), "customer_id"].head(3).tolist()
            raise SegkitError(f"{name} has duplicated customer_id values, e.g. {dup}")
    b = before.set_index("customer_id")["segment"].astype("int64").astype("string")
    a = after.set_index("customer_id")["segment"].astype("int64").astype("string")
    both = pd.concat([b.rename("from"), a.rename("to")], axis=1)
    both["from"] = both["from"].fillna("new")
    both["to"] = both["to"].fillna("gone")
    order = lambda s: sorted(s, key=int)  # noqa: E731
    froms = order(b.unique()) + ["new"]
    tos = order(a.unique()) + ["gone"]
    counts = pd.crosstab(both["from"], both["to"]).reindex(index=froms, columns=tos, fill_value=0)
    long = counts.stack().rename("customers").reset_index()
    long.columns = ["from_segment", "to_segment", "customers"]
    long = long[~((long["from_segment"] == "new") & (long["to_segment"] == "gone"))]
    totals = long.groupby("from_segment")["customers"].transform("sum")
    long["row_share"] = np.where(totals > 0, long["customers"] / totals.where(totals > 0, 1), 0.0)
    long["customers"] = long["customers"].astype("int64")
    return long.reset_index(drop=True)
