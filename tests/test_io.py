"""Loading and cleaning inputs: every row used or rejected with a reason, clear errors."""

from pathlib import Path

import pandas as pd
import pytest

from segkit import io
from segkit.core.errors import SegkitError

BAD = Path(__file__).parent / "bad_inputs"
COLS = {"customer_id": "customer", "timestamp": "date", "amount": "value"}


def load(name, **extra):
    spec = {"path": str(BAD / name), "columns": {**COLS, **extra.pop("columns", {})}, **extra}
    return io.load_transactions(spec)


def reconciles(t: io.Table) -> bool:
    q = t.quality
    n_rej = len(t.rejects.df())
    return (
        q["rows_in"] == q["rows_used"] + q["rows_rejected"]
        and q["rows_rejected"] == sum(q["rejected"].values()) == n_rej
        and len(t.used.df()) == q["rows_used"]
    )


def test_latin1_file_is_read_and_encoding_recorded():
    t = load("latin1.csv", columns={"country": "country"})
    assert t.quality["encoding"] == "latin-1"
    assert t.used.df()["country"].tolist() == ["Café Land", "France"]


@pytest.mark.parametrize(
    "name, match",
    [
        ("header_only.csv", r"header_only.csv' has a header but no rows"),
        ("empty.csv", r"empty.csv' is empty \(0 bytes\)"),
        ("missing_column.csv", r"missing column 'value' \(mapped to amount\); columns are"),
        ("does_not_exist.csv", r"does_not_exist.csv' does not exist"),
    ],
)
def test_unusable_files_stop_with_one_clear_error(name, match):
    with pytest.raises(SegkitError, match=match):
        load(name)


def test_a_rule_that_empties_the_table_is_named():
    with pytest.raises(SegkitError, match=r"no rows left after cleaning.*'cancellation'"):
        load("all_cancelled.csv", columns={"order_id": "invoice"}, cancel_prefix="C")


def test_mixed_dates_parse_and_broken_ones_are_rejected():
    t = load("mixed_dates.csv", dayfirst=True)
    used = t.used.df()
    assert used["timestamp"].tolist() == [
        pd.Timestamp("2024-01-05"),
        pd.Timestamp("2024-01-06"),  # 06/01/2024 read day first (dayfirst: true)
        pd.Timestamp("2024-02-01 10:30"),
    ]
    rej = t.rejects.df()
    assert rej["row"].tolist() == [3, 4, 5]  # 2024-13-45, "not a date", empty
    assert set(rej["reason"]) == {"unparseable_timestamp"}
    assert reconciles(t)


def test_month_first_dates_when_asked():
    t = load("mixed_dates.csv", dayfirst=False)
    assert pd.Timestamp("2024-06-01") in t.used.df()["timestamp"].tolist()


def test_float_ids_and_blanks_are_one_customer_and_empty_ids_rejected():
    t = load("float_ids.csv")
    assert t.used.df()["customer_id"].unique().tolist() == ["17850"]
    assert t.quality["rejected"] == {"missing_customer_id": 1}
    assert reconciles(t)


def test_category_spelling_variants_are_unified_to_the_most_frequent():
    t = load("variants.csv", columns={"country": "country"})
    assert t.used.df()["country"].tolist() == ["United Kingdom"] * 4 + ["France"]


def test_semicolon_file_amount_rules():
    t = load("semicolon.csv")
    assert t.used.df()["amount"].tolist() == [10.5]
    assert t.quality["rejected"] == {"non_numeric_amount": 1, "non_positive_amount": 3}
    rej = t.rejects.df()
    assert rej.loc[rej["row"] == 2, "value"].item() == "abc"  # the raw value is kept
    assert reconciles(t)


def test_zero_amounts_kept_when_allowed_and_duplicates_rejected():
    t = load("semicolon.csv", allow_zero_amount=True)
    assert t.quality["rejected"] == {
        "non_numeric_amount": 1,
        "non_positive_amount": 1,
        "duplicate_row": 1,
    }
    assert reconciles(t)


def test_after_observation_end_is_rejected(tmp_path):
    t = io.load_transactions(
        {"path": str(BAD / "variants.csv"), "columns": COLS}, observation_end="2024-01-07"
    )
    assert t.quality["rejected"] == {"after_observation_end": 2}  # the whole 7th counts


def test_excel_input(tmp_path):
    df = pd.DataFrame(
        {"customer": ["a", "b"], "date": ["2024-01-05", "2024-01-06"], "value": [3, 4]}
    )
    path = tmp_path / "tx.xlsx"
    df.to_excel(path, index=False)
    t = io.load_transactions({"path": str(path), "columns": COLS})
    assert t.quality["format"] == "excel"
    assert t.used.df()["amount"].tolist() == [3.0, 4.0]


def test_gzipped_csv_with_explicit_delimiter(tmp_path):
    path = tmp_path / "tx.csv.gz"
    pd.DataFrame({"customer": ["a"], "date": ["2024-01-05"], "value": [3.5]}).to_csv(
        path, sep="|", index=False
    )
    t = io.load_transactions({"path": str(path), "columns": COLS, "sep": "|"})
    assert t.used.df()["amount"].tolist() == [3.5]


def test_unknown_spec_key_and_role():
    with pytest.raises(
        SegkitError,
        match=r"unknown key 'data.transactions.colums'; did you mean 'data.transactions.columns'",
    ):
        io.load_transactions({"path": "x.csv", "colums": {}})
    with pytest.raises(
        SegkitError, match=r"unknown column role in data.transactions.columns 'price'.*'unit_price'"
    ):
        io.load_transactions({"path": "x.csv", "columns": {"price": "p"}})


def test_experiment_rules_and_reconciliation():
    t = io.load_experiment(
        {"path": str(BAD / "experiment_bad.csv"), "outcomes": ["visit", "spend"]}
    )
    assert t.quality["rejected"] == {
        "missing_arm": 1,
        "duplicate_customer_id": 1,
        "non_numeric_outcome": 1,
    }
    assert t.used.df()["customer_id"].tolist() == ["A", "B"]
    assert reconciles(t)


@pytest.mark.slow
def test_online_retail_cleaning_counts():
    """UCI Online Retail (Chen, Sain & Guo 2012): 541,909 rows.

    Explained: 135,080 rows have no CustomerID (guest checkouts, the data set's known gap);
    of the rest, 8,905 are invoices starting with "C" (cancellations, which also carry the
    negative quantities); 40 have a zero unit price (free samples, adjustments); 5,192 are
    exact repeats of an earlier row (the same line scanned twice). 392,692 remain.
    """
    t = io.load_transactions(
        {
            "path": "data/online_retail.parquet",
            "columns": {
                "customer_id": "CustomerID",
                "timestamp": "InvoiceDate",
                "quantity": "Quantity",
                "unit_price": "UnitPrice",
                "order_id": "InvoiceNo",
            },
            "cancel_prefix": "C",
        }
    )
    q = t.quality
    assert q["rows_in"] == 541_909
    assert q["rejected"] == {
        "missing_customer_id": 135_080,
        "cancellation": 8_905,
        "non_positive_amount": 40,
        "duplicate_row": 5_192,
    }
    assert q["rows_used"] == 392_692
    assert q["rows_in"] == q["rows_used"] + sum(q["rejected"].values())


# ---------------------------------------------------------------- SQL built from values


def test_path_with_a_quote_is_read(tmp_path):
    path = tmp_path / "o'brien's sales.csv"
    path.write_bytes((BAD / "variants.csv").read_bytes())
    t = io.load_transactions({"path": str(path), "columns": COLS})
    assert t.quality["rows_used"] == 5 and reconciles(t)


def test_column_names_with_a_space_and_a_double_quote():
    t = io.load_transactions(
        {
            "path": str(BAD / "odd_columns.csv"),
            "columns": {
                "customer_id": "customer id",
                "timestamp": 'date "local"',
                "amount": "value",
            },
        }
    )
    assert t.used.df()["customer_id"].tolist() == ["A", "B"]
    assert reconciles(t)


def test_cancel_prefix_injection_is_plain_text():
    crafted = "C') OR (SELECT count(*) FROM read_csv('/etc/passwd')) > 0 OR starts_with(order_id, '"
    t = load("quote_prefix.csv", columns={"order_id": "invoice"}, cancel_prefix=crafted)
    assert t.quality["rejected"] == {}  # no order id starts with that text
    t = load("quote_prefix.csv", columns={"order_id": "invoice"}, cancel_prefix="C'")
    assert t.quality["rejected"] == {"cancellation": 1}
    assert t.used.df()["order_id"].tolist() == ["X1", "C1"]


def test_date_formats_injection_is_plain_text():
    fmt = "%Y-%m-%d'], 'x') OR 1=1 OR try_strptime('2024-01-01', ['%Y"
    with pytest.raises(
        SegkitError, match=r"no rows left after cleaning; 5 rows read.*'unparseable_timestamp'"
    ):
        load("variants.csv", date_formats=[fmt])
    t = load("variants.csv", date_formats=["%Y-%m-%d"])
    assert t.quality["rows_used"] == 5


def test_a_bad_date_format_is_named():
    with pytest.raises(SegkitError, match=r"date_formats: '%Q' is not a strptime format"):
        load("variants.csv", date_formats=["%Q"])


def test_memory_limit_and_temp_dir_with_quotes(tmp_path):
    con = io.connect(memory_limit="1GB", temp_dir=tmp_path / "it's")
    assert con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0].endswith("it's")


# ---------------------------------------------------------------- amounts


def test_non_finite_and_implausible_amounts_are_rejected():
    t = load("non_finite.csv")
    assert t.quality["rejected"] == {"non_finite_amount": 5, "implausible_amount": 2}
    assert t.used.df()["amount"].tolist() == [10.0]
    rej = t.rejects.df().set_index("row")
    assert rej.loc[6, "value"] == "1e308" and rej.loc[6, "reason"] == "implausible_amount"
    assert rej.loc[8, "reason"] == "non_finite_amount"  # 1e400 overflows to inf
    assert reconciles(t)


def test_non_finite_quantity_times_price_is_rejected(tmp_path):
    path = tmp_path / "qp.csv"
    path.write_text("c,d,q,p\nA,2024-01-05,2,3\nA,2024-01-06,1e200,1e200\nB,2024-01-06,nan,1\n")
    t = io.load_transactions(
        {
            "path": str(path),
            "columns": {"customer_id": "c", "timestamp": "d", "quantity": "q", "unit_price": "p"},
        }
    )
    assert t.quality["rejected"] == {"non_finite_amount": 2}
    assert t.used.df()["amount"].tolist() == [6.0]


def test_decimal_comma_hint_and_option():
    with pytest.raises(
        SegkitError,
        match=r"all rejected.*'non_numeric_amount'.*3 of 3 values in column 'value' look like numbers with a decimal comma.*decimal: \",\"",
    ):
        load("decimal_comma.csv")
    t = load("decimal_comma.csv", decimal=",", thousands=".")
    assert t.used.df()["amount"].tolist() == [12.5, 1234.5, 3.0]
    assert "notes" not in t.quality


def test_decimal_and_thousands_must_be_known_and_differ():
    with pytest.raises(SegkitError, match=r"data.transactions.decimal == ';', must be one of"):
        load("decimal_comma.csv", decimal=";")
    with pytest.raises(
        SegkitError,
        match=r"thousands == ',', must be one of .* and differ from data.transactions.decimal == ','",
    ):
        load("decimal_comma.csv", decimal=",", thousands=",")


# ---------------------------------------------------------------- dates


def test_ambiguous_dates_without_an_order_stop_with_a_clear_error():
    with pytest.raises(
        SegkitError,
        match=r"mixed_dates.csv\): column 'date': 1 dates like 01/02/2011 could be day-first or "
        r"month-first and no value proves which; set data.transactions.dayfirst: true",
    ):
        load("mixed_dates.csv")


def test_month_first_dates_are_read_month_first_by_default():
    t = load("us_dates.csv")
    assert t.used.df()["timestamp"].tolist()[0] == pd.Timestamp("2024-01-13")
    assert t.quality["date_order"]["basis"] == "proven by 2 values"


def test_month_first_dates_with_dayfirst_true_stop_with_a_clear_error():
    with pytest.raises(
        SegkitError,
        match=r"us_dates.csv\): column 'date': data.transactions.dayfirst is True, but 2 values "
        r"can only be month-first \(e.g. '01/13/2024'\) and 1 ambiguous ones would be read day-first: "
        r"set data.transactions.dayfirst: False",
    ):
        load("us_dates.csv", dayfirst=True)


def test_month_first_dates_read_when_dayfirst_false_and_the_order_recorded():
    t = load("us_dates.csv", dayfirst=False)
    assert t.used.df()["timestamp"].tolist() == [
        pd.Timestamp("2024-01-13"),
        pd.Timestamp("2024-02-03"),
        pd.Timestamp("2023-12-25"),
    ]
    assert t.quality["date_order"] == {
        "order": "month-first",
        "basis": "proven by 2 values",
        "ambiguous_values": 1,
    }


def test_both_orders_without_ambiguity_are_each_read_the_only_way():
    t = load("us_and_eu_dates.csv")
    assert t.used.df()["timestamp"].tolist() == [pd.Timestamp("2024-01-13")] * 2
    assert "only way" in t.quality["date_order"]["basis"]


def test_mixed_orders_with_ambiguous_dates_stop():
    with pytest.raises(
        SegkitError,
        match=r"column 'date' mixes date orders: 1 values can only be day-first \(e.g. "
        r"'13/01/2024'\), 1 only month-first \(e.g. '01/13/2024'\), and 1 could be either; "
        r"set data.transactions.date_formats",
    ):
        load("mixed_order_dates.csv")


def test_ambiguous_dates_record_the_assumed_order():
    t = load("mixed_dates.csv", dayfirst=True)
    assert t.quality["date_order"]["basis"].startswith("assumed (dayfirst: True)")
    assert t.quality["date_order"]["ambiguous_values"] == 1


def test_offsets_are_converted_to_utc_and_counted():
    t = load("offsets.csv")
    assert t.used.df()["timestamp"].tolist() == [
        pd.Timestamp("2024-01-05 21:30"),
        pd.Timestamp("2024-01-05 10:00"),
        pd.Timestamp("2024-01-05 15:00"),
        pd.Timestamp("2024-01-05 10:00"),  # no offset: kept as written
    ]
    assert t.quality["timestamps_converted_to_utc"] == 3


def test_local_time_keeps_the_wall_time_as_written():
    # 23:30 at +02:00 is the 5th where it was written, 21:30 UTC; 10:00 -05:00 stays 10:00
    t = load("offsets.csv", local_time=True)
    assert (
        t.used.df()["timestamp"].tolist()
        == [pd.Timestamp("2024-01-05 23:30")] + [pd.Timestamp("2024-01-05 10:00")] * 3
    )
    assert t.quality["timestamps_offset_dropped"] == 3
    assert "timestamps_converted_to_utc" not in t.quality


def test_local_time_with_an_offset_format(tmp_path):
    """date_formats with %z: UTC, or with local_time the wall time as written."""
    path = tmp_path / "zoned.csv"
    path.write_text(
        "customer,date,value\nA,2024-01-05 23:30:00 +0200,10\nB,2024-01-05 10:00:00 -0500,12\n"
    )
    spec = {"path": str(path), "columns": COLS, "date_formats": ["%Y-%m-%d %H:%M:%S %z"]}
    utc = io.load_transactions(spec).used.df()["timestamp"].tolist()
    wall = io.load_transactions({**spec, "local_time": True}).used.df()["timestamp"].tolist()
    assert utc == [pd.Timestamp("2024-01-05 21:30"), pd.Timestamp("2024-01-05 15:00")]
    assert wall == [pd.Timestamp("2024-01-05 23:30"), pd.Timestamp("2024-01-05 10:00")]


def test_future_timestamps_are_rejected_relative_to_the_run_date():
    t = io.load_transactions({"path": str(BAD / "future.csv"), "columns": COLS}, today="2024-06-30")
    assert t.quality["rejected"] == {"future_timestamp": 1}
    assert t.used.df()["timestamp"].max() == pd.Timestamp("2024-01-06")
    t = io.load_transactions({"path": str(BAD / "future.csv"), "columns": COLS})
    assert t.quality["rejected"] == {"future_timestamp": 1}  # today, whatever it is, < 2099
    t = io.load_transactions(
        {"path": str(BAD / "future.csv"), "columns": COLS}, observation_end="2024-01-05"
    )
    assert t.quality["rejected"] == {"after_observation_end": 2}


# ---------------------------------------------------------------- ids and arms


def test_ids_padded_with_blanks_are_one_customer_and_counted():
    t = load("padded_ids.csv")
    assert t.used.df()["customer_id"].tolist() == ["C000001"] * 3 + ["C000002"]
    assert t.quality["ids_trimmed"] == 2


def test_experiment_ids_and_arms_trimmed_and_infinite_outcome_rejected():
    t = io.load_experiment(
        {"path": str(BAD / "experiment_padded.csv"), "columns": {"customer_id": "id"}}
    )
    used = t.used.df()
    assert used["customer_id"].tolist() == ["A", "B", "C"]
    assert used["arm"].tolist() == ["treatment", "treatment", "control"]
    assert t.quality["ids_trimmed"] == 1 and t.quality["arms_trimmed"] == 2
    assert t.quality["rejected"] == {"non_numeric_outcome": 1}
    assert reconciles(t)


# ---------------------------------------------------------------- files


def test_utf16_with_a_bom_is_read():
    t = load("utf16.csv", columns={"country": "country"})
    assert t.quality["encoding"] == "utf-16"
    assert t.used.df()["country"].tolist() == ["Côte d’Ivoire", "France"]


def test_utf16_with_another_encoding_set_says_so():
    with pytest.raises(
        SegkitError,
        match=r"utf16.csv' starts with a UTF-16 byte-order mark but data.transactions.encoding is 'latin-1': set encoding: utf-16",
    ):
        load("utf16.csv", encoding="latin-1")


def test_utf16_without_a_bom_is_an_encoding_error(tmp_path):
    path = tmp_path / "nobom.csv"
    path.write_bytes("customer,date,value\nA,2024-01-05,1\n".encode("utf-16-le"))
    with pytest.raises(
        SegkitError,
        match=r"nobom.csv' has NUL bytes in its first 70 bytes.*set data.transactions.encoding: utf-16",
    ):
        io.load_transactions({"path": str(path), "columns": COLS})


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("customer,date,value\nA,2024-01-05,1\n".encode("utf-8-sig"))
    t = io.load_transactions({"path": str(path), "columns": COLS})
    assert t.quality["encoding"] == "utf-8" and t.quality["rows_used"] == 1


def test_duplicate_column_names_are_named():
    with pytest.raises(
        SegkitError,
        match=r"4 duplicate column names \['customer', 'value', 'Value', 'customer'\] \(case is ignored\)",
    ):
        load("duplicate_columns.csv")


def test_excel_sheet_errors_list_the_sheets(tmp_path):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"note": ["exported by the till"]}).to_excel(
            xl, sheet_name="About", index=False
        )
        pd.DataFrame(
            {"customer": ["a", "b"], "date": ["2024-01-05", "2024-01-06"], "value": [3, 4]}
        ).to_excel(xl, sheet_name="Sales", index=False)
    with pytest.raises(
        SegkitError,
        match=r"missing column 'customer' \(mapped to customer_id\).*the workbook's sheets are \['About', 'Sales'\]",
    ):
        io.load_transactions({"path": str(path), "columns": COLS})
    with pytest.raises(
        SegkitError,
        match=r"sheet == 'Sheet1' is not a sheet of the workbook; the workbook's sheets are \['About', 'Sales'\]",
    ):
        io.load_transactions({"path": str(path), "columns": COLS, "sheet": "Sheet1"})
    with pytest.raises(SegkitError, match=r"sheet == 5 is out of range \(2 sheets\)"):
        io.load_transactions({"path": str(path), "columns": COLS, "sheet": 5})
    t = io.load_transactions({"path": str(path), "columns": COLS, "sheet": "Sales"})
    assert t.quality["sheets"] == ["About", "Sales"] and t.quality["rows_used"] == 2
    with pytest.raises(
        SegkitError, match=r"sheet 'Sales' has \['customer', 'date', 'value'\] where"
    ):
        io.load_transactions({"path": str(path), "columns": COLS, "sheet": "all"})


def test_sheet_all_stacks_the_sheets_of_a_log_split_by_year(tmp_path):
    path = tmp_path / "online_retail_II.xlsx"
    years = {
        "Year 2009-2010": {"customer": ["a", "b"], "date": ["2009-12-01", "2010-01-06"]},
        "Year 2010-2011": {
            "customer": ["a", "c", "c"],
            "date": ["2010-12-01"] * 2 + ["2011-01-02"],
        },
    }
    with pd.ExcelWriter(path) as xl:
        for name, cols in years.items():
            pd.DataFrame({**cols, "value": [5] * len(cols["date"])}).to_excel(
                xl, sheet_name=name, index=False
            )
    t = io.load_transactions({"path": str(path), "columns": COLS, "sheet": "all"})
    assert t.quality["rows_used"] == 5 and reconciles(t)
    assert sorted(t.used.df()["customer_id"]) == ["a", "a", "b", "c", "c"]


def test_a_file_that_is_not_data_is_never_quoted():
    with pytest.raises(SegkitError) as err:
        load("not_data.txt")
    msg = str(err.value)
    assert "missing column 'customer' (mapped to customer_id)" in msg
    assert "is it the right file" in msg
    for text in ("root", "daemon", "/bin", "nologin"):
        assert text not in msg


def test_a_binary_file_is_not_a_table(tmp_path):
    path = tmp_path / "blob.csv"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    with pytest.raises(
        SegkitError,
        match=r"blob.csv' has NUL bytes in its first 1032 bytes: it is not a text table",
    ):
        io.load_transactions({"path": str(path), "columns": COLS})


def test_reader_errors_drop_the_quoted_lines():
    exc = RuntimeError("CSV Error on Line: 3\nOriginal Line: secret,row\nPossible Solution: x")
    assert io.read.reader_error(exc) == "CSV Error on Line: 3"
    assert "secret" not in io.read.reader_error(exc)


def test_io_imports_nothing_above_the_core_layer():
    import ast

    for path in (Path(io.__file__).parent).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = (
                    [node.module]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                )
                for n in names:
                    if n and n.startswith("segkit"):
                        assert n.startswith(("segkit.core", "segkit.io")), (path.name, n)


def test_cp1252_bytes_duckdb_refuses_are_decoded_by_python(tmp_path):
    path = tmp_path / "euro.csv"
    path.write_bytes("customer,date,value,country\nA,2024-01-05,10,€uro Zone\n".encode("cp1252"))
    t = io.load_transactions({"path": str(path), "columns": {**COLS, "country": "country"}})
    assert t.quality["encoding"] == "cp1252"
    assert t.used.df()["country"].tolist() == ["€uro Zone"]
    t = io.load_transactions(
        {"path": str(path), "columns": {**COLS, "country": "country"}, "encoding": "cp1252"}
    )
    assert t.used.df()["country"].tolist() == ["€uro Zone"]


def test_encoding_errors_name_the_encoding(tmp_path):
    with pytest.raises(
        SegkitError,
        match=r"data.transactions.encoding == 'klingon' is not an encoding Python knows",
    ):
        load("variants.csv", encoding="klingon")
    with pytest.raises(
        SegkitError, match=r"latin1.csv' is not valid utf-8 \(byte \d+ of a chunk cannot be decoded"
    ):
        load("latin1.csv", encoding="utf-8")


def test_parquet_with_time_zone_aware_timestamps_is_read_in_utc(tmp_path):
    """A pandas or Spark export with zoned timestamps: read (it needed pytz before) and
    converted to UTC, each row counted."""
    stamps = pd.to_datetime(["2024-01-01 00:30", "2024-03-31 10:00", "2024-07-01 23:30"])
    pd.DataFrame(
        {
            "customer_id": ["a", "b", "a"],
            "timestamp": stamps.tz_localize("Europe/Berlin"),
            "amount": [1.0, 2.0, 3.0],
        }
    ).to_parquet(tmp_path / "tx.parquet")
    t = io.load_transactions({"path": str(tmp_path / "tx.parquet")})
    used = t.used.df().sort_values("amount")
    expected = stamps.tz_localize("Europe/Berlin").tz_convert("UTC").tz_localize(None)
    assert list(used["timestamp"]) == list(expected)  # 2023-12-31 23:30, the day before
    assert t.quality["rows_used"] == 3
    assert t.quality["timestamps_converted_to_utc"] == 3


def _typed_stamps(kind: str) -> tuple[pd.Series, list[pd.Timestamp]]:
    """A Parquet timestamp column of ``kind`` and the naive timestamps the loader should give."""
    stamps = pd.Series(pd.to_datetime(["2024-01-31 08:15", "2024-02-29 00:00", "2024-12-01 23:59"]))
    if kind == "date":
        return stamps.dt.date, list(stamps.dt.normalize())
    if kind == "zoned":
        zoned = stamps.dt.tz_localize("Europe/Berlin")
        return zoned, list(zoned.dt.tz_convert("UTC").dt.tz_localize(None))
    return stamps, list(stamps)


@pytest.mark.parametrize("kind", ["timestamp", "date", "zoned"])
def test_date_formats_leave_a_typed_parquet_timestamp_as_it_is(tmp_path, kind):
    """``date_formats`` are for text: a Parquet column stored as a timestamp or a date is
    used as it is (as on engine: spark), not parsed again with them (which rejected every
    row); the other day/month order in the formats shows they are not applied."""
    column, expected = _typed_stamps(kind)
    path = tmp_path / "tx.parquet"
    frame = pd.DataFrame(
        {"customer_id": ["a", "b", "a"], "timestamp": column, "amount": [1.0, 2.0, 3.0]}
    )
    frame.to_parquet(path)
    t = io.load_transactions({"path": str(path), "date_formats": ["%m/%d/%Y"]})
    assert reconciles(t)
    assert t.quality["rows_used"] == 3
    assert list(t.used.df().sort_values("amount")["timestamp"]) == expected


def test_date_formats_still_read_a_parquet_text_column(tmp_path):
    """A timestamp stored as text in Parquet is read with ``date_formats``, and a value they
    do not match is rejected as before."""
    stamps = pd.Series(pd.to_datetime(["2024-01-31 08:15", "2024-02-29 00:00"]))
    text = [*stamps.dt.strftime("%d/%m/%Y %H:%M"), "2024-12-01 23:59"]
    path = tmp_path / "tx.parquet"
    pd.DataFrame(
        {"customer_id": ["a", "b", "c"], "timestamp": text, "amount": [1.0, 2.0, 3.0]}
    ).to_parquet(path)
    t = io.load_transactions({"path": str(path), "date_formats": ["%d/%m/%Y %H:%M"]})
    assert reconciles(t)
    assert list(t.used.df()["timestamp"]) == list(stamps)
    assert t.quality["rejected"] == {"unparseable_timestamp": 1}


@pytest.mark.parametrize("kind", ["timestamp", "date"])
def test_date_formats_leave_a_typed_parquet_customer_date_as_it_is(tmp_path, kind):
    """A customer attribute stored as a date in Parquet stays a date with ``date_formats``
    set (it became a categorical text column), and a text date beside it is read with them."""
    column, joined = _typed_stamps(kind)
    path = tmp_path / "customers.parquet"
    pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "joined": column,
            "birthday": ["31/01/1980", "29/02/1992", "01/12/2001"],
        }
    ).to_parquet(path)
    end = pd.Timestamp("2025-01-01")
    t = io.load_customers({"path": str(path), "date_formats": ["%d/%m/%Y"]}, observation_end=end)
    used = t.used.df()
    assert list(t.quality["dates"]) == ["joined", "birthday"]
    born = pd.to_datetime(["1980-01-31", "1992-02-29", "2001-12-01"])
    assert list(used["days_since_birthday"]) == [float((end - d).days) for d in born]
    assert list(used["days_since_joined"]) == [float((end - d.normalize()).days) for d in joined]


def test_yes_no_outcomes_are_one_and_zero(tmp_path):
    path = tmp_path / "kampagne.csv"
    path.write_text(
        "Kunde;Gruppe;Gekauft;Umsatz\n"
        "a;Kontrolle;nein;0,00 €\n"
        "b;Test;ja;12,50 €\n"
        "c;Test;JA;€ 1.234,50\n"
        "d;Kontrolle;vielleicht;3\n"
        "e;Test;;4\n",
        encoding="utf-8",
    )
    spec = {"path": str(path), "decimal": ",", "thousands": "."}
    spec["columns"] = {"customer_id": "Kunde", "arm": "Gruppe"}
    t = io.load_experiment({**spec, "outcomes": ["Gekauft", "Umsatz"]})
    got = t.used.df().set_index("customer_id").sort_index()
    assert got.loc[["a", "b", "c"], "Gekauft"].tolist() == [0.0, 1.0, 1.0]
    assert pd.isna(got.loc["e", "Gekauft"])  # missing stays missing
    assert got["Umsatz"].tolist() == [0.0, 12.5, 1234.5, 4.0]  # the sign is not the number
    assert reconciles(t)
    assert t.quality["rejected"] == {"non_numeric_outcome": 1}  # "vielleicht" (maybe)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:4]))
    t = io.load_experiment(spec)
    assert t.quality["outcomes"] == ["Gekauft", "Umsatz"]  # found without being named


def test_yes_no_customer_outcomes_are_one_and_zero(tmp_path):
    path = tmp_path / "crm.csv"
    path.write_text("id,region,Response\n1,north,Yes\n2,south,No\n3,north,yes\n")
    t = io.load_customers(
        {"path": str(path), "columns": {"customer_id": "id"}, "outcomes": ["Response"]}
    )
    got = t.used.df().sort_values("customer_id")
    assert got["Response"].tolist() == [1.0, 0.0, 1.0]
    assert got["region"].tolist() == ["north", "south", "north"]  # an attribute stays text


def test_amounts_with_a_currency_sign_are_numbers(tmp_path):
    path = tmp_path / "orders.csv"
    rows = [
        "c1;2024-01-05;€12.50",
        "c1;2024-02-05;12.50 EUR",  # the same currency: € is EUR
        "c2;2024-01-07;€1,234.00",
        "c2;2024-03-01;EUR 7",
        "c3;2024-01-09;EUR",
    ]
    path.write_text("customer_id;timestamp;amount\n" + "\n".join(rows) + "\n")
    t = io.load_transactions({"path": str(path), "thousands": ","})
    assert sorted(t.used.df()["amount"]) == [7.0, 12.5, 12.5, 1234.0]
    assert reconciles(t)
    assert t.quality["rejected"] == {"non_numeric_amount": 1}  # "EUR" alone is no amount


def _orders(tmp_path, total: str) -> dict:
    """A shop export of 400 orders with 1-3 line items each; the order's total on every
    line (``total="each"``), on its first line only ("first"), or each line's own amount."""
    rows = []
    for o in range(400):
        lines = 1 + o % 3
        for j in range(lines):
            amount = {"each": f"{10 + o % 50}.00", "first": f"{10 + o % 50}.00" if j == 0 else ""}
            rows.append(
                f"#{1000 + o},c{o % 90},2024-{1 + o % 12:02d}-{1 + o % 28:02d},SKU{j},"
                f"{amount.get(total, f'{3 + j}.50')}"
            )
    path = tmp_path / f"orders_{total}.csv"
    path.write_text("Name,Email,Created at,Lineitem sku,Total\n" + "\n".join(rows) + "\n")
    cols = {"customer_id": "Email", "timestamp": "Created at", "amount": "Total"}
    return {"path": str(path), "columns": {**cols, "order_id": "Name"}}


@pytest.mark.parametrize(
    "total, note",
    [
        ("each", "every row has the same 'Total': it looks like the order's total repeated"),
        ("first", "only one row has 'Total' (an order total on its first line"),
        ("line", None),
    ],
)
def test_order_totals_in_line_item_exports_are_named(tmp_path, total, note):
    t = io.load_transactions(_orders(tmp_path, total))
    notes = " ".join(t.quality.get("notes", []))
    if note is None:
        assert notes == ""
    else:
        assert note in notes
    assert reconciles(t)


@pytest.mark.parametrize(
    "written, read",
    [
        ("05.01.2024 14:33", "2024-01-05 14:33"),  # German exports: dots and a time
        ("05.01.24", "2024-01-05"),  # two-digit years: read as 2024, not the year 24
        ("13/01/24", "2024-01-13"),  # DuckDB's cast alone reads this as 0013-01-24
        ("05-01-24", "2024-01-05"),
        ("05-JAN-24", "2024-01-05"),  # Oracle, SAP
        ("05-Jan-2024", "2024-01-05"),
        ("Jan 5, 2024", "2024-01-05"),
        ("5 January 2024", "2024-01-05"),
        ("Jan 5, 2024 2:33 PM", "2024-01-05 14:33"),
        ("05/01/2024 2:33 PM", "2024-01-05 14:33"),
        ("2024/01/05 10:11:12", "2024-01-05 10:11:12"),
    ],
)
def test_common_export_date_formats_are_read(tmp_path, written, read):
    path = tmp_path / "log.csv"
    rows = [f'c{i},"{written}",10' for i in range(3)]
    path.write_text("customer_id,timestamp,amount\n" + "\n".join(rows) + "\n")
    t = io.load_transactions({"path": str(path), "dayfirst": True}, "2024-12-31")
    assert t.used.df()["timestamp"].tolist() == [pd.Timestamp(read)] * 3


def test_a_column_empty_in_its_first_rows_is_still_read_as_numbers_or_dates(tmp_path):
    # the first rows only rule a column out (a text value there); they never rule it in
    n = 5_000
    path = tmp_path / "crm.csv"
    pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "score": [""] * 2_500 + [str(i % 7) for i in range(2_500)],
            "seen": [""] * 2_500 + [f"2024-01-0{1 + i % 9}" for i in range(2_500)],
            "note": [""] * 2_500 + ["x"] + [str(i) for i in range(2_499)],
        }
    ).to_csv(path, index=False)
    got = io.load_customers(str(path)).used.df()
    assert pd.api.types.is_float_dtype(got["score"]) and "days_since_seen" in got
    assert got["note"].dropna().iloc[0] == "x"  # one text value late: text


def _currency_log(tmp_path) -> tuple[Path, pd.DataFrame]:
    """A shop selling in three currencies (a column names each order's), with a blank and
    a currency nobody gave a rate for."""
    rows = [
        (f"c{i % 7}", f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", 10 + i % 13, cur)
        for i, cur in enumerate(["EUR", "usd", " GBP ", "EUR", "USD", "", "CHF"] * 6)
    ]
    frame = pd.DataFrame(rows, columns=["customer", "date", "value", "Currency"])
    path = tmp_path / "orders.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_currencies_convert_money_and_reject_rows_without_a_rate(tmp_path):
    path, frame = _currency_log(tmp_path)
    rates = {"EUR": 1, "USD": 0.8, "gbp": 1.25}
    spec = {
        "path": str(path),
        "columns": COLS,
        "currencies": {"column": "Currency", "rates": rates},
    }
    t = io.load_transactions(spec, "2024-12-31")
    code = frame["Currency"].fillna("").str.strip().str.upper()
    rate = code.map({"EUR": 1.0, "USD": 0.8, "GBP": 1.25})  # pandas: the independent reading
    assert reconciles(t)
    assert (
        t.quality["rejected"]
        == {"unknown_currency": int(rate.isna().sum())}
        == {"unknown_currency": 12}
    )
    used = t.used.df()
    want = (frame["value"] * rate).dropna()
    assert used["amount"].tolist() == pytest.approx(want.tolist())
    assert t.quality["currencies"] == [
        {"currency": "EUR", "rows": 12, "rate": 1.0},
        {"currency": "USD", "rows": 12, "rate": 0.8},
        {"currency": "GBP", "rows": 6, "rate": 1.25},
    ]
    # a default takes the blanks; the rejects keep the row as written
    spec["currencies"]["default"] = "eur"
    t = io.load_transactions(spec, "2024-12-31")
    assert t.quality["rejected"] == {"unknown_currency": 6}
    assert set(t.rejects.df()["Currency"]) == {"CHF"}


def test_a_currency_column_without_currencies_is_noted(tmp_path):
    path, _ = _currency_log(tmp_path)
    t = io.load_transactions({"path": str(path), "columns": COLS}, "2024-12-31")
    note = t.quality["notes"][-1]
    assert note.startswith("Column 'Currency' names 4 currencies (EUR 12 rows, USD 12 rows,")
    assert "currencies: {column: Currency, rates: {EUR: 1, USD: …}}" in note
    assert t.quality["rows_used"] == 42  # nothing is dropped: the note says what to set


def test_money_cells_in_several_currencies_stop_with_the_fix(tmp_path):
    path = tmp_path / "marks.csv"
    path.write_text(
        "customer,date,value\na,2024-01-02,€10.00\na,2024-01-05,$20.00\nb,2024-01-06,12.00\n"
        "b,2024-01-07,$5.00\nc,2024-01-08,12.50 €\n",
        encoding="utf-8",
    )
    spec = {"path": str(path), "columns": COLS}
    with pytest.raises(
        SegkitError,
        match=r"column 'value' writes money in 2 currencies \(\$ on 2 rows, EUR on "
        r"2 rows; 1 row with a plain number\).*currencies: "
        r"\{rates: \{'\$': 1, 'EUR': …\}, default: '\$'\}",
    ):
        io.load_transactions(spec, "2024-12-31")
    spec["currencies"] = {"rates": {"€": 1, "$": 0.5}, "default": "€"}
    t = io.load_transactions(spec, "2024-12-31")
    assert t.used.df()["amount"].tolist() == [10.0, 10.0, 12.0, 2.5, 12.5]
    # one sign throughout is one currency: read as before, no stop
    path.write_text("customer,date,value\na,2024-01-02,€10.00\nb,2024-01-06,12.00\n", "utf-8")
    assert (
        io.load_transactions({"path": str(path), "columns": COLS}, "2024-12-31").quality[
            "rows_used"
        ]
        == 2
    )


@pytest.mark.parametrize(
    ("cur", "match"),
    [
        ({"column": "Currency"}, r"currencies.rates == None, must map each currency"),
        (
            {"rates": {"EUR": 1, "USD": None}},
            r"currencies.rates.USD is empty: give how much EUR one USD is worth",
        ),
        ({"rates": {"EUR": 0}}, r"currencies.rates.EUR == 0, must be a number above 0"),
        ({"rates": {"EUR": 1, "eur ": 1}}, r"names 'EUR' and 'eur ', the same currency"),
        ({"rates": {"EUR": 1}, "default": "USD"}, r"currencies.default == 'USD', must be one"),
        ({"rates": {"EUR": 1}, "base": "EUR"}, r"unknown key 'base'"),
        ({"column": "Money", "rates": {"EUR": 1}}, r"currencies.column is 'Money', which the"),
    ],
)
def test_currencies_mistakes_are_named(tmp_path, cur, match):
    path, _ = _currency_log(tmp_path)
    with pytest.raises(SegkitError, match=match):
        io.load_transactions({"path": str(path), "columns": COLS, "currencies": cur})


def test_a_placeholder_id_is_noted_with_its_spelling(tmp_path):
    """Customer 0 (guest checkouts), written 0.0 as ids read from floats are: named with the
    spelling exclude_values compares, which then leaves those rows out."""
    rows = [
        f"{0.0 if i % 4 == 0 else 17850.0 + i % 9},2024-01-{1 + i % 28:02d},{5 + i}"
        for i in range(80)
    ]
    path = tmp_path / "guests.csv"
    path.write_text("customer,date,value\n" + "\n".join(rows) + "\n")
    t = io.load_transactions({"path": str(path), "columns": COLS}, "2024-12-31")
    assert t.quality["notes"] == [
        "Customer id '0' on 20 rows (25%) of the rows used looks like a placeholder (guest "
        "checkouts, unknown customers), not one customer, and is segmented as one. Leave it out "
        "with data.transactions.exclude_values: {customer: ['0.0']}."
    ]
    spec = {"path": str(path), "columns": COLS, "exclude_values": {"customer": ["0.0"]}}
    t = io.load_transactions(spec, "2024-12-31")
    assert t.quality["rejected"] == {"excluded_value": 20} and "notes" not in t.quality


def test_epoch_timestamps_as_text_and_bad_ones_rejected(tmp_path):
    path = tmp_path / "api.csv"
    path.write_text(
        "customer,date,value\na,1704067200,1250\na,1704153600.5,99\nb,not a time,10\n"
        "b,-99999999999,10\nb,1e30,10\n"
    )
    spec = {"path": str(path), "columns": COLS, "epoch": "s", "cents": True}
    t = io.load_transactions(spec, "2024-12-31")
    used = t.used.df()
    assert used["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-01-02 00:00:00.5"),
    ]
    assert used["amount"].tolist() == [12.5, 0.99]
    # text, a date before 1900 and one beyond any timestamp: unreadable, each with its row
    assert t.quality["rejected"] == {"unparseable_timestamp": 3} and reconciles(t)
    with pytest.raises(SegkitError, match=r"epoch == 'h', must be one of"):
        io.load_transactions({**spec, "epoch": "h"})


def test_refunds_are_taken_off_the_amount(tmp_path):
    """Stripe's "Amount Refunded": revenue is the amount less it; a full refund is rejected;
    an empty cell is no refund, a word in it makes the amount non-numeric."""
    path = tmp_path / "charges.csv"
    path.write_text(
        "customer,date,value,refunded\na,2024-01-02,20.00,5.00\na,2024-01-05,10.00,\n"
        "b,2024-01-06,12.00,12.00\nb,2024-01-07,8.00,n/a\nc,2024-01-08,1250,250\n"
    )
    spec = {"path": str(path), "columns": COLS, "refunded": "refunded"}
    t = io.load_transactions(spec, "2024-12-31")
    assert t.used.df()["amount"].tolist() == [15.0, 10.0, 1000.0]
    assert t.quality["rejected"] == {"non_numeric_amount": 1, "non_positive_amount": 1}
    assert reconciles(t)
    with pytest.raises(SegkitError, match=r"refunded is 'refund', which the file does not have"):
        io.load_transactions({**spec, "refunded": "refund"})


def test_a_pattern_reads_every_file_in_name_order(tmp_path):
    """A log exported by year: ``path: orders_*.csv`` reads both files as one table; a
    rejected row's number counts on from the first file; the files must agree on columns."""
    (tmp_path / "orders_2023.csv").write_text(
        "customer,date,value\na,2023-03-01,10\nb,2023-04-01,20\n"
    )
    (tmp_path / "orders_2024.csv").write_text(
        "customer,date,value\na,2024-03-01,30\n,2024-04-01,40\nc,2024-05-01,50\n"
    )
    spec = {"path": str(tmp_path / "orders_*.csv"), "columns": COLS}
    t = io.load_transactions(spec, "2024-12-31")
    assert t.used.df()["amount"].tolist() == [10.0, 20.0, 30.0, 50.0]
    assert t.quality["files"] == ["orders_2023.csv", "orders_2024.csv"] and reconciles(t)
    rejects = t.rejects.df()
    assert rejects[["row", "reason"]].values.tolist() == [[4, "missing_customer_id"]]
    (tmp_path / "orders_2025.csv").write_text("customer,day,value\na,2025-01-01,5\n")
    with pytest.raises(
        SegkitError,
        match=r"orders_2025.csv has columns \['customer', 'day', "
        r"'value'\], orders_2023.csv has \['customer', 'date', 'value'\]",
    ):
        io.load_transactions(spec, "2025-12-31")
    with pytest.raises(SegkitError, match=r"no file matches '.*sales_\*.csv'"):
        io.load_transactions({**spec, "path": str(tmp_path / "sales_*.csv")})


def test_a_german_excel_export_in_cp1252(tmp_path):
    """Windows Excel writes CSV in cp1252: '€' is byte 0x80, a control character in
    latin-1, so '1.234,56 €' was no number; and with thousands dots, the date 10.09.2023
    read as the number 10092023. Both now read as written (pandas reads the same)."""
    path = tmp_path / "umsatz.csv"
    lines = [
        "Datum;Kunde;Umsatz",
        "10.09.2023;K1;1.234,56 €",
        "11.09.2023;K2;99,90 €",
        "12.09.2023;K1;5,00 €",
    ]
    path.write_bytes("\n".join(lines).encode("cp1252") + b"\n")
    spec = {
        "path": str(path),
        "columns": {"customer_id": "Kunde", "timestamp": "Datum", "amount": "Umsatz"},
        "decimal": ",",
        "thousands": ".",
    }
    t = io.load_transactions(spec, "2024-12-31")
    assert t.quality["encoding"] == "cp1252"
    want = pd.read_csv(path, sep=";", encoding="cp1252")
    money = want["Umsatz"].str.removesuffix(" €").str.replace(".", "").str.replace(",", ".")
    assert t.used.df()["amount"].tolist() == money.astype(float).tolist()
    assert (
        t.used.df()["timestamp"].tolist() == pd.to_datetime(want["Datum"], dayfirst=True).tolist()
    )
    import duckdb

    from segkit.io import clean

    as_number = clean.num_expr("v", {"thousands": ".", "decimal": ","})
    assert duckdb.sql(f"SELECT {as_number} FROM (SELECT '10.09.2023' AS v)").fetchall() == [(None,)]


def test_a_file_named_like_a_pattern_is_itself(tmp_path):
    path = tmp_path / "export [1].csv"
    path.write_text("customer,date,value\na,2024-01-02,10\n")
    t = io.load_transactions({"path": str(path), "columns": COLS}, "2024-12-31")
    assert t.quality["rows_used"] == 1 and "files" not in t.quality


# --------------------------------------------------------------------------- JSON

_ORDERS = [
    {
        "customer": {"id": "c1", "tier": "gold"},
        "created_at": "2024-01-01T23:30:00Z",
        "total": 10.5,
        "status": "paid",
    },
    {
        "customer": {"id": "c2", "tier": None},
        "created_at": "2024-01-02T08:00:00Z",
        "total": "7.25",
        "status": "paid",
    },
    {
        "customer": {"id": "c1", "tier": "gold"},
        "created_at": "2024-02-01T09:00:00Z",
        "total": -3,
        "status": "refunded",
    },
]
_JSON_COLS = {"customer_id": "customer.id", "timestamp": "created_at", "amount": "total"}


@pytest.mark.parametrize("layout", ["array", "lines", "lines.gz"])
def test_a_json_export_loads_as_its_csv_does(tmp_path, layout):
    """An API's orders as JSON (an array, one record per line, gzipped): nested objects
    flattened to ``customer.id``, a field of numbers and text read as text, dates kept as
    written (``Z``: UTC), and the same rows used and rejected as from the CSV pandas
    writes of the same records."""
    import gzip
    import json

    text = (
        json.dumps(_ORDERS)
        if layout == "array"
        else "\n".join(json.dumps(r) for r in _ORDERS) + "\n"
    )
    path = tmp_path / (
        "orders.json" if layout == "array" else f"orders.{layout}".replace("lines", "jsonl")
    )
    if layout.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    flat = pd.json_normalize(_ORDERS)
    flat.to_csv(tmp_path / "orders.csv", index=False)
    got = io.load_transactions({"path": str(path), "columns": _JSON_COLS})
    want = io.load_transactions({"path": str(tmp_path / "orders.csv"), "columns": _JSON_COLS})
    assert got.quality["format"] == "json" and reconciles(got)
    a, b = got.used.df(), want.used.df()
    assert a["customer_id"].tolist() == b["customer_id"].tolist() == ["c1", "c2"]
    assert a["amount"].tolist() == b["amount"].tolist() == [10.5, 7.25]
    assert list(a["timestamp"]) == list(b["timestamp"])
    assert got.quality["rejected"] == want.quality["rejected"] == {"non_positive_amount": 1}


@pytest.mark.parametrize(
    "content, match",
    [
        ('[{"id": 1, "lines": [{"sku": "x"}]}]', r"has lists in field\(s\) \['lines'\]"),
        ("[1, 2, 3]", "holds JSON values, not records"),
        ('{"customer_id": "c1", "amount": ', "could not be read as JSON: .*Malformed JSON"),
    ],
)
def test_json_that_is_not_flat_records_is_refused_by_name(tmp_path, content, match):
    path = tmp_path / "export.json"
    path.write_text(content)
    with pytest.raises(SegkitError, match=r"transactions file '.*export.json' " + match):
        io.load_transactions({"path": str(path)})


def test_a_long_list_of_duplicate_names_is_cut_short(tmp_path):
    """A file with hundreds of clashing names (a JSON file read as a CSV gave a 200 KB
    message) names the first ones and how many there are."""
    header = ",".join(["x"] * 500 + ["amount"])
    (tmp_path / "wide.csv").write_text(header + "\n" + ",".join(["1"] * 501) + "\n")
    with pytest.raises(SegkitError) as err:
        io.load_transactions({"path": str(tmp_path / "wide.csv")})
    assert "500 duplicate column names" in str(err.value) and len(str(err.value)) < 600


def _report(path: Path, rows: list[list]) -> None:
    """An ERP report: two title lines and a blank line above the table."""
    top = [["Sales report - all stores"], ["Generated on 07/12/2026"], []]
    if path.suffix == ".xlsx":
        with pd.ExcelWriter(path) as w:
            pd.DataFrame(top[:2]).to_excel(w, index=False, header=False)
            pd.DataFrame(rows[1:], columns=rows[0]).to_excel(w, index=False, startrow=3)
    else:
        path.write_text("\n".join(",".join(map(str, r)) for r in top + rows) + "\n")


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_skip_rows_reads_a_report_with_title_lines(tmp_path, suffix):
    """``skip_rows``: the lines above the header of a report are skipped, in a CSV and in
    an Excel sheet; without it the sheet's title is taken for the header."""
    rows = [["customer", "date", "value"], ["a", "2024-01-05", 10.5], ["b", "2024-02-01", 4]]
    path = tmp_path / f"report{suffix}"
    _report(path, rows)
    t = io.load_transactions({"path": str(path), "columns": COLS, "skip_rows": 3})
    assert t.used.df()["amount"].tolist() == [10.5, 4.0] and reconciles(t)
    if suffix == ".xlsx":
        with pytest.raises(SegkitError, match=r"missing column .customer.*skip_rows\)\?"):
            io.load_transactions({"path": str(path), "columns": COLS})


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_skip_rows_must_be_a_whole_number(bad):
    with pytest.raises(SegkitError, match="skip_rows"):
        io.load_transactions({"path": str(BAD / "latin1.csv"), "skip_rows": bad})


def test_e_mail_ids_are_one_customer_whatever_their_case(tmp_path):
    """Shop exports key customers by e-mail; 'Anna@Shop.com' and 'anna@shop.com ' are one
    mailbox, one customer (other ids keep their case: 'C7' and 'c7' stay two)."""
    (tmp_path / "tx.csv").write_text(
        "customer,date,value\n"
        "Anna@Shop.com,2024-01-05,10\n"
        " anna@SHOP.com ,2024-02-05,20\n"
        "anna@shop.com,2024-03-05,5\n"
        "C7,2024-01-05,1\n"
        "c7,2024-01-06,2\n"
    )
    t = io.load_transactions({"path": str(tmp_path / "tx.csv"), "columns": COLS})
    used = t.used.df()
    assert sorted(used["customer_id"].unique()) == ["C7", "anna@shop.com", "c7"]
    assert used.groupby("customer_id")["amount"].sum()["anna@shop.com"] == 35


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "6"])
def test_id_width_must_be_a_whole_number(bad):
    with pytest.raises(SegkitError, match="id_width"):
        io.load_transactions({"path": str(BAD / "latin1.csv"), "id_width": bad})


def test_id_width_pads_the_customer_tables_ids_too(tmp_path):
    (tmp_path / "crm.csv").write_text("id,age\n42,30\n0043,40\nX9,50\n")
    t = io.load_customers(
        {"path": str(tmp_path / "crm.csv"), "id_width": 4, "columns": {"customer_id": "id"}}
    )
    assert t.used.df()["customer_id"].tolist() == ["0042", "0043", "X9"]
