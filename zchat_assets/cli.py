"""The `zchat-assets` command: the sandbox, the demo, the UI against the sandbox, the data dictionary."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import warnings
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from .sandbox.dialects import DIALECTS
from .settings import from_environment, from_yaml, validated

SANDBOX_TOKEN_ENV = "ZCHAT_API_TOKEN"
DEMO_TOKEN_ENV = "ZCHAT_DEMO_TOKEN"
SANDBOX_HOME = ".sandbox"  # the demo's and the sandbox UI's own instance, and their lake in lake/ below it


def main(argv: list[str] | None = None) -> int:
    # Dagster flags `backfill_policy` as beta on every asset that uses it: noise at a user's first command.
    warnings.filterwarnings("ignore", message="Parameter `backfill_policy`")
    parser = argparse.ArgumentParser(prog="zchat-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    sandbox = commands.add_parser("sandbox", help="serve the simulated Zenvia Chat API in the foreground")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    _world_options(sandbox)
    sandbox.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    sandbox.add_argument("--jitter", type=float, default=0.0, help="random extra seconds, up to this much")
    sandbox.add_argument("--faults", default="", help="e.g. 500=0.02,reset=0.01,drift=0.1 or all=0.01")
    sandbox.add_argument("--gaps", default="", help="conversations lost for good, e.g. purged=0.01,short=0.01: "
                                                    "/messages answers 404, or one message short of the counter")
    sandbox.add_argument("--max-in-flight", type=int, default=None, help="answer 429 above this many requests")
    sandbox.add_argument("--page-cap", type=int, default=None, help="answer at most this many records a page, "
                                                                    "whatever limit asks for")
    sandbox.add_argument("--retry-after", type=float, default=1.0, help="seconds announced with 429s")
    sandbox.add_argument("--slow-seconds", type=float, default=3.0, help="how late the `slow` fault answers")
    sandbox.add_argument("--schema-changes", default="", help="comma-separated: new_field, number_as_text, text_in_number")
    sandbox.add_argument("--dialect", default="", help="comma-separated readings of the vendor's document "
                                                         "(or all): " + ", ".join(DIALECTS))
    sandbox.add_argument("--also-token-env", action="append", default=[], metavar="NAME",
                         help="serve one more account, with a world of its own, to the token in variable NAME "
                              "(repeatable)")
    sandbox.add_argument("--fleet-prefix", default=None, metavar="PREFIX",
                         help="serve a fleet: every token PREFIX<n> (n = 0, 1, 2, …) gets a world of its own, "
                              "seeded with --seed + n")

    demo = commands.add_parser("demo", help=f"materialize the last complete days from a local sandbox into "
                                            f"{SANDBOX_HOME}/lake")
    demo.add_argument("--days", type=int, default=14, help="complete days to materialize, 1 to 60 (default 14: "
                                                           "enough for the UI's plots to show a fortnight's shape)")
    _world_options(demo)

    ui = commands.add_parser("ui", help="start a sandbox and the Dagster UI (dagster dev) pointed at it")
    _world_options(ui)
    ui.add_argument("--port", type=int, default=3000, help="the UI's port")

    commands.add_parser("docs", help="print the data dictionary (Markdown) generated from the schemas")

    doctor = commands.add_parser("doctor", help="check an account against the real API before its first run "
                                               "(exit 0 all good, 1 something to act on, 2 cannot reach or authenticate)")
    doctor.add_argument("--account", default=None, help="a named account of zchat_assets/defs/, or an account of a "
                                                        "fleet there (default: the "
                                                        "unnamed one, from the ZCHAT_* variables)")

    gaps = commands.add_parser("gaps", help="list the conversations lost at the vendor (purged, or short of their "
                                            "counter), by day, as the last published run of each day found them")
    gaps.add_argument("--account", default=None, help="a named account of zchat_assets/defs/, or an account of a fleet "
                                                      "there (default: the unnamed one)")
    gaps.add_argument("--day", default=None, help="one day, YYYY-MM-DD (default: every day with gaps)")

    erase = commands.add_parser("erase", help="erase one data subject (LGPD Art. 18) from an account's lake: every "
                                              "dataset, the message cache, snapshots and quarantine; every later "
                                              "write keeps them out")
    who = erase.add_mutually_exclusive_group(required=True)
    for kind, example in (("customer-id", "4746760"), ("phone", "'+55 11 91234-5678'"), ("email", "ana@email.example"),
                          ("document", "123.456.789-09"), ("protocol", "9484000001")):
        who.add_argument(f"--{kind}", metavar="VALUE", help=f"e.g. {example}")
    erase.add_argument("--account", default=None, help="a named account, or an account of a fleet (default: the "
                                                       "unnamed one)")
    erase.add_argument("--fleet", default=None, help="every account of this fleet")
    erase.add_argument("--delete", action="store_true", help="remove the subject's interactions and messages "
                                                             "(default: keep them, with every personal field nulled)")
    erase.add_argument("--dry-run", action="store_true", help="list the days, datasets and rows it would change")

    plan = commands.add_parser("plan", help="list an account's missing days, the requests and time fetching them "
                                            "takes (an estimate), and which the vendor's retention loses first")
    plan.add_argument("--account", default=None, help="a named account, or an account of a fleet (default: the "
                                                      "unnamed one)")
    plan.add_argument("--fleet", default=None, help="every account of this fleet, one line each")

    recover = commands.add_parser("recover", help="mark failed the runs of the instance ($DAGSTER_HOME) whose "
                                                  "process is gone (killed), and free the pool slots they hold")
    recover.add_argument("--run-id", action="append", default=[], help="only this run (repeatable); on an instance "
                                                                       "whose runs ran on other machines, mark it "
                                                                       "failed: its process cannot be seen from here")

    args = parser.parse_args(argv)
    try:
        # The demo and the sandbox UI keep to themselves: a real account's .env is not theirs to read.
        args.environ = with_dotenv(os.environ) if args.command in ("sandbox", "doctor", "gaps", "erase", "plan") else dict(os.environ)
        if "timezone" in args:  # checked before anything starts
            args.timezone = _timezone(args)
        return {"sandbox": run_sandbox, "demo": run_demo, "ui": run_ui, "docs": run_docs,
                "doctor": run_doctor, "gaps": run_gaps, "erase": run_erase, "plan": run_plan,
                "recover": run_recover}[args.command](args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"zchat-assets: {exc}", file=sys.stderr)
        return 2


def _world_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", type=int, default=300, help="interactions per day")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timezone", default=None, help="account time zone (default: ZCHAT_TIMEZONE or America/Sao_Paulo)")
    parser.add_argument("--regulars", type=int, default=0, help="returning customers: a pool this large, one "
                                                                 "interaction in five is one of them (default 0)")
    parser.add_argument("--typing", type=float, default=0.0, help="share of customers' text messages in which they "
                                                                  "type their own phone, CPF or e-mail (default 0)")


def _timezone(args) -> str:
    """--timezone, else ZCHAT_TIMEZONE, else the default; checked like any account's time zone, and a bad
    one named as the user gave it."""
    if args.timezone:
        return validated({"timezone": args.timezone}, lambda attribute: f"--{attribute}").timezone
    return from_environment({"ZCHAT_TIMEZONE": args.environ.get("ZCHAT_TIMEZONE", "")}).timezone


def _world(args, account: int = 0):
    from .sandbox import World

    return World(seed=args.seed + account, scale=args.scale, tz=args.timezone, account=account,
                 regulars=args.regulars, typing=args.typing)


def _fleet_worlds(args):
    """The world of a fleet's token PREFIX<n>: its own seed and protocol numbers (account 1000 + n)."""
    from .sandbox import World

    def world(token: str):
        number = token[len(args.fleet_prefix):]
        if not token.startswith(args.fleet_prefix) or not number.isdigit():
            return None
        return World(seed=args.seed + int(number), scale=args.scale, tz=args.timezone, account=1000 + int(number),
                     regulars=args.regulars, typing=args.typing)

    return world


def run_sandbox(args) -> int:
    from .sandbox import SandboxApp, SandboxServer, parse_dialects, parse_faults, parse_gaps

    tokens = [args.environ.get(name) for name in (SANDBOX_TOKEN_ENV, *args.also_token_env)]
    if not all(tokens):
        raise ValueError(f"set {', '.join((SANDBOX_TOKEN_ENV, *args.also_token_env))} to the tokens the sandbox "
                         "should accept (any strings)")
    app = SandboxApp(_world(args), tokens[0], latency=args.latency, jitter=args.jitter, faults=parse_faults(args.faults),
                     max_in_flight=args.max_in_flight, retry_after=args.retry_after, slow_seconds=args.slow_seconds,
                     schema_changes=tuple(c.strip() for c in args.schema_changes.split(",") if c.strip()),
                     more_accounts={t: _world(args, n) for n, t in enumerate(tokens[1:], start=1)},
                     dialects=parse_dialects(args.dialect), gaps=parse_gaps(args.gaps), page_cap=args.page_cap,
                     fleet=_fleet_worlds(args) if args.fleet_prefix else None)
    try:
        server = SandboxServer(app, args.host, args.port)
    except OSError as exc:
        raise ValueError(f"cannot listen on {args.host}:{args.port} ({exc.strerror}): pass --port with a free one "
                         "(0 picks one)") from None
    # Ctrl-C or kill stops it even when started in the background of a script, which inherits SIGINT ignored.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.default_int_handler)
    with server, contextlib.suppress(KeyboardInterrupt):
        print(f"Zenvia Chat sandbox on {server.url} (scale {args.scale}/day, seed {args.seed}); it accepts the token "
              f"in {SANDBOX_TOKEN_ENV}. Ctrl-C stops it.", flush=True)
        signal.pause()
    return 0


def _sandbox_home() -> Path:
    """`.sandbox/` in the repository root: the demo's and the sandbox UI's own Dagster instance and lake, so
    that they never mix with the instance, the `.env` or the lake of a real account (Dagster's CLI loads the
    `.env` of the folder it starts in, over the environment it was given)."""
    root = Path.cwd()
    if not (root / "dagster.yaml").exists() or not (root / "workspace.yaml").exists():
        raise FileNotFoundError("run this from the repository root (where dagster.yaml and workspace.yaml are)")
    home = root / SANDBOX_HOME
    home.mkdir(exist_ok=True)
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copy(root / name, home / name)
    return home


DEMO_START = "demo_start"  # in .sandbox/: the demo's first day, where the sandbox UI's partitions start


def _demo_start(home: Path, otherwise: str) -> str:
    """The first day the demos wrote, or `otherwise` before any demo."""
    return (home / DEMO_START).read_text().strip() if (home / DEMO_START).exists() else otherwise


def _sandbox_settings(args, server_url: str, home: Path) -> dict:
    """The unnamed account pointed at the sandbox, with a lake of its own in .sandbox/lake whatever
    ZCHAT_LAKE_URI says, and its partitions starting where the demo's data starts (so the UI does not look
    empty)."""
    start = _demo_start(home, (datetime.now(ZoneInfo(args.timezone)).date() - timedelta(days=14)).isoformat())
    return {"base_url": server_url, "timezone": args.timezone, "lake_uri": str(home / "lake"), "start_date": start}


def run_demo(args) -> int:
    if not 1 <= args.days <= 60:
        raise ValueError(f"--days {args.days} is not valid: use a whole number of days from 1 to 60")
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    from .demo import run
    from .sandbox import SandboxApp, SandboxServer

    home = _sandbox_home()
    token = secrets.token_urlsafe(24)
    with SandboxServer(SandboxApp(_world(args), token)) as server:
        # The demo runs in this process: its resources read the token from the variable they name.
        os.environ[DEMO_TOKEN_ENV] = token
        yesterday = datetime.now(ZoneInfo(args.timezone)).date() - timedelta(days=1)
        first = yesterday - timedelta(days=args.days - 1)
        # The earliest day of this and earlier demos: the UI shows every day written.
        (home / DEMO_START).write_text(min(first.isoformat(), _demo_start(home, first.isoformat())))
        account = from_environment({}, token_env=DEMO_TOKEN_ENV, **_sandbox_settings(args, server.url, home))
        instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
        return run(account, instance, first.isoformat(), yesterday.isoformat(), scale=args.scale)


def run_ui(args) -> int:
    from .sandbox import SandboxApp, SandboxServer

    named_accounts = sorted((document.get("attributes") or {})["name"] for _, document in _accounts()
                            if (document.get("attributes") or {}).get("name"))
    if named_accounts:
        raise ValueError(f"zchat_assets/defs/ has named accounts ({', '.join(named_accounts)}) that would call their "
                         "real APIs from the sandbox UI: use dagster dev -w workspace.yaml for them")
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", args.port))
        except OSError:
            raise ValueError(f"port {args.port} is in use (another Dagster UI?): pass --port with a free one") from None
    home = _sandbox_home()
    token = secrets.token_urlsafe(24)
    with SandboxServer(SandboxApp(_world(args), token)) as server:
        settings = _sandbox_settings(args, server.url, home)
        env = {k: v for k, v in args.environ.items() if not k.startswith("ZCHAT_")}
        env.update({"DAGSTER_HOME": str(home), SANDBOX_TOKEN_ENV: token, "ZCHAT_BASE_URL": settings["base_url"],
                    "ZCHAT_TIMEZONE": settings["timezone"], "ZCHAT_LAKE_URI": settings["lake_uri"],
                    "ZCHAT_START_DATE": settings["start_date"],
                    # `dagster dev` tells at every start that `dg dev` supersedes it: nothing to act on here.
                    "PYTHONWARNINGS": "ignore:Function `dev_command` is superseded"})
        print(f"Sandbox on {server.url}; Dagster UI on http://127.0.0.1:{args.port} (Ctrl-C stops both).", flush=True)
        command = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(args.port)]
        child = subprocess.Popen(command, cwd=home, env=env, start_new_session=True, preexec_fn=_default_signals)

        def stop(*_):  # closing the terminal, `timeout`, kill: the UI and all its children go too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)

        for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(number, stop)
        try:
            return child.wait()
        finally:
            stop()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)


def _default_signals() -> None:
    """Started in the background, we inherit an ignored SIGINT that `dagster dev` would pass on to
    its children, which then ignore SIGTERM too; give the UI the default handlers back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run_doctor(args) -> int:
    from . import doctor

    return doctor.run(account_settings(args.account, args.environ), args.environ)


def run_gaps(args) -> int:
    from . import gaps

    lake = account_settings(args.account, args.environ).lake()
    days = [args.day] if args.day else gaps.days(lake)
    lines = [f"{day}  {protocol}  {gap}" for day in days for protocol, gap in gaps.recorded(lake, day).items()]
    print("\n".join(lines) if lines else f"No gaps recorded in {lake.uri(lake.root)}"
                                          f"{' for ' + args.day if args.day else ''}.")
    return 0


def run_erase(args) -> int:
    from .erase import erase, summary
    from .erasure import KINDS

    kind = next(k for k in KINDS if getattr(args, k) is not None)
    if args.fleet and args.account:
        raise ValueError("give --account or --fleet, not both: --account names one account, of a fleet or not")
    accounts = fleet_settings(args.fleet).accounts if args.fleet else [account_settings(args.account, args.environ)]
    for settings in accounts:
        lake = settings.lake()
        outcome = erase(lake, settings.privacy(args.environ), kind, getattr(args, kind), args.delete, args.dry_run)
        print("\n".join(summary(outcome, lake, args.dry_run)))
    return 0


def run_plan(args) -> int:
    from .plan import account_report, fleet_report

    if args.fleet and args.account:
        raise ValueError("give --account or --fleet, not both: --account names one account, of a fleet or not")
    if args.fleet:
        fleet = fleet_settings(args.fleet)
        for settings in fleet.accounts:
            settings.check_secret_names(args.environ)
        print(fleet_report(fleet.name, list(fleet.accounts)))
    else:
        print(account_report(account_settings(args.account, args.environ)))
    return 0


def run_recover(args) -> int:
    from dagster import DagsterInstance

    from .assets.account import is_local
    from .recover import recover

    if not args.environ.get("DAGSTER_HOME"):
        raise ValueError("DAGSTER_HOME is not set: set it to the instance's folder (the one with its dagster.yaml)")
    with DagsterInstance.get() as instance:
        local = is_local(instance)
        if not args.run_id and not local:
            raise ValueError("this instance holds runs of other machines, whose processes cannot be seen from here: "
                             "there the daemon's run monitoring fails dead runs and frees their slots; to mark one "
                             "run failed by hand, give --run-id")
        lines = recover(instance, args.run_id or None, local)
    print("\n".join(lines) if lines else "No run of this instance has lost its process.")
    return 0


def with_dotenv(environ: Mapping[str, str], folder: Path | None = None) -> dict[str, str]:
    """The environment as Dagster's commands see it: the `.env` of the folder the command runs in, if any,
    over the process's own variables. Says which file it read (never what it holds)."""
    from dotenv import dotenv_values

    path = (folder or Path.cwd()) / ".env"
    if not path.is_file():
        return dict(environ)
    values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    print(f"Read {len(values)} variable(s) from {os.path.relpath(path)}, as Dagster's commands do.", flush=True)
    return {**environ, **values}


def account_settings(name: str | None, environ: Mapping[str, str]):
    """The account as the code location builds it: the one of that name under zchat_assets/defs/ (a named
    account, or an account of a fleet), or the unnamed one (its defs.yaml over the ZCHAT_* variables)."""
    from .fleets import fleet_from_yaml

    for source, document in _accounts():
        attributes = document.get("attributes") or {}
        if document.get("type") == "zchat_assets.ZchatFleet":
            fleet = fleet_from_yaml(attributes, source, Path(source).parent)
            settings = next((a for a in fleet.accounts if a.name == name), None)
        else:
            settings = from_yaml(attributes, environ, source) if attributes.get("name") == name else None
        if settings is not None:
            settings.check_secret_names(environ)
            return settings
    if name is None:
        return from_environment(environ)
    raise ValueError(f"no account named {name!r} under zchat_assets/defs/: add it with "
                     f"dg scaffold defs zchat_assets.ZchatAccount accounts/{name}")


def fleet_settings(name: str):
    """The fleet of that name under zchat_assets/defs/."""
    from .fleets import fleet_from_yaml

    for source, document in _accounts():
        attributes = document.get("attributes") or {}
        if document.get("type") == "zchat_assets.ZchatFleet" and attributes.get("name") == name:
            return fleet_from_yaml(attributes, source, Path(source).parent)
    raise ValueError(f"no fleet named {name!r} under zchat_assets/defs/: add it with "
                     f"dg scaffold defs zchat_assets.ZchatFleet fleets/{name}")


def _accounts() -> list[tuple[str, dict]]:
    """Every component under zchat_assets/defs/ (accounts and fleets): its defs.yaml as errors name it, and
    the YAML as written."""
    import yaml

    from .component import source_of

    return [(source_of(path.parent), yaml.safe_load(path.read_text()) or {})
            for path in sorted((Path(__file__).parent / "defs").rglob("defs.yaml"))]


def run_docs(args) -> int:
    from .schemas import markdown_dictionary

    print(markdown_dictionary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
