"""berth's named errors. Each becomes a job failure, an HTTP status or a hook status in exactly one place."""

from __future__ import annotations


class BerthError(Exception):
    """An error whose message a person can act on. The message never carries secrets."""

    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRevision(BerthError):
    """The revision cannot be deployed as given: bad parameters, image, artifact or appspec."""

    http_status = 400


class InvalidEvent(BerthError):
    """The event berth was handed is not of the shape AWS sends."""

    http_status = 400


class TargetNotFound(BerthError):
    http_status = 404


class DeploymentNotFound(BerthError):
    http_status = 404


class ImageNotFound(InvalidRevision):
    """The registry does not hold the image the revision names."""


class ArchitectureMismatch(InvalidRevision):
    """The image has no platform for some of the target's instances: it would fail with `exec format error`."""

    http_status = 409
    field = "image"


class ScanFindings(InvalidRevision):
    """The image's scan findings reach the severity the target's image_policy refuses."""

    http_status = 409
    field = "image"


class ScanPending(InvalidRevision):
    """The image_policy needs the image's scan, which is not complete yet: a pipeline job waits for it."""

    http_status = 409
    field = "image"


class ArtifactUnreadable(InvalidRevision):
    """The pipeline's input artifact could not be fetched or opened."""


class RoleNotAssumable(InvalidRevision):
    """STS refused the role a target's location names (AccessDenied and the like): a configuration to fix, never
    retried. The message names the role and its account, never the external id."""


class StrangerEvent(BerthError):
    """An event from an account or region where the target it names does not live: ignored, nothing done."""

    http_status = 400


class TargetBusy(BerthError):
    """Another deployment holds the target's lock."""

    http_status = 409

    def __init__(self, target: str, holder: str) -> None:
        super().__init__(f"target {target!r} is busy: deployment {holder} is running")
        self.target = target
        self.holder = holder


class Conflict(BerthError):
    """A concurrent writer changed the record first."""

    http_status = 409


class AwsCallFailed(BerthError):
    """An AWS call failed in a way berth cannot fix; the message names the call and AWS's error code."""

    http_status = 502


class CallUnanswered(AwsCallFailed):
    """A call without an idempotency token (SendCommand, CreateDeployment) got no answer: a timeout, a connection
    that closed, or a 5xx after the request may have reached AWS. It may or may not have been carried out, so it must
    not simply be sent again: first look for what it would have created."""


class ScheduleTaken(BerthError):
    """A retry's schedule name is held by a schedule for something else: never taken for "already scheduled"."""

    http_status = 409


class InvalidRequest(BerthError):
    """A request to the REST API is malformed; `field` names the part to fix (a dotted path, or None)."""

    http_status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidCursor(BerthError):
    """A page cursor that is not one berth gave for this listing: forged, garbled, cut short or another target's."""

    http_status = 400


class BreakerOpen(BerthError):
    """The target's circuit breaker is open: automatic deployments stopped until a person resets it."""

    http_status = 409


class TargetFrozen(BerthError):
    """Someone froze the target: deployments wait (a pipeline) or are refused (REST) until it is unfrozen."""

    http_status = 409


class AlarmFiring(BerthError):
    """An alarm the rollout watches is in ALARM before its first wave: the deployment is refused."""

    http_status = 409


class NothingToRollBack(BerthError):
    """The target has no earlier successful revision to go back to."""

    http_status = 409


class NothingToSync(BerthError):
    """A sync has nothing to do: no current revision, or no running instance behind it as far as berth knows."""

    http_status = 409


class NoCurrentRevision(BerthError):
    """The target has never been deployed by berth: there is no image to run a one-off command with."""

    http_status = 409


class InstanceUnavailable(BerthError):
    """An operator's command cannot go where it was asked: not one of the target's instances, or not Online."""

    http_status = 409

    def __init__(self, message: str, field: str | None = "instance") -> None:
        super().__init__(message)
        self.field = field


class CommandNotFound(BerthError):
    """No logs or exec command of this target has that id."""

    http_status = 404


class DeploymentFinished(BerthError):
    """The deployment already ended, so it cannot be cancelled."""

    http_status = 409


class IllegalTransition(BerthError):
    """A deployment was asked to make a move its state does not allow: a bug in the caller, never the user's doing."""

    http_status = 409

    def __init__(self, deployment_id: str, status: str, event: str) -> None:
        super().__init__(f"deployment {deployment_id} cannot take {event!r} while {status}")
        self.deployment_id = deployment_id
        self.status = status
        self.event = event

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, IllegalTransition)
                and (self.deployment_id, self.status, self.event) == (other.deployment_id, other.status, other.event))

    def __hash__(self) -> int:
        return hash((self.deployment_id, self.status, self.event))

    def __repr__(self) -> str:
        return f"IllegalTransition({self.deployment_id!r}, {self.status!r}, {self.event!r})"
