"""Structured logs, EMF metrics and (opt-in) tracing with Powertools, loaded on a handler's first call, not at import.

Logs are JSON with the handler name and, where known, the job and deployment ids as correlation keys. Handlers never
log their event: the CodePipeline event carries artifact credentials. Metrics go out as CloudWatch EMF in namespace
`berth` when a handler ends. Tracing loads the X-Ray SDK (about 500 ms) only when BERTH_TRACING=true.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

NAMESPACE = "berth"


class Telemetry:
    """What services count. Without a Powertools Metrics object it records nothing (tests, scripts)."""

    def __init__(self, metrics: Any | None = None) -> None:
        self._metrics = metrics

    def count(self, name: str, value: float = 1) -> None:
        if self._metrics is not None:
            from aws_lambda_powertools.metrics import MetricUnit

            self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def seconds(self, name: str, value: float) -> None:
        if self._metrics is not None:
            from aws_lambda_powertools.metrics import MetricUnit

            self._metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=value)

    def flush(self) -> None:
        if self._metrics is not None:
            self._metrics.flush_metrics(raise_on_empty_metrics=False)


class _CurrentStdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is when a record is emitted (Lambda's, or a test's capture)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


@cache
def logger() -> Any:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    root = Logger(service="berth", level=os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"),
                  logger_handler=_CurrentStdout())
    # The package logger takes the JSON handler; every chalicelib module's logger propagates to it, whenever imported.
    logging.getLogger("chalicelib")
    copy_config_to_registered_loggers(source_logger=root, include={"chalicelib"})
    # botocore's DEBUG output holds signed request headers, the artifact credentials' session token among them:
    # keep the SDK's loggers above DEBUG whatever level the rest runs at.
    for name in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(name).setLevel(max(logging.getLogger(name).getEffectiveLevel(), logging.INFO))
    return root


@cache
def _metrics() -> Any:
    from aws_lambda_powertools import Metrics

    metrics = Metrics(namespace=NAMESPACE, service="berth")
    # Dimensioned by stage too: dev and prod in one account must not trip each other's alarms.
    metrics.set_default_dimensions(stage=os.environ.get("BERTH_STAGE", "dev"))
    return metrics


@cache
def _tracing() -> bool:
    if os.environ.get("BERTH_TRACING", "").lower() != "true":
        return False
    try:
        from aws_lambda_powertools import Tracer

        Tracer(service="berth", patch_modules=["botocore"])     # berth's clients come from botocore alone
    except ImportError as exc:
        # The package does not ship the X-Ray SDK (the Lambda runtime has only boto3): a handler that failed here
        # would never report its result, so berth runs untraced and says why.
        logger().warning("BERTH_TRACING is true but the X-Ray SDK cannot be imported; running untraced. Add "
                         "aws-xray-sdk to requirements.txt or attach it as a layer", extra={"error": str(exc)})
        return False
    return True


_idle = Telemetry()
_current = _idle


def current() -> Telemetry:
    """The telemetry of the handler call under way (a no-op one outside handlers); wiring injects it."""
    return _current


@contextmanager
def observed(handler: str, context: Any = None) -> Iterator[Telemetry]:
    """Around one handler call: JSON logs keyed by handler and request id, metrics flushed at the end."""
    global _current
    log = logger()
    _tracing()
    log.append_keys(handler=handler, request_id=getattr(context, "aws_request_id", None))
    _current = Telemetry(_metrics())
    try:
        yield _current
    finally:
        _current.flush()
        _current = _idle
        log.remove_keys(["handler", "request_id", "job_id", "deployment_id"])


def correlate(**keys: str | None) -> None:
    """Add correlation ids (job_id, deployment_id) to every log line of the current handler call."""
    if _current is not _idle:
        logger().append_keys(**{key: value for key, value in keys.items() if value})
