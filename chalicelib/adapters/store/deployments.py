"""Deployment records, the job claims and command index that lead to them, and a target's history a page at a time.

DEPLOYMENT#<id> / RECORD is the record (zlib-compressed JSON in `body`, `version` for optimistic concurrency), on the
`by_target` index by the time it was created; JOB#<job id> / CLAIM says which deployment a CodePipeline job started,
so a duplicate delivery finds it; COMMAND#<command id> / INDEX says which deployment an SSM command belongs to, for
EventBridge events. Pages of history are cursors opaque to callers (codec).
"""

from __future__ import annotations

from chalicelib.adapters.store.codec import (
    decode_cursor,
    deployment_from,
    deployment_item,
    encode_cursor,
    history_query,
    item_key,
)
from chalicelib.adapters.store.table import Table
from chalicelib.domain.deployment import Deployment
from chalicelib.domain.errors import Conflict, DeploymentNotFound


class DeploymentItems(Table):
    def save_deployment(self, deployment: Deployment) -> Deployment:
        """Write the record if nobody else wrote it since it was read; returns it with its new version."""
        saved = deployment.model_copy(update={"version": deployment.version + 1})
        if not self._conditional("PutItem (deployment)", self._db.put_item, TableName=self._table,
                                 Item=deployment_item(saved), ConditionExpression="version = :read",
                                 ExpressionAttributeValues={":read": {"N": str(deployment.version)}}):
            raise Conflict(f"deployment {deployment.deployment_id} was changed by another writer")
        return saved

    def get_deployment(self, deployment_id: str) -> Deployment:
        item = self._get(f"DEPLOYMENT#{deployment_id}", "RECORD")
        if item is None:
            raise DeploymentNotFound(f"no deployment {deployment_id!r}")
        return deployment_from(item)

    def list_deployments(self, target: str, limit: int = 20, cursor: str | None = None
                         ) -> tuple[list[Deployment], str | None]:
        """A page of the target's deployments, newest first, and the cursor of the next page (None on the last).
        InvalidCursor when `cursor` is not one this store gave for `target`."""
        params = history_query(self._table, target, limit)
        if cursor:
            params["ExclusiveStartKey"] = decode_cursor(cursor, target)
        page = self._call("Query", self._db.query, **params)
        last_key = page.get("LastEvaluatedKey")
        return [deployment_from(item) for item in page["Items"]], encode_cursor(last_key) if last_key else None

    def find_job(self, job_id: str) -> str | None:
        item = self._get(f"JOB#{job_id}", "CLAIM")
        return item["deployment_id"]["S"] if item else None

    def index_command(self, command_id: str, deployment_id: str, expires_at: int) -> None:
        self._call("PutItem", self._db.put_item, TableName=self._table, Item={
            **item_key(f"COMMAND#{command_id}", "INDEX"), "deployment_id": {"S": deployment_id},
            "expires_at": {"N": str(expires_at)}})

    def find_command(self, command_id: str) -> str | None:
        item = self._get(f"COMMAND#{command_id}", "INDEX")
        return item["deployment_id"]["S"] if item else None
