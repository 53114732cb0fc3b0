"""A target's lock and LATEST marker: taken with the deployment's record, held by retries, let go when it settles.

TARGET#<name> / LOCK holds one deployment per target and expires, so a lost deployment cannot block its target for
good; it is taken over only once SSM says its command is over (DeploymentService). TARGET#<name> / LATEST names the
deployment that started last, written in the transaction that takes the lock, so an older deployment's retry can
tell the target moved on (`hold_target`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.adapters.store.codec import deployment_item, epoch, fleet_value, item_key, micros, target_key
from chalicelib.adapters.store.table import Table
from chalicelib.domain.deployment import Deployment, Revision
from chalicelib.domain.errors import AwsCallFailed, Conflict
from chalicelib.domain.fleet import Fleet
from chalicelib.domain.target import LatestStart, Lock


class LockItems(Table):
    def start_deployment(self, deployment: Deployment, lock_ttl: int, replacing: Lock | None = None) -> Lock | None:
        """Take the target and record the deployment in one transaction: the lock, the target's LATEST marker, the
        record and (with a job id) the job's claim. No reader ever finds a lock whose deployment has no record, or a
        record whose job a duplicate could claim again.

        The lock is taken when there is none, or when it is exactly `replacing` (an expired lock whose deployment the
        caller found over). Returns None when the target was taken, or the lock in the way (read again: it may be
        this deployment's own, when the answer to an earlier try was lost and the SDK sent it again). Conflict when
        the job was claimed already: a duplicate delivery got there first."""
        now = epoch(deployment.created_at)
        lock: dict[str, Any] = {"TableName": self._table, "Item": {
            **target_key(deployment.target, "LOCK"), "deployment_id": {"S": deployment.deployment_id},
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
                **target_key(deployment.target, "LATEST"), "deployment_id": {"S": deployment.deployment_id},
                "started_at": {"N": str(micros(deployment.created_at))}}}},
            {"Put": {"TableName": self._table, "Item": deployment_item(deployment),
                     "ConditionExpression": "attribute_not_exists(pk)"}}]
        if deployment.job_id:
            items.append({"Put": {"TableName": self._table, "ConditionExpression": "attribute_not_exists(pk)",
                                  "Item": {**item_key(f"JOB#{deployment.job_id}", "CLAIM"),
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
            {"Update": {"TableName": self._table, "Key": target_key(target, "LOCK"),
                        "UpdateExpression": update, "ConditionExpression": condition,
                        "ExpressionAttributeValues": values}},
            {"ConditionCheck": {"TableName": self._table, "Key": target_key(target, "LATEST"),
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
        keys = [item_key(f"DEPLOYMENT#{deployment.deployment_id}", "RECORD"),
                *([item_key(f"JOB#{deployment.job_id}", "CLAIM")] if deployment.job_id else []),
                target_key(deployment.target, "LATEST"), target_key(deployment.target, "LOCK")]
        deletes = [{"TableName": self._table, "Key": each, **({} if each["sk"]["S"] == "RECORD" else mine)}
                   for each in keys]
        if self._transact("abandon deployment", [{"Delete": delete} for delete in deletes]) is None:
            return
        for delete in deletes:         # the record first: a lock left alone expires, and finds no record then
            self._conditional("DeleteItem (abandon)", self._db.delete_item, **delete)

    def extend_lock(self, target: str, deployment_id: str, expires_at: int) -> None:
        """Push the lock's expiry out while its deployment still holds it (each retry attempt runs anew)."""
        self._conditional("UpdateItem (lock)", self._db.update_item, TableName=self._table,
                          Key=target_key(target, "LOCK"), UpdateExpression="SET expires_at = :exp",
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

    def settle_target(self, name: str, deployment_id: str, revision: Revision | None, started: datetime,
                      fleet: Fleet | None = None) -> bool:
        """A finished deployment lets go of its target: records `revision` as the target's current one (when it
        succeeded) and `fleet`, what each instance runs now (when given), and releases the lock, in one transaction,
        so none happens without the others.

        The revision is written only over that of a deployment started before `started`, never over a newer one's, so
        finishing again after a crash cannot turn the target back. The instance map is written only by the deployment
        that still holds the lock: it was read under that lock, so no other end wrote it since. When a condition fails
        (the lock expired or was taken over, a newer revision is recorded, the target was deleted), the lock and the
        revision are each done alone where they still hold, and the map is left as the holder wrote it. Returns
        whether this call released the lock. Any other cancellation (a conflicting write, throttling) is
        AwsCallFailed: nothing was written, and finishing again does it all."""
        items: list[dict[str, Any]] = [{"Delete": self._lock_release(name, deployment_id)}]
        if revision is not None:
            items.append({"Update": self._revision_update(name, deployment_id, revision, started, fleet)})
        elif fleet is not None:
            items.append({"Update": {"TableName": self._table, "Key": target_key(name, "SPEC"),
                                     "UpdateExpression": "SET fleet = :fleet",
                                     "ConditionExpression": "attribute_exists(pk)",
                                     "ExpressionAttributeValues": {":fleet": fleet_value(fleet)}}})
        if self._transact("settle target", items, retry_conflicts=False) is None:
            return True
        released = self.release_lock(name, deployment_id)
        if revision is not None:
            self._conditional("UpdateItem (target revision)", self._db.update_item,
                              **self._revision_update(name, deployment_id, revision, started))
        return released

    def _lock_release(self, target: str, deployment_id: str) -> dict[str, Any]:
        """The lock's deletion, on condition that `deployment_id` still holds it."""
        return {"TableName": self._table, "Key": target_key(target, "LOCK"),
                "ConditionExpression": "deployment_id = :dep",
                "ExpressionAttributeValues": {":dep": {"S": deployment_id}}}

    def _revision_update(self, name: str, deployment_id: str, revision: Revision, started: datetime,
                         fleet: Fleet | None = None) -> dict[str, Any]:
        values = {":rev": {"S": revision.model_dump_json()}, ":dep": {"S": deployment_id},
                  ":at": {"N": str(micros(started))}, **({":fleet": fleet_value(fleet)} if fleet is not None else {})}
        return {"TableName": self._table, "Key": target_key(name, "SPEC"),
                "UpdateExpression": "SET current_revision = :rev, last_deployment_id = :dep, last_deployment_at = :at"
                                    + (", fleet = :fleet" if fleet is not None else ""),
                "ConditionExpression": "attribute_exists(pk) AND (attribute_not_exists(last_deployment_at) "
                                       "OR last_deployment_at <= :at)",
                "ExpressionAttributeValues": values}
