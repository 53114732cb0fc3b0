"""The handoff on podman: probes every 50 ms through the public port while start_container.sh swaps the service.

The old container serves until the new one is healthy and the proxy has moved traffic to it, so no swap, good or
bad, interrupted or not, may lose a probe. These tests failed on the stop-then-start swap they replace (a healthy
swap lost 6 to 9 probes of 50).
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time

import pytest

from chalicelib.domain.exit_codes import ScriptExit
from tests.containers.support import SCRIPTS_DIR, Engine, Prober, Target, free_port, http_get


def steps(stdout: str) -> list[str]:
    return re.findall(r"^berth-step: (\S+)$", stdout, flags=re.MULTILINE)


def swap(engine: Engine, target: Target, tag: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], Prober]:
    """Deploys `tag` over the running service while a prober watches the public port."""
    with Prober(target.port) as prober:
        time.sleep(0.3)
        result = engine.run("start_container.sh", *target.deploy_args(engine, tag, "--stop-timeout", "1", *extra))
        time.sleep(0.3)
    return result, prober


def assert_no_probe_lost(prober: Prober, *bodies: str) -> None:
    assert len(prober.answers) > 10, "the prober did not run"
    assert prober.failed() == [], f"{len(prober.failed())} of {len(prober.answers)} probes failed"
    assert prober.bodies() <= {f"berth-test {body}" for body in bodies}


def test_a_healthy_swap_loses_no_probe(engine: Engine, deployed_v1: Target) -> None:
    result, prober = swap(engine, deployed_v1, "v2")

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert_no_probe_lost(prober, "v1", "v2")
    assert prober.answers[-1].body == "berth-test v2"
    assert steps(result.stdout) == ["docker", "pull", "start", "health", "switch", "drain", "promote"]
    assert engine.service_containers(deployed_v1.name) == {deployed_v1.name, f"{deployed_v1.name}-berth-proxy"}


def test_a_swap_to_an_unhealthy_image_loses_no_probe(engine: Engine, deployed_v1: Target) -> None:
    result, prober = swap(engine, deployed_v1, "broken", "--health-timeout", "3")

    assert result.returncode == ScriptExit.HEALTH_FAILED_RESTORED, result.stdout + result.stderr
    assert_no_probe_lost(prober, "v1")
    assert "berth-step: restore" in result.stdout
    assert engine.service_containers(deployed_v1.name) == {deployed_v1.name, f"{deployed_v1.name}-berth-proxy"}


def test_a_swap_to_a_container_that_exits_at_once_loses_no_probe(engine: Engine, deployed_v1: Target) -> None:
    with Prober(deployed_v1.port) as prober:
        result = engine.run("start_container.sh", "--image", engine.image("crash"), "--name", deployed_v1.name,
                            "--port", f"{deployed_v1.port}:8080", "--stop-timeout", "1")

    assert result.returncode == ScriptExit.HEALTH_FAILED_RESTORED, result.stdout + result.stderr
    assert "crash-build: exiting at once" in result.stdout
    assert_no_probe_lost(prober, "v1")


def test_a_swap_to_a_container_that_cannot_start_loses_no_probe(engine: Engine, deployed_v1: Target) -> None:
    result, prober = swap(engine, deployed_v1, "nostart")

    assert result.returncode == ScriptExit.START_FAILED, result.stdout + result.stderr
    assert_no_probe_lost(prober, "v1")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("at_step", ["health", "drain"])
def test_a_swap_killed_half_way_loses_no_probe_and_the_next_deploy_finishes(
    engine: Engine, deployed_v1: Target, sig: signal.Signals, at_step: str
) -> None:
    args = deployed_v1.deploy_args(engine, "v2", "--stop-timeout", "1")
    with Prober(deployed_v1.port) as prober:
        process = subprocess.Popen(["bash", str(SCRIPTS_DIR / "start_container.sh"), *args], env=engine.env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = []
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            if line.strip() == f"berth-step: {at_step}":
                process.send_signal(sig)
                break
        seen.append(process.stdout.read())
        killed_with = process.wait(timeout=60)
        time.sleep(0.5)
        after_kill = http_get(deployed_v1.port)
        again = engine.run("start_container.sh", *args)
        time.sleep(0.3)

    assert killed_with != 0, "".join(seen)
    assert after_kill[0] == 200, "".join(seen)
    assert again.returncode == ScriptExit.OK, again.stdout + again.stderr
    assert_no_probe_lost(prober, "v1", "v2")
    assert http_get(deployed_v1.port) == (200, "berth-test v2")
    assert engine.service_containers(deployed_v1.name) == {deployed_v1.name, f"{deployed_v1.name}-berth-proxy"}


def test_a_request_in_flight_when_traffic_moves_completes(engine: Engine, deployed_v1: Target) -> None:
    args = deployed_v1.deploy_args(engine, "v2", "--stop-timeout", "1")
    slow: dict[str, object] = {}

    def slow_request() -> None:
        slow["started"] = time.monotonic()
        slow["answer"] = http_get(deployed_v1.port, "/cgi-bin/slow", timeout=30)
        slow["ended"] = time.monotonic()

    process = subprocess.Popen(["bash", str(SCRIPTS_DIR / "start_container.sh"), *args], env=engine.env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    requester = threading.Thread(target=slow_request)
    marks: dict[str, float] = {}
    assert process.stdout is not None
    output = []
    for line in process.stdout:
        output.append(line)
        if line.strip() == "berth-step: start":
            requester.start()
        if line.startswith("berth-step: "):
            marks[line.split()[1]] = time.monotonic()
    assert process.wait(timeout=60) == ScriptExit.OK, "".join(output)
    requester.join()

    assert slow["answer"] == (200, "slow v1"), "".join(output)
    assert marks["switch"] < slow["ended"], "the request was not in flight when traffic moved"  # type: ignore[operator]
    assert marks["promote"] > slow["ended"], "the old container was stopped before its request finished"  # type: ignore[operator]
    assert http_get(deployed_v1.port) == (200, "berth-test v2")


def test_a_redeploy_of_what_already_runs_is_a_no_op(engine: Engine, deployed_v1: Target) -> None:
    before = engine.inspect(deployed_v1.name)

    result, prober = swap(engine, deployed_v1, "v1")

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert steps(result.stdout) == ["docker", "pull", "unchanged"]
    assert "nothing to do" in result.stdout
    assert re.search(r"^berth-digest: \S+@sha256:[0-9a-f]{64}$", result.stdout, flags=re.MULTILINE)
    after = engine.inspect(deployed_v1.name)
    assert (after["Id"], after["State"]["StartedAt"]) == (before["Id"], before["State"]["StartedAt"])  # type: ignore[index]
    assert_no_probe_lost(prober, "v1")


def test_a_redeploy_with_other_settings_swaps(engine: Engine, deployed_v1: Target) -> None:
    before = engine.inspect(deployed_v1.name)["Id"]  # type: ignore[index]

    result, prober = swap(engine, deployed_v1, "v1", "--env", "MODE=changed")

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert "unchanged" not in steps(result.stdout)
    assert "MODE=changed" in engine.inspect(deployed_v1.name)["Config"]["Env"]  # type: ignore[index]
    assert engine.inspect(deployed_v1.name)["Id"] != before  # type: ignore[index]
    assert_no_probe_lost(prober, "v1")


def test_the_proxy_comes_back_from_a_restart_routing_to_the_last_container(engine: Engine, deployed_v1: Target) -> None:
    proxy = f"{deployed_v1.name}-berth-proxy"
    result, _ = swap(engine, deployed_v1, "v2")
    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr

    engine.podman("restart", proxy)
    deadline = time.monotonic() + 10
    while http_get(deployed_v1.port)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)

    assert http_get(deployed_v1.port) == (200, "berth-test v2")
    state = engine.inspect(proxy)
    assert state is not None
    assert state["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert state["HostConfig"]["NetworkMode"] == "host"
    assert state["Config"]["Labels"]["berth.proxy-for"] == deployed_v1.name
    assert state["ImageName"] == engine.proxy_image
    published = engine.inspect(deployed_v1.name)["NetworkSettings"]["Ports"]["8080/tcp"]  # type: ignore[index]
    assert [binding["HostIp"] for binding in published] == ["127.0.0.1"]


def test_a_legacy_container_on_the_public_port_moves_behind_the_proxy(engine: Engine, target: Target) -> None:
    # What berth's earlier scripts left: NAME publishing the public port itself, no label, no proxy.
    engine.podman("run", "-d", "--name", target.name, "-p", f"{target.port}:8080", engine.image("v1"))
    deadline = time.monotonic() + 10
    while http_get(target.port)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)

    result, prober = swap(engine, target, "v2")

    assert result.returncode == ScriptExit.OK, result.stdout + result.stderr
    assert "the one gap of the move to the proxy" in result.stdout
    assert prober.answers[-1].body == "berth-test v2"
    # The one gap: the old container stops, then the proxy binds the port.
    assert prober.longest_outage() < 2.0, prober.failed()
    print(f"moving a legacy container behind the proxy: {len(prober.failed())} of {len(prober.answers)} probes "
          f"failed, longest outage {prober.longest_outage():.2f} s")
    later, prober = swap(engine, target, "v1")
    assert later.returncode == ScriptExit.OK, later.stdout + later.stderr
    assert_no_probe_lost(prober, "v1", "v2")


def test_a_failed_move_from_a_legacy_container_restarts_it(engine: Engine, target: Target) -> None:
    engine.podman("run", "-d", "--name", target.name, "-p", f"{target.port}:8080", engine.image("v1"))
    # Something else holds a second public port, so the proxy cannot bind it.
    other = free_port()
    blocker = subprocess.Popen(["python3", "-m", "http.server", "--bind", "0.0.0.0", str(other)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        result = engine.run("start_container.sh", *target.deploy_args(engine, "v2", "--port", f"{other}:8080"))
    finally:
        blocker.terminate()
        blocker.wait()

    assert result.returncode == ScriptExit.PROXY_FAILED, result.stdout + result.stderr
    assert "berth-error: 31 PROXY_FAILED" in result.stdout
    assert http_get(target.port) == (200, "berth-test v1")
    assert engine.service_containers(target.name) == {target.name}


def test_a_service_with_a_udp_port_swaps_directly(engine: Engine, target: Target) -> None:
    udp = f"{free_port()}:9999/udp"
    first = engine.run("start_container.sh", *target.deploy_args(engine, "v1", "--port", udp))
    second = engine.run("start_container.sh", *target.deploy_args(engine, "v2", "--port", udp))

    assert first.returncode == second.returncode == ScriptExit.OK, second.stdout + second.stderr
    assert "UDP ports cannot pass through the proxy" in second.stdout
    assert http_get(target.port) == (200, "berth-test v2")
    assert engine.service_containers(target.name) == {target.name}


def test_another_targets_container_named_like_a_backup_is_never_removed(engine: Engine, target: Target) -> None:
    # "web-berth-previous" was a valid name for another target; deploying "web" force-removed it as a stale backup.
    other = f"{target.name}-berth-previous"
    engine.podman("run", "-d", "--name", other, engine.image("v1"))
    other_id = engine.inspect(other)["Id"]  # type: ignore[index]

    for tag in ("v1", "v2"):
        result = engine.run("start_container.sh", *target.deploy_args(engine, tag))
        assert result.returncode == ScriptExit.OK, result.stdout + result.stderr

    survivor = engine.inspect(other)
    assert survivor is not None and survivor["Id"] == other_id and survivor["State"]["Running"]
    assert http_get(target.port) == (200, "berth-test v2")


def test_a_container_in_the_candidates_name_that_berth_did_not_start_stops_the_deploy(
    engine: Engine, deployed_v1: Target
) -> None:
    stranger = f"{deployed_v1.name}-berth-next"
    engine.podman("run", "-d", "--name", stranger, engine.image("v1"))

    result = engine.run("start_container.sh", *deployed_v1.deploy_args(engine, "v2"))

    assert result.returncode == ScriptExit.START_FAILED, result.stdout + result.stderr
    assert "that berth did not create" in result.stderr
    assert engine.inspect(stranger) is not None
    assert http_get(deployed_v1.port) == (200, "berth-test v1")


def test_a_first_deploy_whose_port_is_taken_leaves_no_proxy_behind(engine: Engine, target: Target) -> None:
    blocker = subprocess.Popen(["python3", "-m", "http.server", "--bind", "0.0.0.0", str(target.port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        result = engine.run("start_container.sh", *target.deploy_args(engine, "v1"))
    finally:
        blocker.terminate()
        blocker.wait()

    assert result.returncode == ScriptExit.PROXY_FAILED, result.stdout + result.stderr
    assert "is DOWN" in result.stderr
    assert engine.service_containers(target.name) == set()
