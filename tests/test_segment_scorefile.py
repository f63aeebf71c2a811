"""segkit.segment.scorefile: scoring a file batch by batch gives the same rows and the
same CSV bytes as scoring the whole table read at once (``read_customers`` +
``Segmenter.score`` + ``DataFrame.to_csv``), whatever the batch size."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from test_segment_scoring import awkward
from test_segment_scoring import seg as seg  # noqa: F401 (the fixture)

from segkit import cli
from segkit.core.errors import SegkitError
from segkit.segment import read_customers
from segkit.segment.scorefile import score_to_csv


def whole(seg, path):
    """The reference: the whole table read at once, scored, written by pandas."""
    scored = seg.score(read_customers(path))
    return scored, scored.to_csv(index=False, lineterminator="\n").encode()


@pytest.mark.parametrize("batch_rows", [97, 1000, 10_000])
def test_parquet_batches_equal_the_whole_table(seg, tmp_path, batch_rows):
    new = awkward(2500, 5)
    src = tmp_path / "new.parquet"
    new.to_parquet(src)
    summary, kept = score_to_csv(seg, src, tmp_path / "out.csv", keep=True, batch_rows=batch_rows)
    scored, text = whole(seg, src)
    pd.testing.assert_frame_equal(kept, scored)
    assert (tmp_path / "out.csv").read_bytes() == text
    assert summary.rows == 2500 and summary.flagged == int(scored["segment"].isna().sum())
    counts = scored["segment"].value_counts()
    assert {k: n for k, (_, n) in summary.segments.items()} == counts.to_dict()


def test_a_float_category_is_typed_over_the_whole_file(seg, tmp_path):
    """A float column whose last batch alone holds a fraction: the whole-table levels are
    "1.0", "2.0", ... (all unseen), not "1", "2" as the first batches alone would say."""
    new = awkward(1000, 6)
    new.loc[999, "region_code"] = 2.5
    for src in (tmp_path / "new.parquet", tmp_path / "new.csv"):
        if src.suffix == ".csv":
            new.to_csv(src, index=False)
        else:
            new.to_parquet(src)
        _, kept = score_to_csv(seg, src, tmp_path / "out.csv", keep=True, batch_rows=100)
        scored, text = whole(seg, src)
        assert kept["flag"].str.contains("region_code level not seen").all()
        pd.testing.assert_frame_equal(kept, scored)
        assert (tmp_path / "out.csv").read_bytes() == text


def test_csv_any_delimiter_gzip_and_text_in_numbers(seg, tmp_path):
    new = awkward(800, 7)
    new["orders"] = new["orders"].astype(object)
    new.loc[700:, "orders"] = "unknown"  # only in the last batches
    new.loc[::13, "region_code"] = np.nan
    src = tmp_path / "new.csv.gz"
    with gzip.open(src, "wt") as f:
        new.to_csv(f, index=False, sep=";")
    _, kept = score_to_csv(seg, src, tmp_path / "out.csv", keep=True, batch_rows=150)
    scored, text = whole(seg, src)
    pd.testing.assert_frame_equal(kept, scored)
    assert (tmp_path / "out.csv").read_bytes() == text
    assert kept["flag"].str.contains("orders not a number").sum() == 100


def test_values_that_need_quotes_are_written_as_pandas_does(seg, tmp_path):
    new = awkward(300, 8)
    new.loc[::4, "customer_id"] = 'id, with "quotes"'
    src = tmp_path / "new.parquet"
    new.to_parquet(src)
    score_to_csv(seg, src, tmp_path / "out.csv", batch_rows=64)
    assert (tmp_path / "out.csv").read_bytes() == whole(seg, src)[1]


def test_errors_name_the_file(seg, tmp_path):
    with pytest.raises(SegkitError, match=r"customer table .*nope.parquet not found"):
        score_to_csv(seg, tmp_path / "nope.parquet", tmp_path / "o.csv")
    (tmp_path / "empty.csv").write_text("customer_id,recency,orders,revenue,channel,region_code\n")
    with pytest.raises(SegkitError, match=r"empty.csv: no customer rows"):
        score_to_csv(seg, tmp_path / "empty.csv", tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "o.csv.tmp").exists()
    awkward(50, 9).drop(columns="orders").to_parquet(tmp_path / "few.parquet")
    with pytest.raises(SegkitError, match=r"few.parquet is missing column 'orders'"):
        score_to_csv(seg, tmp_path / "few.parquet", tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "o.csv.tmp").exists()


def test_cli_score_prints_the_counts(seg, tmp_path, capsys):
    new = awkward(400, 10)
    new.to_parquet(tmp_path / "new.parquet")
    path = seg.save(tmp_path / "segmenter.json")
    assert cli.main(["score", str(path), str(tmp_path / "new.parquet")]) == 0
    printed = capsys.readouterr().out
    scored = seg.score(new)
    for k, n in scored["segment"].value_counts().items():
        assert f"segment {k} name {k}: {n:,}" in printed
    assert f"outside the fitted range): {int(scored['segment'].isna().sum()):,}" in printed
    assert (tmp_path / "new.segments.csv").is_file()


def test_a_parquet_target_holds_the_rows_of_the_csv(seg, tmp_path):
    """``.parquet`` targets: one row group per batch, the same rows as the CSV path."""
    new = awkward(700, 12)
    src = tmp_path / "new.parquet"
    new.to_parquet(src)
    summary, _ = score_to_csv(seg, src, tmp_path / "out.parquet", batch_rows=200)
    scored, _ = whole(seg, src)
    out = pd.read_parquet(tmp_path / "out.parquet")
    pd.testing.assert_frame_equal(out, scored, check_dtype=False)
    assert out["segment"].dtype == "Int64" and summary.rows == 700
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "out.parquet").num_row_groups == 4
    assert not (tmp_path / "out.parquet.tmp").exists()


def test_the_summary_counts_each_reason_of_the_flagged(seg, tmp_path, capsys):
    """Printed under the flagged count, most frequent first; a customer with two reasons
    counts under both (the reference: pandas over the whole scored table)."""
    new = awkward(900, 13)
    new.to_parquet(tmp_path / "new.parquet")
    path = seg.save(tmp_path / "segmenter.json")  # no run manifest: engine duckdb
    out = tmp_path / "s.csv"
    assert cli.main(["score", str(path), str(tmp_path / "new.parquet"), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    scored = seg.score(new)
    why = scored.loc[scored["segment"].isna(), "flag"].str.split("; ").explode()
    counts = why.value_counts()
    assert counts.max() > counts.min() and len(counts) >= 4
    start = lines.index(
        f"flagged, not assigned (outside the fitted range): {len(why.index.unique()):,}"
    )
    printed = lines[start + 1 : start + 1 + len(counts)]
    assert sorted(printed) == sorted(f"  {r}: {n:,}" for r, n in counts.items())
    assert [int(x.rsplit(": ", 1)[1].replace(",", "")) for x in printed] == sorted(
        counts.tolist(), reverse=True
    )


def test_progress_is_reported_per_batch(seg, tmp_path):
    """Each batch reports the customers scored so far and the table's rows (from the
    Parquet footer; 0, unknown, for a CSV)."""
    new = awkward(2500, 5)
    src = tmp_path / "new.parquet"
    new.to_parquet(src)
    seen: list[tuple[int, int]] = []
    score_to_csv(
        seg, src, tmp_path / "out.csv", batch_rows=1000, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(1000, 2500), (2000, 2500), (2500, 2500)]
    new.to_csv(tmp_path / "new.csv", index=False)
    seen.clear()
    score_to_csv(
        seg,
        tmp_path / "new.csv",
        tmp_path / "o.csv",
        batch_rows=1000,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen == [(1000, 0), (2000, 0), (2500, 0)]
