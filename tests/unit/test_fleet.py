"""What each instance runs as far as berth knows, from a deployment's attempts when it ends, and who is left behind."""

from __future__ import annotations

import hashlib
import json
import zlib
from datetime import UTC, datetime, timedelta

from chalicelib.domain.deployment import Attempt, Deployment, DeploymentStatus, InstanceResult, Revision, Tally
from chalicelib.domain.fleet import (
    MAX_TRACKED,
    Fleet,
    InstanceState,
    fleet_after,
    left_behind,
    with_left_behind,
)
from chalicelib.domain.rollout import Rollout
from chalicelib.domain.spec import TargetSpec

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
IDS = [f"i-{n:017x}" for n in range(6)]
OLD, NEW, OTHER = "sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64
OLD_REV, NEW_REV = Revision(image="web:v1", digest=OLD), Revision(image="web:v2", digest=NEW)
SPEC = TargetSpec.model_validate({"target": "web", "instances": {"tags": {"app": "web"}}, "container": {"name": "web"}})


def result(instance_id: str, status: str = "Success", digest: str | None = None, code: int | None = 0
           ) -> InstanceResult:
    return InstanceResult(instance_id=instance_id, status=status, response_code=code, digest=digest)


def attempt(results: list[InstanceResult], expected: list[str] | None = None, ended: datetime | None = T1,
            **extra: object) -> Attempt:
    return Attempt.model_validate({"number": 1, "started_at": T0, "ended_at": ended,
                                   "expected_instances": expected or [r.instance_id for r in results],
                                   "instances": {r.instance_id: r for r in results}, **extra})


def deployment(*attempts: Attempt, status: DeploymentStatus = DeploymentStatus.SUCCEEDED, trigger: str = "api",
               deployment_id: str = "d-new", **extra: object) -> Deployment:
    numbered = [a.model_copy(update={"number": n}) for n, a in enumerate(attempts, start=1)]
    return Deployment.model_validate({
        "deployment_id": deployment_id, "target": "web", "spec": SPEC, "revision": NEW_REV,
        "previous_revision": OLD_REV, "trigger": trigger, "caller": "alice", "status": status, "attempts": numbered,
        "created_at": T0, "updated_at": T1, **extra})


def known(digest: str | None, deployment_id: str | None = "d-new", at: datetime | None = T1) -> InstanceState:
    return InstanceState(digest=digest, deployment_id=deployment_id, at=at)


EARLIER = Fleet(instances={i: known(OLD, "d-old", T0) for i in IDS[:4]})


def test_each_instance_gets_its_reported_digest_and_a_failure_keeps_what_it_ran_before() -> None:
    ended = deployment(attempt([result(IDS[0], digest=NEW), result(IDS[1], digest=NEW),
                                result(IDS[2], "Failed", code=30), result(IDS[3], "NeverRan", code=None)]))

    fleet = fleet_after(EARLIER, ended, NEW_REV)

    assert fleet.instances == {IDS[0]: known(NEW), IDS[1]: known(NEW), IDS[2]: known(OLD, "d-old", T0),
                               IDS[3]: known(OLD, "d-old", T0)}
    assert left_behind(fleet, NEW_REV) == [IDS[2], IDS[3]]
    assert not fleet.capped


def test_an_instance_berth_never_knew_that_did_not_report_is_unknown_and_behind() -> None:
    ended = deployment(attempt([result(IDS[0], digest=NEW), result(IDS[5], "Failed", code=30)]))

    fleet = fleet_after(Fleet(), ended, NEW_REV)

    assert fleet.instances[IDS[5]] == InstanceState()
    assert left_behind(fleet, NEW_REV) == [IDS[5]]


def test_success_on_counts_alone_puts_the_revision_on_every_expected_instance() -> None:
    counted = attempt([], expected=IDS[:3], tally=Tally(total=3, succeeded=3))

    fleet = fleet_after(Fleet(), deployment(counted), NEW_REV)

    assert fleet.instances == {i: known(NEW) for i in IDS[:3]}
    assert left_behind(fleet, NEW_REV) == []


def test_a_whole_target_deployment_drops_instances_that_left_the_target() -> None:
    ended = deployment(attempt([result(IDS[0], digest=NEW)]))
    assert set(fleet_after(EARLIER, ended, NEW_REV).instances) == {IDS[0]}


def test_a_sync_changes_only_its_instances() -> None:
    synced = deployment(attempt([result(IDS[2], digest=NEW)]), trigger="sync")
    before = Fleet(instances={IDS[0]: known(NEW, "d-1"), IDS[2]: known(OLD, "d-0")})

    fleet = fleet_after(before, synced, NEW_REV)

    assert fleet.instances == {IDS[0]: known(NEW, "d-1"), IDS[2]: known(NEW)}
    assert left_behind(fleet, NEW_REV) == []


def test_a_rollback_gives_its_instances_the_previous_digest_and_untouched_waves_keep_theirs() -> None:
    canary = attempt([result(IDS[0], digest=NEW)], wave=1)
    rollback = attempt([result(IDS[0])], image="web@" + OLD)
    ended = deployment(canary, rollback, status=DeploymentStatus.ROLLED_BACK,
                       rollout=Rollout(waves=[[IDS[0]], IDS[1:4]], wave=1))

    fleet = fleet_after(EARLIER, ended, OLD_REV)

    assert fleet.instances == {IDS[0]: known(OLD), **{i: known(OLD, "d-old", T0) for i in IDS[1:4]}}
    assert left_behind(fleet, OLD_REV) == []


def test_a_rollback_that_reports_a_digest_is_taken_at_its_word() -> None:
    canary = attempt([result(IDS[0], digest=NEW)], wave=1)
    rollback = attempt([result(IDS[0], "Failed", code=41)], image="web@" + OLD)
    ended = deployment(canary, rollback, status=DeploymentStatus.FAILED, rollout=Rollout(waves=[[IDS[0]]]))

    fleet = fleet_after(Fleet(), ended, OLD_REV)

    assert fleet.instances[IDS[0]] == known(NEW)          # the last digest it reported
    assert left_behind(fleet, OLD_REV) == [IDS[0]]


def test_a_later_attempt_overrides_an_earlier_one() -> None:
    first = attempt([result(IDS[0], "Failed", code=30), result(IDS[1], digest=OTHER)])
    second = attempt([result(IDS[0], digest=NEW), result(IDS[1], digest=NEW)])
    fleet = fleet_after(Fleet(), deployment(first, second), NEW_REV)
    assert {i: s.digest for i, s in fleet.instances.items()} == {IDS[0]: NEW, IDS[1]: NEW}


def test_a_deployment_that_sent_nothing_changes_nothing() -> None:
    assert fleet_after(EARLIER, deployment(status=DeploymentStatus.FAILED), OLD_REV) == EARLIER


def test_nothing_is_behind_without_a_revision_with_a_digest() -> None:
    assert left_behind(EARLIER, None) == []
    assert left_behind(EARLIER, Revision(image="web:latest")) == []
    assert left_behind(EARLIER, NEW_REV, among=[IDS[0], "i-gone"]) == [IDS[0]]


def test_the_map_is_capped_keeping_those_behind_first() -> None:
    ids = [f"i-{n:017x}" for n in range(MAX_TRACKED + 500)]
    results = [result(i, digest=NEW) for i in ids[:-10]] + [result(i, "Failed", code=30) for i in ids[-10:]]

    fleet = fleet_after(Fleet(), deployment(attempt(results)), NEW_REV)

    assert len(fleet.instances) == MAX_TRACKED and fleet.untracked == 500 and fleet.capped
    assert left_behind(fleet, NEW_REV) == ids[-10:]         # the failed ones are behind: kept first


def test_a_full_map_fits_the_target_item_at_its_worst() -> None:
    # Every instance a different digest, from a different deployment: nothing repeats for zlib to fold.
    def noise(n: int, chars: int) -> str:
        return hashlib.sha256(f"{chars}-{n}".encode()).hexdigest()[:chars]

    fleet = Fleet(instances={f"i-{noise(n, 17)}": known(f"sha256:{noise(n, 64)}", f"d-{noise(n, 26)}",
                                                         T0 + timedelta(seconds=n)) for n in range(MAX_TRACKED)},
                  untracked=3)
    stored = zlib.compress(fleet.model_dump_json().encode(), 6)
    # The item also holds a spec of up to 64 KB (MAX_SPEC_BYTES) and a few small attributes: 400 KB in all.
    assert len(stored) < 100_000, len(stored)
    assert Fleet.model_validate(json.loads(zlib.decompress(stored))) == fleet


def test_a_success_lists_those_left_behind_in_its_record_and_message() -> None:
    ended = deployment(message="2 succeeded, 1 failed, 0 pending of 3 instances")
    listed = with_left_behind(ended, [IDS[2]])
    assert listed.left_behind == [IDS[2]]
    assert listed.message.startswith("2 succeeded") and f"1 instances left behind, not on this revision: {IDS[2]}" \
        in listed.message and "berth sync web" in listed.message
    assert with_left_behind(ended, []) == ended
    failed = deployment(status=DeploymentStatus.FAILED)
    assert with_left_behind(failed, [IDS[2]]) == failed
    # A record without any left behind reads and writes as before the field existed.
    assert "left_behind" not in json.loads(ended.model_dump_json())
