"""`berth logs` and `berth exec`: each starts an SSM command through the API, then polls the command's GET route
until every instance has answered. The API never waits; the CLI does, every --interval seconds.

`--follow` asks again after each round with `--since` moved forward to the time since the previous ask (plus a
second of overlap) and prints only lines it has not printed: `docker logs --timestamps` makes each line unique enough.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
from collections.abc import Callable
from typing import Any, TextIO
from urllib.parse import quote

from berth_cli import render
from berth_cli.client import Api

EXIT_OK, EXIT_ERROR = 0, 1
OVERLAP_SECONDS = 1


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    logs = commands.add_parser("logs", parents=[common], help="a target's container logs from its instances")
    logs.add_argument("target")
    logs.add_argument("--instance", help="one instance (default: every Online instance of the target, at most 50)")
    logs.add_argument("--since", default="10m", help="how far back: 30s, 10m, 2h (at most 24h; default 10m)")
    logs.add_argument("--tail", type=int, default=200, help="at most this many lines per instance (default 200)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep polling for new lines (Ctrl-C stops)")
    logs.add_argument("--interval", type=float, default=2.0, help="seconds between polls (default 2)")
    run = commands.add_parser("exec", parents=[common], help="run a command in a one-off container of the target's "
                              "current image", usage="berth exec TARGET [--instance ID | --all] -- CMD [ARG ...]")
    run.add_argument("target")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--instance", help="the instance to run on (default: the first Online one)")
    where.add_argument("--all", action="store_true", help="run on every Online instance of the target")
    run.add_argument("--timeout", type=int, default=600, help="seconds the command may run, 60-3600 (default 600)")
    run.add_argument("--interval", type=float, default=2.0, help="seconds between polls (default 2)")
    run.add_argument("cmd", nargs="+", metavar="CMD", help="the program and its arguments, after --")


def logs(api: Api, args: argparse.Namespace, out: TextIO, err: TextIO, sleep: Callable[[float], None],
         clock: Callable[[], float]) -> int:
    path = f"/targets/{_segment(args.target)}/logs"
    since, printed = args.since, set[str]()
    while True:
        asked_at = clock()
        started = api.call("GET", path, query={"instance": args.instance, "since": since, "tail": args.tail})
        result = _until_done(api, f"{path}/{_segment(started['command_id'])}", args.interval, sleep)
        if args.json:
            print(json.dumps(result, indent=2), file=out, flush=True)
        else:
            for line in result["lines"]:
                if line not in printed:
                    print(render.visible(line), file=out, flush=True)
        failed = _notes(result["instances"], err, "docker logs")
        if not args.follow:
            return EXIT_ERROR if failed else EXIT_OK
        printed = set(result["lines"])
        sleep(max(args.interval, 0.0))
        since = f"{min(max(1, math.ceil(clock() - asked_at)) + OVERLAP_SECONDS, 86_400)}s"


def exec_command(api: Api, args: argparse.Namespace, out: TextIO, err: TextIO,
                 sleep: Callable[[float], None]) -> int:
    path = f"/targets/{_segment(args.target)}/exec"
    body = {"command": args.cmd, "instance": args.instance, "all": args.all or None, "timeout_seconds": args.timeout}
    started = api.call("POST", path, {key: value for key, value in body.items() if value is not None})
    print(render.visible(f"berth: {shlex.join(started['command'])} on {', '.join(started['instances'])} in "
                         f"{started['image']} (command {started['command_id']})"), file=err, flush=True)
    result = _until_done(api, f"{path}/{_segment(started['command_id'])}", args.interval, sleep)
    if args.json:
        print(json.dumps(result, indent=2), file=out)
    else:
        several = len(result["results"]) > 1
        for instance in result["results"]:
            for line in instance["output"].splitlines():
                print(render.visible(f"{instance['instance_id']} {line}" if several else line), file=out)
    _notes(result["results"], err, "the command")
    code = result["exit_code"]
    return code if isinstance(code, int) and 0 <= code <= 255 else EXIT_ERROR


def _until_done(api: Api, path: str, interval: float, sleep: Callable[[float], None]) -> dict[str, Any]:
    while True:
        result = api.call("GET", path)
        if result["done"]:
            return result
        sleep(max(interval, 0.0))


def _notes(instances: list[dict[str, Any]], err: TextIO, what: str) -> bool:
    """Say on stderr which instances' output SSM cut, and which did not succeed; True when one did not."""
    failed = False
    for instance in instances:
        name = instance["instance_id"]
        if instance["cut"]:
            where = f"; the whole of it: {instance['output_url']}" if instance.get("output_url") else \
                " (set an output bucket to keep all of it: docs/operations.md)"
            print(render.visible(f"berth: {name}: SSM kept the first 24,000 characters of the output{where}"),
                  file=err)
        if instance["status"] != "Success":
            failed = True
            code = instance["exit_code"]
            print(render.visible(f"berth: {name}: {what} ended {instance['status']}"
                                 + (f" (exit code {code})" if code is not None else "")), file=err)
    return failed


def _segment(value: str) -> str:
    return quote(value, safe="")
