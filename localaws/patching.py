"""Patching moto: added response methods and the reset hook.

The extensions are plain functions set as methods on moto's response classes. moto looks an action up
with ``inspect.getmembers`` on the class at call time, so the same methods answer under ``mock_aws``
and in a moto server, and they read and write moto's backends like moto's own methods do. This reaches
into moto internals, so :func:`install` refuses any moto other than the pinned version.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from . import state

PINNED_MOTO = "5.2.5"
_LOCK = threading.Lock()
_installed = False


def _check_version() -> None:
    found = version("moto")
    if found != PINNED_MOTO:
        raise RuntimeError(f"localaws patches moto {PINNED_MOTO} internals; found moto {found}")


def _add_methods(response_class: type, methods: dict[str, Callable[..., Any]]) -> None:
    for name, function in methods.items():
        setattr(response_class, name, function)


def _hook_reset() -> None:
    """Make moto's global reset (new ``mock_aws``, ``/moto-api/reset``) clear our state too."""
    from moto.core.base_backend import BackendDict

    moto_reset = BackendDict.__dict__["reset"].__func__

    def reset(cls: type) -> None:
        moto_reset(cls)
        state.reset()

    BackendDict.reset = classmethod(reset)  # type: ignore[method-assign,assignment]


def _patch_codedeploy_models() -> None:
    import moto.codedeploy.responses as responses
    from moto.codedeploy.models import CodeDeployBackend

    from . import codedeploy, codedeploy_deployments

    CodeDeployBackend.create_deployment = codedeploy_deployments.wrap_create_deployment(  # type: ignore[method-assign]
        CodeDeployBackend.create_deployment
    )
    responses._deployment_info = codedeploy.deployment_info_with_outcome(responses._deployment_info)


_DYNAMODB_LOCK = threading.RLock()


def _serialize_dynamodb() -> None:
    """moto's DynamoDB is not thread-safe: TransactWriteItems deep-copies a table while other threads write to it
    ("dictionary changed size during iteration", a 500 that DynamoDB never gives for that). DynamoDB itself applies
    each request atomically, so localaws handles one DynamoDB request at a time, which concurrent tests rely on."""
    from moto.dynamodb.responses import DynamoHandler

    moto_call_action = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _DYNAMODB_LOCK:
            return moto_call_action(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


def install() -> None:
    """Patch moto once per process; later calls do nothing."""
    global _installed
    with _LOCK:
        if _installed:
            return
        _check_version()
        from moto.autoscaling.responses import AutoScalingResponse
        from moto.codedeploy.responses import CodeDeployResponse
        from moto.codepipeline.responses import CodePipelineResponse
        from moto.ssm.responses import SimpleSystemManagerResponse

        from . import autoscaling, codedeploy, codedeploy_instances, codepipeline, ecr, elbv2, ssm

        _add_methods(CodePipelineResponse, codepipeline.METHODS)
        _add_methods(AutoScalingResponse, autoscaling.METHODS)
        _add_methods(SimpleSystemManagerResponse, ssm.METHODS)
        _add_methods(CodeDeployResponse, codedeploy.METHODS)
        _add_methods(CodeDeployResponse, codedeploy_instances.METHODS)
        _patch_codedeploy_models()
        elbv2.patch_target_groups()
        ecr.patch()
        _serialize_dynamodb()
        _hook_reset()
        _installed = True
