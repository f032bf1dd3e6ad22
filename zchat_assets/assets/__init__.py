"""Dagster assets, checks, jobs, schedules and the sensor of zchat-assets."""

from .checks import report_matches_history
from .conversations import conversations
from .history import history, history_expanded
from .messages import messages
from .ongoing import ongoing
from .reports import report_assets

daily_assets = [*report_assets, history, history_expanded, messages, conversations]
asset_checks = [report_matches_history]

__all__ = ["asset_checks", "daily_assets", "ongoing"]
