"""What every service's ``__main__`` starts with: settings and logging, read once."""

from __future__ import annotations

from typing import Any

from brandlens_core.logging import configure_logging, get_logger
from brandlens_core.settings import (
    AwsSettings,
    LogSettings,
    StackSettings,
    WorkerSettings,
    worker_settings_for,
)
from brandlens_core.stack import StackNames


class ServiceRuntime:
    """Settings shared by the parts of one service process."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.aws = AwsSettings()
        self.stack = StackSettings()
        self.names = StackNames.from_settings(self.stack)
        self.worker_settings: WorkerSettings = worker_settings_for(service)
        logs = LogSettings()
        configure_logging(service, logs.level, logs.json_output)
        self.log: Any = get_logger(service)
