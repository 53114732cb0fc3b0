"""Targets: the spec, the current revision, the instance map and the circuit breaker's window, one SPEC item per
target. The instance map (`fleet`, domain/fleet.py) is written with the end of each deployment (locks.settle_target).

The breaker's window (`recent_failures`, a list of epoch seconds) is changed by read-modify-write under a version
of its own (`breaker_version`): two failures recorded at once each read the window, and the second write finds the
version moved and reads again, so neither failure is lost. Resetting the breaker moves the version too, so a failure
read before a reset cannot write the old window back over it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chalicelib.adapters.store.codec import fleet_from, item_key, target_key
from chalicelib.adapters.store.table import Table
from chalicelib.domain.deployment import Revision
from chalicelib.domain.errors import Conflict, TargetNotFound
from chalicelib.domain.freeze import Freeze
from chalicelib.domain.spec import STORED, TargetSpec
from chalicelib.domain.target import TargetRecord, failure_window

# A failure is recorded once per deployment attempt; more writers than this at once on one target is not contention
# but a fault, and is reported rather than retried without end.
MAX_BREAKER_WRITES = 5


class TargetItems(Table):
    def put_target(self, spec: TargetSpec, caller: str) -> None:
        self._call("UpdateItem", self._db.update_item, TableName=self._table, Key=target_key(spec.target, "SPEC"),
                   UpdateExpression="SET spec = :spec, updated_by = :caller",
                   ExpressionAttributeValues={":spec": {"S": spec.model_dump_json()}, ":caller": {"S": caller}})
        if spec.codedeploy is not None:
            group = f"CDGROUP#{spec.codedeploy.application}#{spec.codedeploy.deployment_group}"
            self._call("PutItem", self._db.put_item, TableName=self._table,
                       Item={**item_key(group, "TARGET"), "target": {"S": spec.target}})

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
            recent_failures=_failures(item),
            breaker_open_since=int(item["breaker_open_since"]["N"]) if "breaker_open_since" in item else None,
            fleet=fleet_from(item),
            freeze=_freeze(item),
        )

    def list_targets(self) -> list[tuple[str, TargetRecord]]:
        """Every registered target, by name. A Scan: the table holds few targets next to its other items."""
        names: list[str] = []
        params: dict[str, Any] = {"TableName": self._table, "ProjectionExpression": "pk",
                                  "FilterExpression": "sk = :spec AND begins_with(pk, :prefix)",
                                  "ExpressionAttributeValues": {":spec": {"S": "SPEC"}, ":prefix": {"S": "TARGET#"}}}
        while True:
            page = self._call("Scan", self._db.scan, **params)
            names.extend(item["pk"]["S"].removeprefix("TARGET#") for item in page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                break
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        records = ((name, self.get_target(name)) for name in sorted(names))
        return [(name, record) for name, record in records if record is not None]

    def record_failure(self, name: str, at: int, keep_after: int, open_breaker: bool) -> None:
        """Remember a failure (dropping those older than `keep_after`) and open the breaker if told to. Written on
        condition that the window is still the one read; read again when another writer got there first. Conflict
        when it kept changing MAX_BREAKER_WRITES times; nothing is done for a target that does not exist."""
        for _ in range(MAX_BREAKER_WRITES):
            item = self._get(f"TARGET#{name}", "SPEC")
            if item is None:
                return
            version = int(item.get("breaker_version", {}).get("N", "0"))
            failures = failure_window(_failures(item), at, keep_after)
            expression = "SET recent_failures = :f, breaker_version = :next"
            values: dict[str, Any] = {":f": {"L": [{"N": str(f)} for f in failures]}, ":next": {"N": str(version + 1)}}
            if open_breaker:
                expression += ", breaker_open_since = if_not_exists(breaker_open_since, :at)"
                values[":at"] = {"N": str(at)}
            if version:
                condition = "breaker_version = :read"
                values[":read"] = {"N": str(version)}
            else:
                condition = "attribute_exists(pk) AND attribute_not_exists(breaker_version)"
            if self._conditional("UpdateItem (breaker)", self._db.update_item, TableName=self._table,
                                 Key=target_key(name, "SPEC"), UpdateExpression=expression,
                                 ConditionExpression=condition, ExpressionAttributeValues=values):
                return
        raise Conflict(f"target {name!r}: its failure window kept changing; the failure at {at} was not recorded")

    def reset_breaker(self, name: str, caller: str) -> None:
        self._call("UpdateItem", self._db.update_item, TableName=self._table, Key=target_key(name, "SPEC"),
                   UpdateExpression="REMOVE breaker_open_since, recent_failures SET updated_by = :caller "
                                    "ADD breaker_version :one",
                   ExpressionAttributeValues={":caller": {"S": caller}, ":one": {"N": "1"}},
                   ConditionExpression="attribute_exists(pk)")


    def freeze_target(self, name: str, freeze: Freeze) -> None:
        """Freeze the target (a second freeze replaces the first: its reason and end are the newer ones)."""
        stored = {"reason": freeze.reason, "by": freeze.by, "at": freeze.at.isoformat(),
                  "until": freeze.until.isoformat() if freeze.until else None}
        if not self._conditional("UpdateItem (freeze)", self._db.update_item, TableName=self._table,
                                 Key=target_key(name, "SPEC"), UpdateExpression="SET freeze = :freeze",
                                 ConditionExpression="attribute_exists(pk)",
                                 ExpressionAttributeValues={":freeze": {"S": json.dumps(stored)}}):
            raise TargetNotFound(f"target {name!r} is not registered")

    def unfreeze_target(self, name: str) -> None:
        if not self._conditional("UpdateItem (unfreeze)", self._db.update_item, TableName=self._table,
                                 Key=target_key(name, "SPEC"), UpdateExpression="REMOVE freeze",
                                 ConditionExpression="attribute_exists(pk)"):
            raise TargetNotFound(f"target {name!r} is not registered")


def _freeze(item: dict[str, Any]) -> Freeze | None:
    if "freeze" not in item:
        return None
    stored = json.loads(item["freeze"]["S"])
    until = stored.get("until")
    return Freeze(reason=stored["reason"], by=stored["by"], at=datetime.fromisoformat(stored["at"]),
                  until=datetime.fromisoformat(until) if until else None)


def _failures(item: dict[str, Any]) -> tuple[int, ...]:
    """The window, oldest first: a list since failures are versioned (two may share a second), a number set before."""
    stored = item.get("recent_failures", {})
    if "L" in stored:
        return tuple(int(entry["N"]) for entry in stored["L"])
    return tuple(sorted(int(n) for n in stored.get("NS", [])))
