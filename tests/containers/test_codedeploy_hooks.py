"""The four CodeDeploy hook wrappers, run as the agent runs them, on podman.

The agent runs the PREVIOUS revision's ApplicationStop, then the new revision's BeforeInstall, ApplicationStart
and ValidateService, from each revision's own copy of appspec.yml, and stops at the first hook that exits non-zero:
that hook is the failure CodeDeploy reports. A prober watches the public port all along.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from chalicelib.domain.exit_codes import ScriptExit
from tests.containers.support import REPO_ROOT, Engine, Prober, Target, http_get

ORDER = (("ApplicationStop", "previous"), ("BeforeInstall", "new"), ("ApplicationStart", "new"),
         ("ValidateService", "new"))


def revision(root: Path, engine: Engine, target: Target, tag: str) -> Path:
    """A revision as CodeDeploy unpacks it: appspec.yml, scripts/ and a deploy.env pinned by digest."""
    shutil.copytree(REPO_ROOT / "scripts", root / "scripts")
    shutil.copy(REPO_ROOT / "appspec.yml", root / "appspec.yml")
    (root / "deploy.env").write_text(
        f"IMAGE={engine.pinned(tag)}\nCONTAINER_NAME={target.name}\nPORTS={target.port}:8080\n"
        f"HEALTH_PORT={target.port}\nHEALTH_PATH=/health\nHEALTH_TIMEOUT=3\nHEALTH_INTERVAL=1\nSTOP_TIMEOUT=1\n")
    return root


def run_hook(engine: Engine, root: Path, event: str) -> subprocess.CompletedProcess[str]:
    location = yaml.safe_load((root / "appspec.yml").read_text())["hooks"][event][0]["location"]
    return subprocess.run([str(root / location)], env=engine.env, capture_output=True, text=True, timeout=300,
                          check=False)


def deploy_like_codedeploy(engine: Engine, previous: Path | None, new: Path) -> list[tuple[str, int, str]]:
    """Runs the hooks in CodeDeploy's order until one fails; (event, exit code, output) of each that ran."""
    ran = []
    for event, which in ORDER:
        root = previous if which == "previous" else new
        if root is None:
            continue
        result = run_hook(engine, root, event)
        ran.append((event, result.returncode, result.stdout + result.stderr))
        if result.returncode != 0:
            break
    return ran


def test_a_broken_revision_fails_application_start_with_the_previous_version_serving(
    engine: Engine, target: Target, tmp_path: Path
) -> None:
    v1 = revision(tmp_path / "v1", engine, target, "v1")
    first = deploy_like_codedeploy(engine, None, v1)
    assert [code for _, code, _ in first] == [0, 0, 0], first
    broken = revision(tmp_path / "broken", engine, target, "broken")

    with Prober(target.port) as prober:
        ran = deploy_like_codedeploy(engine, v1, broken)

    assert [(event, code) for event, code, _ in ran] == [
        ("ApplicationStop", 0), ("BeforeInstall", 0), ("ApplicationStart", ScriptExit.HEALTH_FAILED_RESTORED)]
    assert "the previous container" in ran[-1][2] and "is serving" in ran[-1][2]
    assert prober.failed() == [], f"{len(prober.failed())} of {len(prober.answers)} probes failed"
    assert prober.bodies() == {"berth-test v1"}
    assert http_get(target.port) == (200, "berth-test v1")


def test_a_good_revision_goes_through_every_hook_without_a_gap(engine: Engine, target: Target, tmp_path: Path) -> None:
    v1 = revision(tmp_path / "v1", engine, target, "v1")
    assert [code for _, code, _ in deploy_like_codedeploy(engine, None, v1)] == [0, 0, 0]
    v2 = revision(tmp_path / "v2", engine, target, "v2")

    with Prober(target.port) as prober:
        ran = deploy_like_codedeploy(engine, v1, v2)

    assert [(event, code) for event, code, _ in ran] == [
        ("ApplicationStop", 0), ("BeforeInstall", 0), ("ApplicationStart", 0), ("ValidateService", 0)]
    assert prober.failed() == [], f"{len(prober.failed())} of {len(prober.answers)} probes failed"
    assert http_get(target.port) == (200, "berth-test v2")


def test_a_revision_with_a_mutable_tag_fails_application_start_before_touching_anything(
    engine: Engine, target: Target, tmp_path: Path
) -> None:
    v1 = revision(tmp_path / "v1", engine, target, "v1")
    assert [code for _, code, _ in deploy_like_codedeploy(engine, None, v1)] == [0, 0, 0]
    latest = revision(tmp_path / "latest", engine, target, "v2")
    text = (latest / "deploy.env").read_text()
    (latest / "deploy.env").write_text(text.replace(engine.pinned("v2"), f"{engine.registry}/berth/web:latest"))

    ran = deploy_like_codedeploy(engine, v1, latest)

    assert [(event, code) for event, code, _ in ran][-1] == ("ApplicationStart", ScriptExit.USAGE)
    assert "ALLOW_MUTABLE_TAGS=true" in ran[-1][2]
    assert http_get(target.port) == (200, "berth-test v1")
