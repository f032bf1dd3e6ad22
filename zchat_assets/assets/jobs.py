"""Asset jobs that schedules and the sensor launch."""

from dagster import AssetKey, AssetSelection, define_asset_job

DAILY_GROUPS = ("reports", "history")
REFRESHED_ON_END = [AssetKey(["zchat", n]) for n in ("history", "history_expanded", "messages", "conversations")]

daily_job = define_asset_job(
    "daily_job", selection=AssetSelection.groups(*DAILY_GROUPS),
    description="Every daily dataset (reports, history, messages, conversations) for the selected days.",
)
refresh_job = define_asset_job(
    "refresh_day_job", selection=AssetSelection.assets(*REFRESHED_ON_END),
    description="Re-fetches a day's interactions and messages after some of them have ended.",
)
