"""segkit.segment.segmenter: scoring new customers, flags, and the JSON file that cannot
run code: save, load, same assignments; a tampered or foreign file is refused by name."""

import json

import numpy as np
import pandas as pd
import pytest
from test_segment import blobs, mixed, run_mixed, run_on

from segkit import segment
from segkit.core.errors import SegkitError
from segkit.segment import Segmenter
from segkit.stages import cluster


def test_segmenter_scores_and_flags(tmp_path):
    customers, _ = blobs(4)
    res = cluster.run(run_on(tmp_path, customers))
    seg = Segmenter.load(tmp_path / "run")
    again = seg.score(customers)
    assert (again["segment"].to_numpy() == res.segments["segment"].to_numpy()).all()
    assert (again["flag"] == "").all()
    new = customers.head(5).copy()
    new.loc[0, "revenue"] = 1e9
    new.loc[1, "days_since_last"] = -3
    new.loc[2, "orders"] = np.nan  # filled with the fitted median, as in fitting
    out = seg.score(new)
    assert out["segment"].isna().tolist() == [True, True, False, False, False]
    assert out.loc[0, "flag"].startswith("revenue above the fitted maximum")
    assert out.loc[1, "flag"].startswith("days_since_last below the fitted minimum")
    assert out.loc[0, "segment_name"] == segment.UNASSIGNED
    assert out["nearest_segment"].notna().all()
    with pytest.raises(SegkitError, match=r"missing column 'orders'"):
        seg.score(new.drop(columns="orders"))


def test_unseen_category_is_flagged(tmp_path):
    c = mixed()
    run_mixed(tmp_path, c)
    new = c.head(3).copy()
    new.loc[0, "channel"] = "fax"
    out = Segmenter.load(tmp_path / "run").score(new)
    assert out.loc[0, "flag"] == "channel level not seen in fitting"
    assert out["segment"].isna().tolist() == [True, False, False]


@pytest.mark.parametrize("method", ["kmeans", "gmm", "rfm", "kprototypes"])
def test_save_load_scores_the_same(tmp_path, method):
    if method == "kprototypes":
        c = mixed().drop(columns="truth")
        res = run_mixed(tmp_path, mixed())
    else:
        c, _ = blobs(8)
        res = cluster.run(run_on(tmp_path, c, method=method))
    path = tmp_path / "run" / "artifacts" / "segmenter.json"
    doc = json.loads(path.read_text())
    assert doc["format"] == "segkit-segmenter" and doc["format_version"] == segment.FORMAT_VERSION
    loaded = Segmenter.load(path)
    assert loaded.to_dict() == res.segmenter.to_dict()
    new = c.sample(frac=1.0, random_state=0)  # other order, a few changed values
    new.iloc[:5, 1] = new.iloc[:5, 1] * 1.01
    pd.testing.assert_frame_equal(loaded.score(new), res.segmenter.score(new))
    resaved = loaded.save(tmp_path / "again.json")
    assert resaved.read_bytes() == path.read_bytes()
    assert (loaded.score(c)["segment"].to_numpy() == res.segments["segment"].to_numpy()).all()


@pytest.fixture
def saved(tmp_path):
    customers, _ = blobs(9)
    cluster.run(run_on(tmp_path, customers))
    return tmp_path / "run" / "artifacts" / "segmenter.json"


def _tamper(path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_garbage_file_is_refused_by_name(saved):
    saved.write_text("not json {")
    with pytest.raises(SegkitError, match=r"segmenter.json is not a valid segkit segmenter"):
        Segmenter.load(saved)
    saved.write_text("[1, 2]")
    with pytest.raises(SegkitError, match=r"segmenter.json is not .*expected a JSON object"):
        Segmenter.load(saved.parent.parent)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format_version=99), r"version 99, expected 'segkit-segmenter'"),
        (lambda d: d.update(method="pickle"), r"method 'pickle', expected one of"),
        (lambda d: d.pop("relabel"), r"KeyError: 'relabel'"),
        (lambda d: d["model"].update(centers=[[0.0, 1.0]]), r"model arrays of shape \(1, 2\)"),
        (lambda d: d["model"].update(centers="x"), r"ValueError"),
        (lambda d: d.update(numeric=["nope"]), r"KeyError: 'nope'"),
        (lambda d: d["transform"].update(logged=[]), r"centers/scales do not match"),
    ],
)
def test_tampered_file_is_refused_by_name(saved, change, message):
    _tamper(saved, change)
    with pytest.raises(SegkitError, match=r"segmenter.json is not a valid segkit segmenter.*"):
        Segmenter.load(saved)
    with pytest.raises(SegkitError, match=message):
        Segmenter.load(saved)


def test_transform_and_columns_must_agree(saved):
    _tamper(saved, lambda d: d.update(categorical=["channel"], levels={"channel": ["a"]}))
    with pytest.raises(SegkitError, match=r"the transform does not match the columns"):
        Segmenter.load(saved)


def test_pickled_segmenter_is_not_loaded(saved):
    legacy = saved.with_suffix(".joblib")
    legacy.write_bytes(b"any bytes: never unpickled")
    saved.unlink()
    with pytest.raises(SegkitError, match=r"segmenter.joblib is a pickled segmenter .* no longer"):
        Segmenter.load(saved.parent.parent)
    with pytest.raises(SegkitError, match=r"pickled segmenter"):
        Segmenter.load(legacy)
    legacy.unlink()
    with pytest.raises(SegkitError, match=r"no fitted segmenter at .*segmenter.json; run"):
        Segmenter.load(saved.parent.parent)


def test_flags_join_every_reason(saved):
    seg = Segmenter.load(saved)
    customers, _ = blobs(9)
    new = customers.head(3).copy()
    new["revenue"] = new["revenue"].astype(object)
    new.loc[0, ["revenue", "orders"]] = ["lots", 1e6]
    flags = seg.flags(new)
    top = seg.ranges["orders"][1]
    assert flags[0] == f"orders above the fitted maximum {top:g}; revenue not a number"
    assert flags[1:].tolist() == ["", ""]


def test_read_customers_errors(tmp_path):
    with pytest.raises(SegkitError, match=r"customer table .*nope.csv not found"):
        segment.read_customers(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("customer_id,revenue\n")
    with pytest.raises(SegkitError, match=r"empty.csv: no customer rows"):
        segment.read_customers(tmp_path / "empty.csv")


def test_order_labels_and_value_column():
    t = pd.DataFrame({"monetary": [1.0, 5.0, 5.0, 5.0], "x": 0.0})
    assert segment.value_column(t, ["x"]) == "monetary"
    assert segment.value_column(t[["x"]], ["x"]) == "x"
    assert segment.value_column(t[["x"]], []) == ""
    # ties on the mean go to the larger segment
    assert segment.order_labels(t, np.array([0, 1, 2, 2]), "monetary") == {2: 1, 1: 2, 0: 3}
