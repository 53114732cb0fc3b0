"""What instances report and what berth says of it: the script's markers, exit codes, and failure messages."""

from __future__ import annotations

import pytest

from chalicelib.domain.deployment import InstanceResult
from chalicelib.domain.exit_codes import EXIT_MEANING, ScriptExit
from chalicelib.domain.progress import (
    MAX_FAILURE_MESSAGE,
    Phase,
    assess,
    describe_exit,
    failure_message,
    instance_result,
)
from tests.unit.progress_helpers import DIGEST, A, B, C, inv, never_ran, result

# ------------------------------------------------------------------------------------------------ markers

FULL_OUTPUT = (
    "berth-step: docker\nberth-step: login\nLogin Succeeded\nberth-step: pull\nberth-step: stop-previous\n"
    "berth-step: start\nberth-step: health\nberth-step: cleanup\n"
    f"berth-digest: 123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{DIGEST}\nberth-result: ok\n"
)


def test_step_and_digest_come_from_the_last_markers() -> None:
    assert instance_result(inv(A, output=FULL_OUTPUT)) == result(A, step="cleanup", digest=DIGEST,
                                                                 output_tail=FULL_OUTPUT)


@pytest.mark.parametrize(("output", "step", "digest"), [
    ("", None, None),
    ("berth-step: pull", "pull", None),
    ("berth-step: pull  \r\n", "pull", None),
    ("echo berth-step: pull\n", None, None),
    ("  berth-step: pull\n", None, None),
    ("berth-step:pull\n", None, None),
    (f"berth-digest: {DIGEST}\n", None, DIGEST),
    (f"berth-digest: nginx@{DIGEST}", None, DIGEST),
    (f"berth-digest: a@sha256:{'1' * 64}\nberth-digest: b@{DIGEST}\n", None, DIGEST),
    (f"berth-digest: nginx@{DIGEST.upper()}\n", None, None),
    ("berth-digest: nginx@sha256:abc\n", None, None),
    (f"berth-digest: nginx@{DIGEST}0\n", None, None),
    (f"log berth-digest: nginx@{DIGEST}\n", None, None),
])
def test_markers(output: str, step: str | None, digest: str | None) -> None:
    parsed = instance_result(inv(A, output=output))
    assert (parsed.step, parsed.digest) == (step, digest)


def test_output_tail_keeps_the_end() -> None:
    output = "".join(f"line {n}\n" for n in range(1000))
    assert instance_result(inv(A, output=output)).output_tail == output[-600:]
    assert instance_result(inv(A, output=output), tail_chars=10).output_tail == output[-10:]


def test_progress_digests_collects_what_instances_report() -> None:
    other = "sha256:" + "0" * 64
    progress = assess([A, B, C], [inv(A, output=FULL_OUTPUT), inv(B, output=f"berth-digest: x@{other}"), inv(C)],
                      "Success")
    assert progress.digests == {DIGEST, other}


# ------------------------------------------------------------------------------------------------ messages

@pytest.mark.parametrize("code", sorted(EXIT_MEANING))
def test_describe_exit_for_every_documented_code(code: ScriptExit) -> None:
    step, meaning, failure_class = EXIT_MEANING[code]
    assert describe_exit(result(A, "Failed", int(code))) == (
        f"in step {step}, exit {int(code)}: {meaning} ({failure_class.value})")
    assert describe_exit(result(A, "Failed", int(code), step="marker-step")) == (
        f"in step marker-step, exit {int(code)}: {meaning} ({failure_class.value})")


@pytest.mark.parametrize(("instance", "description"), [
    (result(A, "Failed", 127), "in step unknown step, exit 127: command not found: the script could not run"),
    (result(A, "Failed", 127, step="pull"), "in step pull, exit 127: command not found: the script could not run"),
    (result(A, "Failed", 99), "in step unknown step, exit 99: the script failed"),
    (result(A, "Failed", 1, step="health"), "in step health, exit 1: the script failed"),
    (result(A, "Failed", -1), "in step unknown step, exit -1: the script failed"),
    (result(A, "Failed", None), "in step unknown step, exit None: the script failed"),
    (result(A, "Success", int(ScriptExit.OK)), "in step unknown step, exit 0: the script failed"),
    (never_ran(A), "never ran the command"),
    (result(A, "TimedOut", -1), "SSM status TimedOut"),
    (result(A, "DeliveryTimedOut", None), "SSM status DeliveryTimedOut"),
    (result(A, "Undeliverable", None), "SSM status Undeliverable"),
    (result(A, "Cancelled", None),
     "SSM status Cancelled (not run: the command was cancelled, or stopped once the error budget was spent)"),
])
def test_describe_exit_for_other_codes_and_statuses(instance: InstanceResult, description: str) -> None:
    assert describe_exit(instance) == description


def test_failure_message_lists_instances_in_order_with_the_end_of_their_output() -> None:
    failed = [result(B, "Failed", 21, output_tail="x" * 1000 + "END"), result(A, "Failed", 40, output_tail="  \n")]
    assert failure_message(failed, 5) == (
        f"2 of 5 instances failed. {A} in step health, exit 40: health check failed; the previous container is "
        f"serving (permanent) | {B} in step pull, exit 21: image pull failed; the running container was not "
        f"touched (transient); output ends: {'x' * 397}END")


def _many_failures(count: int) -> list[InstanceResult]:
    return [result(f"i-{n:017x}", "Failed", 41, step="health", output_tail="health check output " * 40)
            for n in range(count)]


def test_failure_message_is_cut_to_a_limit_with_a_note() -> None:
    message = failure_message(_many_failures(50), 50, limit=1000)
    assert message.startswith("50 of 50 instances failed. i-00000000000000000 in step health, exit 41")
    assert message.endswith(" ... (cut; see berth)")


def test_failure_message_of_a_thousand_failed_instances_fits_codepipeline() -> None:
    assert len(failure_message(_many_failures(1000), 1000)) <= MAX_FAILURE_MESSAGE


def test_assess_with_a_thousand_failed_instances_gives_a_message_that_fits() -> None:
    ids = [f"i-{n:017x}" for n in range(1000)]
    progress = assess(ids, [inv(i, "Failed", 21, "berth-step: pull\n" + "e" * 2000) for i in ids], "Failed")
    assert progress.phase == Phase.FAILED
    assert len(progress.failure_message) <= MAX_FAILURE_MESSAGE


@pytest.mark.parametrize("limit", [100, 1000, 4999, 5000])
def test_a_cut_message_is_at_most_one_over_its_limit(limit: int) -> None:
    # Pins the size of the off-by-one above: the adapter's clip() to 5000 hides it from CodePipeline today.
    assert len(failure_message(_many_failures(1000), 1000, limit=limit)) in (limit, limit + 1)
