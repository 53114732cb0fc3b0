"""`berth`: redeploy, roll back, sync and inspect targets through berth's IAM-authorized REST API.

Exit codes: 0 success; 1 the API refused the request or could not be reached (one line on stderr); 2 bad usage;
3 a followed deployment (--wait) ended FAILED, CANCELLED or ROLLED_BACK; 4 `berth plan` lists something that would
refuse the deployment; 130 interrupted. `berth logs` exits 1 when an instance's `docker logs` did not succeed;
`berth exec` exits with the remote command's exit code (the first non-zero one with --all).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from urllib.parse import quote

from berth_cli import operator_commands, render, target_commands, ui
from berth_cli.client import Api, CliError, find_api_url, region_for

EXIT_OK, EXIT_ERROR, EXIT_DEPLOYMENT_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 3, 4, 130


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="the API's URL (default: $BERTH_API_URL, then .chalice/deployed/STAGE.json)")
    common.add_argument("--stage", default=os.environ.get("BERTH_STAGE", "dev"), help="Chalice stage (default dev)")
    common.add_argument("--region", help="region to sign for (default: from the URL, then the AWS config)")
    common.add_argument("--profile", help="AWS profile whose credentials sign the requests")
    common.add_argument("--json", action="store_true", help="print the API's JSON instead of text")
    main = argparse.ArgumentParser(prog="berth", description=__doc__.split("\n")[0])
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    target_commands.add_parser(commands, common)
    commands.add_parser("status", parents=[common], help="a target's revision, lock and breaker").add_argument(
        "target")
    wait = argparse.ArgumentParser(add_help=False)
    wait.add_argument("--wait", action="store_true", help="follow the deployment until it ends")
    wait.add_argument("--interval", type=float, default=5.0, help="seconds between polls with --wait (default 5)")
    deploy = commands.add_parser("deploy", parents=[common, wait], help="redeploy a target")
    deploy.add_argument("target")
    deploy.add_argument("--image", help="image to deploy (default: the current revision again, by digest)")
    deploy.add_argument("--reason", help="why, recorded in the deployment's history")
    deploy.add_argument("--reset-breaker", action="store_true", help="close an open circuit breaker first")
    deploy.add_argument("--override-freeze", metavar="WHY", help="deploy although the target is frozen (recorded)")
    rollback = commands.add_parser("rollback", parents=[common, wait], help="deploy the previous good revision")
    rollback.add_argument("target")
    rollback.add_argument("--to", help="the succeeded deployment whose revision to deploy again")
    rollback.add_argument("--reason")
    rollback.add_argument("--reset-breaker", action="store_true")
    rollback.add_argument("--override-freeze", metavar="WHY", help="roll back although the target is frozen")
    sync = commands.add_parser("sync", parents=[common, wait],
                               help="bring the instances left behind (only those) to the current revision")
    sync.add_argument("target")
    sync.add_argument("--reason", help="why, recorded in the deployment's history")
    sync.add_argument("--override-freeze", metavar="WHY", help="sync although the target is frozen (recorded)")
    freeze = commands.add_parser("freeze", parents=[common], help="freeze a target: no new release reaches it")
    freeze.add_argument("target")
    freeze.add_argument("--reason", required=True, help="why: shown to whoever the freeze holds or refuses")
    freeze.add_argument("--until", help="when it ends on its own: ISO 8601 (2026-12-01T09:00:00Z) or a duration "
                                        "from now (30m, 2h, 1d); default: until `berth unfreeze`")
    commands.add_parser("unfreeze", parents=[common], help="lift a target's freeze").add_argument("target")
    plan = commands.add_parser("plan", parents=[common], help="what a deployment would do now; sends nothing")
    plan.add_argument("target")
    plan.add_argument("--image", help="image to plan for (default: the current revision again, by digest)")
    history = commands.add_parser("history", parents=[common], help="deployments, newest first: one target's, or "
                                  "across targets by caller, digest, time and status")
    history.add_argument("target", nargs="?", help="only this target's (same as --target)")
    history.add_argument("--target", dest="target_flag", metavar="TARGET", help="only this target's")
    history.add_argument("--caller", help="only those started by this IAM ARN (or codepipeline-job:ID)")
    history.add_argument("--digest", help="only those that deployed this digest (sha256:...)")
    history.add_argument("--since", type=moment, help="created at or after: 30m, 2h, 7d ago, or an ISO 8601 time")
    history.add_argument("--until", type=moment, help="created before: 30m, 2h, 7d ago, or an ISO 8601 time")
    history.add_argument("--status", type=str.upper, help="SUCCEEDED, FAILED, ROLLED_BACK, CANCELLED, ...")
    history.add_argument("--limit", type=int, default=20)
    history.add_argument("--next", help="the token printed after the previous page")
    show = commands.add_parser("show", parents=[common], help="one deployment in detail, with the last output lines "
                               "of its failed instances")
    show.add_argument("deployment")
    show.add_argument("--lines", type=int, default=render.TAIL_LINES, choices=range(0, 101), metavar="0-100",
                      help=f"output lines shown for each failed instance (default {render.TAIL_LINES})")
    commands.add_parser("cancel", parents=[common], help="cancel a running deployment").add_argument("deployment")
    operator_commands.add_parsers(commands, common)
    ui_command = commands.add_parser("ui", parents=[common], help="a dashboard on a loopback port, like `kubectl "
                                     "proxy`: the page's API calls are signed here, with your credentials")
    ui_command.add_argument("--port", type=int, default=ui.DEFAULT_PORT,
                            help=f"port to listen on (default {ui.DEFAULT_PORT}; 0: any free port)")
    ui_command.add_argument("--address", default="127.0.0.1", help="loopback address to listen on (default "
                            "127.0.0.1; any other is refused)")
    ui_command.add_argument("--refresh", type=float, default=3.0, help="seconds between the page's polls (default 3)")
    return main


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None,
         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    args = parser().parse_args(argv)
    try:
        if args.command == "logs":
            return operator_commands.logs(_api(args), args, out, err, sleep, clock)
        if args.command == "exec":
            return operator_commands.exec_command(_api(args), args, out, err, sleep)
        if args.command == "ui":
            return ui.serve(_api(args), args.address, args.port, max(args.refresh, 0.5), out, err)
        return _run(args, _api(args), out, err, sleep)
    except CliError as exc:
        print(render.visible(f"berth: {exc}"), file=err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("berth: interrupted", file=err)
        return EXIT_INTERRUPTED


def _api(args: argparse.Namespace) -> Api:
    import botocore.session

    session = botocore.session.Session(profile=args.profile)
    url = find_api_url(args.url, args.stage)
    return Api(url, region_for(url, args.region, session.get_config_variable("region")), session.get_credentials())


def _run(args: argparse.Namespace, api: Api, out: TextIO, err: TextIO, sleep: Callable[[float], None]) -> int:
    def show(body: dict[str, Any], text: str) -> None:
        print(json.dumps(body, indent=2) if args.json else render.visible(text), file=out)

    command = args.command
    if command == "targets":
        return target_commands.run(api, args, out, err)
    if command == "status":
        body = api.call("GET", f"/targets/{_segment(args.target)}")
        show(body, render.status(body, api.region))
    elif command in ("deploy", "rollback"):
        request = {"reason": args.reason, "reset_breaker": args.reset_breaker or None,
                   "override_freeze": args.override_freeze,
                   **({"image": args.image} if command == "deploy" else {"to": args.to})}
        path = "/deployments" if command == "deploy" else "/rollback"
        body = api.call("POST", f"/targets/{_segment(args.target)}{path}",
                        {k: v for k, v in request.items() if v is not None})
        if args.wait:
            return _follow(api, body, args, out, err, sleep)
        show(body, f"deployment {body['deployment_id']} started: {body['target']} <- {body['revision']['pinned']}\n"
                   f"follow it with: berth show {body['deployment_id']}")
    elif command == "sync":
        request = {"reason": args.reason, "override_freeze": args.override_freeze}
        body = api.call("POST", f"/targets/{_segment(args.target)}/sync",
                        {k: v for k, v in request.items() if v is not None} or None)
        if args.wait:
            code = _follow(api, body, args, out, err, sleep)
            if body.get("remaining"):
                print(render.visible(render.sync_left(body)), file=err)
            return code
        show(body, render.sync(body))
    elif command == "freeze":
        request = {"reason": args.reason, **({"until": until(args.until)} if args.until else {})}
        body = api.call("POST", f"/targets/{_segment(args.target)}/freeze", request)
        show(body, f"target {body['name']} {render.freeze(body.get('freeze'))}")
    elif command == "unfreeze":
        body = api.call("POST", f"/targets/{_segment(args.target)}/unfreeze")
        show(body, f"target {body['name']} unfrozen")
    elif command == "plan":
        body = api.call("POST", f"/targets/{_segment(args.target)}/plan",
                        {"image": args.image} if args.image is not None else None)
        show(body, render.plan(body))
        return EXIT_REFUSED if body.get("refusals") else EXIT_OK
    elif command == "history":
        return _history(api, args, show)
    elif command == "show":
        body = api.call("GET", f"/deployments/{_segment(args.deployment)}")
        show(body, render.deployment(body, args.lines))
    elif command == "cancel":
        body = api.call("POST", f"/deployments/{_segment(args.deployment)}/cancel")
        show(body, f"deployment {body['deployment_id']} {body['status'].lower()}")
    return EXIT_OK


def moment(value: str) -> str:
    """`--since`/`--until`: a duration ago (30m, 2h, 7d, 2w) as an ISO 8601 time, or an ISO 8601 time as given (the
    API checks it and names the flag's field when it refuses it)."""
    match = re.fullmatch(r"([0-9]{1,6})([smhdw])", value.strip())
    if match is None:
        return value
    seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="seconds")


def _history(api: Api, args: argparse.Namespace, show: Callable[[dict[str, Any], str], None]) -> int:
    """One target's history through its own route (as before), anything else through GET /deployments."""
    if args.target and args.target_flag and args.target != args.target_flag:
        raise CliError(f"history: the target is given twice ({args.target!r} and --target {args.target_flag!r})")
    target = args.target or args.target_flag
    filters = {"caller": args.caller, "digest": args.digest, "since": args.since, "until": args.until,
               "status": args.status}
    page = {"limit": args.limit, "next": args.next}
    if target and not any(value is not None for value in filters.values()):
        body = api.call("GET", f"/targets/{_segment(target)}/deployments", query=page)
        show(body, render.history(body, target))
        return EXIT_OK
    body = api.call("GET", "/deployments", query={**filters, "target": target, **page})
    again = " ".join(f"--{name} {shlex.quote(str(value))}" for name, value in
                     {**filters, "target": target, "limit": args.limit}.items() if value is not None)
    show(body, render.audit(body, f"berth history {again}".rstrip()))
    return EXIT_OK


def _follow(api: Api, deployment: dict[str, Any], args: argparse.Namespace, out: TextIO, err: TextIO,
            sleep: Callable[[float], None]) -> int:
    """Poll GET /deployments/{id} (which also moves it along) and keep one progress line up to date until it ends."""
    live = err.isatty()
    shown = ""
    while True:
        line = render.visible(render.progress(deployment))
        if line != shown:
            print(f"\r\033[K{line}" if live else line, end="" if live else "\n", file=err, flush=True)
            shown = line
        if deployment.get("final"):
            break
        sleep(max(args.interval, 0.0))
        deployment = api.call("GET", f"/deployments/{_segment(deployment['deployment_id'])}")
    if live:
        print(file=err)
    succeeded = deployment["status"] == "SUCCEEDED"
    text = render.deployment(deployment) if not succeeded else f"deployment {deployment['deployment_id']} succeeded"
    print(json.dumps(deployment, indent=2) if args.json else render.visible(text), file=out)
    return EXIT_OK if succeeded else EXIT_DEPLOYMENT_FAILED


DURATION = re.compile(r"^(\d{1,6})([mhd])$")


def until(text: str, now: datetime | None = None) -> str:
    """`--until`: a duration from now (30m, 2h, 1d) or an ISO 8601 time (UTC when it names no offset)."""
    duration = DURATION.match(text.strip())
    if duration:
        amount, unit = int(duration.group(1)), duration.group(2)
        delta = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[unit]
        return ((now or datetime.now(UTC)) + delta).isoformat(timespec="seconds")
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--until {text!r}: give an ISO 8601 time (2026-12-01T09:00:00Z) or a duration (30m, 2h, "
                       "1d)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat(timespec="seconds")


def _segment(value: str) -> str:
    return quote(value, safe="")


if __name__ == "__main__":
    sys.exit(main())
