"""Create berth's own AWS resources for a stage, in whatever endpoint AWS_ENDPOINT_URL names.

    python -m tools.provision --stage dev

The table name comes from the stage's BERTH_TABLE in .chalice/config.json, the same value its Lambdas read.
Running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import boto3

from chalicelib.adapters.store import table_definition

PROJECT = Path(__file__).resolve().parent.parent


def stage_environment(stage: str, config_path: Path = PROJECT / ".chalice" / "config.json") -> dict[str, str]:
    config = json.loads(config_path.read_text())
    if stage not in config.get("stages", {}):
        raise SystemExit(f"stage {stage!r} is not in {config_path}: known stages are {', '.join(config['stages'])}")
    return {**config.get("environment_variables", {}), **config["stages"][stage].get("environment_variables", {})}


def provision(stage: str, dynamodb: Any | None = None) -> list[str]:
    """Create what is missing; return a line per resource saying what was done."""
    dynamodb = dynamodb or boto3.client("dynamodb")
    table = stage_environment(stage)["BERTH_TABLE"]
    done = []
    try:
        existing = dynamodb.describe_table(TableName=table)["Table"]
        done.append(f"table {table}: exists")
        done += _add_missing_indexes(dynamodb, table, existing)
    except dynamodb.exceptions.ResourceNotFoundException:
        dynamodb.create_table(**table_definition(table))
        dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        done.append(f"table {table}: created")
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        dynamodb.update_time_to_live(TableName=table,
                                     TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
        done.append(f"table {table}: TTL on expires_at enabled")
    return done


def _add_missing_indexes(dynamodb: Any, table: str, existing: dict[str, Any]) -> list[str]:
    """Create the indexes a table made by an older berth lacks (the audit indexes). DynamoDB builds one new index per
    UpdateTable, so each waits for the one before it to be ACTIVE; their items join them as DynamoDB backfills."""
    definition = table_definition(table)
    have = {index["IndexName"] for index in existing.get("GlobalSecondaryIndexes", [])}
    done = []
    for index in definition["GlobalSecondaryIndexes"]:
        if index["IndexName"] in have:
            continue
        keys = {key["AttributeName"] for key in index["KeySchema"]}
        dynamodb.update_table(TableName=table, GlobalSecondaryIndexUpdates=[{"Create": index}],
                              AttributeDefinitions=[a for a in definition["AttributeDefinitions"]
                                                    if a["AttributeName"] in keys])
        for _ in range(600):
            indexes = dynamodb.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])
            if all(i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in indexes):
                break
            time.sleep(5)
        done.append(f"table {table}: index {index['IndexName']} created")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    for line in provision(args.stage):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
