"""Same inputs and parameters give byte-identical artifact tables."""

import pytest

from segkit import Run
from segkit.stages import cluster, explore, profile


@pytest.mark.parametrize("params", ["demo", "cdnow"])
def test_two_runs_write_identical_artifacts(tmp_path, params):
    folders = []
    for name in ("a", "b"):
        run = Run.open(params, tmp_path / name, overrides=["cluster.n_bootstrap=3"])
        explore.run(run)
        cluster.run(run)
        profile.run(run)
        folders.append(run.artifacts)
    files = sorted(
        p.name for p in folders[0].iterdir() if p.suffix in (".parquet", ".csv", ".json")
    )
    assert {"customers.parquet", "segments.parquet", "k_selection.csv", "profiles.csv"} <= set(
        files
    )
    for f in files:
        assert (folders[0] / f).read_bytes() == (folders[1] / f).read_bytes(), f
