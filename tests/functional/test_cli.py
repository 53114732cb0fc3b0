"""The `berth` CLI: signing, deploy, rollback, plan, show, targets and history, against the in-process app behind a
loopback HTTP server (tests/functional/cli_front.py)."""

from __future__ import annotations

import io
import json
import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import localaws
from berth_cli.client import find_api_url, region_for
from berth_cli.main import main
from berth_cli.render import visible
from localaws import InstanceOutcome
from tests.api.support import push_image, register, store
from tests.conftest import World
from tests.functional.cli_front import CLI_KEY, CLI_SECRET, CLI_TOKEN, STAGE_PREFIX, Front, Seen, berth, verify_sigv4

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")


def test_requests_carry_a_sigv4_signature_that_botocore_verifies(front: Front,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    register(front.world, instances=0)
    for name, value in (("AWS_ACCESS_KEY_ID", CLI_KEY), ("AWS_SECRET_ACCESS_KEY", CLI_SECRET),
                        ("AWS_SESSION_TOKEN", CLI_TOKEN)):
        monkeypatch.setenv(name, value)
    for args in (["targets"], ["status", "web"], ["history", "web", "--limit", "5"], ["deploy", "web"]):
        berth(front, *args)
    assert len(front.seen) == 4
    origin = front.url.removesuffix(STAGE_PREFIX)
    for seen in front.seen:
        assert seen.headers["X-Amz-Security-Token"] == CLI_TOKEN
        assert f"Credential={CLI_KEY}/" in seen.headers["Authorization"]
        assert verify_sigv4(seen, origin), seen
    posted = front.seen[-1]
    assert posted.method == "POST" and posted.body == b"{}"
    assert "content-type" in posted.headers["Authorization"]
    tampered = Seen(posted.method, posted.path, posted.headers, b'{"image": "evil:1"}')
    assert not verify_sigv4(tampered, origin)
    assert not verify_sigv4(posted, origin, secret="wrong")


def test_deploy_wait_follows_to_success_and_exits_0(front: Front) -> None:
    world = front.world
    register(world, instances=3)
    digest = push_image(world, "web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=3))

    code, out, err = berth(front, "deploy", "web", "--image", world.image_uri("web", "v1"), "--wait",
                           "--reason", "release 1")

    assert code == 0, err
    assert re.search(r"d-\S+ succeeded", out)
    lines = err.splitlines()
    assert "IN_PROGRESS: 0/3 instances done, 0 failed, 3 pending" in lines[0]
    assert "SUCCEEDED: 3/3 instances done, 0 failed, 0 pending" in lines[-1]
    record = store(world).get_target("web")
    assert record is not None and record.current_revision is not None and record.current_revision.digest == digest


def test_deploy_wait_exits_non_zero_when_the_deployment_fails(front: Front) -> None:
    world = front.world
    instances = register(world, instances=2)
    push_image(world, "web", "v1")
    localaws.set_outcome(instances[1], InstanceOutcome(status="Failed", response_code=40, stdout="berth-step: health"))

    code, out, err = berth(front, "deploy", "web", "--image", world.image_uri("web", "v1"), "--wait", "--json")

    assert code == 3
    final = json.loads(out)
    assert final["status"] == "FAILED" and final["progress"]["failed"] == 1
    assert "FAILED: 2/2 instances done, 1 failed, 0 pending" in err.splitlines()[-1]



def test_plan_prints_the_waves_and_exits_4_when_something_would_refuse_the_deployment(front: Front) -> None:
    world = front.world
    instances = sorted(register(world, instances=3, rollout={"canary": {"instances": 1, "bake_seconds": 300},
                                                             "alarms": ["web-5xx-high"]}))
    push_image(world, "web", "v2")
    cloudwatch = world.client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName="web-5xx-high", Namespace="web", MetricName="5xx", Statistic="Sum",
                                Period=60, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")

    code, out, err = berth(front, "plan", "web", "--image", world.image_uri("web", "v2"))

    assert code == 0, err
    assert "plan for web (nothing was sent)" in out and "3 matched, 3 managed by SSM and Online" in out
    assert f"  wave 1: 1 instances ({instances[0]}), then bake 300 s" in out
    assert f"  wave 2: 2 instances ({', '.join(instances[1:])})" in out
    assert "alarm     web-5xx-high: OK" in out and "nothing would refuse it" in out
    assert [seen.path for seen in front.seen] == ["/api/targets/web/plan"]
    assert not world.client("ssm").list_commands()["Commands"]

    cloudwatch.set_alarm_state(AlarmName="web-5xx-high", StateValue="ALARM", StateReason="5xx at 42")
    code, out, _ = berth(front, "plan", "web", "--image", world.image_uri("web", "v2"))

    assert code == 4
    assert "refused:\n  AlarmFiring: alarm 'web-5xx-high' is in ALARM: 5xx at 42" in out


HOSTILE_OUTPUT = ("\x1b[2J\x1b[H\x1b]0;owned\x07\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\"
                  "\x9b31m\x90q\x9c\rfake: deployment SUCCEEDED\x08\x00\x7f\u202egnp.exe\tend\n")


def test_instance_output_cannot_drive_the_terminal(front: Front) -> None:
    """Container logs reach `berth` through the failure message and the history: terminal control sequences in them
    (CSI, OSC, other C0 and C1 controls, bidi overrides) are printed escaped, visibly; newlines and tabs stay."""
    world = front.world
    instances = register(world, instances=1)
    push_image(world, "web", "v1")
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=40,
                                                       stdout="berth-step: health\n" + HOSTILE_OUTPUT,
                                                       stderr=HOSTILE_OUTPUT))

    code, out, err = berth(front, "deploy", "web", "--image", world.image_uri("web", "v1"), "--wait")
    shown = berth(front, "show", re.findall(r"d-\d{14}-[0-9a-f]{8}", err)[0])[1]

    assert code == 3
    for text in (out, err, shown):
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", text), repr(text)
    assert "\\x1b[2J" in out and "\\x1b]0;owned\\x07" in out and "\\x9b31m" in out and "\\x0dfake" in out
    assert "\\u202egnp.exe\tend" in out


@given(st.text(st.characters(blacklist_categories=()), max_size=60))
@settings(max_examples=300, deadline=None)
def test_visible_text_holds_no_terminal_controls_and_keeps_lines_and_tabs(text: str) -> None:
    shown = visible(text)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]", shown)
    assert shown.count("\n") == text.count("\n") and shown.count("\t") == text.count("\t")
    shown.encode("utf-8")
    if text.isprintable():
        assert shown == text


def test_show_prints_the_last_output_lines_of_failed_instances_bounded(front: Front) -> None:
    world = front.world
    failing, passing = register(world, instances=2)
    push_image(world, "web", "v1")
    lines = "".join(f"line {n}\n" for n in range(1, 31))
    output = f"berth-step: health\n{lines}{'x' * 300}\nhealth check failed\n"
    localaws.set_outcome(failing, InstanceOutcome(status="Failed", response_code=40, stdout=output))
    localaws.set_outcome(passing, InstanceOutcome(stdout="berth-step: health\nall good, nothing to see\n"))

    code, _, err = berth(front, "deploy", "web", "--image", world.image_uri("web", "v1"), "--wait")
    assert code == 3
    deployment = re.findall(r"d-\d{14}-[0-9a-f]{8}", err)[0]
    code, out, _ = berth(front, "show", deployment)

    assert code == 0
    tail = [line for line in out.splitlines() if line.startswith("    | ")]
    assert tail[-1] == "    | health check failed" and tail[-2] == "    | " + "x" * 240 + "..."
    assert "    | line 23" in tail and "    | line 22" not in tail       # ten lines of the failed instance's tail
    assert len(tail) % 10 == 0 and "all good" not in out
    assert out.index(f"  {failing} ") < out.index("    | line 23")
    short = [line for line in berth(front, "show", deployment, "--lines", "1")[1].splitlines() if "    | " in line]
    assert short and set(short) == {"    | health check failed"}
    assert "    | " not in berth(front, "show", deployment, "--lines", "0")[1]


def test_rollback_wait_and_show(front: Front) -> None:
    world = front.world
    register(world)
    v1 = push_image(world, "web", "v1")
    push_image(world, "web", "v2")
    for tag in ("v1", "v2"):
        assert berth(front, "deploy", "web", "--image", world.image_uri("web", tag), "--wait")[0] == 0

    code, out, _ = berth(front, "rollback", "web", "--wait", "--json")

    assert code == 0 and json.loads(out)["revision"]["digest"] == v1
    code, out, _ = berth(front, "show", json.loads(out)["deployment_id"])
    assert code == 0 and "SUCCEEDED" in out and "rollback by unknown" in out and "attempt 1" in out


def test_api_errors_are_one_line_on_stderr(front: Front) -> None:
    world = front.world
    register(world)
    push_image(world, "web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=100))
    code, out, _ = berth(front, "deploy", "web", "--image", world.image_uri("web", "v1"), "--json")
    running = json.loads(out)["deployment_id"]

    code, out, err = berth(front, "deploy", "web")
    assert code == 1 and out == ""
    assert err == f"berth: 409 target 'web' is busy: deployment {running} is running\n"

    code, _, err = berth(front, "status", "nope")
    assert code == 1 and err.startswith("berth: 404 target 'nope' is not registered") and err.count("\n") == 1
    code, _, err = berth(front, "history", "web", "--limit", "500")
    assert code == 1 and err.startswith("berth: 400 request is not valid: limit") and err.count("\n") == 1

    code, out, _ = berth(front, "cancel", running)
    assert code == 0 and out == f"deployment {running} cancelled\n"
    code, _, err = berth(front, "cancel", running)
    assert code == 1 and "409" in err and "already ended" in err


def test_targets_status_and_history_text(front: Front) -> None:
    world = front.world
    register(world)
    push_image(world, "web", "v1")
    for _ in range(3):
        berth(front, "deploy", "web", "--image", world.image_uri("web", "v1"), "--wait")

    code, out, _ = berth(front, "targets")
    assert code == 0 and out.splitlines()[0].split() == ["TARGET", "ACCOUNT", "REGION", "REVISION", "BREAKER",
                                                         "UPDATED", "BY"]
    assert out.splitlines()[1].startswith("web ")
    code, out, _ = berth(front, "status", "web")
    assert code == 0 and "breaker     closed" in out and "instances   app=web, env=prod" in out
    code, out, _ = berth(front, "history", "web", "--limit", "2")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and lines[-1].startswith("more: berth history web --next ")
    code, out, _ = berth(front, "history", "web", "--limit", "2", "--next", lines[-1].split()[-1])
    assert code == 0 and len(out.splitlines()) == 1


def test_history_across_targets_by_digest_time_and_status(front: Front) -> None:
    world = front.world
    register(world)
    first = push_image(world, "web", "v1")
    second = push_image(world, "web", "v2")
    for tag in ("v1", "v2", "v1"):
        assert berth(front, "deploy", "web", "--image", world.image_uri("web", tag), "--wait")[0] == 0

    code, out, _ = berth(front, "history", "--since", "1h")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:4] == ["WHEN", "(UTC)", "TARGET", "STATUS"] and len(lines) == 4
    assert all(" web " in line and " SUCCEEDED " in line for line in lines[1:])
    code, out, _ = berth(front, "history", "--digest", first, "--limit", "1")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and lines[-1].startswith(f"more: berth history --digest {first} --limit 1 "
                                                                   "--next ")
    code, out, _ = berth(front, "history", "--digest", first, "--limit", "1", "--next", lines[-1].split()[-1])
    assert code == 0 and out.splitlines()[1].endswith("unknown") and "more:" not in out
    assert berth(front, "history", "web", "--digest", second)[1].count("\n") == 2
    assert berth(front, "history", "--status", "failed", "--target", "web")[1] == "no deployments match\n"
    assert berth(front, "history", "--until", "2h")[1] == "no deployments match\n"
    code, _, err = berth(front, "history", "--since", "yesterday")
    assert code == 1 and err.startswith("berth: 400 ") and "since: " in err
    code, _, err = berth(front, "history", "--caller", "a b")
    assert code == 1 and "caller" in err


def stored_spec(world: World, name: str = "web") -> str:
    item = world.client("dynamodb").get_item(TableName="berth-test", Key={"pk": {"S": f"TARGET#{name}"},
                                                                          "sk": {"S": "SPEC"}})["Item"]
    return str(item["spec"]["S"])


@pytest.mark.parametrize("output, suffix", [("yaml", ".yaml"), ("json", ".json")])
def test_targets_put_get_round_trip_a_spec_exactly(front: Front, tmp_path: Path, output: str, suffix: str) -> None:
    world = front.world
    world.launch(1, {"app": "web", "env": "prod"})
    first = tmp_path / f"first{suffix}"
    first.write_text("instances:\n  tags: {app: web, env: prod}\ncontainer:\n  name: web\n  ports: ['5000:5000', "
                     "'8080:80']\n  env: {MODE: 'on', RATIO: '1e3', EMPTY: ''}\nrollout: {max_concurrency: '1'}\n"
                     if suffix == ".yaml" else json.dumps({"instances": {"tags": {"app": "web"}}, "container": {
                         "name": "web", "ports": ["5000:5000"], "env": {"MODE": "on", "RATIO": "1e3"}}}))
    code, out, err = berth(front, "targets", "put", "web", "--file", str(first))
    assert code == 0, err
    assert out.startswith("target web registered by ")
    before = stored_spec(world)

    code, printed, _ = berth(front, "targets", "get", "web", "--output", output)
    assert code == 0
    again = tmp_path / f"again{suffix}"
    again.write_text(printed)
    assert berth(front, "targets", "put", "web", "--file", str(again))[0] == 0
    assert stored_spec(world) == before                       # get then put changed nothing
    assert berth(front, "targets", "get", "web", "--output", output)[1] == printed
    spec = json.loads(before)
    assert spec["container"]["env"]["MODE"] == "on" and spec["container"]["env"]["RATIO"] == "1e3"
    code, out, _ = berth(front, "targets")
    assert code == 0 and out.splitlines()[1].startswith("web ")


@pytest.mark.parametrize("content, says", [
    ("- just\n- a list\n", "a spec is a mapping"),
    ("instances: [unclosed\n", "not valid YAML"),
    ("container: {name: web}\n", "400 "),
])
def test_targets_put_refuses_what_is_not_a_spec(front: Front, tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(content)
    code, _, err = berth(front, "targets", "put", "web", "--file", str(path))
    assert code == 1 and says in err and err.count("\n") == 1
    code, _, err = berth(front, "targets", "put", "web", "--file", str(tmp_path / "missing.json"))
    assert code == 1 and "cannot read" in err
    assert berth(front, "targets", "get", "web")[0] == 1


def test_unreachable_api_and_missing_url_are_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      aws_env: None) -> None:
    err = io.StringIO()
    assert main(["targets", "--url", "http://127.0.0.1:9/api"], out=io.StringIO(), err=err) == 1
    assert err.getvalue().startswith("berth: cannot reach http://127.0.0.1:9/api") and err.getvalue().count("\n") == 1
    monkeypatch.delenv("BERTH_API_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    err = io.StringIO()
    assert main(["targets"], out=io.StringIO(), err=err) == 1
    assert err.getvalue().startswith("berth: no API URL")


def test_api_url_from_flag_env_or_chalice_deployment_record(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    deployed = tmp_path / ".chalice" / "deployed"
    deployed.mkdir(parents=True)
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/api/"
    (deployed / "prod.json").write_text(json.dumps({"schema_version": "2.0", "resources": [
        {"name": "api_handler", "resource_type": "lambda_function"},
        {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": "abc123", "rest_api_url": url}]}))
    (tmp_path / "sub").mkdir()
    monkeypatch.delenv("BERTH_API_URL", raising=False)
    assert find_api_url(None, "prod", tmp_path / "sub") == url
    monkeypatch.setenv("BERTH_API_URL", "https://env.example/api")
    assert find_api_url(None, "prod", tmp_path) == "https://env.example/api"
    assert find_api_url("https://flag.example", "prod", tmp_path) == "https://flag.example"
    assert region_for(url, None, "us-east-1") == "eu-west-1"
    assert region_for("https://api.example.com", None, "ap-south-1") == "ap-south-1"
    assert region_for(url, "us-west-2", None) == "us-west-2"


def test_berth_is_an_installed_console_script() -> None:
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("berth") == "berth_cli.main:main"
