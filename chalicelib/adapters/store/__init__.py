"""DynamoDB: targets, locks, deployments and job claims in one table.

Keys (pk / sk):
    TARGET#<name> / SPEC            the target's spec, current revision, last deployment, instance map (`fleet`,
                                    written with each deployment's end) and breaker window (targets)
    TARGET#<name> / LOCK            one deployment per target; expires so a lost deployment cannot block forever,
                                    but is taken over only once SSM says its command is over (locks)
    TARGET#<name> / LATEST          the deployment that started last on the target, written with its lock (locks)
    DEPLOYMENT#<id> / RECORD        the deployment record, versioned; GSI `by_target` (gsi1pk=TARGET#<name>,
                                    gsi1sk=<created>#<id>) pages a target's history (deployments, codec);
                                    GSIs `by_time` (gsi2pk=MONTH#<YYYY-MM>), `by_caller` (gsi3pk=CALLER#<arn>) and
                                    `by_digest` (gsi4pk=DIGEST#<digest>), sorted by gsi1sk too, answer history
                                    across targets (audit)
    JOB#<job id> / CLAIM            which deployment a CodePipeline job started: a duplicate delivery finds it
    COMMAND#<command id> / INDEX    which deployment an SSM command belongs to, for EventBridge events
    EXEC#<command id> / RECORD      a one-off run (berth exec): who ran what, where, with which image (exec_runs)
    CDGROUP#<app>#<group> / TARGET  the target a CodeDeploy deployment group deploys
    CODEDEPLOY#<id> / RECORD, CLAIM#<key> / CLAIM, COUNTER#<key> / COUNTER   the CodeDeploy event handler's (codedeploy)
    JOIN#<instance id> / LAUNCH     a new instance joining its target: the join's record, versioned (joins)
Items that only matter for a while carry `expires_at` (epoch seconds), the table's TTL attribute.

`DeploymentStore` is the port the services use. Each of its bases holds the methods for one kind of item, over the
one table (`Table`); what goes into an item, and every DynamoDB key and cursor, is in `codec` alone.
"""

from __future__ import annotations

from chalicelib.adapters.store.audit import AuditItems
from chalicelib.adapters.store.codec import GSI_BY_TARGET, table_definition
from chalicelib.adapters.store.codedeploy import CodeDeployItems
from chalicelib.adapters.store.deployments import DeploymentItems
from chalicelib.adapters.store.exec_runs import ExecItems
from chalicelib.adapters.store.joins import JoinItems
from chalicelib.adapters.store.locks import LockItems
from chalicelib.adapters.store.targets import TargetItems


class DeploymentStore(TargetItems, LockItems, DeploymentItems, AuditItems, CodeDeployItems, ExecItems, JoinItems):
    """berth's table: targets, locks, deployment records, job claims, CodeDeploy records, one-off runs and joins."""


__all__ = ["GSI_BY_TARGET", "DeploymentStore", "table_definition"]
