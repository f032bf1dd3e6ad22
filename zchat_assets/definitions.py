"""The code location: every account defined under `zchat_assets/defs/`, loaded by Dagster's components."""

import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
from dagster._utils.warnings import suppress_dagster_warnings

from .assets import LAKES
from .settings import SettingsError


# Dagster flags two parameters this project relies on as beta, once per asset, at every start: noise
# that says nothing to a user. Only these two messages are silenced.
warnings.filterwarnings("ignore", message=r"Parameter `(backfill_policy|execution_type)`", category=dg.BetaWarning)


@dg.definitions
def defs() -> dg.Definitions:
    try:
        accounts = load_accounts()
    except Exception as exc:
        # An account's bad setting is one sentence: show it, not the component tree around it.
        cause = next((e for e in _chain(exc) if isinstance(e, SettingsError)), None)
        if cause is None:
            raise
        raise SettingsError(str(cause)) from None
    check_lakes(accounts.metadata or {})
    # The steps wait on the network, not the CPU: one process per run avoids a process start per step.
    return dg.Definitions.merge(accounts, dg.Definitions(executor=dg.in_process_executor))


@suppress_dagster_warnings  # as load_from_defs_folder is
def load_accounts() -> dg.Definitions:
    """The components under defs/, as `load_from_defs_folder` builds them but without what the UI's
    add-a-component form needs, which this project does not use: the catalogue of every component type
    installed (building it imports and describes every Dagster integration present, 0.3 s and 12 MB at every
    start of a run) and the components added through that form."""
    tree = dg.ComponentTree.for_project(path_within_project=Path(__file__).parent)
    return dg.Definitions.merge(tree.build_defs(tree.defs_module_path), dg.Definitions(component_tree=tree))


def check_lakes(metadata: Mapping) -> None:
    """Named accounts and fleets may share a lake (each account has its `account=` level); the unnamed account
    may not, since its days sit directly under each dataset, where a glob over all accounts would read them
    as one more; and no account may be written by two definitions (a named account and a fleet's)."""
    def where(uri: str):
        return Path(uri).resolve() if "://" not in uri else uri

    writers: dict[tuple, str] = {}
    for key, value in metadata.items():
        if key.startswith(LAKES):
            for account, uri in json.loads(value.value).items():
                owner = key[len(LAKES):]
                other = writers.setdefault((where(uri), account), owner)
                if other != owner:
                    raise SettingsError(f"Account {account} is defined twice, by {other} and {owner}, both writing "
                                        f"to {uri}: keep it in one of them (a lake written by a named account carries "
                                        "on under a fleet once the named account's folder is deleted).")
    unnamed = {lake for lake, account in writers if account == ""}
    for (lake, account), owner in writers.items():
        if account and lake in unnamed:
            raise SettingsError(
                f"The unnamed account (zchat_assets/defs/default) and account {account} ({owner}) both write to "
                f"{lake}: give one of them another lake_uri, or remove the unnamed account once every account "
                "has a name.")


def _chain(exc: BaseException):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__
