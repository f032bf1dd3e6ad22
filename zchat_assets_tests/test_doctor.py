"""`zchat-assets doctor` against the sandbox in each dialect, and against mistakes a user makes."""

import shutil
import subprocess
import sys
from pathlib import Path
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from zchat_assets import doctor
from zchat_assets.api.settings import PAGE_SIZE
from zchat_assets.assets.partitions import day_window
from zchat_assets.sandbox import DIALECTS, SandboxApp, SandboxServer, World
from zchat_assets.sandbox.views import Views
from zchat_assets.settings import from_environment

ROOT = Path(__file__).parents[1]
TOKEN = "doctor-token-5e1f-SECRET"
NOTES = {  # what the report says about each reading of the document, besides "everything matches"
    "flat_expanded": "sends agent, department and customer fields flat",
    "naive_times": "timestamps have no offset",
    "fractional_averages": "averages come with decimals",
    "not_answer": "the queue state is spelled NOT_ANSWER",
    "counter_excludes_bots": "the expanded counter leaves bot and system messages out",
    "missing_ids": "some messages come without an id",
    "lower_content": "author types spelled agent",  # and bot, customer, system as the sampled day has them
}


def busy_world(seed: int = 4, **kw) -> World:
    """A world whose clock stands at 15:00 yesterday (São Paulo): yesterday has data, and the queue is full."""
    busy = datetime.combine(yesterday(), time(15), ZoneInfo("America/Sao_Paulo")).timestamp()
    return World(seed=seed, scale=kw.pop("scale", 200), now=lambda: busy, **kw)


def yesterday():
    return datetime.now(ZoneInfo("America/Sao_Paulo")).date() - timedelta(days=1)


def sampled_with_system_messages(**kw) -> World:
    """A busy world in which the conversations doctor samples hold a system message: 8 % of messages are, and
    which day is yesterday changes the sample."""
    window = day_window(yesterday().isoformat(), "America/Sao_Paulo")
    for seed in range(4, 64):
        views = Views(busy_world(seed, **kw))
        page = views.history({"from": window.start, "to": window.end, "timezone": window.offset,
                              "limit": str(2 * doctor.PROTOCOLS), "page": "1"}, expanded=True)
        sampled = [r for r in page if r.get("endTime") and r.get("id") is not None][:doctor.PROTOCOLS]
        if any(m["author"]["type"] == "SYSTEM" for r in sampled for m in views.messages(str(r["id"]))):
            return views.world
    raise AssertionError("no seed gives doctor a system message to sample")


def diagnose(url: str, token: str = TOKEN, **env) -> tuple[int, str]:
    lines: list[str] = []
    settings = from_environment({"ZCHAT_BASE_URL": url, **env})
    status = doctor.run(settings, {"ZCHAT_API_TOKEN": token} if token else {}, lines.append)
    return status, "\n".join(lines)


@pytest.mark.parametrize("dialect", ["default", *NOTES])
def test_each_dialect_is_recognised_and_matches(dialect):
    dialects = frozenset() if dialect == "default" else frozenset({dialect})
    world = (sampled_with_system_messages if dialect == "missing_ids" else busy_world)(scale=1500)  # a full queue
    app = SandboxApp(world, TOKEN, dialects=dialects)
    with SandboxServer(app) as server:
        status, report = diagnose(server.url)
    assert status == 0, report
    assert "Everything matches" in report and TOKEN not in report
    if dialect != "default":
        assert NOTES[dialect] in report, report
    assert app.stats.requests <= 17  # a handful of requests: the account's budget is spared


def test_a_field_the_schema_does_not_know_is_a_note_with_where_to_report_it():
    """Kept losslessly in extra_json: nothing to act on (exit 0), but worth telling the project."""
    with SandboxServer(SandboxApp(busy_world(), TOKEN, schema_changes=("new_field",))) as server:
        status, report = diagnose(server.url)
    assert status == 0, report
    assert "note  history: fields zchat-assets does not know yet, kept as they came in extra_json: " \
           "satisfaction.comment, satisfaction.score\n" in report
    assert report.count("report them as an issue of the repository you installed zchat-assets from") == 1


def test_a_named_account_with_its_token_only_in_dotenv(tmp_path):
    """As Dagster's commands do: `doctor --account acme` reads the .env of the folder it runs in, says so,
    and never prints what it holds."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "zchat_assets", project / "zchat_assets", ignore=shutil.ignore_patterns("__pycache__"))
    account = project / "zchat_assets" / "defs" / "accounts" / "acme"
    account.mkdir(parents=True)
    with SandboxServer(SandboxApp(busy_world(scale=40), TOKEN)) as server:
        (account / "defs.yaml").write_text("type: zchat_assets.ZchatAccount\nattributes:\n  name: acme\n"
                                           f"  token_env: ACME_ZCHAT_TOKEN\n  base_url: {server.url}\n")
        (project / ".env").write_text(f"ACME_ZCHAT_TOKEN={TOKEN}\n")
        done = subprocess.run([sys.executable, "-m", "zchat_assets.cli", "doctor", "--account", "acme"], cwd=project,
                              env={"PYTHONPATH": str(project), "PATH": ""}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("Read 1 variable(s) from .env, as Dagster's commands do.\n"
                                  "zchat-assets doctor: account acme at http://127.0.0.1:")
    assert "token accepted" in done.stdout and TOKEN not in done.stdout + done.stderr


def test_a_rejected_token_in_a_200_body_is_exit_2_naming_the_variable():
    app = SandboxApp(busy_world(scale=10), "another", dialects=frozenset({"auth_in_body"}))
    with SandboxServer(app) as server:
        status, report = diagnose(server.url)
    assert status == 2 and "check ZCHAT_API_TOKEN" in report and app.stats.requests == 1


@pytest.mark.parametrize("url,words", [
    ("http://127.0.0.1:9", "The connection was refused"),
    ("https://127.0.0.1:{port}", "The TLS handshake failed"),
    ("http://127.0.0.1:{port}/wrong", "HTTP 404 calling"),
])
def test_set_up_mistakes_are_exit_2_with_the_reason(url, words):
    with SandboxServer(SandboxApp(busy_world(scale=10), TOKEN)) as server:
        status, report = diagnose(url.format(port=server.port))
    assert status == 2 and words in report and TOKEN not in report


def test_a_missing_token_is_exit_2_naming_the_variable():
    status, report = diagnose("http://127.0.0.1:9", token=None)
    assert status == 2 and "ZCHAT_API_TOKEN is not set" in report


def test_the_command_line(tmp_path):
    with SandboxServer(SandboxApp(busy_world(scale=40), TOKEN, dialects=frozenset(DIALECTS) - {"auth_in_body"})) \
            as server:
        done = subprocess.run([sys.executable, "-m", "zchat_assets.cli", "doctor"], capture_output=True, text=True,
                              env={"ZCHAT_API_TOKEN": TOKEN, "ZCHAT_BASE_URL": server.url, "PATH": ""}, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "zchat-assets doctor: the unnamed account" in done.stdout and TOKEN not in done.stdout + done.stderr


@pytest.mark.parametrize("message,finding", [
    ({"id": "1", "author": {"type": "PERSON"}, "text": "oi", "type": "TEXT"},
     "ACT   messages: author types zchat-assets does not know: PERSON"),
    ({"id": "1", "author": {"type": "client"}, "body": "oi", "type": "TEXT"},
     "ACT   messages: no message has its text under text or content"),
    ({"id": "1", "author": {"type": "Client"}, "content": "oi", "kind": "TEXT"},
     "ACT   messages: no message has its type under type or content_type"),
    ({"id": "1", "author": {"type": "client"}, "content": "oi", "content_type": "TEXT"},
     "note  messages: author types spelled client: read as CUSTOMER, AGENT, BOT, SYSTEM"),
])
def test_a_message_shape_that_would_leave_columns_empty_is_reported(message, finding):
    lines = []
    doctor._message_shape(doctor.Report(lines.append), [message])
    assert any(line.strip().startswith(finding) for line in lines), lines


def test_a_server_that_caps_the_page_size_is_noted():
    with SandboxServer(SandboxApp(busy_world(scale=300), TOKEN, page_cap=100)) as server:
        status, report = diagnose(server.url)
    assert status == 0 and f"note  history: the API caps a page at 100 records (limit={PAGE_SIZE} asked)" in report


def test_a_cap_above_the_page_size_the_runs_ask_for_is_not_noted():
    """Days long enough for a second page of 10,000: asked for that, the API would have seemed to cap its pages."""
    with SandboxServer(SandboxApp(busy_world(scale=2 * PAGE_SIZE + 1_000), TOKEN, page_cap=PAGE_SIZE + 1)) as server:
        status, report = diagnose(server.url)
    assert status == 0 and "caps a page" not in report
