"""Text from the data never becomes live markup in a report (safety issue, item 7).

Every text input (category, channel and region values, arm names, a column name) carries
markup; after a full run, no report holds a live element or attribute from it.
"""

from __future__ import annotations

import re

import pytest

from segkit import datasets, pipeline

IMG = "<img src=x onerror=alert(1)>"
BOLD = "<b onmouseover=alert(2)>x</b>"


@pytest.mark.slow
def test_markup_in_every_text_input_stays_text(tmp_path):
    shop = datasets.make_retailer(600, seed=3)
    tx = shop.transactions.replace({"category": {"grocery": IMG}, "channel": {"web": BOLD}})
    customers = shop.customers.replace({"region": {"North": IMG}}).rename(
        columns={"income_band": "income <i>band</i>"}
    )
    experiment = shop.experiment.replace({"arm": {"discount": IMG, "content": BOLD}})
    for name, df in (("tx", tx), ("customers", customers), ("experiment", experiment)):
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    params = {
        "name": "markup",
        "data": {
            "source": "files",
            "transactions": {
                "path": str(tmp_path / "tx.csv"),
                "columns": {
                    "customer_id": "customer_id",
                    "timestamp": "timestamp",
                    "amount": "amount",
                    "order_id": "order_id",
                    "category": "category",
                    "channel": "channel",
                },
            },
            "customers": {"path": str(tmp_path / "customers.csv")},
            "experiment": {"path": str(tmp_path / "experiment.csv"), "columns": {"arm": "arm"}},
            "time_unit": "W",
        },
        "cluster": {"k_min": 2, "k_max": 4, "n_bootstrap": 3, "gap_references": 0},
        "abtest": {"control": "control", "segment_cols": ["segment", "region"]},
    }
    res = pipeline.run(params, run_dir=tmp_path / "run", progress=False)
    pages = sorted((tmp_path / "run").glob("*.html")) if res.ok else []
    assert res.ok, [r.error for r in res.stages if r.error]
    assert len(pages) == 7  # six stage reports (the plan skipped: no value metric) and the index
    for page in pages:
        text = page.read_text()
        assert not re.search(r"<img\s+src=x", text, re.I), page.name
        assert not re.search(r"<b\s+onmouseover", text, re.I), page.name
        assert "<i>band</i>" not in text, page.name
