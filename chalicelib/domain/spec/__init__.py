"""The target spec: what berth deploys, where and how, and the rules each part of it follows.

fields.py holds the rules the parts share; instances.py, container.py (with run_options.py, host_paths.py and
command_args.py, the container's `docker run` options), rollout.py and target.py the parts; parsing.py reads
UserParameters. The names most of berth uses are here.
"""

from .container import ContainerSpec, HealthCheckSpec
from .fields import STORED
from .instances import InstancesSpec
from .load_balancer import LoadBalancerSpec
from .parsing import describe_validation_error, parse_model, parse_pipeline_parameters
from .release import ReleaseSpec
from .rollout import CanarySpec, RolloutSpec
from .run_options import RunOptions
from .target import (
    ONE_COMMAND_TRIGGERS,
    TARGET_NAME,
    CodeDeploySpec,
    HookChecks,
    ImagePolicy,
    PipelineParameters,
    RetrySpec,
    TargetReference,
    TargetSpec,
    Trigger,
)

__all__ = [
    "ONE_COMMAND_TRIGGERS",
    "STORED",
    "TARGET_NAME",
    "CanarySpec",
    "CodeDeploySpec",
    "ContainerSpec",
    "HealthCheckSpec",
    "HookChecks",
    "ImagePolicy",
    "InstancesSpec",
    "LoadBalancerSpec",
    "PipelineParameters",
    "ReleaseSpec",
    "RetrySpec",
    "RolloutSpec",
    "RunOptions",
    "TargetReference",
    "TargetSpec",
    "Trigger",
    "describe_validation_error",
    "parse_model",
    "parse_pipeline_parameters",
]
