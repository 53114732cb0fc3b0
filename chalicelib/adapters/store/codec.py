"""How berth's values become DynamoDB items and keys, and back: the only place that knows the table's layout.

A page cursor stands for the LastEvaluatedKey of a Query on the `by_target` index: its four string keys as compact
JSON in url-safe base64 without padding. Callers treat it as opaque; on the way back in it is checked to be one this
store gave for the same target (the index's four keys exactly, a deployment record's key, the target's partition),
so a forged, cut or garbled cursor is InvalidCursor, never a DynamoDB ValidationException.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from datetime import datetime
from typing import Any

from chalicelib.domain.audit import month_of
from chalicelib.domain.deployment import Deployment
from chalicelib.domain.errors import InvalidCursor
from chalicelib.domain.fleet import Fleet
from chalicelib.domain.spec import STORED

GSI_BY_TARGET = "by_target"
# The audit indexes (adapters/store/audit.py): each keys a deployment record by one thing and shares `gsi1sk`
# (<created>#<id>) as its sort key, so every one of them reads a time range newest first.
AUDIT_KEYS = {"by_time": "gsi2pk", "by_caller": "gsi3pk", "by_digest": "gsi4pk", "by_target": "gsi1pk"}
AUDIT_PREFIXES = {"by_time": "MONTH#", "by_caller": "CALLER#", "by_digest": "DIGEST#", "by_target": "TARGET#"}
MAX_CURSOR_CHARS = 2048
_CURSOR_KEYS = frozenset({"pk", "sk", "gsi1pk", "gsi1sk"})
_DEPLOYMENT_ID = re.compile(r"d-[0-9A-Za-z][0-9A-Za-z-]{0,62}")


def item_key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def target_key(name: str, sk: str) -> dict[str, Any]:
    return item_key(f"TARGET#{name}", sk)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def deployment_item(deployment: Deployment) -> dict[str, Any]:
    """The record's item: zlib-compressed JSON in `body`, its version, and the keys of the `by_target` index and of
    the audit indexes (`by_digest` only once the digest is known: an index key cannot be empty)."""
    created = deployment.created_at.isoformat()
    digest = deployment.revision.digest
    return {**item_key(f"DEPLOYMENT#{deployment.deployment_id}", "RECORD"),
            "gsi1pk": {"S": f"TARGET#{deployment.target}"},
            "gsi1sk": {"S": f"{created}#{deployment.deployment_id}"},
            "gsi2pk": {"S": f"MONTH#{month_of(deployment.created_at)}"},
            "gsi3pk": {"S": f"CALLER#{deployment.caller}"},
            **({"gsi4pk": {"S": f"DIGEST#{digest}"}} if digest else {}),
            "status": {"S": deployment.status.value},
            "version": {"N": str(deployment.version)},
            "body": {"B": zlib.compress(deployment.model_dump_json().encode(), 6)}}


def deployment_from(item: dict[str, Any]) -> Deployment:
    return Deployment.model_validate_json(zlib.decompress(item["body"]["B"]), context=STORED)


def fleet_value(fleet: Fleet) -> dict[str, Any]:
    """The target's instance map as its item keeps it: zlib-compressed JSON (1,000 instances: under 100 KB)."""
    return {"B": zlib.compress(fleet.model_dump_json().encode(), 6)}


def fleet_from(item: dict[str, Any]) -> Fleet:
    """The instance map of a target item; empty for an item written before berth kept one."""
    stored = item.get("fleet", {}).get("B")
    return Fleet.model_validate_json(zlib.decompress(stored)) if stored else Fleet()


def history_query(table: str, target: str, limit: int) -> dict[str, Any]:
    """Query parameters for a target's deployments, newest first."""
    return {"TableName": table, "IndexName": GSI_BY_TARGET, "Limit": limit,
            "KeyConditionExpression": "gsi1pk = :t", "ScanIndexForward": False,
            "ExpressionAttributeValues": {":t": {"S": f"TARGET#{target}"}}}


def encode_cursor(last_key: dict[str, Any]) -> str:
    raw = json.dumps({name: value["S"] for name, value in sorted(last_key.items())}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, target: str) -> dict[str, Any]:
    """The ExclusiveStartKey `cursor` stands for; InvalidCursor unless it is one this store gave for `target`."""
    problem = InvalidCursor(f"cursor is not a page cursor berth gave for target {target!r}'s history")
    if len(cursor) > MAX_CURSOR_CHARS:
        raise problem
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise problem from None
    if not isinstance(data, dict) or set(data) != _CURSOR_KEYS or not all(isinstance(v, str) for v in data.values()):
        raise problem
    if data["gsi1pk"] != f"TARGET#{target}" or data["sk"] != "RECORD" or not record_of(data["pk"], data["gsi1sk"]):
        raise problem
    return {name: {"S": value} for name, value in data.items()}


def record_of(pk: str, gsi1sk: str) -> bool:
    """Whether `pk` is a deployment record's key and `gsi1sk` the index key berth writes for it."""
    deployment_id = pk.removeprefix("DEPLOYMENT#")
    created, _, indexed_id = gsi1sk.rpartition("#")
    if pk == deployment_id or not _DEPLOYMENT_ID.fullmatch(deployment_id) or indexed_id != deployment_id:
        return False
    try:
        datetime.fromisoformat(created)
    except ValueError:
        return False
    return True


def table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable parameters for berth's table, shared by provisioning and the tests. Every index projects the whole
    record: a history page is rendered from the records' bodies, which a keys-only index would make one more read."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"}
                                 for name in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi3pk", "gsi4pk")],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [{
            "IndexName": index,
            "KeySchema": [{"AttributeName": AUDIT_KEYS[index], "KeyType": "HASH"},
                          {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        } for index in (GSI_BY_TARGET, "by_time", "by_caller", "by_digest")],
    }
