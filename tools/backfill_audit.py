"""Put deployment records saved before the audit indexes existed into them (`berth history` across targets).

    python -m tools.backfill_audit --stage dev

Reads each target's history through the `by_target` index (every record has always been on it) and writes only the
audit indexes' key attributes of each record, on condition that the record is still the version read: a record a
running deployment saves meanwhile already has them. Running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import boto3

from chalicelib.adapters.store import DeploymentStore
from tools.provision import stage_environment


def backfill(store: DeploymentStore) -> int:
    """How many records were written."""
    written = 0
    for name, _ in store.list_targets():
        cursor: str | None = None
        while True:
            page, cursor = store.list_deployments(name, limit=100, cursor=cursor)
            written += store.backfill_audit_keys(page)
            if not cursor:
                break
    return written


def main(argv: list[str] | None = None, dynamodb: Any | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    table = stage_environment(args.stage)["BERTH_TABLE"]
    written = backfill(DeploymentStore(dynamodb or boto3.client("dynamodb"), table))
    print(f"table {table}: {written} deployment records written with their audit keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
