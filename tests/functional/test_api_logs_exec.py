"""`berth logs` and `berth exec` through the REST API on the embedded AWS: localaws's instances answer `docker logs`
and one-off runs with outputs the tests choose, and record the argv the shell would have passed to docker."""

from __future__ import annotations

import pytest

import localaws
from localaws import InstanceOutcome
from tests.api.support import call, deployed, identity, register, store
from tests.conftest import World

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
ARN = "arn:aws:iam::123456789012:user/alice"
HOSTILE = ["'; rm -rf / #", "$(reboot)", "`id`", "a\nb", "-rf", '"quoted"']


def one_off_runs() -> list[tuple[str, list[str]]]:
    return [(instance, argv) for instance, argv in localaws.docker_calls() if argv[0] == "start_container.sh"]


# logs ------------------------------------------------------------------------------------------------------------
def test_logs_run_docker_logs_on_every_online_instance_and_merge_them_newest_last(aws: World) -> None:
    first, second = register(aws)
    localaws.set_container_logs("2026-11-27T10:00:01.000000000Z booting\n2026-11-27T10:00:03.000000000Z ready\n",
                                first)
    localaws.set_container_logs("2026-11-27T10:00:02.000000000Z booting\n", second)

    started = call("GET", "/targets/web/logs?since=5m&tail=50")
    assert started.status == 202, started
    assert started.body["instances"] == [first, second] and started.body["instances_left_out"] == 0
    command_id = started.body["command_id"]
    assert started.headers["Location"] == f"/targets/web/logs/{command_id}"
    assert [argv for _, argv in localaws.docker_calls()] == [
        ["docker", "logs", "--timestamps", "--since", "5m", "--tail", "50", "--", "web"]] * 2

    logs = call("GET", f"/targets/web/logs/{command_id}")
    assert logs.status == 200, logs
    assert logs.body["done"] is True
    assert logs.body["lines"] == [f"{first} 2026-11-27T10:00:01.000000000Z booting",
                                  f"{second} 2026-11-27T10:00:02.000000000Z booting",
                                  f"{first} 2026-11-27T10:00:03.000000000Z ready"]
    assert [(i["instance_id"], i["exit_code"], i["cut"]) for i in logs.body["instances"]] == [
        (first, 0, False), (second, 0, False)]


def test_logs_default_to_ten_minutes_and_200_lines_and_honour_tail(aws: World) -> None:
    (only,) = register(aws, instances=1)
    localaws.set_container_logs("".join(f"line {n}\n" for n in range(500)))
    started = call("GET", f"/targets/web/logs?instance={only}")
    assert started.status == 202, started
    assert localaws.docker_calls()[0][1][3:7] == ["--since", "10m", "--tail", "200"]
    lines = call("GET", f"/targets/web/logs/{started.body['command_id']}").body["lines"]
    assert len(lines) == 200 and lines[-1].endswith("line 499") and lines[0].startswith(f"{only} ")


def test_logs_say_when_ssm_cut_the_output_and_where_the_whole_of_it_is(aws: World,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_COMMAND_OUTPUT_BUCKET", "berth-command-output")
    (only,) = register(aws, instances=1)
    localaws.set_container_logs("".join(f"{'x' * 99}\n" for _ in range(300)))
    started = call("GET", "/targets/web/logs?tail=300")
    instance = call("GET", f"/targets/web/logs/{started.body['command_id']}").body["instances"][0]
    assert instance["cut"] is True and len(instance["output"]) == 24_000
    assert instance["output_url"].startswith("https://s3.us-east-1.amazonaws.com/berth-command-output/berth-logs/")
    assert instance["output_url"].endswith(f"/{only}/awsrunShellScript/0.awsrunShellScript/stdout")


def test_logs_are_read_while_instances_still_answer(aws: World) -> None:
    register(aws, instances=1)
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=2))  # each read (list, get) is a poll
    started = call("GET", "/targets/web/logs")
    reply = call("GET", f"/targets/web/logs/{started.body['command_id']}")
    assert reply.body["done"] is False and reply.body["instances"][0]["exit_code"] is None
    assert call("GET", f"/targets/web/logs/{started.body['command_id']}").body["done"] is True


@pytest.mark.parametrize("query, field", [
    ("since=$(reboot)", "since"), ("since=25h", "since"), ("since=0s", "since"), ("since=-10m", "since"),
    ("since=10m%0Aid", "since"), ("tail=0", "tail"), ("tail=10001", "tail"), ("tail=1;id", "tail"),
    ("instance=i-1%27%3Bid", "instance"), ("instance=-rf", "instance"), ("instance=i-0123456789abcdef0%0A", "instance"),
    ("follow=1", "follow"),
])
def test_hostile_or_bad_logs_queries_are_a_400_naming_the_field(aws: World, query: str, field: str) -> None:
    register(aws, instances=1)
    reply = call("GET", f"/targets/web/logs?{query}")
    assert reply.status == 400, reply
    assert reply.error["field"] == field
    assert localaws.docker_calls() == []


def test_logs_of_an_unknown_target_are_a_404_and_of_an_instance_not_online_a_409(aws: World) -> None:
    assert call("GET", "/targets/nope/logs").status == 404
    first, second = register(aws)
    localaws.set_outcome(second, InstanceOutcome(skip=True))      # no SSM agent: not a managed node
    refused = call("GET", f"/targets/web/logs?instance={second}")
    assert refused.status == 409 and refused.error["field"] == "instance"
    assert second in refused.error["message"] and "managed" in refused.error["message"]
    assert call("GET", "/targets/web/logs?instance=i-0123456789abcdef0").status == 409
    assert call("GET", "/targets/web/logs").body["instances"] == [first]


def test_no_online_instance_is_a_409(aws: World) -> None:
    register(aws, instances=0)
    reply = call("GET", "/targets/web/logs")
    assert reply.status == 409 and "Online" in reply.error["message"]


def test_a_logs_command_is_read_only_through_its_own_target_and_route(aws: World) -> None:
    deployed(aws)
    register(aws, "api", instances=0)
    localaws.set_one_off_run("secret output")
    exec_id = call("POST", "/targets/web/exec", {"command": ["env"]}).body["command_id"]
    logs_id = call("GET", "/targets/web/logs").body["command_id"]
    assert call("GET", f"/targets/web/logs/{exec_id}").status == 404        # an exec's output is not logs
    assert call("GET", f"/targets/api/logs/{logs_id}").status == 404        # nor another target's logs
    assert call("GET", f"/targets/web/exec/{logs_id}").status == 404
    assert call("GET", "/targets/web/logs/00000000-0000-0000-0000-000000000000").status == 404
    assert call("GET", "/targets/web/logs/not-a-command").error["field"] == "command_id"


# exec ------------------------------------------------------------------------------------------------------------
def test_exec_runs_a_one_off_container_of_the_current_digest_with_the_env_and_records_the_caller(
        aws: World, monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = deployed(aws, container={"name": "web", "ports": ["5000:5000"], "env": {"DB_URL": "postgres://db"},
                                        "volumes": ["/srv/data:/data"], "restart": "always"})
    pinned = store(aws).get_target("web").current_revision.pinned
    localaws.set_one_off_run("migrations: up to date\n")
    with identity(monkeypatch, user_arn=ARN):
        started = call("POST", "/targets/web/exec", {"command": ["rake", "db:status"], "timeout_seconds": 120})
    assert started.status == 202, started
    body = started.body
    assert (body["caller"], body["image"], body["instances"], body["command"]) == (ARN, pinned, [first],
                                                                                 ["rake", "db:status"])
    assert started.headers["Location"] == f"/targets/web/exec/{body['command_id']}"
    ((instance, argv),) = one_off_runs()
    assert instance == first
    # start_container.sh's one-off mode, with the arguments a swap of the target gets (the script leaves out the
    # ports and the restart policy: tests/unit/test_container_commands.py runs it)
    assert argv[argv.index("--image") + 1] == pinned and argv[argv.index("--one-off") + 1] == store(aws).get_exec(
        body["command_id"]).run_id
    assert argv[argv.index("--one-off-timeout") + 1] == "120"
    assert [argv[i + 1] for i, word in enumerate(argv) if word == "--one-off-arg"] == ["rake", "db:status"]
    assert argv[argv.index("--env") + 1] == "DB_URL=postgres://db"
    assert argv[argv.index("--volume") + 1] == "/srv/data:/data"

    result = call("GET", f"/targets/web/exec/{body['command_id']}")
    assert result.status == 200, result
    assert result.body["done"] is True and result.body["exit_code"] == 0
    assert result.body["results"][0]["output"] == "migrations: up to date\n"
    assert result.body["caller"] == ARN
    assert store(aws).get_exec(body["command_id"]).caller == ARN


def test_exec_on_all_instances_reports_each_exit_code(aws: World) -> None:
    first, second = deployed(aws)
    localaws.set_one_off_run("ok\n", 0, first)
    localaws.set_one_off_run("boom\n", 3, second)
    started = call("POST", "/targets/web/exec", {"command": ["true"], "all": True})
    assert started.body["instances"] == [first, second]
    result = call("GET", f"/targets/web/exec/{started.body['command_id']}").body
    assert [(r["instance_id"], r["exit_code"], r["status"]) for r in result["results"]] == [
        (first, 0, "Success"), (second, 3, "Failed")]
    assert result["exit_code"] == 3


def test_hostile_exec_arguments_reach_the_container_as_they_were_given(aws: World) -> None:
    deployed(aws, instances=1)
    started = call("POST", "/targets/web/exec", {"command": ["sh", "-c", *HOSTILE]})
    assert started.status == 202, started
    ((_, argv),) = one_off_runs()
    assert [argv[i + 1] for i, word in enumerate(argv) if word == "--one-off-arg"] == ["sh", "-c", *HOSTILE]


@pytest.mark.parametrize("body, field", [
    ({}, "command"), ({"command": []}, "command"), ({"command": [""]}, "command"),
    ({"command": ["a\x00b"]}, "command"), ({"command": ["ls"], "timeout_seconds": 59}, "timeout_seconds"),
    ({"command": ["ls"], "timeout_seconds": 3601}, "timeout_seconds"),
    ({"command": ["ls"], "instance": "$(id)"}, "instance"), ({"command": ["ls"], "shell": True}, "shell"),
    ({"command": ["ls"], "all": True, "instance": "i-0123456789abcdef0"}, "all"),
    ({"command": ["ls"], "instance": "i-0123456789abcdef0\n"}, "instance"),
    ({"command": ["x" * 4000] * 5}, "command"),
])
def test_bad_exec_requests_are_a_400_naming_the_field(aws: World, body: dict[str, object],
                                                      field: str | None) -> None:
    deployed(aws, instances=1)
    reply = call("POST", "/targets/web/exec", body)
    assert reply.status == 400, reply
    assert reply.error["field"] == field
    assert one_off_runs() == []


def test_exec_refusals_unknown_target_no_revision_instance_not_online(aws: World) -> None:
    assert call("POST", "/targets/nope/exec", {"command": ["ls"]}).status == 404
    register(aws, instances=0)     # no instance yet: the only ones are those `deployed` launches below
    never = call("POST", "/targets/web/exec", {"command": ["ls"]})
    assert never.status == 409 and never.error["code"] == "NoCurrentRevision"
    first, second = deployed(aws)
    localaws.set_outcome(second, InstanceOutcome(skip=True))
    refused = call("POST", "/targets/web/exec", {"command": ["ls"], "instance": second})
    assert refused.status == 409 and refused.error["field"] == "instance"
    assert call("POST", "/targets/web/exec", {"command": ["ls"]}).body["instances"] == [first]
    assert call("GET", "/targets/web/exec/00000000-0000-0000-0000-000000000000").status == 404
