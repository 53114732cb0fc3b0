"""The `berth` CLI's operator commands: sync, logs and exec, against the in-process app behind a loopback HTTP server
(tests/functional/cli_front.py)."""

from __future__ import annotations

import io
import json
import re

import pytest

import localaws
from berth_cli.main import main
from localaws import InstanceOutcome
from tests.api.support import deployed, push_image, register
from tests.functional.cli_front import CLI_KEY, CLI_SECRET, STAGE_PREFIX, Front, berth, verify_sigv4

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")


def test_status_shows_the_instance_behind_and_sync_wait_brings_it_to_the_revision(front: Front) -> None:
    world = front.world
    instances = sorted(register(world, instances=2, rollout={"max_errors": "1"}))
    digest = push_image(world, "web", "v1")
    localaws.set_outcome(instances[1], InstanceOutcome(status="Failed", response_code=30, stdout="berth-step: pull"))
    code, out, err = berth(front, "deploy", "web", "--image", world.image_uri("web", "v1"), "--wait")
    assert code == 0, err
    first = re.search(r"(d-\S+) succeeded", out)
    assert first is not None
    code, out, _ = berth(front, "show", first.group(1))
    assert code == 0 and f"behind   1: {instances[1]}" in out
    code, out, _ = berth(front, "status", "web")
    assert code == 0 and "running on  2 instances as far as berth knows" in out
    assert f"  {instances[0]}  {digest[:19]}... ({first.group(1)})\n" in out
    assert f"  {instances[1]}  unknown  BEHIND" in out
    assert f"behind      1: {instances[1]}; `berth sync web` brings them to the current revision" in out
    code, out, _ = berth(front, "plan", "web")
    assert code == 0 and f"  {instances[1]}" in out and "runs: unknown  BEHIND" in out

    localaws.set_outcome(instances[1], InstanceOutcome())
    code, out, err = berth(front, "sync", "web", "--wait", "--reason", "pull failed")

    assert code == 0, err
    assert re.search(r"d-\S+ succeeded", out) and "SUCCEEDED: 1/1 instances done" in err.splitlines()[-1]
    code, out, _ = berth(front, "status", "web")
    assert code == 0 and "behind      none" in out and "BEHIND" not in out
    code, out, err = berth(front, "sync", "web")
    assert code == 1 and "no running instance is behind" in err


def test_sync_without_wait_names_the_instances_it_sent_to(front: Front) -> None:
    world = front.world
    instances = sorted(register(world, instances=2, rollout={"max_errors": "1"}))
    push_image(world, "web", "v1")
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=30))
    assert berth(front, "deploy", "web", "--image", world.image_uri("web", "v1"), "--wait")[0] == 0

    code, out, _ = berth(front, "sync", "web")

    assert code == 0 and f"on 1 instances left behind ({instances[0]})" in out and "follow it with: berth show" in out


# logs and exec ---------------------------------------------------------------------------------------------------
def test_logs_print_every_instances_lines_prefixed_newest_last(front: Front, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = register(front.world)
    for name, value in (("AWS_ACCESS_KEY_ID", CLI_KEY), ("AWS_SECRET_ACCESS_KEY", CLI_SECRET)):
        monkeypatch.setenv(name, value)
    localaws.set_container_logs("2026-11-27T10:00:01.000000000Z one\n2026-11-27T10:00:03.000000000Z three\n", first)
    localaws.set_container_logs("2026-11-27T10:00:02.000000000Z two\n", second)
    code, out, err = berth(front, "logs", "web", "--since", "1h", "--tail", "5")
    assert code == 0, err
    assert out.splitlines() == [f"{first} 2026-11-27T10:00:01.000000000Z one",
                                f"{second} 2026-11-27T10:00:02.000000000Z two",
                                f"{first} 2026-11-27T10:00:03.000000000Z three"]
    assert front.seen[0].method == "GET" and "since=1h" in front.seen[0].path and "tail=5" in front.seen[0].path
    assert verify_sigv4(front.seen[0], front.url.removesuffix(STAGE_PREFIX))  # the query is signed too


def test_logs_follow_moves_since_forward_and_prints_each_line_once(front: Front) -> None:
    (only,) = register(front.world, instances=1)
    localaws.set_container_logs("2026-11-27T10:00:01.000000000Z one\n")
    now = [100.0]
    rounds = []

    def sleep(seconds: float) -> None:
        rounds.append(seconds)
        now[0] += 3.2
        localaws.set_container_logs("2026-11-27T10:00:01.000000000Z one\n2026-11-27T10:00:05.000000000Z five\n")
        if len(rounds) == 2:
            raise KeyboardInterrupt

    out, err = io.StringIO(), io.StringIO()
    code = main(["logs", "web", "--follow", "--url", front.url], out=out, err=err, sleep=sleep, clock=lambda: now[0])
    assert code == 130
    assert out.getvalue().splitlines() == [f"{only} 2026-11-27T10:00:01.000000000Z one",
                                           f"{only} 2026-11-27T10:00:05.000000000Z five"]
    assert [argv[3:5] for _, argv in localaws.docker_calls()] == [["--since", "10m"], ["--since", "5s"]]


def test_logs_say_when_an_instance_failed_or_ssm_cut_the_output(front: Front) -> None:
    register(front.world, instances=1)
    localaws.set_default_outcome(InstanceOutcome(status="Failed", response_code=1,
                                                 stdout="Error: No such container: web\n"))
    code, out, err = berth(front, "logs", "web")
    assert code == 1
    assert "No such container" in out and "docker logs ended Failed (exit code 1)" in err


def test_exec_prints_the_output_and_exits_with_the_remote_exit_code(front: Front) -> None:
    deployed(front.world, instances=1)
    localaws.set_one_off_run("\x1b[31mpending migration\n", 3)
    out, err = io.StringIO(), io.StringIO()
    code = main(["exec", "web", "--url", front.url, "--", "rake", "db:status", "--trace"], out=out, err=err,
                sleep=lambda _: None)
    assert code == 3
    assert out.getvalue() == "\\x1b[31mpending migration\n"
    assert "rake db:status --trace" in err.getvalue() and "ended Failed (exit code 3)" in err.getvalue()
    sent = json.loads(front.seen[0].body)
    assert sent == {"command": ["rake", "db:status", "--trace"], "timeout_seconds": 600}
    assert front.seen[0].path == f"{STAGE_PREFIX}/targets/web/exec"


def test_exec_on_all_instances_prefixes_each_line(front: Front) -> None:
    first, second = deployed(front.world)
    localaws.set_one_off_run("ok\n")
    out, err = io.StringIO(), io.StringIO()
    code = main(["exec", "web", "--all", "--url", front.url, "--", "true"], out=out, err=err, sleep=lambda _: None)
    assert code == 0, err.getvalue()
    assert out.getvalue().splitlines() == [f"{first} ok", f"{second} ok"]


def test_exec_refusals_are_one_line_and_exit_1(front: Front) -> None:
    register(front.world, instances=1)
    out, err = io.StringIO(), io.StringIO()
    code = main(["exec", "web", "--url", front.url, "--", "ls"], out=out, err=err, sleep=lambda _: None)
    assert code == 1 and "409" in err.getvalue() and "no current revision" in err.getvalue()
    with pytest.raises(SystemExit):
        main(["exec", "web", "--all", "--instance", "i-0123456789abcdef0", "--", "ls"])
