"""Instances answer berth's operator commands (`docker logs`, a one-off run) with outputs a test chooses."""

from __future__ import annotations

import shlex
from typing import Any

from localaws_testkit import launch

import localaws
from localaws import InstanceOutcome

DOC = "AWS-RunShellScript"


def _send(ssm: Any, instance_ids: list[str], *lines: str, **extra: Any) -> str:
    reply = ssm.send_command(DocumentName=DOC, InstanceIds=instance_ids, Parameters={"commands": list(lines)}, **extra)
    return str(reply["Command"]["CommandId"])


def _result(ssm: Any, command_id: str, instance_id: str) -> dict[str, Any]:
    return dict(ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id))


def test_docker_logs_answer_the_chosen_text_per_instance_honouring_tail(ssm: Any, ec2: Any) -> None:
    first, second = launch(ec2, 2)
    localaws.set_container_logs("a\nb\nc\n", first)
    localaws.set_container_logs("elsewhere\n")
    command_id = _send(ssm, [first, second], "set -u", "docker logs --since 10m --tail 2 -- web 2>&1")
    assert _result(ssm, command_id, first)["StandardOutputContent"] == "b\nc\n"
    assert _result(ssm, command_id, second)["StandardOutputContent"] == "elsewhere\n"
    assert localaws.docker_calls() == [(first, ["docker", "logs", "--since", "10m", "--tail", "2", "--", "web"]),
                                       (second, ["docker", "logs", "--since", "10m", "--tail", "2", "--", "web"])]


def test_timestamps_are_added_to_lines_without_one(ssm: Any, ec2: Any) -> None:
    (only,) = launch(ec2)
    localaws.set_container_logs("2026-11-27T10:00:00.000000000Z stamped\nplain\n")
    command_id = _send(ssm, [only], "docker logs --timestamps --tail 5 web")
    assert _result(ssm, command_id, only)["StandardOutputContent"] == (
        "2026-11-27T10:00:00.000000000Z stamped\n2026-01-01T00:00:00.000000000Z plain\n")


def test_a_one_off_run_answers_its_output_and_exit_code_and_shows_its_argv_as_the_shell_would(ssm: Any,
                                                                                             ec2: Any) -> None:
    (only,) = launch(ec2)
    localaws.set_one_off_run("boom\n", 3)
    args = ["--image", "img@sha256:" + "a" * 64, "--name", "web", "--one-off", "abc", "--one-off-arg", "sh",
            "--one-off-arg", "-c", "--one-off-arg", "echo '$(x)'; exit 3"]
    line = 'bash "$berth_dir/start_container.sh" ' + " ".join(shlex.quote(arg) for arg in args)
    command_id = _send(ssm, [only], "#!/bin/sh", "# berth exec abc", line)
    result = _result(ssm, command_id, only)
    assert (result["Status"], result["ResponseCode"], result["StandardOutputContent"]) == ("Failed", 3, "boom\n")
    assert localaws.docker_calls() == [(only, ["start_container.sh", *args])]


def test_a_swap_is_no_one_off_run_whatever_its_arguments_say(ssm: Any, ec2: Any) -> None:
    (only,) = launch(ec2)
    localaws.set_one_off_run("chosen\n")
    localaws.set_default_outcome(InstanceOutcome(stdout="swapped\n"))
    command_id = _send(ssm, [only], "#!/bin/sh", "# berth deployment d-1",
                       'bash "$berth_dir/start_container.sh" --name web --cmd --one-off --cmd docker')
    assert _result(ssm, command_id, only)["StandardOutputContent"] == "swapped\n"
    assert localaws.docker_calls() == []


def test_without_a_chosen_answer_or_for_other_commands_the_configured_outcome_holds(ssm: Any, ec2: Any) -> None:
    first, second = launch(ec2, 2)
    localaws.set_default_outcome(InstanceOutcome(stdout="configured\n"))
    localaws.set_container_logs("chosen\n", first)
    logs = _send(ssm, [first, second], "docker logs web")
    deploy = _send(ssm, [first], 'bash "$berth_dir/start_container.sh" --name docker')
    assert _result(ssm, logs, second)["StandardOutputContent"] == "configured\n"
    assert _result(ssm, deploy, first)["StandardOutputContent"] == "configured\n"


def test_an_unmanaged_instance_runs_nothing_whatever_its_docker_would_answer(ssm: Any, ec2: Any) -> None:
    first, second = launch(ec2, 2)
    localaws.set_outcome(second, InstanceOutcome(skip=True))
    localaws.set_container_logs("chosen\n")
    command_id = _send(ssm, [first], "docker logs web")
    assert _result(ssm, command_id, first)["StandardOutputContent"] == "chosen\n"
    assert {i["InstanceId"] for i in ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"]} == {
        first}


def test_an_output_bucket_gives_each_invocation_its_s3_url(ssm: Any, ec2: Any) -> None:
    (only,) = launch(ec2)
    command_id = _send(ssm, [only], "docker logs web", OutputS3BucketName="out", OutputS3KeyPrefix="berth-logs")
    assert _result(ssm, command_id, only)["StandardOutputUrl"] == (
        f"https://s3.{ssm.meta.region_name}.amazonaws.com/out/berth-logs/{command_id}/{only}/awsrunShellScript/"
        "0.awsrunShellScript/"
        "stdout")
    plain = _send(ssm, [only], "docker logs web")
    assert _result(ssm, plain, only)["StandardOutputUrl"] == ""


def test_reset_forgets_the_answers_and_the_calls(ssm: Any, ec2: Any) -> None:
    (only,) = launch(ec2)
    localaws.set_container_logs("chosen\n")
    _send(ssm, [only], "docker logs web")
    localaws.reset()
    assert localaws.docker_calls() == []
    command_id = _send(ssm, [only], "docker logs web")
    assert _result(ssm, command_id, only)["StandardOutputContent"] == ""
