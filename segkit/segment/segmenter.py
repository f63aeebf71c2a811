"""The fitted segmentation that assigns new customers, and its safe file format.

A :class:`Segmenter` holds what scoring needs as plain arrays: the fitted preprocessing
(:class:`~segkit.segment.prepare.Transform`), the fitted model's centres or parameters
(:mod:`segkit.segment.models`), the map from model label to segment number, the names, the
fitting medians, ranges and levels. It is saved as JSON (``segmenter.json``, see
:data:`FORMAT_VERSION`): loading a file never runs code, and a tampered or foreign file is
a :class:`~segkit.core.errors.SegkitError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segkit.core.checks import check_columns
from segkit.core.errors import SegkitError
from segkit.core.files import write_json
from segkit.segment.models import METHODS, Predictor, model_from_dict, model_to_dict
from segkit.segment.prepare import VALUE_COLUMNS, Transform, as_levels

#: segment_name of a customer outside the fitted range.
UNASSIGNED = "not assigned: outside the fitted range"
#: File name of a saved segmenter in a run's artifacts.
FILE_NAME = "segmenter.json"
#: What a saved segmenter's "format" field says, and the version of that format.
FORMAT, FORMAT_VERSION = "segkit-segmenter", 1


def _version() -> str:
    try:
        return metadata.version("segkit")
    except metadata.PackageNotFoundError:  # pragma: no cover (a source checkout)
        return "unknown"


@dataclass
class Segmenter:
    """A fitted segmentation that assigns new customers to the same numbered segments.

    Saved with each run as ``artifacts/segmenter.json``; load it with :meth:`load` and
    call :meth:`score`, or use ``segkit score RUN CUSTOMERS``.
    """

    method: str
    numeric: list[str]
    categorical: list[str]
    transform: Transform | None  # fitted preprocessing; None for rfm
    model: Predictor
    relabel: dict[int, int]  # model label -> segment number
    names: dict[int, str]
    medians: dict[str, float]
    ranges: dict[str, tuple[float, float]]
    levels: dict[str, list[str]]
    n_customers: int
    run: str = ""
    version: str = field(default_factory=_version)
    model_arrays: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_fitted(
        cls, *, method: str, prep: Any, model: Any, data: pd.DataFrame, **info: Any
    ) -> Segmenter:
        """A segmenter from the fitted preprocessor and model of the stage.

        ``data``: the prepared clustering columns (medians, ranges and levels come from
        them); ``info``: numeric, categorical, relabel, names, n_customers, run.
        """
        arrays = model_to_dict(method, model)
        num, cat = info.pop("numeric"), info.pop("categorical")
        return cls(
            method=method,
            numeric=num,
            categorical=cat,
            transform=None if prep is None else Transform.from_fitted(prep),
            model=model_from_dict(method, arrays),
            medians={c: float(data[c].median()) for c in num},
            ranges={c: (float(data[c].min()), float(data[c].max())) for c in num},
            levels={c: sorted(data[c].unique().tolist()) for c in cat},
            model_arrays=arrays,
            **info,
        )

    @property
    def features(self) -> list[str]:
        """The feature columns a customer table needs."""
        return self.numeric + self.categorical

    def _raw(self, data: Mapping[str, Any]) -> np.ndarray:
        if self.transform is None:
            return np.asarray(self.model.predict(pd.DataFrame(data)))
        return np.asarray(self.model.predict(self.transform.apply(data)))

    def assign(self, data: Mapping[str, Any]) -> np.ndarray:
        """Segment numbers for prepared rows (no range checks); -1 for an unknown label.

        ``data``: the feature columns, filled (a DataFrame or a dict of arrays).
        """
        raw = self._raw(data).astype(np.int64)
        # a lookup array instead of Series.map: one indexing pass over the rows
        size = max([*self.relabel, int(raw.max(initial=-1))]) + 1
        lut = np.full(size + 1, -1, dtype=np.int64)  # the last slot: labels below 0
        lut[list(self.relabel)] = list(self.relabel.values())
        return lut[np.where(raw >= 0, raw, size)]

    def _columns(
        self, customers: pd.DataFrame
    ) -> tuple[dict[str, Any], list[tuple[np.ndarray, str]]]:
        """The feature columns filled as in fitting (numeric median, level 'missing'), and
        the checks against the fitted ranges and levels: (rows outside, reason), in order.

        Categorical columns come back as ``pd.Categorical`` of their level strings: the
        strings are built once per distinct value, not once per row, and the transform
        looks the levels up through the codes."""
        cols: dict[str, Any] = {}
        checks: list[tuple[np.ndarray, str]] = []
        for col in self.numeric:
            lo, hi = self.ranges[col]
            raw = customers[col]
            if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(
                raw.dtype
            ):
                v = raw.to_numpy(float, na_value=np.nan)
                bad = np.zeros(len(v), dtype=bool)  # a number column holds only numbers
            else:
                v = pd.to_numeric(raw, errors="coerce").to_numpy(float, na_value=np.nan)
                bad = np.isnan(v) & raw.notna().to_numpy()
            checks += [
                (v < lo, f"{col} below the fitted minimum {lo:g}"),
                (v > hi, f"{col} above the fitted maximum {hi:g}"),
                (bad, f"{col} not a number"),
            ]
            cols[col] = np.where(np.isfinite(v), v, self.medians[col])
        for col in self.categorical:
            cols[col] = levels_of(customers[col])
            known = pd.Index(self.levels[col]).get_indexer(cols[col].categories)
            unseen = np.append(known < 0, True)[cols[col].codes]  # code -1 never occurs
            checks.append((unseen, f"{col} level not seen in fitting"))
        return cols, checks

    def flags(self, customers: pd.DataFrame) -> pd.Series:
        """Per row, why it is outside what the segmenter was fitted on ('' when inside)."""
        return _reasons(self._columns(customers)[1], customers.index)

    def score(self, customers: pd.DataFrame, where: str = "customers") -> pd.DataFrame:
        """Assign ``customers`` (one row each, the fitted feature columns) to segments.

        Parameters
        ----------
        customers : customer_id and the segmenter's :attr:`features`.
        where : what the table is called in messages.

        Returns
        -------
        customer_id, segment (<NA> when flagged), segment_name, nearest_segment (what the
        model would say regardless) and flag (the reason; '' when in range). Missing values
        are filled as in fitting (numeric median, level 'missing').

        Raises
        ------
        SegkitError
            A feature column is missing.
        """
        check_columns(customers, ["customer_id", *self.features], where)
        cols, checks = self._columns(customers)
        combo, texts = _flag_codes(checks, len(customers))
        nearest = self.assign(cols)
        inside = combo == 0
        # segment_name: the name of the nearest segment when inside, else UNASSIGNED; built
        # from codes into a short list of names (one string per segment, not per row)
        numbers = sorted(self.names)
        labels = [self.names[k] for k in numbers] + ["", UNASSIGNED]
        name_code = np.searchsorted(numbers, nearest)
        known = np.isin(nearest, numbers)
        name_code = np.where(known, name_code, len(numbers))
        name_code[~inside] = len(numbers) + 1
        ids = customers["customer_id"]
        return pd.DataFrame(
            {
                "customer_id": ids.to_numpy() if ids.dtype == object else ids.array,
                "segment": pd.arrays.IntegerArray(nearest.copy(), ~inside),
                "segment_name": _strings(labels, name_code),
                "nearest_segment": pd.arrays.IntegerArray(nearest, np.zeros(len(nearest), bool)),
                "flag": _strings(texts, combo),
            }
        )

    # ------------------------------------------------------------------- the file

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of :meth:`save` (plain lists, numbers and strings)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "method": self.method,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "transform": None if self.transform is None else self.transform.to_dict(),
            "model": self.model_arrays,
            "relabel": {str(k): v for k, v in self.relabel.items()},
            "names": {str(k): v for k, v in self.names.items()},
            "medians": self.medians,
            "ranges": {c: list(r) for c, r in self.ranges.items()},
            "levels": self.levels,
            "n_customers": self.n_customers,
            "run": self.run,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Segmenter:
        """Rebuild from :meth:`to_dict`; SegkitError when the document is not one."""
        _check_header(d)
        method, num, cat = (
            d["method"],
            list(map(str, d["numeric"])),
            list(map(str, d["categorical"])),
        )
        transform = None if d["transform"] is None else Transform.from_dict(d["transform"])
        seg = cls(
            method=method,
            numeric=num,
            categorical=cat,
            transform=transform,
            model=model_from_dict(method, d["model"]),
            relabel={int(k): int(v) for k, v in d["relabel"].items()},
            names={int(k): str(v) for k, v in d["names"].items()},
            medians={c: float(d["medians"][c]) for c in num},
            ranges={c: (float(d["ranges"][c][0]), float(d["ranges"][c][1])) for c in num},
            levels={c: [str(v) for v in d["levels"][c]] for c in cat},
            n_customers=int(d["n_customers"]),
            run=str(d["run"]),
            version=str(d["version"]),
            model_arrays=dict(d["model"]),
        )
        _check_shapes(seg)
        return seg

    def save(self, path: str | Path) -> Path:
        """Write the segmenter as JSON to ``path`` (atomically); returns the path."""
        return write_json(Path(path), self.to_dict())

    @staticmethod
    def load(path: str | Path) -> Segmenter:
        """Load a segmenter from its file or from a run folder that holds one.

        Raises
        ------
        SegkitError
            No segmenter there, a pickled segmenter of an older segkit, or a file that is
            not a valid segmenter (named, with the reason).
        """
        path = locate(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict):
                raise SegkitError(f"expected a JSON object, found {type(doc).__name__}")
            return Segmenter.from_dict(doc)
        except (SegkitError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            reason = f"{type(e).__name__}: {e}" if not isinstance(e, SegkitError) else str(e)
            raise SegkitError(
                f"{path} is not a valid segkit segmenter ({reason}); rerun the clustering "
                f"stage to write a new one"
            ) from None


def _flag_codes(checks: list[tuple[np.ndarray, str]], n: int) -> tuple[np.ndarray, list[str]]:
    """Per row, the code of its combination of failed checks (0: none), and the text of
    each code: the reasons joined by '; ' in the order of ``checks``.

    Only the flagged rows are grouped (by their row of check results), so the cost is one
    pass per check plus a sort of the few flagged rows, never a string per row.
    """
    failed = np.zeros(n, dtype=bool)
    for mask, _ in checks:
        failed |= mask
    rows = np.flatnonzero(failed)
    codes = np.zeros(n, dtype=np.int64)
    if not len(rows):
        return codes, [""]
    matrix = np.stack([mask[rows] for mask, _ in checks], axis=1)
    combos, inverse = np.unique(matrix, axis=0, return_inverse=True)
    codes[rows] = inverse.reshape(-1) + 1
    texts = ["; ".join(t for (_, t), hit in zip(checks, c, strict=True) if hit) for c in combos]
    return codes, ["", *texts]


def _reasons(checks: list[tuple[np.ndarray, str]], index: pd.Index) -> pd.Series:
    """Per row, the reasons of the failed checks joined by '; ' ('' when none failed)."""
    codes, texts = _flag_codes(checks, len(index))
    return pd.Series(np.asarray(texts, dtype=object)[codes], index=index, dtype=object)


def _strings(labels: list[str], codes: np.ndarray) -> Any:
    """``labels[codes]`` as the column pandas would make of those Python strings (``str``
    in pandas 3, object before), taken in Arrow when that is the storage: no string object
    per row."""
    target = pd.Series(np.array(["x"], dtype=object)).dtype
    if isinstance(target, pd.StringDtype) and target.storage == "pyarrow":
        import pyarrow as pa

        return pd.array(pa.array(labels, pa.large_string()).take(codes), dtype=target)
    return np.asarray(labels, dtype=object)[codes]


def levels_of(values: pd.Series) -> pd.Categorical:
    """:func:`~segkit.segment.prepare.as_levels` of a column, as a ``pd.Categorical``.

    The level strings are computed for the distinct values only (``as_levels`` of the
    uniques equals ``as_levels`` of the column: its whole-number test looks at the set of
    values), then spread by the factorized codes.

    >>> levels_of(pd.Series([2.0, None, 2.0])).tolist()
    ['2', 'missing', '2']
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    names = as_levels(pd.Series(uniques, dtype=values.dtype)).tolist()
    if (codes < 0).any():
        names.append("missing")
        codes = np.where(codes < 0, len(names) - 1, codes)
    cats, back = np.unique(np.asarray(names, dtype=object), return_inverse=True)
    return pd.Categorical.from_codes(back.reshape(-1)[codes], categories=list(cats))


def locate(path: str | Path) -> Path:
    """The segmenter file of ``path``: the file itself, or ``artifacts/segmenter.json``
    (or ``segmenter.json``) of a run folder.

    Raises
    ------
    SegkitError
        Nothing there, or only a pickled ``segmenter.joblib`` (no longer loaded: unpickling
        a replaced file could run code).
    """
    path = Path(path)
    if path.is_dir():
        folder = path
        path = next(
            (p for p in (folder / "artifacts" / FILE_NAME, folder / FILE_NAME) if p.is_file()),
            folder / "artifacts" / FILE_NAME,
        )
    if path.suffix == ".joblib" or (not path.exists() and path.with_suffix(".joblib").is_file()):
        raise SegkitError(
            f"{path.with_suffix('.joblib')} is a pickled segmenter of an older segkit; it is "
            f"no longer loaded (unpickling a replaced file can run code). Rerun the clustering "
            f"stage to write {path.with_suffix('.json').name}"
        )
    if not path.is_file():
        raise SegkitError(
            f"no fitted segmenter at {path}; run the clustering stage first "
            f"(segkit run --stages explore,cluster)"
        )
    return path


def _check_header(d: dict[str, Any]) -> None:
    if d.get("format") != FORMAT or d.get("format_version") != FORMAT_VERSION:
        raise SegkitError(
            f"format {d.get('format')!r} version {d.get('format_version')!r}, expected "
            f"{FORMAT!r} version {FORMAT_VERSION}"
        )
    if d.get("method") not in METHODS:
        raise SegkitError(f"method {d.get('method')!r}, expected one of {', '.join(METHODS)}")


def _check_shapes(seg: Segmenter) -> None:
    """The transform, the model and the columns fit together."""
    t = seg.transform
    if seg.method == "rfm":
        return
    if (
        t is None
        or sorted(t.logged + t.plain) != sorted(seg.numeric)
        or list(t.categories) != list(seg.categorical)
    ):
        raise SegkitError(f"the transform does not match the columns {seg.features}")
    centers: Any = seg.model_arrays.get("centers", seg.model_arrays.get("means"))
    if np.shape(centers)[1:] != (t.width,):
        raise SegkitError(
            f"model arrays of shape {np.shape(centers)} do not fit the {t.width} transformed "
            f"columns"
        )


def value_column(customers: pd.DataFrame, numeric: list[str]) -> str:
    """The column whose mean per segment orders the segments (:data:`VALUE_COLUMNS`, else
    the first numeric feature; '' when there is none)."""
    return next((c for c in VALUE_COLUMNS if c in customers.columns), numeric[0] if numeric else "")


def order_labels(customers: pd.DataFrame, raw: np.ndarray, value: str) -> dict[int, int]:
    """Model label -> segment number, 1 = highest mean ``value`` (then the larger).

    >>> t = pd.DataFrame({"revenue": [1.0, 9.0, 2.0]})
    >>> order_labels(t, np.array([0, 1, 0]), "revenue")
    {1: 1, 0: 2}
    """
    v = customers[value].to_numpy(float) if value else np.zeros(len(raw))
    g = pd.DataFrame({"raw": raw, "v": v}).groupby("raw")["v"].agg(["mean", "size"])
    g = g.sort_values(["mean", "size"], ascending=False, kind="stable")
    return {int(old): new + 1 for new, old in enumerate(g.index)}


def read_customers(path: str | Path) -> pd.DataFrame:
    """A customer table for scoring: Parquet, or CSV (any delimiter, .gz) with string ids.

    Raises
    ------
    SegkitError
        The file is missing or holds no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise SegkitError(f"customer table {path} not found")
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path, sep=None, engine="python", dtype={"customer_id": str})
    if df.empty:
        raise SegkitError(f"{path}: no customer rows (header only or empty)")
    return df
