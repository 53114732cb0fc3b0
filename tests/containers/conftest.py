"""Fixtures that run the instance scripts against a real container engine.

Podman stands in for Docker: a ``docker`` shim (``exec podman "$@"``) comes first on the scripts' PATH, and the
engine runs with configuration written by ``setup_engine.sh`` into a session directory (ulimits, runc, cgroupfs,
a private image store, and an insecure local registry). Debian's ``docker-registry`` serves the test images on
a free loopback port, so ``docker pull`` in the scripts is a real pull.

The images are a static busybox rootfs imported with ``podman import``: ``v1`` and ``v2`` serve different
``/version`` files and a ``/cgi-bin/slow`` that answers after 5 s, ``broken`` serves no ``/health`` (404),
``crash`` exits at once and ``nostart`` names a command that does not exist. Their ``sh`` PID 1 traps SIGTERM:
busybox ``httpd`` as PID 1 ignores it and every stop would wait the whole grace period. The proxy image is this
machine's haproxy and socat with their libraries, pushed to the registry and used pinned by digest
(``BERTH_PROXY_IMAGE``); the proxies' files go to a session directory (``BERTH_STATE_DIR``).

Tests that need the engine take the ``engine`` fixture; it skips them, with the reason, when podman is missing
or does not work. The session ends by removing every container and stopping the registry.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.containers.support import SUFFIXES, Engine, EngineUnavailable, Target, engine_session, free_port, http_get


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine)


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    try:
        with engine_session(tmp_path_factory.mktemp("engine")) as session:
            yield session
    except EngineUnavailable as unavailable:
        print(f"\nSKIPPING container engine tests: {unavailable}")
        pytest.skip(str(unavailable))


@pytest.fixture
def target(engine: Engine) -> Iterator[Target]:
    chosen = Target(name=f"berth-t-{uuid.uuid4().hex[:8]}", port=free_port())
    yield chosen
    engine.remove(chosen.name, *(chosen.name + suffix for suffix in SUFFIXES))


@pytest.fixture
def deployed_v1(engine: Engine, target: Target) -> Target:
    """A target already serving v1 through start_container.sh."""
    result = engine.run("start_container.sh", *target.deploy_args(engine, "v1"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert http_get(target.port) == (200, "berth-test v1")
    return target
