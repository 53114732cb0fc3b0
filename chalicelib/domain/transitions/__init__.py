"""The deployment's state machine: every change to a Deployment or a CodeDeployRecord, as a pure function.

Each transition takes the record (and what happened, with `at`), checks that the move is legal from the record's
state, and returns the next record, validated again as a whole (pydantic does not validate `model_copy(update=)`).
An illegal move raises IllegalTransition(deployment_id, state, event). Services load, call one transition and persist
with the condition on the version they read. docs/architecture.md tables the states and the legal moves.

- deployment.py: a Deployment sent with SSM Run Command (`status`): attempts, tries, results, its end.
- waves.py: a rollout in waves (`rollout.phase`) while the deployment is IN_PROGRESS: waves, bakes, rollback.
- codedeploy.py: a CodeDeployRecord (`codedeploy_phase`): the claim on a FAILURE and the retry it creates.
- release.py: a deployment's release task (`release.phase`) before its first swap: claimed, sent, passed or
  failed.
- common.py: what the Deployment's transitions share (statuses, the checks that refuse a move, the next record).

Services call them as `transitions.<name>`: this package names each in one place.
"""

from .codedeploy import (
    CodeDeployPhase,
    codedeploy_gave_up,
    codedeploy_phase,
    codedeploy_retry_scheduled,
    decision_claimed,
    lineage_found,
    retried,
    retry_claimed,
    retry_unanswered,
)
from .common import bounded
from .deployment import (
    ABANDONED,
    abandoned,
    attempt_started,
    cancelled,
    command_sent,
    failed,
    gave_up,
    noted,
    progress_recorded,
    results_read,
    retry_scheduled,
    send_unanswered,
    sent_again,
    still_running,
    succeeded,
)
from .release import (
    release_done,
    release_failed,
    release_passed,
    release_sent,
    release_sent_again,
    release_skipped,
    release_started,
    release_unanswered,
)
from .waves import (
    batch_deregistered,
    batch_draining,
    batch_healthy,
    batch_registered,
    batch_swapped,
    rollback_sent,
    rolled_back,
    rollout_halted,
    wave_passed,
    wave_sent,
)

__all__ = [
    "ABANDONED", "CodeDeployPhase", "abandoned", "attempt_started", "batch_deregistered", "batch_draining",
    "batch_healthy", "batch_registered", "batch_swapped", "bounded", "cancelled", "codedeploy_gave_up",
    "codedeploy_phase", "codedeploy_retry_scheduled", "command_sent", "decision_claimed", "failed", "gave_up",
    "lineage_found", "noted", "progress_recorded", "release_done", "release_failed", "release_passed", "release_sent",
    "release_sent_again", "release_skipped", "release_started", "release_unanswered", "results_read", "retried",
    "retry_claimed", "retry_scheduled", "retry_unanswered", "rollback_sent", "rolled_back", "rollout_halted",
    "send_unanswered", "sent_again", "still_running", "succeeded", "wave_passed", "wave_sent",
]
