"""DynamoDB: targets, locks, deployments and job claims in one table.

Keys (pk / sk):
    TARGET#<name> / SPEC            the target's spec, current revision and last deployment
    TARGET#<name> / LOCK            one deployment per target; expires so a lost deployment cannot block forever,
                                    but is taken over only once SSM says its command is over (DeploymentService)
    TARGET#<name> / LATEST          the deployment that started last on the target: written with its lock, so an
                                    older deployment's retry can tell the target moved on (hold_target)
    DEPLOYMENT#<id> / RECORD        the deployment record (zlib-compressed JSON in `body`, `version` for optimistic
                                    concurrency); GSI `by_target` (gsi1pk=TARGET#<name>, gsi1sk=<created>#<id>)
    JOB#<job id> / CLAIM            which deployment a CodePipeline job started: a duplicate delivery finds it
    COMMAND#<command id> / INDEX    which deployment an SSM command belongs to, for EventBridge events
Items that only matter for a while carry `expires_at` (epoch seconds), the table's TTL attribute.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.errors import CONDITION_FAILED, TRANSACTION_CANCELLED, aws_call, aws_failure, returning
from chalicelib.domain.deployment import CodeDeployRecord, Deployment, Revision
from chalicelib.domain.errors import AwsCallFailed, Conflict, DeploymentNotFound
from chalicelib.domain.spec import STORED, TargetSpec

GSI_BY_TARGET = "by_target"


@dataclass(frozen=True)
class TargetRecord:
    spec: TargetSpec
    current_revision: Revision | None
    last_deployment_id: str | None
    updated_by: str
    recent_failures: tuple[int, ...] = ()      # epoch seconds of automatic-deployment failures, newest last
    breaker_open_since: int | None = None       # automatic retries stop while set; a person's redeploy clears it


@dataclass(frozen=True)
class Lock:
    deployment_id: str
    job_id: str | None
    acquired_at: int
    expires_at: int


@dataclass(frozen=True)
class LatestStart:
    """The deployment that started last on a target, and when (epoch microseconds)."""

    deployment_id: str
    started_at_us: int


class DeploymentStore:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._db = dynamodb_client
        self._table = table_name

    # targets -------------------------------------------------------------------------------------------------
    def put_target(self, spec: TargetSpec, caller: str) -> None:
        self._call("UpdateItem", self._db.update_item, TableName=self._table,
                   Key=_key(f"TARGET#{spec.target}", "SPEC"),
                   UpdateExpression="SET spec = :spec, updated_by = :caller",
                   ExpressionAttributeValues={":spec": {"S": spec.model_dump_json()}, ":caller": {"S": caller}})
        if spec.codedeploy is not None:
            group = f"CDGROUP#{spec.codedeploy.application}#{spec.codedeploy.deployment_group}"
            self._call("PutItem", self._db.put_item, TableName=self._table,
                       Item={**_key(group, "TARGET"), "target": {"S": spec.target}})

    def find_codedeploy_target(self, application: str, group: str) -> TargetRecord | None:
        """The target whose spec names this CodeDeploy deployment group, if any."""
        item = self._get(f"CDGROUP#{application}#{group}", "TARGET")
        record = self.get_target(item["target"]["S"]) if item else None
        if record is None or record.spec.codedeploy is None:
            return None
        same = (record.spec.codedeploy.application, record.spec.codedeploy.deployment_group) == (application, group)
        return record if same else None

    def get_target(self, name: str) -> TargetRecord | None:
        item = self._get(f"TARGET#{name}", "SPEC")
        if item is None:
            return None
        current = item.get("current_revision", {}).get("S")
        return TargetRecord(
            spec=TargetSpec.model_validate_json(item["spec"]["S"], context=STORED),
            current_revision=Revision.model_validate_json(current) if current else None,
            last_deployment_id=item.get("last_deployment_id", {}).get("S"),
            updated_by=item.get("updated_by", {}).get("S", ""),
            recent_failures=tuple(int(n) for n in item.get("recent_failures", {}).get("NS", [])),
            breaker_open_since=int(item["breaker_open_since"]["N"]) if "breaker_open_since" in item else None,
        )

    def record_failure(self, name: str, at: int, keep_after: int, open_breaker: bool) -> None:
        """Remember a failure (dropping those older than `keep_after`) and open the breaker if told to."""
        record = self.get_target(name)
        if record is None:
            return
        failures = [f for f in record.recent_failures if f >= keep_after] + [at]
        expression = "SET recent_failures = :f"
        values: dict[str, Any] = {":f": {"NS": [str(f) for f in failures]}}
        if open_breaker:
            expression += ", breaker_open_since = if_not_exists(breaker_open_since, :at)"
            values[":at"] = {"N": str(at)}
        self._call("UpdateItem", self._db.update_item, TableName=self._table, Key=_key(f"TARGET#{name}", "SPEC"),
                   UpdateExpression=expression, ExpressionAttributeValues=values,
                   ConditionExpression="attribute_exists(pk)")

    def reset_breaker(self, name: str, caller: str) -> None:
        self._call("UpdateItem", self._db.update_item, TableName=self._table, Key=_key(f"TARGET#{name}", "SPEC"),
                   UpdateExpression="REMOVE breaker_open_since, recent_failures SET updated_by = :caller",
                   ExpressionAttributeValues={":caller": {"S": caller}}, ConditionExpression="attribute_exists(pk)")

    def settle_target(self, name: str, deployment_id: str, revision: Revision | None, started: datetime) -> bool:
        """A finished deployment lets go of its target: records `revision` as the target's current one (when it
        succeeded) and releases the lock, in one transaction, so neither happens without the other.

        The revision is written only over that of a deployment started before `started`, never over a newer one's, so
        finishing again after a crash cannot turn the target back. When a condition fails (the lock expired or was
        taken over, a newer revision is recorded, the target was deleted), each part is done alone where it still
        holds. Returns whether this call released the lock. Any other cancellation (a conflicting write, throttling)
        is AwsCallFailed: nothing was written, and finishing again does it all."""
        items: list[dict[str, Any]] = [{"Delete": self._lock_release(name, deployment_id)}]
        if revision is not None:
            items.append({"Update": self._revision_update(name, deployment_id, revision, started)})
        if self._transact("settle target", items, retry_conflicts=False) is None:
            return True
        released = self.release_lock(name, deployment_id)
        if revision is not None:
            self._conditional("UpdateItem (target revision)", self._db.update_item,
                              **self._revision_update(name, deployment_id, revision, started))
        return released

    def _lock_release(self, target: str, deployment_id: str) -> dict[str, Any]:
        """The lock's deletion, on condition that `deployment_id` still holds it."""
        return {"TableName": self._table, "Key": _key(f"TARGET#{target}", "LOCK"),
                "ConditionExpression": "deployment_id = :dep",
                "ExpressionAttributeValues": {":dep": {"S": deployment_id}}}

    def _revision_update(self, name: str, deployment_id: str, revision: Revision, started: datetime
                         ) -> dict[str, Any]:
        return {"TableName": self._table, "Key": _key(f"TARGET#{name}", "SPEC"),
                "UpdateExpression": "SET current_revision = :rev, last_deployment_id = :dep, last_deployment_at = :at",
                "ConditionExpression": "attribute_exists(pk) AND (attribute_not_exists(last_deployment_at) "
                                       "OR last_deployment_at <= :at)",
                "ExpressionAttributeValues": {":rev": {"S": revision.model_dump_json()}, ":dep": {"S": deployment_id},
                                              ":at": {"N": str(_micros(started))}}}

    # locks ---------------------------------------------------------------------------------------------------
    def start_deployment(self, deployment: Deployment, lock_ttl: int, replacing: Lock | None = None) -> Lock | None:
        """Take the target and record the deployment in one transaction: the lock, the target's LATEST marker, the
        record and (with a job id) the job's claim. No reader ever finds a lock whose deployment has no record, or a
        record whose job a duplicate could claim again.

        The lock is taken when there is none, or when it is exactly `replacing` (an expired lock whose deployment the
        caller found over). Returns None when the target was taken, or the lock in the way (read again: it may be
        this deployment's own, when the answer to an earlier try was lost and the SDK sent it again). Conflict when
        the job was claimed already: a duplicate delivery got there first."""
        now = _epoch(deployment.created_at)
        lock: dict[str, Any] = {"TableName": self._table, "Item": {
            **_key(f"TARGET#{deployment.target}", "LOCK"), "deployment_id": {"S": deployment.deployment_id},
            "acquired_at": {"N": str(now)}, "expires_at": {"N": str(now + lock_ttl)},
            **({"job_id": {"S": deployment.job_id}} if deployment.job_id else {})}}
        if replacing is None:
            lock["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            lock["ConditionExpression"] = "deployment_id = :holder AND expires_at = :expires"
            lock["ExpressionAttributeValues"] = {":holder": {"S": replacing.deployment_id},
                                                 ":expires": {"N": str(replacing.expires_at)}}
        items: list[dict[str, Any]] = [
            {"Put": lock},
            {"Put": {"TableName": self._table, "Item": {
                **_key(f"TARGET#{deployment.target}", "LATEST"), "deployment_id": {"S": deployment.deployment_id},
                "started_at": {"N": str(_micros(deployment.created_at))}}}},
            {"Put": {"TableName": self._table, "Item": self._record(deployment),
                     "ConditionExpression": "attribute_not_exists(pk)"}}]
        if deployment.job_id:
            items.append({"Put": {"TableName": self._table, "ConditionExpression": "attribute_not_exists(pk)",
                                  "Item": {**_key(f"JOB#{deployment.job_id}", "CLAIM"),
                                           "deployment_id": {"S": deployment.deployment_id},
                                           "expires_at": {"N": str(now + 7 * 86400)}}}})
        for _ in range(3):
            reasons = self._transact("start deployment", items, token=deployment.deployment_id)
            if reasons is None:
                return None
            if "TransactionConflict" in reasons:
                continue                    # another transaction on these items was under way: try again
            if reasons[0] == "ConditionalCheckFailed":
                holder = self.get_lock(deployment.target)
                if holder is not None:
                    return holder
                lock.pop("ExpressionAttributeValues", None)     # released meanwhile: take it if still free
                lock["ConditionExpression"] = "attribute_not_exists(pk)"
                continue
            raise Conflict(f"deployment {deployment.deployment_id} or job {deployment.job_id} exists already")
        raise Conflict(f"target {deployment.target!r} kept changing while deployment {deployment.deployment_id} "
                       "was being started")

    def hold_target(self, target: str, deployment_id: str, job_id: str | None, now: int, expires_at: int) -> bool:
        """Keep the target's lock for this deployment until `expires_at`, or take it back if it lapsed, on condition
        that no deployment started on the target since this one did (its LATEST marker is still this deployment).
        False when the target moved on: whatever this deployment would do next must not be done."""
        values: dict[str, Any] = {":dep": {"S": deployment_id}, ":exp": {"N": str(expires_at)},
                                  ":now": {"N": str(now)}}
        update = "SET deployment_id = :dep, expires_at = :exp, acquired_at = if_not_exists(acquired_at, :now)"
        if job_id:
            update += ", job_id = :job"
            values[":job"] = {"S": job_id}
        condition = "attribute_not_exists(pk) OR deployment_id = :dep"
        reasons = self._transact("hold target", [
            {"Update": {"TableName": self._table, "Key": _key(f"TARGET#{target}", "LOCK"),
                        "UpdateExpression": update, "ConditionExpression": condition,
                        "ExpressionAttributeValues": values}},
            {"ConditionCheck": {"TableName": self._table, "Key": _key(f"TARGET#{target}", "LATEST"),
                                "ConditionExpression": condition,
                                "ExpressionAttributeValues": {":dep": {"S": deployment_id}}}}])
        if reasons is None:
            return True
        if "ConditionalCheckFailed" in reasons:
            return False
        raise AwsCallFailed(f"DynamoDB TransactWriteItems (hold target) was cancelled: {', '.join(reasons)}")

    def latest_start(self, target: str) -> LatestStart | None:
        item = self._get(f"TARGET#{target}", "LATEST")
        return LatestStart(item["deployment_id"]["S"], int(item["started_at"]["N"])) if item else None

    def abandon_deployment(self, deployment: Deployment) -> None:
        """Remove every trace of a deployment that sent no command: its record, its job claim, and the target's lock
        and LATEST marker where they are still its own. One transaction (all of it or none); when some of it was
        never written, or is another deployment's by now, the rest goes item by item, its own items only."""
        mine = {"ConditionExpression": "attribute_not_exists(pk) OR deployment_id = :dep",
                "ExpressionAttributeValues": {":dep": {"S": deployment.deployment_id}}}
        keys = [_key(f"DEPLOYMENT#{deployment.deployment_id}", "RECORD"),
                *([_key(f"JOB#{deployment.job_id}", "CLAIM")] if deployment.job_id else []),
                _key(f"TARGET#{deployment.target}", "LATEST"), _key(f"TARGET#{deployment.target}", "LOCK")]
        deletes = [{"TableName": self._table, "Key": key, **({} if key["sk"]["S"] == "RECORD" else mine)}
                   for key in keys]
        if self._transact("abandon deployment", [{"Delete": delete} for delete in deletes]) is None:
            return
        for delete in deletes:         # the record first: a lock left alone expires, and finds no record then
            self._conditional("DeleteItem (abandon)", self._db.delete_item, **delete)

    def extend_lock(self, target: str, deployment_id: str, expires_at: int) -> None:
        """Push the lock's expiry out while its deployment still holds it (each retry attempt runs anew)."""
        self._conditional("UpdateItem (lock)", self._db.update_item, TableName=self._table,
                          Key=_key(f"TARGET#{target}", "LOCK"), UpdateExpression="SET expires_at = :exp",
                          ConditionExpression="deployment_id = :dep",
                          ExpressionAttributeValues={":exp": {"N": str(expires_at)}, ":dep": {"S": deployment_id}})

    def get_lock(self, target: str) -> Lock | None:
        item = self._get(f"TARGET#{target}", "LOCK")
        if item is None:
            return None
        return Lock(item["deployment_id"]["S"], item.get("job_id", {}).get("S"),
                    int(item["acquired_at"]["N"]), int(item["expires_at"]["N"]))

    def release_lock(self, target: str, deployment_id: str) -> bool:
        """Release the lock if this deployment still holds it; a lock taken over since is left alone."""
        return self._conditional("DeleteItem (lock)", self._db.delete_item, **self._lock_release(target, deployment_id))

    # deployments ---------------------------------------------------------------------------------------------
    def save_deployment(self, deployment: Deployment) -> Deployment:
        """Write the record if nobody else wrote it since it was read; returns it with its new version."""
        saved = deployment.model_copy(update={"version": deployment.version + 1})
        if not self._conditional("PutItem (deployment)", self._db.put_item, TableName=self._table,
                                 Item=self._record(saved), ConditionExpression="version = :read",
                                 ExpressionAttributeValues={":read": {"N": str(deployment.version)}}):
            raise Conflict(f"deployment {deployment.deployment_id} was changed by another writer")
        return saved

    def get_deployment(self, deployment_id: str) -> Deployment:
        item = self._get(f"DEPLOYMENT#{deployment_id}", "RECORD")
        if item is None:
            raise DeploymentNotFound(f"no deployment {deployment_id!r}")
        return Deployment.model_validate_json(zlib.decompress(item["body"]["B"]), context=STORED)

    def list_deployments(self, target: str, limit: int = 20, start: dict[str, Any] | None = None
                         ) -> tuple[list[Deployment], dict[str, Any] | None]:
        kwargs: dict[str, Any] = {"TableName": self._table, "IndexName": GSI_BY_TARGET, "Limit": limit,
                                  "KeyConditionExpression": "gsi1pk = :t", "ScanIndexForward": False,
                                  "ExpressionAttributeValues": {":t": {"S": f"TARGET#{target}"}}}
        if start:
            kwargs["ExclusiveStartKey"] = start
        page = self._call("Query", self._db.query, **kwargs)
        deployments = [Deployment.model_validate_json(zlib.decompress(item["body"]["B"]), context=STORED)
                       for item in page["Items"]]
        return deployments, page.get("LastEvaluatedKey")

    def find_job(self, job_id: str) -> str | None:
        item = self._get(f"JOB#{job_id}", "CLAIM")
        return item["deployment_id"]["S"] if item else None

    def index_command(self, command_id: str, deployment_id: str, expires_at: int) -> None:
        self._call("PutItem", self._db.put_item, TableName=self._table, Item={
            **_key(f"COMMAND#{command_id}", "INDEX"), "deployment_id": {"S": deployment_id},
            "expires_at": {"N": str(expires_at)}})

    def find_command(self, command_id: str) -> str | None:
        item = self._get(f"COMMAND#{command_id}", "INDEX")
        return item["deployment_id"]["S"] if item else None

    # CodeDeploy records, event claims, counters ------------------------------------------------------------
    def get_codedeploy(self, deployment_id: str) -> CodeDeployRecord | None:
        item = self._get(f"CODEDEPLOY#{deployment_id}", "RECORD")
        return CodeDeployRecord.model_validate_json(item["body"]["S"]) if item else None

    def save_codedeploy(self, record: CodeDeployRecord, expires_at: int) -> CodeDeployRecord:
        """Write if nobody else did since `record` was read (version 0: only if it does not exist yet)."""
        saved = record.model_copy(update={"version": record.version + 1})
        condition = "attribute_not_exists(pk)" if record.version == 0 else "version = :read"
        values = {} if record.version == 0 else {"ExpressionAttributeValues": {":read": {"N": str(record.version)}}}
        if not self._conditional("PutItem (CodeDeploy record)", self._db.put_item, TableName=self._table,
                                 ConditionExpression=condition, **values, Item={
                                     **_key(f"CODEDEPLOY#{record.deployment_id}", "RECORD"),
                                     "version": {"N": str(saved.version)}, "body": {"S": saved.model_dump_json()},
                                     "expires_at": {"N": str(expires_at)}}):
            raise Conflict(f"CodeDeploy record {record.deployment_id} was changed by another writer")
        return saved

    def claim(self, key: str, expires_at: int) -> bool:
        """Claim `key` once: True for the first caller, False for every later one (duplicate deliveries)."""
        return self._conditional("PutItem (claim)", self._db.put_item, TableName=self._table,
                                 Item={**_key(f"CLAIM#{key}", "CLAIM"), "expires_at": {"N": str(expires_at)}},
                                 ConditionExpression="attribute_not_exists(pk)")

    def increment(self, key: str, expires_at: int) -> int:
        """Add one to a counter and return its new value (atomic)."""
        result = self._call("UpdateItem", self._db.update_item, TableName=self._table,
                            Key=_key(f"COUNTER#{key}", "COUNTER"), ReturnValues="UPDATED_NEW",
                            UpdateExpression="ADD #n :one SET expires_at = :exp",
                            ExpressionAttributeNames={"#n": "count"},
                            ExpressionAttributeValues={":one": {"N": "1"}, ":exp": {"N": str(expires_at)}})
        return int(result["Attributes"]["count"]["N"])

    # helpers -------------------------------------------------------------------------------------------------
    def _transact(self, what: str, items: list[dict[str, Any]], token: str | None = None,
                  retry_conflicts: bool = True) -> list[str] | None:
        """Run a write transaction: None when it was written, the cancellation reasons (one per item, "None" where
        that item was not the cause) when a condition (or, with `retry_conflicts`, a concurrent transaction the
        caller tries again after) cancelled it; any other cancellation is AwsCallFailed. With `token`
        (ClientRequestToken), the SDK's own retry of a transaction whose answer was lost is not written twice."""
        operation = f"DynamoDB TransactWriteItems ({what})"
        accepted = {"None", "ConditionalCheckFailed", *(["TransactionConflict"] if retry_conflicts else [])}

        def cancelled(exc: ClientError) -> list[str]:
            reasons = [str(reason.get("Code", "None")) for reason in exc.response.get("CancellationReasons", [])]
            if set(reasons) - accepted:
                raise aws_failure(operation, exc) from exc
            return reasons + ["None"] * (len(items) - len(reasons))

        kwargs: dict[str, Any] = {"TransactItems": items}
        if token:
            kwargs["ClientRequestToken"] = token
        outcome = aws_call(operation, self._db.transact_write_items,
                           expected={TRANSACTION_CANCELLED: cancelled}, **kwargs)
        return outcome if isinstance(outcome, list) else None

    def _record(self, deployment: Deployment) -> dict[str, Any]:
        created = deployment.created_at.isoformat()
        return {**_key(f"DEPLOYMENT#{deployment.deployment_id}", "RECORD"),
                "gsi1pk": {"S": f"TARGET#{deployment.target}"},
                "gsi1sk": {"S": f"{created}#{deployment.deployment_id}"},
                "status": {"S": deployment.status.value},
                "version": {"N": str(deployment.version)},
                "body": {"B": zlib.compress(deployment.model_dump_json().encode(), 6)}}

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self._call("GetItem", self._db.get_item, TableName=self._table, Key=_key(pk, sk),
                          ConsistentRead=True).get("Item")
        return dict(item) if item else None

    @staticmethod
    def _conditional(operation: str, method: Any, **kwargs: Any) -> bool:
        """A conditional write: False when its condition did not hold, berth's error for any other failure."""
        answer = aws_call(f"DynamoDB {operation}", method, expected={CONDITION_FAILED: returning(None)}, **kwargs)
        return answer is not None

    @staticmethod
    def _call(operation: str, method: Any, **kwargs: Any) -> Any:
        return aws_call(f"DynamoDB {operation}", method, **kwargs)

    def list_targets(self) -> list[tuple[str, TargetRecord]]:
        """Every registered target, by name. A Scan: the table holds few targets next to its other items."""
        names: list[str] = []
        kwargs: dict[str, Any] = {"TableName": self._table, "ProjectionExpression": "pk",
                                  "FilterExpression": "sk = :spec AND begins_with(pk, :prefix)",
                                  "ExpressionAttributeValues": {":spec": {"S": "SPEC"}, ":prefix": {"S": "TARGET#"}}}
        while True:
            page = self._call("Scan", self._db.scan, **kwargs)
            names.extend(item["pk"]["S"].removeprefix("TARGET#") for item in page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        records = ((name, self.get_target(name)) for name in sorted(names))
        return [(name, record) for name, record in records if record is not None]


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable parameters for berth's table, shared by provisioning and the tests."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"}
                                 for name in ("pk", "sk", "gsi1pk", "gsi1sk")],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [{
            "IndexName": GSI_BY_TARGET,
            "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                          {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
    }


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
