"""The README stays true: its two commands, CI, and every command of "Using it", run as
written (slow: CI runs it)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", README)[:2]


def using_it() -> list[str]:
    section = README.split("## Using it", 1)[1]
    block = re.search(r"```bash\n(.+?)\n```", section, re.S).group(1)
    return block.splitlines()


def test_readme_opens_with_the_main_job_and_the_test_command():
    main, tests = readme_commands()
    assert "segkit batch notebooks/params/bundled.yaml" in main
    assert tests.endswith(".venv/bin/pytest")


def test_ci_runs_the_readme_test_command():
    _, tests = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci


def test_files_the_commands_name_exist():
    main, _ = readme_commands()
    for token in re.findall(r"[\w./-]+\.(?:yaml|txt)", main):
        assert (ROOT / token).is_file(), token


def test_no_reference_outside_the_repository():
    for path in [ROOT / "README.md", *ROOT.glob("segkit/**/*.py"), *ROOT.glob("benchmarks/*.py")]:
        assert "../shared" not in path.read_text(), path


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("SEGKIT_REPORTS_DIR",)}


@pytest.mark.slow
def test_every_command_of_using_it_runs_as_written(tmp_path):
    """In a folder laid out like a fresh clone after the install (a .venv and the bundled
    data/ beside it)."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    (tmp_path / "data").symlink_to(ROOT / "data")
    script = "set -euo pipefail\n" + "\n".join(using_it()) + "\n"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-3000:]
    manifest = json.loads((tmp_path / "reports" / "demo" / "manifest.json").read_text())
    assert manifest["ok"] and set(manifest["stages"]) == {
        "explore",
        "cluster",
        "profile",
        "clv",
        "abtest",
        "plan",
    }
    assert (tmp_path / "reports" / "cdnow" / "04_clv.html").is_file()
    assert (tmp_path / "scored.csv").is_file() and "flagged, not assigned" in done.stdout
    assert "CLV over the next 12 months (margin): €" in done.stdout  # segkit score --clv
    assert "clv_low" in (tmp_path / "scored.csv").open().readline()
    assert (tmp_path / "my-shop" / "params.yaml").is_file()
    assert "value: total_spend" in (tmp_path / "my-crm" / "params.yaml").read_text()
    assert "cdnow" in done.stdout and "grid" in done.stdout  # segkit params --list


@pytest.mark.slow
def test_jupyterlab_starts_as_the_readme_says(tmp_path):
    """`jupyter lab --allow-root notebooks/` (the tests run as root in CI) serves the
    notebooks; the plain command is the same without the root flag."""
    command = re.search(r"`(jupyter lab --allow-root notebooks/)`", README).group(1)
    assert "`jupyter lab notebooks/`" in README
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**_clean_env(), "BROWSER": "true", "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    proc = subprocess.Popen(
        ["bash", "-c", f"source .venv/bin/activate && exec {command} --no-browser --port={port}"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        deadline = time.time() + 120
        while time.time() < deadline and url is None:
            line = proc.stderr.readline()
            m = re.search(r"(http://(?:localhost|127\.0\.0\.1):\d+/lab\?token=\w+)", line)
            url = m.group(1) if m else None
        assert url, "JupyterLab did not start"
        api = url.replace("/lab?token=", "/api/contents/01_explore.ipynb?token=")
        api = api.replace("//localhost:", "//127.0.0.1:")
        for _ in range(30):  # the URL is printed as the server starts listening
            try:
                with urllib.request.urlopen(api, timeout=30) as reply:
                    assert json.loads(reply.read())["name"] == "01_explore.ipynb"
                break
            except urllib.error.URLError:
                time.sleep(1)
        else:
            raise AssertionError(f"JupyterLab did not answer at {api}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_the_yaml_examples_of_your_own_data_are_valid_parameter_sets():
    import yaml

    from segkit.core.params import load_params

    section = README.split("### Your own data", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.+?)\n```", section, re.S)
    assert len(blocks) == 3
    for block in blocks:
        params = load_params(yaml.safe_load(block))  # every key known, every value valid
        assert params["data"]["source"] == "files"
