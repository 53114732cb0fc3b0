"""Joins: one item per instance, JOIN#<instance id> / LAUNCH, the record of its latest launch joining its target
(chalicelib.domain.join). JSON in `body`, `version` for optimistic concurrency, `expires_at` for the TTL."""

from __future__ import annotations

from chalicelib.adapters.store.codec import item_key
from chalicelib.adapters.store.table import Table
from chalicelib.domain.errors import Conflict
from chalicelib.domain.join import JoinRecord


class JoinItems(Table):
    def get_join(self, instance_id: str) -> JoinRecord | None:
        item = self._get(f"JOIN#{instance_id}", "LAUNCH")
        return JoinRecord.model_validate_json(item["body"]["S"]) if item else None

    def save_join(self, record: JoinRecord, expires_at: int) -> JoinRecord:
        """Write if nobody else did since `record` was read (version 0: only if no record exists). Conflict
        otherwise: a duplicate delivery, or another handler that moved the join on."""
        saved = record.model_copy(update={"version": record.version + 1})
        condition = "attribute_not_exists(pk)" if record.version == 0 else "version = :read"
        values = {} if record.version == 0 else {"ExpressionAttributeValues": {":read": {"N": str(record.version)}}}
        if not self._conditional("PutItem (join)", self._db.put_item, TableName=self._table,
                                 ConditionExpression=condition, **values, Item={
                                     **item_key(f"JOIN#{record.instance_id}", "LAUNCH"),
                                     "version": {"N": str(saved.version)}, "body": {"S": saved.model_dump_json()},
                                     "expires_at": {"N": str(expires_at)}}):
            raise Conflict(f"the join of instance {record.instance_id} was changed by another writer")
        return saved
