"""segkit.io.load._normalize_categories (issue 18: only the rows whose spelling changes are
rewritten) against a row-by-row pandas reference of the rule: each variant (trimmed,
blanks collapsed, case-folded) becomes its most frequent spelling, ties to the
alphabetically first."""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd

from segkit.io.load import _normalize_categories


def reference(values: pd.Series) -> pd.Series:
    spelled = values.map(lambda v: re.sub(r"\s+", " ", v.strip()) if isinstance(v, str) else None)
    key = spelled.map(lambda v: v.lower() if isinstance(v, str) else None)
    counts = pd.DataFrame({"k": key, "v": spelled}).dropna().value_counts().reset_index()
    counts = counts.sort_values(["k", "count", "v"], ascending=[True, False, True])
    canon = counts.drop_duplicates("k").set_index("k")["v"]
    return key.map(canon).where(values.notna(), None)


def test_normalized_like_the_row_by_row_rule():
    rng = np.random.default_rng(0)
    words = [
        "United Kingdom",
        "united kingdom",
        " United  Kingdom ",
        "FRANCE",
        "France",
        "france ",
        "Spain",
        None,
    ]
    values = pd.Series(rng.choice(np.array(words, dtype=object), 5000), dtype=object)
    con = duckdb.connect()
    frame = pd.DataFrame({"row": np.arange(len(values)), "country": values})
    con.register("frame", frame)
    con.execute("CREATE TABLE t AS SELECT * FROM frame")
    _normalize_categories(con, "t", ["country"])
    got = con.execute("SELECT country FROM t ORDER BY row").df()["country"]
    want = reference(values)
    assert got.isna().tolist() == want.isna().tolist()
    assert got.dropna().tolist() == want.dropna().tolist()
    assert len(set(got.dropna())) == 3  # three countries left


def test_clean_column_is_left_alone():
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('a', 1), ('b', 2), (NULL, 3)) v(c, i)")
    _normalize_categories(con, "t", ["c"])
    assert con.execute("SELECT c FROM t ORDER BY i").fetchall() == [("a",), ("b",), (None,)]
