"""PipelineJobService on fakes: the first invocation, its follow-ups, duplicates, a busy target, broken jobs."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.deployment import DeploymentStatus
from chalicelib.domain.errors import CallUnanswered, InvalidEvent
from chalicelib.domain.job import UnreadableJob
from chalicelib.domain.results import Continue, Fail, FailureType, Succeed
from localaws import InstanceOutcome
from tests.service.conftest import LOCK_WAIT_SECONDS, REGISTRY, TAGS, Bench, jid, spec


def first(bench: Bench, job_id: str = "job-1", **params: Any) -> Continue:
    result = bench.pipeline.handle(bench.job(job_id, spec(**params)))
    assert isinstance(result, Continue), result
    return result


def test_the_first_invocation_sends_one_command_and_answers_with_a_token(bench: Bench) -> None:
    instances = bench.fleet.launch(2, TAGS)
    bench.fleet.launch(1, {"app": "other"})

    result = first(bench)

    assert result.external_id == "d-1" and result.percent == 0 and "sent to target web-prod" in result.summary
    assert bench.results("job-1") == [result]
    [sent] = bench.ssm.sent
    assert sent["comment"] == "berth d-1 attempt 1"
    [run] = bench.ssm.runs.values()
    assert sorted(run.invocations) == instances
    lock = bench.store.get_lock("web-prod")
    assert lock is not None and (lock.deployment_id, lock.job_id) == ("d-1", jid("job-1"))
    assert bench.store.find_job(jid("job-1")) == "d-1"
    assert bench.store.get_deployment("d-1").status == DeploymentStatus.IN_PROGRESS


def test_a_continued_invocation_reports_progress_then_success(bench: Bench) -> None:
    bench.fleet.launch(2, TAGS)
    bench.ssm.set_default_outcome(InstanceOutcome(polls_before_done=1))
    token = first(bench).token
    digest = bench.registry.digests[("web", "v1")]

    running = bench.pipeline.handle(bench.job("job-1-2", token=token))
    bench.clock.advance(seconds=30)
    done = bench.pipeline.handle(bench.job("job-1-3", token=token))

    assert isinstance(running, Continue) and running.token == token and running.external_id == "d-1"
    assert isinstance(done, Succeed) and done.output_variables == {
        "deployment_id": "d-1", "image": f"{REGISTRY}/web:v1", "image_digest": digest}
    target = bench.store.get_target("web-prod")
    assert target is not None and target.current_revision is not None and target.current_revision.digest == digest
    assert bench.store.get_lock("web-prod") is None
    assert len(bench.ssm.runs) == 1
    assert (bench.results("job-1-2"), bench.results("job-1-3")) == ([running], [done])


def test_a_failed_instance_fails_the_job_with_its_output(bench: Bench) -> None:
    first_instance, _ = bench.fleet.launch(2, TAGS)
    bench.ssm.set_outcome(first_instance, InstanceOutcome(status="Failed", response_code=3,
                                                          stdout="berth-step: pull\nberth-result: failed"))
    token = first(bench).token

    result = bench.pipeline.handle(bench.job("job-1-2", token=token))

    assert isinstance(result, Fail) and result.failure_type == FailureType.JOB_FAILED
    assert result.external_id == "d-1" and first_instance in result.message and "pull" in result.message
    assert bench.store.get_deployment("d-1").status == DeploymentStatus.FAILED
    assert bench.store.get_lock("web-prod") is None


def test_a_duplicate_delivery_follows_the_started_deployment(bench: Bench) -> None:
    bench.fleet.launch(1, TAGS)
    bench.ssm.set_default_outcome(InstanceOutcome(polls_before_done=5))
    first(bench)

    again = bench.pipeline.handle(bench.job("job-1"))

    assert isinstance(again, Continue) and again.external_id == "d-1"
    assert len(bench.ssm.runs) == 1 and bench.ids == ["d-1"]


def test_a_second_job_waits_for_the_target_then_fails_naming_its_holder(bench: Bench) -> None:
    bench.fleet.launch(1, TAGS)
    bench.ssm.set_default_outcome(InstanceOutcome(polls_before_done=100))
    first(bench, "job-a")

    waiting = first(bench, "job-b")
    assert "waiting" in waiting.summary and "d-1" in waiting.summary
    bench.clock.advance(seconds=LOCK_WAIT_SECONDS - 1)
    still = bench.pipeline.handle(bench.job("job-b-2", token=waiting.token))
    assert isinstance(still, Continue) and still.token == waiting.token
    bench.clock.advance(seconds=1)
    failed = bench.pipeline.handle(bench.job("job-b-3", token=waiting.token))

    assert isinstance(failed, Fail) and "d-1" in failed.message and "berth cancel d-1" in failed.message
    assert len(bench.ssm.runs) == 1


def test_an_unanswered_send_is_followed_and_its_command_found_by_its_comment(bench: Bench) -> None:
    bench.fleet.launch(1, TAGS)
    bench.ssm.fail_next("send_deploy_command", CallUnanswered("SSM SendCommand got no answer: ReadTimeoutError"))

    result = first(bench)
    done = bench.pipeline.handle(bench.job("job-1-2", token=result.token))

    assert isinstance(done, Succeed) and done.external_id == "d-1"
    [command_id] = bench.ssm.runs
    assert bench.store.get_deployment("d-1").attempts[-1].command_id == command_id
    assert len(bench.ssm.runs) == 1


def test_a_broken_job_gets_one_failure_and_a_job_without_id_none() -> None:
    bench = Bench()
    broken = UnreadableJob(jid("job-x"), InvalidEvent("the CodePipeline job event is malformed at: data"))

    assert bench.pipeline.handle(broken) == Fail("the CodePipeline job event is malformed at: data")
    assert bench.pipeline.handle(None) is None
    assert bench.reporter.results == {jid("job-x"): [Fail("the CodePipeline job event is malformed at: data")]}


def test_bad_parameters_fail_as_a_configuration_error_and_send_nothing(bench: Bench) -> None:
    bench.fleet.launch(1, TAGS)
    result = bench.pipeline.handle(bench.job("job-1", "{not json"))
    assert isinstance(result, Fail) and result.failure_type == FailureType.CONFIGURATION_ERROR
    assert bench.ssm.runs == {} and bench.store.get_lock("web-prod") is None


def test_an_image_not_in_the_registry_is_unavailable(bench: Bench) -> None:
    bench.fleet.launch(1, TAGS)
    result = bench.pipeline.handle(bench.job("job-1", spec(image=f"{REGISTRY}/web:v9")))
    assert isinstance(result, Fail) and result.failure_type == FailureType.REVISION_UNAVAILABLE
    assert bench.ssm.runs == {}


def test_an_unexpected_error_still_ends_in_one_failure(bench: Bench) -> None:
    bench.fleet.launch(1, TAGS)
    bench.artifacts.files.clear()
    bench.artifacts.read = lambda *args: 1 / 0     # type: ignore[method-assign,assignment]

    result = bench.pipeline.handle(bench.job("job-1"))

    assert isinstance(result, Fail) and result.failure_type == FailureType.SYSTEM_UNAVAILABLE
    assert bench.reporter.results == {jid("job-1"): [result]}
