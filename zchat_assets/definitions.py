"""The code location: every asset, check, job, schedule, sensor and resource of zchat-assets."""

from dagster import Definitions, EnvVar, in_process_executor

from . import settings
from .api import validate_base_url
from .assets import asset_checks, daily_assets, ongoing
from .assets.jobs import daily_job, refresh_job
from .assets.schedules import daily_schedule, lookback_schedule
from .assets.sensors import ongoing_sensor
from .resources import ZchatApi, ZchatLake

validate_base_url(EnvVar("ZCHAT_BASE_URL").get_value(settings.DEFAULT_BASE_URL))

defs = Definitions(
    assets=[*daily_assets, ongoing],
    asset_checks=asset_checks,
    jobs=[daily_job, refresh_job],
    schedules=[daily_schedule, lookback_schedule],
    sensors=[ongoing_sensor],
    resources={
        "zchat_api": ZchatApi(
            token=EnvVar("ZCHAT_API_TOKEN"),
            base_url=settings.env_or("ZCHAT_BASE_URL", settings.DEFAULT_BASE_URL),
            concurrency=settings.concurrency(),
            rate_limit=settings.rate_limit(),
        ),
        "zchat_lake": ZchatLake(
            uri=settings.env_or("ZCHAT_LAKE_URI", settings.DEFAULT_LAKE_URI),
            personal_data=settings.personal_data(),
            personal_data_key=EnvVar("ZCHAT_PERSONAL_DATA_KEY") if EnvVar("ZCHAT_PERSONAL_DATA_KEY").get_value() else None,
        ),
    },
    # The steps wait on the network, not the CPU: one process per run avoids a process start per step.
    executor=in_process_executor,
)
