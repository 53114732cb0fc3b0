"""AWS clients: the one place berth builds them.

Clients come from one botocore session (boto3 adds nothing berth uses to a client, and importing it and the S3
transfer manager it attaches to S3 clients was a tenth of a cold first invocation), use botocore's `standard` retry
mode and bounded timeouts, and are created on first use: services get `LazyClient`s, so an invocation pays for the
clients its path calls and no other (the pipeline job's first invocation never schedules a retry; its continuations
rarely ask EC2 anything).

The calls that carry no idempotency token (SSM SendCommand, CodeDeploy CreateDeployment) go through clients that
make a single attempt: a client that sent one of those again after a lost answer would run it twice, and berth
decides what an unanswered call means (chalicelib.domain.errors.CallUnanswered).

botocore clients stay `Any` because botocore builds their classes at run time from the service models, so no static
type names their operations.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from chalicelib.settings import Settings

if TYPE_CHECKING:   # imported where used, at run time: a cold start pays only for its own path
    from botocore.session import Session

    from chalicelib.adapters.sts import RoleCredentials
    from chalicelib.domain.job import ArtifactCredentials


def _as_sent(value: Any) -> Any:
    return value


@cache
def _session() -> Session:
    """berth's botocore session. botocore leaves timestamps as AWS sent them instead of converting each to a datetime:
    that was a quarter of the CPU of reading a large fleet's results. The one berth reads (an instance's LaunchTime,
    adapters/ec2.py) it parses itself."""
    import botocore.session

    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_as_sent)
    return session


def client(service: str, region: str | None = None, single_attempt: bool = False, **credentials: Any) -> Any:
    """A client with standard retries (3 more attempts), or with `single_attempt` none at all. `Any`: botocore's
    client classes are made at run time."""
    from botocore.config import Config

    retries = {"mode": "standard", "total_max_attempts": 1} if single_attempt else {"mode": "standard",
                                                                                    "max_attempts": 3}
    config = Config(retries=retries, connect_timeout=5, read_timeout=20)
    return _session().create_client(service, region_name=region or Settings.from_env().region, config=config,
                                    **credentials)


@cache
def _cached_client(service: str, region: str, single_attempt: bool = False) -> Any:
    return client(service, region, single_attempt)


def cached_client(service: str, region: str | None = None) -> Any:
    return _cached_client(service, region or Settings.from_env().region)


class LazyClient:
    """Stands in for `cached_client(service, region)` (or what `make` builds) until a service first touches it: then
    the client is created (or the one already cached is taken) and every attribute comes from it."""

    def __init__(self, service: str, region: str, make: Callable[[], Any] | None = None) -> None:
        self._service = service
        self._region = region
        self._make = make
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = self._make() if self._make is not None else cached_client(self._service, self._region)
        return getattr(self._client, name)


def single_attempt_client(service: str, region: str | None = None) -> Any:
    """For calls without an idempotency token: never sent twice by the SDK. Built when first used."""
    return _cached_client(service, region or Settings.from_env().region, True)


def assumed_role_client(service: str, region: str, credentials: RoleCredentials, single_attempt: bool = False) -> Any:
    """A client signed with a located target's role (chalicelib/adapters/sts.py), in that target's region. Never
    cached here: the caller keeps it for one invocation only."""
    return client(service, region, single_attempt, **credentials.as_client_arguments())


def artifact_s3_client(credentials: ArtifactCredentials | None, region: str | None = None) -> Any:
    """An S3 client signed with the job's artifact credentials (the Lambda's own role may not read the bucket)."""
    if credentials is None:
        return cached_client("s3", region)
    return client("s3", region, aws_access_key_id=credentials.access_key_id.get_secret_value(),
                  aws_secret_access_key=credentials.secret_access_key.get_secret_value(),
                  aws_session_token=credentials.session_token.get_secret_value() if credentials.session_token else None)


def reset_clients() -> None:
    """Forget cached clients and the session (tests switch endpoints and credentials between cases)."""
    _cached_client.cache_clear()
    _session.cache_clear()
