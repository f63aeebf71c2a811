"""segkit.segment.sample: the fit sample is the ids with the smallest seeded sha256 keys.

The reference is a plain ``sorted`` of the ids by ``hashlib.sha256(f"{seed}:{id}")``'s hex
digest, written out here; the engines' counterpart is checked in test_engine_score.py.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from segkit.core.errors import SegkitError
from segkit.segment import fit_sample, sample
from segkit.segment import sample_key as key


def _plain(ids: list, size: int, seed: int) -> set:
    return set(sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())[:size])


@pytest.mark.parametrize("chunk", [1_000_000, 333])  # one chunk; several, unequal
def test_the_sample_is_the_smallest_keys_whatever_the_row_order(monkeypatch, chunk):
    monkeypatch.setattr(sample, "_CHUNK", chunk)
    rng = np.random.default_rng(0)
    ids = pd.Series([f"cust-{i}" for i in range(4000)], dtype="str")
    want = _plain(ids.tolist(), 250, 7)
    for order in (np.arange(4000), rng.permutation(4000)):
        shuffled = ids.iloc[order]  # a shuffled index too: positions, not labels
        pos = fit_sample(shuffled, 250, seed=7)
        assert np.all(np.diff(pos) > 0) and len(pos) == 250
        assert set(shuffled.iloc[pos]) == want
    assert set(ids.iloc[fit_sample(ids, 250, seed=8)]) != want  # the seed matters


def test_integer_ids_hash_as_their_text_and_missing_ids_are_never_chosen():
    ids = pd.Series([5, None, 17, 3, 99, None, 42], dtype="Int64")
    pos = fit_sample(ids, 3, seed=1)
    assert set(ids.iloc[pos].tolist()) == _plain([5, 17, 3, 99, 42], 3, 1)
    assert key(17, 1) == key("17", 1) == hashlib.sha256(b"1:17").hexdigest()
    assert fit_sample(ids, 5, seed=1).tolist() == [0, 2, 3, 4, 6]  # no more ids than size
    assert fit_sample(["a", "b"], 20000, seed=1).tolist() == [0, 1]


def test_errors_say_what_is_expected():
    with pytest.raises(SegkitError, match=r"customers: customer_id is a float column"):
        fit_sample(pd.Series([1.0, 2.0]), 1, seed=1)
    with pytest.raises(SegkitError, match=r"new.parquet: sample size == 0, must be >= 1"):
        fit_sample(["a"], 0, seed=1, where="new.parquet")
