"""The calls every part of the store makes on berth's one table: reads, plain and conditional writes, transactions."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.errors import CONDITION_FAILED, TRANSACTION_CANCELLED, aws_call, aws_failure, returning
from chalicelib.adapters.store.codec import item_key


class Table:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._db = dynamodb_client
        self._table = table_name

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self._call("GetItem", self._db.get_item, TableName=self._table, Key=item_key(pk, sk),
                          ConsistentRead=True).get("Item")
        return dict(item) if item else None

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

        params: dict[str, Any] = {"TransactItems": items}
        if token:
            params["ClientRequestToken"] = token
        outcome = aws_call(operation, self._db.transact_write_items,
                           expected={TRANSACTION_CANCELLED: cancelled}, **params)
        return outcome if isinstance(outcome, list) else None

    @staticmethod
    def _conditional(operation: str, method: Any, **params: Any) -> bool:
        """A conditional write: False when its condition did not hold, berth's error for any other failure."""
        answer = aws_call(f"DynamoDB {operation}", method, expected={CONDITION_FAILED: returning(None)}, **params)
        return answer is not None

    @staticmethod
    def _call(operation: str, method: Any, **params: Any) -> Any:
        return aws_call(f"DynamoDB {operation}", method, **params)
