"""The fit sample as an ibis expression: customers ordered by a seeded hash of their id.

The engine side of :func:`segkit.segment.sample.fit_sample`: the key
``sha256(f"{seed}:{customer_id}")`` in hex is ibis' ``hexdigest("sha256")``, which
compiles to DuckDB's ``sha256`` and Spark's ``sha2(x, 256)`` (both lower-case hex of the
UTF-8 bytes), so every engine and pandas choose the same customers whatever the row order.
"""

from __future__ import annotations

from typing import Any

from segkit.core.errors import SegkitError
from segkit.engine.backend import ibis_module


def sample_key(t: Any, seed: int, id_col: str = "customer_id") -> Any:
    """The key column: ``sha256(f"{seed}:{id}")`` as hex, the id cast to text.

    Raises
    ------
    SegkitError
        ``id_col`` is missing or a float column (floats print differently on each engine).
    """
    ibis = ibis_module()
    if id_col not in t.columns:
        raise SegkitError(f"customers is missing column {id_col!r}; columns are {list(t.columns)}")
    ids = t[id_col]
    if ids.type().is_floating():
        raise SegkitError(
            f"customers: {id_col} is a float column ({ids.type()}); the fit sample hashes "
            "ids as text, so they must be text or integers (cast them first)"
        )
    return (ibis.literal(f"{seed}:") + ids.cast("string")).hexdigest("sha256")


def fit_sample(t: Any, size: int, seed: int, id_col: str = "customer_id") -> Any:
    """The rows of ``t`` of the ``size`` customers with the smallest keys (an ibis table).

    Rows without an id are left out, as in :func:`segkit.segment.sample.fit_sample`.
    """
    if size < 1:
        raise SegkitError(f"customers: sample size == {size}, must be >= 1")
    keyed = t.filter(t[id_col].notnull()).mutate(_sample_key=sample_key(t, seed, id_col))
    return keyed.order_by("_sample_key").limit(size).drop("_sample_key")
