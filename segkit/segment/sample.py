"""The fit sample: customers ordered by a seeded hash of their id, the first ``size`` kept.

Which customers a model is fitted on must not depend on the engine or on the row order of
the customer table (Spark returns rows in any order). Each customer gets the key
``sha256(f"{seed}:{customer_id}")`` (the id as text, UTF-8; the hex digest orders as the
digest's bytes do) and the ``size`` customers with the smallest keys are the sample.
:func:`segkit.engine.sample.fit_sample` is the same choice as an ibis expression (DuckDB,
Spark); ``tests/test_engine_score.py`` checks both choose the same ids.

Ids must be text or integers: ``str(7)`` and Spark's ``CAST(7 AS STRING)`` are both
``'7'``, while floats print differently on the two sides (``1e7``: ``'10000000.0'`` and
``'1.0E7'``). Customers without an id are never in the sample.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from segkit.core.errors import SegkitError

#: Ids hashed per chunk: the digests of one chunk (32 bytes each) are kept at a time.
_CHUNK = 1_000_000


def sample_key(customer_id: str | int, seed: int) -> str:
    """The sort key of one customer: ``sha256(f"{seed}:{customer_id}")`` as hex."""
    return hashlib.sha256(f"{seed}:{customer_id}".encode()).hexdigest()


def _digests(ids: list[str], prefix: bytes) -> np.ndarray:
    """The sha256 digests of ``prefix + id`` as an (n, 4) array of big-endian uint64
    words (the words compare as the hex digest does, word by word)."""
    start = hashlib.sha256(prefix)

    def digest(text: str) -> bytes:
        h = start.copy()  # the prefix hashed once: ~20% faster than hashing it per id
        h.update(text.encode())
        return h.digest()

    raw = b"".join(map(digest, ids))
    return np.frombuffer(raw, dtype=">u8").reshape(len(ids), 4)


def hash_order(ids: pd.Series | list, prefix: str, *, where: str = "customers") -> np.ndarray:
    """Positions of ``ids`` sorted by ``sha256(prefix + id)`` (hex order): a seeded order
    that is the same whatever the row order or the engine (on the engine:
    ``order_by((prefix + id).hexdigest("sha256"))``). Ids as text or integers.

    >>> hash_order(["a", "b", "c", "d"], "1:").tolist()  # keys 244b.., 4162.., 6f05.., b8a9..
    [3, 0, 1, 2]
    """
    s = pd.Series(ids) if not isinstance(ids, pd.Series) else ids.reset_index(drop=True)
    if not len(s):
        return np.array([], dtype=np.int64)
    words = _digests(_as_text(s, where).tolist(), prefix.encode())
    return np.lexsort(words.T[::-1]).astype(np.int64)  # the last key is the primary one


def _as_text(ids: pd.Series, where: str) -> pd.Series:
    if pd.api.types.is_float_dtype(ids.dtype):
        raise SegkitError(
            f"{where}: customer_id is a float column ({ids.dtype}); the fit sample hashes "
            "ids as text, so they must be text or integers (cast them first)"
        )
    return ids.astype("str")


def fit_sample(
    ids: pd.Series | np.ndarray | list, size: int, seed: int, *, where: str = "customers"
) -> np.ndarray:
    """Positions (ascending) of the ``size`` customers with the smallest seeded hash keys.

    The same customers whatever the row order of ``ids`` or the engine
    (:func:`segkit.engine.sample.fit_sample`). All positions when there are no more than
    ``size`` ids.

    Parameters
    ----------
    ids : the customer ids, text or integers (one per row; missing ids are never chosen).
    size : the sample size (``cluster.sample_size``).
    seed : the run's seed.
    where : names the table in errors.

    Raises
    ------
    SegkitError
        Float ids; ``size`` below 1.

    Examples
    --------
    >>> fit_sample(["a", "b", "c", "d"], 2, seed=1).tolist()  # keys of d, a: smallest
    [0, 3]
    """
    if size < 1:
        raise SegkitError(f"{where}: sample size == {size}, must be >= 1")
    s = pd.Series(ids) if not isinstance(ids, pd.Series) else ids.reset_index(drop=True)
    _as_text(s.iloc[:0], where)  # float ids: an error whatever the size
    present = np.flatnonzero(s.notna().to_numpy())
    if len(present) <= size:
        return present
    ids_present = s.iloc[present]
    prefix = f"{seed}:".encode()

    def keys(part: pd.Series) -> np.ndarray:
        return _digests(_as_text(part, where).tolist(), prefix)

    # pass 1: the first 64 bits of every key, chunk by chunk (8 bytes per customer kept;
    # the ids become text one chunk at a time)
    first = np.concatenate(
        [keys(ids_present.iloc[i : i + _CHUNK])[:, 0] for i in range(0, len(present), _CHUNK)]
    )
    # the candidates: every key whose first word is at most the size-th smallest one
    # (size of them, plus any sharing that word: ties in 64 bits are vanishingly rare)
    cutoff = np.partition(first, size - 1)[size - 1]
    candidates = np.flatnonzero(first <= cutoff)
    words = keys(ids_present.iloc[candidates])
    order = np.lexsort(words.T[::-1])  # the last key is the primary one: word 0
    chosen = present[candidates[order[:size]]]
    return np.sort(chosen)
