"""One-off runs (`berth exec`): EXEC#<command id> / RECORD, the audit record of who ran what where, kept like the
deployment records (no expiry). GET /targets/{name}/exec/{command_id} finds the run's target and instances here."""

from __future__ import annotations

import json

from chalicelib.adapters.store.codec import item_key
from chalicelib.adapters.store.table import Table
from chalicelib.domain.container_commands import ExecRecord


class ExecItems(Table):
    def record_exec(self, record: ExecRecord) -> None:
        body = {"command": list(record.command), "image": record.image, "instance_ids": list(record.instance_ids),
                "run_id": record.run_id, "timeout_seconds": record.timeout_seconds}
        self._call("PutItem", self._db.put_item, TableName=self._table, Item={
            **item_key(f"EXEC#{record.command_id}", "RECORD"), "target": {"S": record.target},
            "caller": {"S": record.caller}, "started_at": {"S": record.started_at}, "body": {"S": json.dumps(body)}})

    def get_exec(self, command_id: str) -> ExecRecord | None:
        item = self._get(f"EXEC#{command_id}", "RECORD")
        if item is None:
            return None
        body = json.loads(item["body"]["S"])
        return ExecRecord(command_id=command_id, target=item["target"]["S"], caller=item["caller"]["S"],
                          command=tuple(body["command"]), image=body["image"],
                          instance_ids=tuple(body["instance_ids"]), run_id=body["run_id"],
                          timeout_seconds=int(body["timeout_seconds"]), started_at=item["started_at"]["S"])
