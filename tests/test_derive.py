"""segkit.derive: expressions are parsed and checked, never executed; values by hand."""

import numpy as np
import pandas as pd
import pytest

from segkit import derive
from segkit.core.errors import SegkitError

COLS = ["MntWines", "MntFruits", "Year_Birth", "Kidhome", "Teenhome", "Mnt Gold"]


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "MntWines": [100.0, 0.0, 50.0],
            "MntFruits": [10.0, 5.0, np.nan],
            "Year_Birth": [1970, 1985, 1950],
            "Kidhome": [0, 1, 2],
            "Teenhome": [1, 0, 1],
            "Mnt Gold": [3.0, 4.0, 5.0],
        }
    )


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("MntWines + MntFruits", [110.0, 5.0, np.nan]),
        ("2014 - Year_Birth", [44.0, 29.0, 64.0]),
        ("Kidhome + Teenhome", [1.0, 1.0, 3.0]),
        ("-Kidhome * 2 + 1", [1.0, -1.0, -3.0]),
        ("MntFruits / MntWines", [0.1, np.nan, np.nan]),  # 5 / 0 is not a number: empty
        ("Year_Birth // 10 % 10", [7.0, 8.0, 5.0]),
        ("Kidhome ** 2", [0.0, 1.0, 4.0]),
        ("(Kidhome + Teenhome) >= 2", [0.0, 0.0, 1.0]),
        ("0 < Kidhome <= 1", [0.0, 1.0, 0.0]),
        ("where(Kidhome > 0, MntWines, -1)", [-1.0, 0.0, 50.0]),
        ("if_else(Teenhome == 1, 1, 0)", [1.0, 0.0, 1.0]),
        ("max(Kidhome, Teenhome, 0.5)", [1.0, 1.0, 2.0]),
        ("min(MntWines, 60)", [60.0, 0.0, 50.0]),
        ("abs(Kidhome - 1) + sqrt(Kidhome ** 2)", [1.0, 1.0, 3.0]),
        ("log1p(MntWines)", [np.log(101.0), 0.0, np.log(51.0)]),
        ("log(MntWines)", [np.log(100.0), np.nan, np.log(50.0)]),  # log 0: empty
        ("`Mnt Gold` * 2", [6.0, 8.0, 10.0]),
        ("7", [7.0, 7.0, 7.0]),
    ],
)
def test_values_by_hand(frame, text, want):
    got = derive.evaluate(derive.parse("x", text, frame.columns), frame)
    np.testing.assert_allclose(got.to_numpy(), want, equal_nan=True)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("open('/etc/passwd')", r"derive\.x == .*calls 'open'; the functions allowed are"),
        ("__import__('os').system('ls')", r"calls .__import__\('os'\)\.system.; the functions"),
        ("MntWines.sum()", r"calls 'MntWines\.sum'"),
        ("MntWines.real", r"'MntWines\.real' is not allowed \(Attribute\)"),
        ("MntWines[0]", r"'MntWines\[0\]' is not allowed \(Subscript\)"),
        ("'a' + MntWines", r"'a' is not a number"),
        ("True + MntWines", r"True is not a number"),
        ("read_csv('x.csv')", r"calls 'read_csv'"),
        ("log(MntWines, base=2)", r"no keyword arguments"),
        ("sqrt(MntWines, 2)", r"sqrt\(\) takes 1 argument"),
        ("MntWines and Kidhome", r"is not allowed \(BoolOp\)"),
        ("MntWines @ Kidhome", r"not one of \+ - \* / // % \*\*"),
        ("~Kidhome", r"only unary minus"),
        ("Kidhome in Teenhome", r"only < <= > >= == != compare"),
        ("lambda: 1", r"is not allowed \(Lambda\)"),
        ("[MntWines]", r"is not allowed \(List\)"),
        ("MntWines +", r"not an expression"),
        ("", r"must be an expression"),
        (None, r"must be an expression"),
    ],
)
def test_anything_but_arithmetic_is_refused_naming_the_part(text, match):
    with pytest.raises(SegkitError, match=match):
        derive.parse("x", text, COLS)


def test_unknown_column_is_named_with_did_you_mean():
    with pytest.raises(
        SegkitError, match=r"derive\.total == .*unknown column 'MntWine'; did you mean 'MntWines'"
    ):
        derive.parse("total", "MntWine + MntFruits", COLS)
    with pytest.raises(SegkitError, match=r"unknown column 'Gold'.* Columns: \["):
        derive.parse("total", "Gold", COLS, where="data.customers.derive")


def test_derive_adds_columns_in_order_and_notes_undefined_values(frame):
    spec = {"children": "Kidhome + Teenhome", "big_family": "children >= 3", "r": "1 / Kidhome"}
    out, notes = derive.derive(frame, spec)
    assert out["children"].tolist() == [1.0, 1.0, 3.0]
    assert out["big_family"].tolist() == [0.0, 0.0, 1.0]
    assert np.isnan(out["r"].iloc[0]) and out["r"].iloc[2] == 0.5
    assert notes == [
        "data.customers.derive.r: 1 value(s) not defined (a division by zero or the log of a "
        "negative number) were left empty."
    ]
    assert "children" not in frame.columns  # the input is not changed


def test_derive_refuses_a_taken_name_or_a_bad_spec(frame):
    with pytest.raises(SegkitError, match=r"derive\.Kidhome: the table already has a column"):
        derive.derive(frame, {"Kidhome": "Teenhome"})
    with pytest.raises(SegkitError, match=r"must be a mapping name: expression"):
        derive.derive(frame, ["a + b"])  # type: ignore[arg-type]
    with pytest.raises(SegkitError, match=r"'' is not a column name"):
        derive.derive(frame, {"": "Kidhome"})
    # every expression is checked before any is evaluated
    with pytest.raises(SegkitError, match=r"derive\.b == 'nope'"):
        derive.derive(frame, {"a": "Kidhome", "b": "nope"})


def test_apply_spec_adds_only_what_is_missing(frame):
    spec = {"derive": {"children": "Kidhome + Teenhome"}}
    once, _ = derive.apply_spec(frame, spec)
    twice, _ = derive.apply_spec(once.assign(children=-1.0), spec)
    assert (twice["children"] == -1.0).all()  # already there: kept
    assert derive.apply_spec(frame, None)[0] is frame
