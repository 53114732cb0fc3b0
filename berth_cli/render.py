"""Text for people: the API's JSON as short tables and summaries."""

from __future__ import annotations

import re
from typing import Any

# What a terminal would act on rather than show: C0 controls but newline and tab (ESC starts CSI and OSC sequences,
# CR and BS overwrite what was printed), DEL, C1 controls (U+0080-U+009F: 8-bit CSI, OSC, DCS...), the bidirectional
# overrides and isolates that reorder a line, and lone surrogates, which a UTF-8 terminal cannot take at all.
_UNSHOWABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


# Failure tails in `berth show`: the last lines of each failed instance's output, for a few instances an attempt.
TAIL_LINES, TAIL_LINE_CHARS, TAIL_INSTANCES = 10, 240, 5


def visible(text: str) -> str:
    r"""`text` with every character a terminal would act on written as its escape (ESC as \x1b), so instance output,
    messages and names from the API can be printed as they are without driving the terminal."""
    return _UNSHOWABLE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def revision(rev: dict[str, Any] | None) -> str:
    if not rev:
        return "none"
    digest = rev.get("digest")
    return f"{rev['image']} ({digest[:19]}...)" if digest else rev["image"]


def progress(deployment: dict[str, Any]) -> str:
    p = deployment.get("progress") or {}
    done = p.get("succeeded", 0) + p.get("failed", 0)
    release = deployment.get("release") or {}
    if release.get("phase") == "RELEASING":      # no swap is out yet: the release task runs first
        return (f"{deployment['deployment_id']} {deployment['status']}: release task running on "
                f"{release.get('instance_id')}, nothing swapped yet")
    return (f"{deployment['deployment_id']} {deployment['status']}: {done}/{p.get('total', 0)} instances done, "
            f"{p.get('failed', 0)} failed, {p.get('pending', 0)} pending")


def targets(body: dict[str, Any], home_region: str = "") -> str:
    """One row a target; ACCOUNT is `home` for a target in berth's own account, REGION berth's region (the API's, as
    the CLI signs for it) unless its location names another."""
    rows = [("TARGET", "ACCOUNT", "REGION", "REVISION", "BREAKER", "UPDATED BY")]
    for t in body.get("targets", []):
        rows.append((t["name"], t.get("account") or "home", t.get("region") or home_region,
                     revision(t.get("current_revision")), "OPEN" if t["breaker_open"] else "closed",
                     t.get("updated_by") or ""))
    if len(rows) == 1:
        return "no targets registered (register one with PUT /targets/NAME or a pipeline run)"
    last = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(last)]
    return "\n".join("  ".join(cell.ljust(widths[i]) if i < last else cell for i, cell in enumerate(row))
                     for row in rows)


def place(spec: dict[str, Any], home_region: str = "") -> str:
    """Where a target's calls are made: its location's account, region and role, or berth's own account."""
    location = spec.get("location")
    if not location:
        return f"home (berth's own account){', region ' + home_region if home_region else ''}"
    account = location["role_arn"].split(":")[4]
    region = location.get("region") or home_region or "berth's region"
    return f"account {account}, region {region}, as {location['role_arn']}"


def status(body: dict[str, Any], home_region: str = "") -> str:
    spec, lock, breaker, last = body["spec"], body.get("lock"), body["breaker"], body.get("last_deployment")
    where = spec["instances"].get("tags") or {}
    fleet = ", ".join(f"{k}={v}" for k, v in where.items()) if where else ", ".join(spec["instances"].get("ids") or [])
    lines = [
        f"target      {body['name']}",
        f"revision    {revision(body.get('current_revision'))}",
        f"running     {lock['deployment_id'] + ' since ' + lock['acquired_at'] if lock else 'nothing'}",
        f"last        {last['deployment_id'] + ' ' + last['status'] + ' by ' + last['caller'] if last else 'none'}",
        "breaker     " + (f"OPEN since {breaker['open_since']} ({len(breaker['recent_failures'])} recent failures); "
                          "`berth deploy --reset-breaker` closes it" if breaker["open"] else "closed"),
        f"freeze      {freeze(body.get('freeze'))}",
        f"where       {place(spec, home_region)}",
        f"instances   {fleet}",
        f"container   {spec['container']['name']} {' '.join(spec['container'].get('ports') or [])}".rstrip(),
        f"updated by  {body.get('updated_by') or 'unknown'}",
    ]
    return "\n".join(lines + known_instances(body))


def freeze(frozen: dict[str, Any] | None) -> str:
    if not frozen:
        return "none"
    until = f"until {frozen['until']}" if frozen.get("until") else "until unfrozen"
    state = "FROZEN" if frozen.get("in_force") else "ended"
    return f"{state} {until} by {frozen['by']} since {frozen['at']}: {frozen['reason']}"


def known_instances(body: dict[str, Any]) -> list[str]:
    """What each instance runs as far as berth knows, and those left behind."""
    known = body.get("instances") or []
    lines = [f"running on  {len(known)} instances as far as berth knows"
             + (f" ({body['instances_untracked']} more not tracked)" if body.get("instances_untracked") else "")]
    for instance in known:
        digest = f"{instance['digest'][:19]}..." if instance.get("digest") else "unknown"
        by = f" ({instance['deployment_id']})" if instance.get("deployment_id") else ""
        lines.append(f"  {instance['instance_id']}  {digest}{by}{'  BEHIND' if instance.get('behind') else ''}")
    behind = body.get("behind") or []
    lines.append(f"behind      {len(behind)}: {', '.join(behind)}; `berth sync {body['name']}` brings them to the "
                 "current revision" if behind else "behind      none")
    return lines


def history(body: dict[str, Any], target: str) -> str:
    lines = [f"{d['deployment_id']}  {d['status']:<11} {d['trigger']:<8} {d['created_at'][:19]}  "
             f"{revision(d['revision'])}  by {d['caller']}" for d in body.get("deployments", [])]
    if not lines:
        lines.append(f"no deployments of {target}")
    if body.get("next"):
        lines.append(f"more: berth history {target} --next {body['next']}")
    return "\n".join(lines)


def audit(body: dict[str, Any], again: str) -> str:
    """History across targets: who deployed what, where and when, newest first; `again` is the command to page on."""
    rows = [("WHEN (UTC)", "TARGET", "STATUS", "DEPLOYMENT", "WHAT", "WHO")]
    for d in body.get("deployments", []):
        rows.append((d["created_at"][:19].replace("T", " "), d["target"], d["status"], d["deployment_id"],
                     revision(d["revision"]), d["caller"]))
    if len(rows) == 1:
        lines = ["no deployments match"]
    else:
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(cell.ljust(widths[i]) if i < 5 else cell for i, cell in enumerate(row)) for row in rows]
    if body.get("next"):
        lines.append(f"more: {again} --next {body['next']}")
    return "\n".join(lines)


def deployment(body: dict[str, Any], tail_lines: int = TAIL_LINES) -> str:
    lines = [progress(body), f"target {body['target']}, {body['trigger']} by {body['caller']}, "
                             f"created {body['created_at'][:19]}",
             f"revision {revision(body['revision'])}"]
    release = body.get("release")
    if body.get("message"):
        # A failed release task's message ends with its output tail, shown below as the release's own.
        failed_release = release is not None and release.get("phase") == "FAILED"
        lines.append(f"message  {body['message'].splitlines()[0] if failed_release else body['message']}")
    if release:
        lines += release_lines(release, tail_lines)
    if body.get("left_behind"):
        lines.append(f"behind   {len(body['left_behind'])}: {', '.join(body['left_behind'])}")
    rollout = body.get("rollout")
    if rollout:
        lines.append(f"waves    {len(rollout['waves'])} ({', '.join(str(len(wave)) for wave in rollout['waves'])} "
                     f"instances), at wave {rollout['wave']}, {rollout['phase'].lower().replace('_', ' ')}"
                     + (f": {rollout['stop_reason']}" if rollout.get("stop_reason") else ""))
    for attempt in body.get("attempts", []):
        what = (f"wave {attempt['wave']}, " if attempt.get("wave") else
                f"rollback to {attempt['image']}, " if attempt.get("image") else "")
        lines.append(f"attempt {attempt['number']}: {what}command {attempt.get('command_id') or '(not sent)'}"
                     + (f", {attempt['outcome']}" if attempt.get("outcome") else ""))
        tails = 0
        for instance_id, result in sorted(attempt.get("instances", {}).items()):
            code = result.get("response_code")
            step = f" step {result['step']}" if result.get("step") else ""
            lines.append(f"  {instance_id} {result['status']}{'' if code is None else f' exit {code}'}{step}")
            if _failed(result) and result.get("output_tail"):
                tails += 1
                if tails <= TAIL_INSTANCES:
                    lines += failure_tail(result["output_tail"], tail_lines)
        if tails > TAIL_INSTANCES:
            lines.append(f"  (output of {tails - TAIL_INSTANCES} more failed instances: berth show --json)")
    for decision in body.get("history", []):
        lines.append(f"  {decision['at'][:19]} {decision['action']}: {decision['detail']}")
    return "\n".join(lines)


def release_lines(release: dict[str, Any], tail_lines: int = TAIL_LINES) -> list[str]:
    """The release task: its phase, where it ran, how it ended, and a failed one's output tail."""
    command = " ".join(release["command"])
    if release.get("ran_in"):
        return [f"release  {command}: skipped, it succeeded for this digest in {release['ran_in']}"]
    code = release.get("exit_code")
    lines = [f"release  {command}: {release['phase'].lower()} on {release.get('instance_id')}, command "
             f"{release.get('command_id') or '(not sent)'}" + ("" if code is None else f", exit {code}")]
    if release["phase"] == "FAILED" and release.get("output_tail"):
        lines += failure_tail(release["output_tail"], tail_lines)
    return lines


def _failed(result: dict[str, Any]) -> bool:
    return not (result.get("status") == "Success" and result.get("response_code") in (0, None))


def failure_tail(output: str, count: int) -> list[str]:
    """The last `count` lines of a failed instance's output tail (what the record keeps of SSM's output), indented,
    each cut at TAIL_LINE_CHARS: enough to see why, bounded however long the lines."""
    kept = output.rstrip("\n").splitlines()[-count:] if count > 0 else []
    return [f"    | {line[:TAIL_LINE_CHARS]}{'...' if len(line) > TAIL_LINE_CHARS else ''}" for line in kept]


def plan(body: dict[str, Any]) -> str:
    lines = [f"plan for {body['target']} (nothing was sent)",
             f"image     {revision(body.get('revision')) if body.get('revision') else 'does not resolve'}",
             f"current   {revision(body.get('current_revision'))}",
             f"instances {len(body['instances'])} matched, {sum(1 for i in body['instances'] if i['online'])} "
             "managed by SSM and Online"]
    for instance in body["instances"]:
        ssm = instance["ping_status"] if instance["ssm_managed"] else "not managed by SSM"
        runs = f"runs {instance['digest'][:19]}... ({instance['reported_by']})" if instance.get("digest") else \
            "runs: unknown"
        lines.append(f"  {instance['instance_id']}  {ssm:<18} {runs}" + ("  BEHIND" if instance.get("behind") else ""))
    how = "in waves by instance id" if body["in_waves"] else "one command over the target"
    lines.append(f"rollout   {how}, max_concurrency {body['max_concurrency']}, max_errors {body['max_errors']}")
    for number, wave in enumerate(body["waves"], start=1):
        bake = f", then bake {wave['bake_seconds']} s" if wave["bake_seconds"] else ""
        lines.append(f"  wave {number}: {len(wave['instances'])} instances ({', '.join(wave['instances'])}){bake}")
    release = body.get("release")
    if release:
        where = (f"skipped: it succeeded for this digest in {release['ran_in']}" if release.get("ran_in") else
                 f"first, on {release['instance_id']}, before any swap" if release.get("instance_id") else
                 "no instance is Online to run it: the deployment would fail, nothing swapped")
        lines.append(f"release   {' '.join(release['command'])} ({release['timeout_seconds']} s): {where}")
    for alarm in body["alarms"]:
        lines.append(f"alarm     {alarm['name']}: {alarm['state']}")
    if body["refusals"]:
        lines.append("refused:")
        lines += [f"  {refusal['code']}: {refusal['message']}" for refusal in body["refusals"]]
    else:
        lines.append("nothing would refuse it")
    return "\n".join(lines)


def sync(body: dict[str, Any]) -> str:
    ids = body["spec"]["instances"].get("ids") or []
    lines = [f"sync {body['deployment_id']} started: {body['target']} <- {body['revision']['pinned']} on "
             f"{len(ids)} instances left behind ({', '.join(ids)})"]
    left = sync_left(body)
    if left:
        lines.append(left)
    lines.append(f"follow it with: berth show {body['deployment_id']}")
    return "\n".join(lines)


def sync_left(body: dict[str, Any]) -> str:
    """What a sync did not cover: more than 50 behind, or instances not running."""
    parts = []
    if body.get("remaining"):
        parts.append(f"{body['remaining']} more instances are behind: `berth sync {body['target']}` again once this "
                     "one ends")
    if body.get("not_running"):
        parts.append(f"not running, nothing sent: {', '.join(body['not_running'])}")
    return "; ".join(parts)
