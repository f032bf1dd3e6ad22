"""The code location: every account defined under `zchat_assets/defs/`, loaded by Dagster's components."""

import warnings
from pathlib import Path

import dagster as dg

from .resources import ZchatLake
from .settings import SettingsError


# Dagster flags two parameters this project relies on as beta, once per asset, at every start: noise
# that says nothing to a user. Only these two messages are silenced.
warnings.filterwarnings("ignore", message=r"Parameter `(backfill_policy|execution_type)`", category=dg.BetaWarning)


@dg.definitions
def defs() -> dg.Definitions:
    try:
        accounts = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    except Exception as exc:
        # An account's bad setting is one sentence: show it, not the component tree around it.
        cause = next((e for e in _chain(exc) if isinstance(e, SettingsError)), None)
        if cause is None:
            raise
        raise SettingsError(str(cause)) from None
    check_lakes(accounts.resources or {})
    # The steps wait on the network, not the CPU: one process per run avoids a process start per step.
    return dg.Definitions.merge(accounts, dg.Definitions(executor=dg.in_process_executor))


def check_lakes(resources: dict) -> None:
    """Named accounts may share a lake (each has its `account=` level); the unnamed one may not, since its
    days sit directly under each dataset, where a glob over all accounts would read them as one more."""
    def where(uri: str):
        return Path(uri).resolve() if "://" not in uri else uri

    lakes = [r for r in resources.values() if isinstance(r, ZchatLake)]
    unnamed = {where(r.uri) for r in lakes if r.account is None}
    for lake in lakes:
        if lake.account is not None and where(lake.uri) in unnamed:
            raise SettingsError(
                f"The unnamed account (zchat_assets/defs/default) and account {lake.account} both write to "
                f"{lake.uri}: give one of them another lake_uri, or remove the unnamed account once every account "
                "has a name.")


def _chain(exc: BaseException):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__
