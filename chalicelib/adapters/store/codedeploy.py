"""CodeDeploy records, event claims and counters: the items the CodeDeploy event handler keeps.

CODEDEPLOY#<deployment id> / RECORD is one record per CodeDeploy deployment (JSON in `body`, `version` for optimistic
concurrency); CLAIM#<key> / CLAIM lets the first of several deliveries act; COUNTER#<key> / COUNTER counts atomically.
Each carries `expires_at`, the table's TTL attribute.
"""

from __future__ import annotations

from chalicelib.adapters.store.codec import item_key
from chalicelib.adapters.store.table import Table
from chalicelib.domain.deployment import CodeDeployRecord
from chalicelib.domain.errors import Conflict


class CodeDeployItems(Table):
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
                                     **item_key(f"CODEDEPLOY#{record.deployment_id}", "RECORD"),
                                     "version": {"N": str(saved.version)}, "body": {"S": saved.model_dump_json()},
                                     "expires_at": {"N": str(expires_at)}}):
            raise Conflict(f"CodeDeploy record {record.deployment_id} was changed by another writer")
        return saved

    def claim(self, key: str, expires_at: int) -> bool:
        """Claim `key` once: True for the first caller, False for every later one (duplicate deliveries)."""
        return self._conditional("PutItem (claim)", self._db.put_item, TableName=self._table,
                                 Item={**item_key(f"CLAIM#{key}", "CLAIM"), "expires_at": {"N": str(expires_at)}},
                                 ConditionExpression="attribute_not_exists(pk)")

    def increment(self, key: str, expires_at: int) -> int:
        """Add one to a counter and return its new value (atomic)."""
        result = self._call("UpdateItem", self._db.update_item, TableName=self._table,
                            Key=item_key(f"COUNTER#{key}", "COUNTER"), ReturnValues="UPDATED_NEW",
                            UpdateExpression="ADD #n :one SET expires_at = :exp",
                            ExpressionAttributeNames={"#n": "count"},
                            ExpressionAttributeValues={":one": {"N": "1"}, ":exp": {"N": str(expires_at)}})
        return int(result["Attributes"]["count"]["N"])
