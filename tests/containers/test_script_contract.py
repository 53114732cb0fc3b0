"""Static checks of the instance scripts: exit-code tables, shell hygiene, appspec.yml. No engine needed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from chalicelib.domain.exit_codes import EXIT_MEANING, ScriptExit
from tests.containers.support import REPO_ROOT, SCRIPTS_DIR

SCRIPTS = sorted(SCRIPTS_DIR.glob("*.sh"))
ALL_SHELL = sorted(SCRIPTS_DIR.rglob("*.sh"))
# The Lambda copies these two alone into a temporary directory and runs them with bash.
SHIPPED_ALONE = ("install_docker.sh", "start_container.sh")
HEADER_ROW = re.compile(r"^#\s+(\d+)\s+([A-Z][A-Z_]*)\s+(\S.*)$")
CONSTANT_DEFINITION = re.compile(r"^readonly EXIT_([A-Z_]+)=(\d+)$", re.MULTILINE)
CONSTANT_USE = re.compile(r"\$\{?EXIT_([A-Z_]+)\}?")
# Amazon Linux 2 ships bash 4.2: these need 4.3 or later.
BASH_43_ONLY = {
    r"\bwait -n\b": "wait -n",
    r"\b(local|declare|typeset) -n\b": "namerefs",
    r"\$\{?EPOCH(SECONDS|REALTIME)": "EPOCHSECONDS/EPOCHREALTIME",
    r"\$\{[A-Za-z_]+@[QEPAa]\}": "${var@op}",
    r"\$\{[A-Za-z_]+\[-\d+\]\}": "negative array index",
}


def header_table(script: Path) -> dict[int, tuple[str, str]]:
    rows: dict[int, tuple[str, str]] = {}
    in_table = False
    for line in script.read_text().splitlines():
        if not line.startswith("#"):
            break
        if line.strip() == "# Exit codes:":
            in_table = True
            continue
        match = HEADER_ROW.match(line) if in_table else None
        if match:
            rows[int(match.group(1))] = (match.group(2), match.group(3))
    return rows


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_header_table_matches_the_exit_code_contract(script: Path) -> None:
    table = header_table(script)

    assert table.get(0, ("",))[0] == "OK", f"{script.name} documents no '#   0  OK  ...' row"
    for code, (name, description) in table.items():
        assert ScriptExit[name] == code, f"{script.name}: {code} {name} disagrees with ScriptExit"
        if code != 0:
            assert description == EXIT_MEANING[ScriptExit(code)][1], f"{script.name}: {name} description"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_header_table_lists_exactly_the_codes_the_script_uses(script: Path) -> None:
    text = script.read_text()
    defined = {name: int(code) for name, code in CONSTANT_DEFINITION.findall(text)}
    body = text.split("\n", 1)[1]
    used = set(CONSTANT_USE.findall(body)) | ({"USAGE"} if "usage_error " in body else set())

    for name, code in defined.items():
        assert ScriptExit[name] == code, f"{script.name}: EXIT_{name}={code} disagrees with ScriptExit"
    if script.name not in ("stop_container.sh", "validate_service.sh"):
        assert used <= set(defined), f"{script.name} uses constants it does not define"
    assert {ScriptExit[name].value for name in used} | {0} == set(header_table(script))
    # 128+N after a signal is the shell's convention, not a berth code.
    assert not re.search(r"\bexit [1-9]\d?\b", text), f"{script.name}: exit with a literal code, use EXIT_* names"


def test_stop_script_can_only_fail_on_usage() -> None:
    assert set(header_table(SCRIPTS_DIR / "stop_container.sh")) == {ScriptExit.OK, ScriptExit.USAGE}


@pytest.mark.parametrize("script", ALL_SHELL, ids=lambda p: str(p.relative_to(SCRIPTS_DIR)))
def test_script_hygiene(script: Path) -> None:
    lines = script.read_text().splitlines()

    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines
    assert not any(re.search(r"^\s*eval\b|[;&|]\s*eval\b", line) for line in lines)
    assert os.access(script, os.X_OK)
    tracked = subprocess.run(["git", "ls-files", "-s", str(script)], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=False).stdout
    if tracked:
        assert tracked.startswith("100755"), f"{script.name} is not executable in git"


@pytest.mark.parametrize("script", ALL_SHELL, ids=lambda p: str(p.relative_to(SCRIPTS_DIR)))
def test_script_parses_with_bash_n(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", ALL_SHELL, ids=lambda p: str(p.relative_to(SCRIPTS_DIR)))
def test_script_avoids_bash_features_newer_than_amazon_linux_2(script: Path) -> None:
    text = script.read_text()

    for pattern, feature in BASH_43_ONLY.items():
        assert not re.search(pattern, text), f"{script.name} uses {feature} (bash >= 4.3)"
    # Before bash 4.4, "${empty[@]}" under set -u is an unbound-variable error: use ${a[@]+"${a[@]}"}.
    bare = re.findall(r'(?<![+])"\$\{([A-Za-z_]+)\[@\]\}"', text)
    allowed = {"run_args"}  # never empty
    assert set(bare) <= allowed, f"{script.name} expands possibly empty arrays without the + guard: {set(bare)}"


def test_shellcheck_is_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed; run tests/containers/setup_engine.sh")
    paths = [str(p.relative_to(REPO_ROOT)) for p in ALL_SHELL] + ["tests/containers/setup_engine.sh"]

    result = subprocess.run(["shellcheck", "-x", *paths], cwd=REPO_ROOT, capture_output=True, text=True,
                            check=False)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SHIPPED_ALONE)
def test_shipped_scripts_are_self_contained(script: str, tmp_path: Path) -> None:
    text = (SCRIPTS_DIR / script).read_text()
    copy = tmp_path / script
    copy.write_text(text)

    result = subprocess.run(["bash", str(copy), "--help"] if script == "start_container.sh" else
                            ["bash", "-n", str(copy)], capture_output=True, text=True, check=False, cwd=tmp_path)

    assert not re.search(r"^\s*(source|\.)\s", text, flags=re.MULTILINE), f"{script} sources another file"
    assert result.returncode == 0, result.stderr


def test_start_container_runs_main_when_piped_to_bash() -> None:
    text = (SCRIPTS_DIR / "start_container.sh").read_text()

    result = subprocess.run(["bash", "-s", "--", "--name", "web"], input=text, capture_output=True, text=True,
                            check=False)

    assert result.returncode == ScriptExit.USAGE, "sourced-detection must not swallow main when read from stdin"


def load_appspec() -> dict:
    return yaml.safe_load((REPO_ROOT / "appspec.yml").read_text())


def test_appspec_is_an_ec2_revision_that_installs_the_revision() -> None:
    appspec = load_appspec()

    assert str(appspec["version"]) == "0.0"
    assert appspec["os"] == "linux"
    assert appspec["files"][0]["destination"].startswith("/")
    assert set(appspec["hooks"]) == {"ApplicationStop", "BeforeInstall", "ApplicationStart", "ValidateService"}


def test_appspec_hooks_point_at_executable_scripts_with_sane_timeouts() -> None:
    for event, entries in load_appspec()["hooks"].items():
        for entry in entries:
            location = REPO_ROOT / entry["location"]
            assert location.is_file(), f"{event}: {entry['location']} does not exist"
            assert os.access(location, os.X_OK), f"{event}: {entry['location']} is not executable"
            tracked = subprocess.run(["git", "ls-files", "-s", entry["location"]], cwd=REPO_ROOT,
                                     capture_output=True, text=True, check=False).stdout
            assert tracked.startswith("100755"), f"{event}: {entry['location']} is not committed as mode 755"
            assert 0 < int(entry["timeout"]) <= 3600, f"{event}: timeout over CodeDeploy's 3600 s"
            assert entry["runas"] == "root"


def test_hook_wrappers_reach_the_real_scripts_and_deploy_env() -> None:
    hooks_dir = SCRIPTS_DIR / "codedeploy"
    for wrapper in hooks_dir.glob("*.sh"):
        for target in re.findall(r'"\$\{hook_dir\}/([^"]+)"', wrapper.read_text()):
            assert (hooks_dir / target).resolve().is_file(), f"{wrapper.name} points at missing {target}"


def test_example_deploy_env_is_accepted_by_the_parser() -> None:
    # --ecr-login is validated but the example's region and registry are real-looking; only parsing is checked.
    result = subprocess.run(
        ["bash", "-c", 'source "$1"; parse_deploy_env "$2" && printf "%s\\n" "${CONFIG_KEYS[@]}"', "_",
         str(SCRIPTS_DIR / "start_container.sh"), str(REPO_ROOT / "deploy.env")],
        capture_output=True, text=True, check=False,
    )

    assert result.returncode == 0, result.stderr
    assert {"IMAGE", "CONTAINER_NAME", "PORTS", "HEALTH_PORT"} <= set(result.stdout.split())


def test_example_deploy_env_pins_its_image_by_digest_and_passes_validation(tmp_path: Path) -> None:
    image = re.search(r"^IMAGE=(\S+)$", (REPO_ROOT / "deploy.env").read_text(), flags=re.MULTILINE)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "docker").chmod(0o755)

    result = subprocess.run(["bash", str(SCRIPTS_DIR / "start_container.sh"), "--config",
                             str(REPO_ROOT / "deploy.env")], env={**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"},
                            capture_output=True, text=True, check=False)

    assert image is not None and re.search(r"@sha256:[0-9a-f]{64}$", image.group(1))
    assert result.returncode == ScriptExit.DOCKER_UNAVAILABLE, result.stdout + result.stderr
