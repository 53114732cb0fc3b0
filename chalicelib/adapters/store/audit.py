"""Deployment history across targets (`berth history`), read from DynamoDB indexes, never a Scan.

Indexes (all keyed for sorting by `gsi1sk` = <created>#<id>, so a time range is a key condition):
    by_digest   gsi4pk = DIGEST#<sha256:...>    written once the record knows its digest
    by_target   gsi1pk = TARGET#<name>          (the target's own history pages, deployments.py)
    by_caller   gsi3pk = CALLER#<caller>        the IAM ARN that started it, or the pipeline job
    by_time     gsi2pk = MONTH#<YYYY-MM>        every record, a partition a month (see domain/audit.py)
Each save of a record writes it to the indexes too; an index that is not the one read filters on its attribute.

A page cursor is compact JSON in url-safe base64: the partition being read (`p`) and, inside it, the LastEvaluatedKey
to start after (`k`, absent at the start of a partition). On the way back in it must name one of the partitions the
same filters read, a deployment record's key in that partition and a creation time inside the range (DynamoDB refuses a
start key outside the key condition), or it is InvalidCursor, never a DynamoDB ValidationException.

Records saved before these indexes existed are in `by_target` only, until they are saved again or `backfill_audit_keys`
rewrites their index attributes (docs/operations.md).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from chalicelib.adapters.store.codec import (
    AUDIT_KEYS,
    AUDIT_PREFIXES,
    deployment_from,
    deployment_item,
    item_key,
    record_of,
)
from chalicelib.adapters.store.table import Table
from chalicelib.domain.audit import AuditPlan
from chalicelib.domain.deployment import Deployment
from chalicelib.domain.errors import InvalidCursor

MAX_AUDIT_CURSOR_CHARS = 4096
# Reads one page may make: enough to cross a year of empty months, or a filter that keeps few records, before the
# caller is handed a cursor to go on with (a page may then be short, or empty with a cursor).
MAX_QUERIES_PER_PAGE = 14
_INDEX_ATTRIBUTES = ("gsi1pk", "gsi2pk", "gsi3pk", "gsi4pk")


class AuditItems(Table):
    def search_deployments(self, plan: AuditPlan, limit: int, cursor: str | None = None
                           ) -> tuple[list[Deployment], str | None]:
        """A page of the deployments `plan` picks, newest first, and the cursor of the next page (None on the last).
        InvalidCursor when `cursor` is not one this store gave for the same filters."""
        position = decode_audit_cursor(cursor, plan) if cursor else (0, None)
        if plan.since is not None and plan.since >= plan.until:
            return [], None                 # an empty range (a `since` after now): DynamoDB refuses BETWEEN on it
        found: list[Deployment] = []
        for _ in range(MAX_QUERIES_PER_PAGE):
            index, start = position
            if index >= len(plan.partitions) or len(found) >= limit:
                break
            params = audit_query(self._table, plan, plan.partitions[index], limit - len(found))
            if start:
                params["ExclusiveStartKey"] = start
            page = self._call("Query", self._db.query, **params)
            found.extend(deployment_from(item) for item in page["Items"])
            last = page.get("LastEvaluatedKey")
            position = (index, last) if last else (index + 1, None)
        index, start = position
        more = index < len(plan.partitions)
        return found, encode_audit_cursor(plan.partitions[index], start) if more else None

    def backfill_audit_keys(self, records: list[Deployment]) -> int:
        """Write the audit indexes' keys of records saved before the indexes existed (found by the caller, e.g. from
        each target's history): only the index attributes, on condition that the record is still the version read.
        Returns how many were written."""
        written = 0
        for record in records:
            item = deployment_item(record)
            values = {f":{name}": item[name] for name in _INDEX_ATTRIBUTES if name in item}
            if self._conditional("UpdateItem (audit keys)", self._db.update_item, TableName=self._table,
                                 Key=item_key(item["pk"]["S"], "RECORD"),
                                 UpdateExpression="SET " + ", ".join(f"{n[1:]} = {n}" for n in values),
                                 ConditionExpression="version = :v",
                                 ExpressionAttributeValues={**values, ":v": {"N": str(record.version)}}):
                written += 1
        return written


def audit_query(table: str, plan: AuditPlan, partition: str, limit: int) -> dict[str, Any]:
    """Query parameters for one partition of the plan's index, newest first, the other filters as a FilterExpression."""
    index = plan.index.value
    values: dict[str, Any] = {":p": {"S": AUDIT_PREFIXES[index] + partition}, ":until": {"S": _bound(plan.until)}}
    condition = f"{AUDIT_KEYS[index]} = :p AND "
    if plan.since is not None:
        condition += "gsi1sk BETWEEN :since AND :until"
        values[":since"] = {"S": _bound(plan.since)}
    else:
        condition += "gsi1sk < :until"
    wanted = plan.filters
    kept = []
    for name, value in (("by_target", wanted.target), ("by_caller", wanted.caller), ("by_digest", wanted.digest)):
        if value is not None and name != index:
            kept.append(f"{AUDIT_KEYS[name]} = :{name}")
            values[f":{name}"] = {"S": AUDIT_PREFIXES[name] + value}
    params: dict[str, Any] = {"TableName": table, "IndexName": index, "Limit": limit, "ScanIndexForward": False,
                              "KeyConditionExpression": condition}
    if wanted.status is not None:
        kept.append("#status = :status")
        values[":status"] = {"S": wanted.status.value}
        params["ExpressionAttributeNames"] = {"#status": "status"}
    if kept:
        params["FilterExpression"] = " AND ".join(kept)
    params["ExpressionAttributeValues"] = values
    return params


def _bound(moment: Any) -> str:
    """A time as the sort key compares it: a record created at `moment` sorts after it (its key goes on with #id)."""
    return str(moment.isoformat())


def encode_audit_cursor(partition: str, start: dict[str, Any] | None) -> str:
    data: dict[str, Any] = {"p": partition}
    if start:
        data["k"] = {name: value["S"] for name, value in sorted(start.items())}
    raw = json.dumps(data, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_audit_cursor(cursor: str, plan: AuditPlan) -> tuple[int, dict[str, Any] | None]:
    """Where to go on: the index of the partition in `plan.partitions` and the ExclusiveStartKey in it (None: from
    its start). InvalidCursor unless this store gave the cursor for a query with the same filters."""
    problem = InvalidCursor("cursor is not a page cursor berth gave for these history filters")
    if len(cursor) > MAX_AUDIT_CURSOR_CHARS:
        raise problem
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise problem from None
    if not isinstance(data, dict) or not set(data) <= {"p", "k"} or data.get("p") not in plan.partitions:
        raise problem
    index = plan.partitions.index(data["p"])
    if "k" not in data:
        return index, None
    key_name = AUDIT_KEYS[plan.index.value]
    start = data["k"]
    if not isinstance(start, dict) or set(start) != {"pk", "sk", key_name, "gsi1sk"} or \
            not all(isinstance(v, str) for v in start.values()):
        raise problem
    created = start["gsi1sk"]
    inside = created < _bound(plan.until) and (plan.since is None or created >= _bound(plan.since))
    if start[key_name] != AUDIT_PREFIXES[plan.index.value] + data["p"] or start["sk"] != "RECORD" or \
            not record_of(start["pk"], created) or not inside:
        raise problem
    return index, {name: {"S": value} for name, value in start.items()}
