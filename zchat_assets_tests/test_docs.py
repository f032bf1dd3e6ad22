"""README.md is the front door: its commands are the ones CI and users run."""

from pathlib import Path

from zchat_assets.api import ClientSettings

ROOT = Path(__file__).parents[1]


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert command.startswith("python3 -m venv .venv") and command in readme


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("ZCHAT_API_TOKEN", "ZCHAT_BASE_URL", "ZCHAT_LAKE_URI", "ZCHAT_TIMEZONE", "ZCHAT_START_DATE",
                 "ZCHAT_CONCURRENCY", "ZCHAT_RATE_LIMIT", "ZCHAT_LOOKBACK_DAYS", "DAGSTER_HOME"):
        assert f"`{name}`" in readme or f"{name}=" in readme, name


def test_the_failure_readme_quotes_is_the_default_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"still failed after {ClientSettings().max_retries + 1} attempts (last: HTTP 503" in readme
