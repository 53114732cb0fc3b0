"""`berth ui` in a real headless browser (chromium through selenium).

On the embedded AWS behind a real local HTTP API (`chalice local` of the `local` stage, as `make local` runs it): the
page lists the demo's targets, shows a running deployment's progress change while SSM's answers move on, and a
rollback clicked in the page, its confirmation accepted, reaches the API and is recorded. Against an API that answers
hostile names, images, callers and output tails, the page shows them as text and nothing in them becomes markup.
Set BERTH_UI_SCREENSHOT=PATH to keep a screenshot of the embedded run's page (docs/ui.png is one).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.credentials import Credentials

from berth_cli.client import Api
from tests.functional.browser import chromium, console_errors, dashboard, require_browser, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")]


def by_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def text_of(driver: Any, selector: str) -> str:
    found = by_css(driver, selector)
    return str(found[0].text) if found else ""


def click(driver: Any, selector: str) -> None:
    """Click the first match, again if the page re-rendered it under the click (a stale element)."""
    wait_for(f"{selector} to be clicked", lambda: by_css(driver, selector)[0].click() or True)


def attributes(driver: Any, selector: str, name: str) -> list[str]:
    return list(wait_for(f"{selector}'s {name}", lambda: [element.get_attribute(name)
                                                          for element in by_css(driver, selector)]))


REGION = "us-east-1"      # the embedded AWS's (tools/embedded.py)
FAILED_OUTPUT = ("berth: pulling 123456789012.dkr.ecr.us-east-1.amazonaws.com/jobs@sha256:...\n"
                 "berth: starting jobs-new beside jobs\n"
                 "berth: health check http://127.0.0.1:8080/health: connection refused (12 tries)\n"
                 "berth: the new container is unhealthy; jobs keeps serving\n")


# On the embedded AWS ------------------------------------------------------------------------------------------------

@pytest.fixture
def local_api() -> Iterator[tuple[str, Any]]:
    """The embedded AWS with the `local` stage provisioned, and berth's REST API on it under `chalice local`."""
    require_browser()   # before the setup, which a missing browser would waste
    from tools.provision import provision, stage_environment

    os.environ.update(stage_environment("local"))
    import boto3

    from tools.embedded import EmbeddedAws, chalice_local

    with EmbeddedAws() as aws:
        # A session of its own, its region named: boto3's default session may be an earlier test's.
        provision("local", boto3.session.Session(region_name=REGION).client("dynamodb"))
        with chalice_local("local") as url:
            yield url, aws


def test_the_page_lists_the_demo_s_targets_follows_a_deployment_and_rolls_back(local_api: tuple[str, Any]) -> None:
    import boto3

    from localaws import InstanceOutcome
    from tools.demo import SPEC, TAGS
    from tools.emulated import launch, push_image

    url, aws = local_api
    api = Api(url, "us-east-1", Credentials("berth-local", "berth-local"))
    session = boto3.session.Session(region_name=REGION)
    ec2, ecr, ssm = session.client("ec2"), session.client("ecr"), session.client("ssm")

    # The demo's target, deployed twice (v1, then v2), so a rollback has somewhere to go back to.
    launch(ec2, 2, TAGS)
    v1, _ = push_image(ecr, "web", "1.0.0", "v1")
    v2, _ = push_image(ecr, "web", "1.1.0", "v2")
    api.call("PUT", f"/targets/{SPEC['target']}", SPEC)
    for image in (v1, v2):
        started = api.call("POST", f"/targets/{SPEC['target']}/deployments", {"image": image, "reason": "release"})
        wait_for(f"{image} to be deployed", lambda started=started: api.call(
            "GET", f"/deployments/{started['deployment_id']}")["status"] == "SUCCEEDED", seconds=60, every=0.5)

    # A second target whose deployment stays running: one instance answers after 40 reads, two much later.
    worker_tags = {"app": "worker", "env": "demo", "berth:managed": "true"}
    fast, *slow = launch(ec2, 3, worker_tags)
    aws.control.set_outcome(fast, InstanceOutcome(polls_before_done=40))
    for instance in slow:
        aws.control.set_outcome(instance, InstanceOutcome(polls_before_done=100_000))
    worker, _ = push_image(ecr, "worker", "2.0.0", "w2")
    api.call("PUT", "/targets/worker-demo", {"target": "worker-demo", "instances": {"tags": worker_tags},
                                              "container": {"name": "worker"}})
    running = api.call("POST", "/targets/worker-demo/deployments", {"image": worker, "reason": "nightly build"})
    running_id = running["deployment_id"]

    # A third whose deployment failed: its instance's output tail is what the page shows for it.
    jobs_tags = {"app": "jobs", "env": "demo", "berth:managed": "true"}
    (jobs_instance,) = launch(ec2, 1, jobs_tags)
    aws.control.set_outcome(jobs_instance, InstanceOutcome(status="Failed", response_code=1, stdout=FAILED_OUTPUT))
    jobs, _ = push_image(ecr, "jobs", "0.9.0", "j1")
    api.call("PUT", "/targets/jobs-demo", {"target": "jobs-demo", "instances": {"tags": jobs_tags},
                                            "container": {"name": "jobs"}, "retry": {"max_attempts": 1}})
    failed = api.call("POST", "/targets/jobs-demo/deployments", {"image": jobs})
    wait_for("the jobs deployment to fail", lambda: api.call(
        "GET", f"/deployments/{failed['deployment_id']}")["status"] == "FAILED", seconds=60, every=0.5)

    with dashboard(api) as server, chromium(height=2000) as driver:
        driver.get(server.login_url)

        wait_for("the targets' cards", lambda: len(by_css(driver, "article.target")) == 3)
        assert sorted(attributes(driver, "article.target", "data-target")) == ["jobs-demo", "web-demo", "worker-demo"]
        assert v2 in text_of(driver, 'article.target[data-target="web-demo"] .image')
        states = wait_for("web-demo's instances", lambda: [row.text.split()[-2] for row in by_css(
            driver, 'article.target[data-target="web-demo"] tr[data-instance]')])
        assert states == ["current", "current"]

        progress = f'article.running[data-deployment="{running_id}"] .progress'
        first = wait_for("the running deployment's progress", lambda: text_of(driver, progress))
        assert first == "0/3 instances done, 0 failed, 3 pending"
        command_id = running["attempts"][0]["command_id"] or api.call(
            "GET", f"/deployments/{running_id}")["attempts"][0]["command_id"]
        for _ in range(40):         # SSM's answers move on: the fast instance is done after 40 reads
            ssm.get_command_invocation(CommandId=command_id, InstanceId=fast)
        second = wait_for("the progress to change", lambda: (text_of(driver, progress) != first) and
                          text_of(driver, progress))
        assert second == "1/3 instances done, 0 failed, 2 pending"

        click(driver, f'#history tr[data-deployment="{failed["deployment_id"]}"]')
        tail = wait_for("its failure tail", lambda: text_of(driver, "#detail pre.tail"))
        assert tail == FAILED_OUTPUT.strip()
        if os.environ.get("BERTH_UI_SCREENSHOT"):
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(os.environ["BERTH_UI_SCREENSHOT"])

        click(driver, 'article.target[data-target="web-demo"] button.rollback')
        question = wait_for("the confirmation dialog", lambda: text_of(driver, "dialog#confirm[open]"))
        assert "Roll web-demo back" in question
        by_css(driver, "#confirm-reason")[0].send_keys("1.1.0 answers 500s")
        click(driver, "#confirm-yes")

        said = wait_for("the rollback's answer", lambda: "rollback of web-demo: deployment" in text_of(
            driver, "#notice") and text_of(driver, "#notice"))
        history = api.call("GET", "/targets/web-demo/deployments", query={"limit": 5})["deployments"]
        rollback = history[0]
        assert rollback["trigger"] == "rollback" and rollback["deployment_id"] in said
        assert rollback["revision"]["image"] == v1
        recorded = api.call("GET", f"/deployments/{rollback['deployment_id']}")
        assert recorded["history"] or recorded["status"] in ("PENDING", "SENT", "RUNNING", "SUCCEEDED")
        wait_for("the rollback in the page's history", lambda: by_css(
            driver, f'#history tr[data-deployment="{rollback["deployment_id"]}"]'))

        # A cancel the person does not confirm sends nothing.
        click(driver, f'article.running[data-deployment="{running_id}"] button.cancel')
        wait_for("the confirmation dialog", lambda: by_css(driver, "dialog#confirm[open]"))
        click(driver, "#confirm-no")
        wait_for("the dialog to close", lambda: not by_css(driver, "dialog#confirm[open]"))
        assert api.call("GET", f"/deployments/{running_id}")["status"] not in ("CANCELLED",)
        assert "error" not in (by_css(driver, "#status")[0].get_attribute("class") or "")
        assert console_errors(driver) == []


# Hostile answers ----------------------------------------------------------------------------------------------------

MARK = "window.__pwned"
NAME = '<img src=x onerror="window.__pwned=1">'
IMAGE = '"><script>window.__pwned=2</script>:1.0'
TAIL = "pulling\n</pre><img src=x onerror=window.__pwned=3><b>bold</b>\nexit 1"
CALLER = "arn:aws:iam::123456789012:user/<svg onload=window.__pwned=4>"
MESSAGE = "<iframe src=javascript:window.__pwned=5>"


def hostile_answers() -> dict[str, Any]:
    revision = {"image": IMAGE, "tag": "1.0", "digest": "sha256:" + "a" * 64, "pinned": IMAGE}
    summary = {"deployment_id": "d-<b>1", "target": NAME, "status": "FAILED", "final": True, "trigger": "api",
               "caller": CALLER, "revision": revision, "created_at": "2026-11-27T10:00:00Z",
               "updated_at": "2026-11-27T10:05:00Z", "message": MESSAGE,
               "progress": {"total": 1, "succeeded": 0, "failed": 1, "pending": 0}, "left_behind": []}
    deployment = {**summary, "previous_revision": None, "job_id": None, "spec": {}, "history": [
        {"at": "2026-11-27T10:05:00Z", "action": "<u>failed</u>", "detail": MESSAGE}],
        "attempts": [{"number": 1, "command_id": "<i>c</i>", "outcome": MESSAGE, "instances": {
            "i-<s>1</s>": {"status": "Failed", "response_code": 1, "step": "<em>pull</em>", "output_tail": TAIL}}}]}
    target = {"name": NAME, "spec": {"location": {"role_arn": "arn:aws:iam::210987654321:role/berth-deployer",
                                                  "external_id": "never-shown-external-id", "region": "eu-west-1"}},
              "updated_by": CALLER, "current_revision": revision, "last_deployment": summary, "lock": None,
              "breaker": {"open": False, "open_since": None, "recent_failures": []},
              "instances": [{"instance_id": "i-<b>x</b>", "digest": None, "deployment_id": None, "at": None,
                             "behind": True}], "instances_untracked": 0, "behind": ["i-<b>x</b>"],
              "freeze": {"reason": MESSAGE, "by": CALLER, "at": "2026-11-27T10:00:00Z", "until": None,
                         "in_force": True}}
    from urllib.parse import quote

    return {"/targets": {"targets": [{"name": NAME}]}, f"/targets/{quote(NAME, safe='')}": target,
            "/deployments?limit=25": {"deployments": [summary], "next": None},
            f"/deployments/{quote(summary['deployment_id'], safe='')}": deployment}


@pytest.fixture
def hostile_api() -> Iterator[str]:
    answers = hostile_answers()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answers.get(self.path)
            data = json.dumps(body if body is not None else {"error": {"code": "NotFound", "message": self.path}})
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data.encode())))
            self.end_headers()
            self.wfile.write(data.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_hostile_names_images_callers_and_output_tails_are_shown_as_text(hostile_api: str) -> None:
    api = Api(hostile_api, "us-east-1", Credentials("AKIDHOSTILE", "hostile-secret"))
    with dashboard(api) as server, chromium() as driver:
        driver.get(server.login_url)
        card = wait_for("the hostile target's card", lambda: text_of(driver, "article.target"))
        assert attributes(driver, "article.target", "data-target") == [NAME]
        assert NAME in card and IMAGE in card and CALLER in card and MESSAGE in card
        assert "account 210987654321, region eu-west-1" in card
        assert "never-shown-external-id" not in driver.page_source

        click(driver, "#history tbody tr")
        tail = wait_for("the failure tail", lambda: text_of(driver, "#detail pre.tail"))
        assert tail == TAIL.strip()
        detail = text_of(driver, "#detail")
        assert "<em>pull</em>" in detail and "<u>failed</u>" in detail and "i-<s>1</s>" in detail

        assert driver.execute_script(f"return {MARK}") is None
        # Nothing the API said became an element: the page's own script is the only one, and it makes no images,
        # frames, SVG or formatting elements.
        assert driver.execute_script("return document.scripts.length") == 1
        assert by_css(driver, "img, iframe, svg, b, i, u, s, em") == []
        assert console_errors(driver) == []
