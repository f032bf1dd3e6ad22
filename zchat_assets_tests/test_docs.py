"""README.md is the front door, docs/*.md the rest: their commands are the ones CI and users run, and
their links lead somewhere."""

import re
from pathlib import Path

import dagster as dg
import pytest
import yaml

from zchat_assets.api import ClientSettings
from zchat_assets.fleets import fleet_from_yaml
from zchat_assets.api.settings import DEFAULT_TOKEN_ENV
from zchat_assets.resources import ZchatLake
from zchat_assets.sandbox import SandboxApp, SandboxServer
from zchat_assets.settings import DEFAULT_KEY_ENV, ENVIRONMENT, AccountSettings, named

from .conftest import DAY, TOKEN, account_defs, daily_assets, fast_api, make_world

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def prose(path: Path) -> str:
    """The page without its fenced code blocks, where brackets and parentheses are code, not links."""
    return FENCE.sub("", text(path))


def anchors(path: Path) -> set[str]:
    """The heading anchors GitHub gives a page: lower case, punctuation dropped, spaces to hyphens,
    `-1`, `-2`, … on repeats."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(prose(path)):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_ci_runs_the_readme_test_command_verbatim():
    command = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert command.startswith("python3 -m venv .venv") and command in text(README)


@pytest.mark.parametrize("name", [*ENVIRONMENT.values(), DEFAULT_TOKEN_ENV, DEFAULT_KEY_ENV, "DAGSTER_HOME"])
def test_readme_documents_every_setting(name):
    """Every variable the unnamed account reads, from the settings' own table."""
    assert any(form in text(README) for form in (f"`{name}`", f"`${name}`", f"{name}=")), name


def test_the_readme_query_examples_run_on_a_lake(tmp_path, monkeypatch):
    """The README's Python examples, as written, against a lake laid out as the demo writes it."""
    with SandboxServer(SandboxApp(make_world(scale=30), TOKEN)) as server:
        resources = {"zchat_api": fast_api(server.url), "zchat_lake": ZchatLake(uri=str(tmp_path / ".sandbox/lake"))}
        assert dg.materialize(daily_assets(account_defs()), resources=resources, partition_key=DAY).success
    monkeypatch.chdir(tmp_path)
    examples = re.findall(r"^```python\n(.*?)^```", text(README), re.MULTILINE | re.DOTALL)
    assert examples
    for example in examples:
        exec(compile(example, "README.md", "exec"), {})


def test_the_failure_the_docs_quote_is_the_default_one():
    quoted = f"still failed after {ClientSettings().max_retries + 1} attempts (last: HTTP 503"
    assert any(quoted in text(page) for page in PAGES)


def test_the_readme_is_a_front_door():
    assert len(text(README).splitlines()) <= 260


def test_the_readme_links_every_docs_page():
    linked = {target.split("#")[0] for target in LINK.findall(prose(README))}
    assert {f"docs/{page.name}" for page in DOCS} <= linked


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} names no file"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name}: {target} names no heading of {linked.name}"


def test_the_account_example_is_a_valid_account():
    """The YAML after `<!-- account-yaml -->` in docs/accounts.md shows every attribute and loads as a
    named account."""
    block = re.search(r"<!-- account-yaml -->\n```yaml\n(.*?)^```", text(ROOT / "docs" / "accounts.md"),
                      re.MULTILINE | re.DOTALL)
    assert block, "docs/accounts.md: a ```yaml block right after <!-- account-yaml -->"
    document = yaml.safe_load(block.group(1))
    assert document["type"] == "zchat_assets.ZchatAccount"
    assert set(document["attributes"]) == set(AccountSettings.model_fields), "it shows every attribute"
    assert named(document["attributes"]).name == "acme"


def test_the_fleet_example_is_a_valid_fleet():
    """The YAML after `<!-- fleet-yaml -->` in docs/accounts.md loads as a fleet of its three accounts."""
    block = re.search(r"<!-- fleet-yaml -->\n```yaml\n(.*?)^```", text(ROOT / "docs" / "accounts.md"),
                      re.MULTILINE | re.DOTALL)
    assert block, "docs/accounts.md: a ```yaml block right after <!-- fleet-yaml -->"
    document = yaml.safe_load(block.group(1))
    assert document["type"] == "zchat_assets.ZchatFleet"
    fleet = fleet_from_yaml(document["attributes"], "docs/accounts.md", ROOT)
    assert [a.name for a in fleet.accounts] == ["acme", "globex", "initech"]
    assert fleet.account("globex").rate_limit == 10 and fleet.account("acme").rate_limit == 20
