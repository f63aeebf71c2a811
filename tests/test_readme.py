"""The README's two commands stay true: CI runs the same test command, files exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)[:2]


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
