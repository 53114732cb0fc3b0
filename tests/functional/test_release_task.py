"""The release task (`release` in the spec) on the embedded AWS: run once, on one instance, in the new digest, before
any swap; through the pipeline job's continuations, through the REST API with SSM's command events, and `berth deploy`.
localaws's instances answer the one-off run with the output and exit code a test chooses."""

from __future__ import annotations

import json
from typing import Any

import pytest

import localaws
from localaws import InstanceOutcome
from tests.api.support import call, deploy, push_image, register, settle, store
from tests.conftest import World
from tests.events import load_event, pipeline_job_event
from tests.functional.cli_front import Front, berth
from tests.functional.support import TAGS, deliver, invoke, jid, results, spec
from tools import local_pipeline

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
MIGRATE = {"command": ["bin/rails", "db:migrate"], "timeout_seconds": 600}
OK = InstanceOutcome(stdout="berth-step: health\nberth-result: ok")


def commands(aws: World) -> list[dict[str, Any]]:
    return sorted(aws.client("ssm").list_commands()["Commands"], key=lambda c: c["RequestedDateTime"])


def release_runs() -> list[tuple[str, list[str]]]:
    """The one-off runs sent (start_container.sh --one-off, as localaws records them)."""
    return [(instance, argv) for instance, argv in localaws.docker_calls() if argv[0] == "start_container.sh"]


def one_off_command(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv) if word == "--one-off-arg"]


def job(aws: World, job_id: str, params: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    """One invocation of the pipeline action, as CodePipeline makes it; the result it reported."""
    bucket, key = aws.put_artifact({})
    invoke(pipeline_job_event(job_id=job_id, user_parameters=json.dumps(params), bucket=bucket, key=key, token=token))
    return results(job_id)[-1]


def record(aws: World, deployment_id: str) -> Any:
    return store(aws).get_deployment(deployment_id)


# through the pipeline job -----------------------------------------------------------------------------------------
def test_the_first_invocation_sends_only_the_release_and_a_continuation_sends_the_swap_once_it_passed(
        aws: World) -> None:
    instances = sorted(aws.launch(3, TAGS))
    digest = aws.push_image("web", "v2")
    localaws.set_default_outcome(OK)
    localaws.set_one_off_run("== 20261127 AddIndex: migrated (0.01s)\n", 0)
    params = spec(image=aws.image_uri("web", "v2"), release=MIGRATE)

    first = job(aws, jid("release-1"), params)
    assert first["type"] == "success" and "continuationToken" in first
    sent = commands(aws)
    assert len(sent) == 1, "the first invocation sends the release task, nothing else"
    assert sent[0]["InstanceIds"] == [instances[0]]
    assert sent[0]["Comment"].endswith(" release")
    assert sent[0]["Parameters"]["executionTimeout"] == ["630"]
    [(where, argv)] = release_runs()
    assert where == instances[0]
    assert argv[argv.index("--one-off") + 1].startswith("release-d-")
    assert argv[argv.index("--env") + 1] == "APP_MODE=production"
    assert argv[argv.index("--image") + 1] == f"{aws.image_uri('web', 'v2').split(':')[0]}@{digest}"
    assert one_off_command(argv) == ["bin/rails", "db:migrate"]
    deployment_id = first["executionDetails"]["externalExecutionId"]
    releasing = record(aws, deployment_id)
    assert releasing.status.value == "IN_PROGRESS" and releasing.release.phase.value == "RELEASING"
    assert releasing.attempts == [] and releasing.release.instance_id == instances[0]

    second = job(aws, jid("release-1-2"), params, token=first["continuationToken"])
    assert second["type"] == "success"
    sent = commands(aws)
    assert len(sent) == 2 and "Targets" in sent[1], "the continuation sees the release pass, then sends the swap"
    assert "release" not in sent[1]["Comment"]

    reply, rounds = second, 2
    while "continuationToken" in reply and rounds < 10:
        rounds += 1
        reply = job(aws, jid(f"release-1-{rounds}"), params, token=reply["continuationToken"])
    assert reply["type"] == "success" and "continuationToken" not in reply
    done = record(aws, deployment_id)
    assert done.status.value == "SUCCEEDED" and done.release.phase.value == "RELEASED"
    assert done.release.exit_code == 0 and "AddIndex: migrated" in done.release.output_tail
    assert len(release_runs()) == 1, "run once however many invocations followed"
    actions = [decision.action for decision in done.history]
    assert actions.index("release-dispatched") < actions.index("release-passed") < actions.index("dispatched")


def test_a_failed_release_fails_the_job_naming_the_task_and_its_output_tail_and_swaps_nothing(aws: World) -> None:
    aws.launch(2, TAGS)
    aws.push_image("web", "v2")
    localaws.set_default_outcome(OK)
    noise = "".join(f"line {n}\n" for n in range(400))
    localaws.set_one_off_run(noise + "PG::UndefinedTable: ERROR: relation \"users\" does not exist\n", 1)
    params = spec(image=aws.image_uri("web", "v2"), release=MIGRATE)

    replies = local_pipeline.run_job(invoke, results, json.dumps(params), *aws.put_artifact({}),
                                     first_job_id=jid("release-fails"))

    final = replies[-1].result
    assert final["type"] == "failure"
    message = final["failureDetails"]["message"]
    assert "release task 'bin/rails db:migrate' exited 1" in message and "nothing was swapped" in message
    assert 'relation "users" does not exist' in message and "line 0\n" not in message and len(message) <= 5000
    assert len(commands(aws)) == 1, "no swap command was sent"
    deployment = record(aws, final["failureDetails"]["externalExecutionId"])
    assert deployment.status.value == "FAILED" and deployment.attempts == []
    assert deployment.release.phase.value == "FAILED" and deployment.release.exit_code == 1
    target = store(aws).get_target("web-prod")
    assert target is not None and target.current_revision is None


def test_a_release_that_overstays_its_timeout_says_it_was_stopped(aws: World) -> None:
    aws.launch(1, TAGS)
    aws.push_image("web", "v2")
    localaws.set_one_off_run("berth-exec: stopped after 30 seconds\n", 124)
    params = spec(image=aws.image_uri("web", "v2"), release={"command": ["sleep", "999"], "timeout_seconds": 30})
    replies = local_pipeline.run_job(invoke, results, json.dumps(params), *aws.put_artifact({}),
                                     first_job_id=jid("release-slow"))
    message = replies[-1].result["failureDetails"]["message"]
    assert "was stopped after its timeout (exit 124)" in message and len(commands(aws)) == 1


# through the REST API and the CLI ---------------------------------------------------------------------------------
def command_event(command_id: str, status: str = "Success") -> dict[str, Any]:
    event = load_event("ssm_command_success")
    event["detail"].update({"command-id": command_id, "status": status, "document-name": "AWS-RunShellScript"})
    return event


def test_a_rest_deploy_runs_the_release_then_swaps_on_the_release_commands_ssm_event(aws: World) -> None:
    instances = sorted(register(aws, instances=2, release=MIGRATE))
    push_image(aws, "web", "v1")
    localaws.set_one_off_run("migrated\n", 0)

    started = deploy(image=aws.image_uri("web", "v1"))
    assert started.status == 202, started
    deployment_id = started.body["deployment_id"]
    [release] = commands(aws)
    assert release["InstanceIds"] == [instances[0]]
    shown = call("GET", f"/deployments/{deployment_id}").body
    assert shown["release"]["phase"] in ("RELEASING", "RELEASED") and shown["release"]["command_id"]

    deliver(command_event(release["CommandId"]))
    assert len(commands(aws)) == 2, "SSM's event for the release command sends the swap"
    final = settle(deployment_id)
    assert final["status"] == "SUCCEEDED" and final["release"]["phase"] == "RELEASED"
    assert len(release_runs()) == 1


def test_a_redeploy_of_the_same_digest_skips_a_release_that_succeeded_and_a_rollback_never_runs_it(
        aws: World) -> None:
    instances = sorted(register(aws, instances=2, release=MIGRATE, retry={"max_attempts": 1}))
    push_image(aws, "web", "v1")
    push_image(aws, "web", "v2")
    localaws.set_one_off_run("migrated\n", 0)
    assert settle(deploy(image=aws.image_uri("web", "v1")).body["deployment_id"])["status"] == "SUCCEEDED"
    assert len(release_runs()) == 1

    localaws.set_outcome(instances[1], InstanceOutcome(status="Failed", response_code=40, stdout="berth-step: health"))
    failed = settle(deploy(image=aws.image_uri("web", "v2")).body["deployment_id"])
    assert failed["status"] == "FAILED" and failed["release"]["phase"] == "RELEASED"
    assert len(release_runs()) == 2

    localaws.set_outcome(instances[1], OK)
    again = settle(deploy(image=aws.image_uri("web", "v2")).body["deployment_id"])
    assert again["status"] == "SUCCEEDED"
    assert again["release"]["phase"] == "SKIPPED" and again["release"]["ran_in"] == failed["deployment_id"]
    assert len(release_runs()) == 2, "its release succeeded for this digest: not run again"

    rolled = call("POST", "/targets/web/rollback", {})
    assert rolled.status == 202, rolled
    back = settle(rolled.body["deployment_id"])
    assert back["status"] == "SUCCEEDED" and "release" not in back
    assert len(release_runs()) == 2, "a rollback goes back to a revision whose release already ran"


def test_berth_deploy_shows_a_failed_release_and_its_output_tail(front: Front) -> None:
    aws = front.world
    register(aws, instances=2, release=MIGRATE)
    push_image(aws, "web", "v1")
    localaws.set_one_off_run("rake aborted!\nActiveRecord::PendingMigrationError\n", 1)

    code, out, err = berth(front, "deploy", "web", "--image", aws.image_uri("web", "v1"), "--wait", "--json")
    assert code == 3, err
    final = json.loads(out)
    assert final["status"] == "FAILED" and final["release"]["phase"] == "FAILED"
    code, shown, err = berth(front, "show", final["deployment_id"])
    assert code == 0, err
    assert "release  bin/rails db:migrate: failed on i-" in shown and ", exit 1" in shown
    assert "    | ActiveRecord::PendingMigrationError" in shown
    assert len(commands(aws)) == 1


# the edge ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("release, field", [
    ({"command": []}, "release.command"),
    ({"command": ["x"] * 65}, "release.command"),
    ({"command": ["migrate\u0000; id"]}, "release.command"),
    ({"command": ["migrate"], "timeout_seconds": 29}, "release.timeout_seconds"),
    ({"command": ["migrate"], "timeout_seconds": 3601}, "release.timeout_seconds"),
    ({"command": ["migrate"], "timeout_seconds": "$(id)"}, "release.timeout_seconds"),
    ({"timeout_seconds": 600}, "release.command"),
    ({"command": ["migrate"], "run_as": "root"}, "release.run_as"),
])
def test_a_bad_release_is_a_400_naming_the_field(aws: World, release: dict[str, Any], field: str) -> None:
    reply = call("PUT", "/targets/web", {"instances": {"tags": TAGS}, "container": {"name": "web"},
                                         "release": release})
    assert reply.status == 400, reply
    assert reply.error["code"] == "InvalidRequest" and reply.error["field"] == field, reply.error


def test_the_openapi_document_describes_the_release_task(aws: World) -> None:
    schemas = call("GET", "/openapi.json").body["components"]["schemas"]
    release = schemas["ReleaseSpec"]
    assert release["required"] == ["command"]
    command = release["properties"]["command"]
    assert command["minItems"] == 1 and command["maxItems"] == 64
    timeout = release["properties"]["timeout_seconds"]
    assert (timeout["minimum"], timeout["maximum"], timeout["default"]) == (30, 3600, 600)
    assert any("ReleaseTask" in name for name in schemas), "the deployment view shows the task"


def test_the_plan_says_the_release_task_will_run_first_and_where(aws: World) -> None:
    instances = sorted(register(aws, instances=3, release=MIGRATE))
    push_image(aws, "web", "v1")
    plan = call("POST", "/targets/web/plan", {"image": aws.image_uri("web", "v1")})
    assert plan.status == 200, plan
    assert plan.body["release"] == {"command": ["bin/rails", "db:migrate"], "timeout_seconds": 600,
                                    "instance_id": instances[0], "ran_in": None}
    assert commands(aws) == [], "a plan sends nothing"


def test_berth_plan_prints_where_the_release_task_would_run(front: Front) -> None:
    instances = sorted(register(front.world, instances=2, release=MIGRATE))
    push_image(front.world, "web", "v1")
    code, out, err = berth(front, "plan", "web", "--image", front.world.image_uri("web", "v1"))
    assert code == 0, err
    assert f"release   bin/rails db:migrate (600 s): first, on {instances[0]}, before any swap" in out


def test_a_rollout_in_waves_sends_its_first_wave_only_once_the_release_passed(aws: World) -> None:
    instances = sorted(register(aws, instances=3, release=MIGRATE, rollout={"canary": {"instances": 1}}))
    push_image(aws, "web", "v1")
    localaws.set_one_off_run("migrated\n", 0)
    started = deploy(image=aws.image_uri("web", "v1"))
    assert started.status == 202, started
    final = settle(started.body["deployment_id"])
    assert final["status"] == "SUCCEEDED", final["message"]
    sent = commands(aws)
    assert [c.get("InstanceIds") for c in sent] == [[instances[0]], [instances[0]], instances[1:]]
    assert sent[0]["Comment"].endswith(" release") and final["release"]["phase"] == "RELEASED"
