"""`chalice package`, once per test session, offline: the Lambda wheels come from a local folder.

The folder is filled by `pip download` for the Lambda platform (manylinux2014_x86_64, the local Python version,
which is the runtime Chalice picks). Where pip cannot reach a package index, the packaging tests are skipped with
pip's reason printed; CI reaches PyPI, so there they run.

`bare_runtime` is a Python like the Lambda runtime's: a fresh venv (no system site-packages) holding only the boto3
and botocore requirements-dev.txt pins, with their own dependencies. The package's code runs there, unzipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MERGE_TEMPLATE = ROOT / "infra" / "resources.yaml"
LAMBDA_PLATFORM = "manylinux2014_x86_64"
LAMBDA_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"     # Chalice targets the local version
SAM_TRANSLATOR = "aws-sam-translator==1.115.0"   # pins pydantic~=2.13, so it cannot join requirements-dev.txt
STAGES = ("dev", "prod")
REGION = "us-east-1"
RUNTIME_PINS = tuple(re.findall(r"^(?:boto3|botocore)==\S+$", (ROOT / "requirements-dev.txt").read_text(), re.M))


@dataclass(frozen=True)
class Packaged:
    stage: str
    directory: Path
    template_path: Path
    template: dict[str, Any]

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.template["Resources"])


def _pip(*args: str, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def _reason(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-600:]


@pytest.fixture(scope="session")
def lambda_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lambda-wheels")
    proc = _pip("download", "--quiet", "--only-binary=:all:", "--platform", LAMBDA_PLATFORM,
                "--python-version", LAMBDA_PYTHON, "--implementation", "cp", "-d", str(folder),
                "-r", str(ROOT / "requirements.txt"))
    if proc.returncode != 0:
        pytest.skip("chalice package cannot run: pip could not download the Lambda wheels of requirements.txt "
                    f"(is a package index reachable?): {_reason(proc)}")
    return folder


def _project_copy(tmp: Path) -> Path:
    """What `chalice package` reads, copied so the packaging never touches the work tree's .chalice/deployments."""
    project = tmp / "berth"
    project.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=ignore)     # follows the script links
    shutil.copytree(ROOT / ".chalice", project / ".chalice",
                    ignore=shutil.ignore_patterns("deployments", "deployed", "venv"))
    for name in ("app.py", "requirements.txt"):
        shutil.copy2(ROOT / name, project / name)
    return project


def _chalice() -> list[str]:
    script = Path(sys.executable).with_name("chalice")
    return [str(script)] if script.exists() else [sys.executable, "-m", "chalice.cli"]


def chalice_package(project: Path, out: Path, stage: str, wheels: Path, *extra: str) -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "PIP_")) and key != "VIRTUAL_ENV"}
    env.update({"AWS_DEFAULT_REGION": REGION, "PIP_FIND_LINKS": str(wheels), "PIP_NO_INDEX": "1",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    proc = subprocess.run([*_chalice(), "package", "--stage", stage, *extra, str(out)], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"chalice package --stage {stage} failed:\n{proc.stdout}\n{proc.stderr}"


def load_template(path: Path) -> dict[str, Any]:
    from cfnlint.decode import decode

    template, problems = decode(str(path))
    assert not problems, problems
    assert template is not None
    return dict(json.loads(json.dumps(template)))     # cfn-lint's node types -> plain dicts and strings


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory, lambda_wheels: Path) -> Path:
    return _project_copy(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="session")
def packaged(project: Path, lambda_wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Packaged]:
    """CloudFormation (SAM) packages of every real stage, with infra/resources.yaml merged in."""
    shutil.copy2(MERGE_TEMPLATE, project / "resources.yaml")
    found = {}
    for stage in STAGES:
        out = tmp_path_factory.mktemp(f"package-{stage}")
        chalice_package(project, out, stage, lambda_wheels, "--merge-template", "resources.yaml")
        path = out / "sam.yaml"
        found[stage] = Packaged(stage, out, path, load_template(path))
    return found


@pytest.fixture(scope="session")
def terraform_package(project: Path, lambda_wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package-terraform")
    chalice_package(project, out, "prod", lambda_wheels, "--pkg-format", "terraform")
    return out


@pytest.fixture(scope="session")
def sam_translator(tmp_path_factory: pytest.TempPathFactory, lambda_wheels: Path) -> Iterator[None]:
    """AWS's SAM translator, installed apart from the venv (its pydantic pin conflicts with berth's)."""
    target = tmp_path_factory.mktemp("sam-translator")
    proc = _pip("install", "--quiet", "--no-deps", "--target", str(target), SAM_TRANSLATOR)
    if proc.returncode != 0:
        pytest.skip(f"the SAM transform check cannot run: pip could not install {SAM_TRANSLATOR}: {_reason(proc)}")
    sys.path.insert(0, str(target))
    try:
        yield
    finally:
        sys.path.remove(str(target))


@pytest.fixture(scope="session")
def bare_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a fresh venv that holds boto3 and botocore (the pinned versions) and nothing else."""
    assert len(RUNTIME_PINS) == 2, RUNTIME_PINS
    home = tmp_path_factory.mktemp("bare-runtime")
    base = getattr(sys, "_base_executable", sys.executable)      # the interpreter the dev venv was made from
    subprocess.run([base, "-m", "venv", "--without-pip", str(home)], check=True, capture_output=True, timeout=120)
    python = home / "bin" / "python"
    site = subprocess.run([str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    proc = _pip("install", "--quiet", "--only-binary=:all:", "--target", site, *RUNTIME_PINS)
    if proc.returncode != 0:
        pytest.skip(f"the Lambda runtime stand-in cannot be built: pip could not install {RUNTIME_PINS}: "
                    f"{_reason(proc)}")
    return python


@pytest.fixture(scope="session")
def deployable(packaged: dict[str, Packaged], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev stage's deployment.zip as docs/deploy.md has it built: `chalice package`, then tools.precompile."""
    package = tmp_path_factory.mktemp("deployable") / "deployment.zip"
    shutil.copy2(packaged["dev"].directory / "deployment.zip", package)
    proc = subprocess.run([sys.executable, "-m", "tools.precompile", str(package)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return package


def unzipped(package: Path, root: Path) -> Path:
    """A package unzipped as Lambda unzips it into /var/task."""
    with zipfile.ZipFile(package) as archive:
        archive.extractall(root)
    return root


@pytest.fixture(scope="session")
def task_root(deployable: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unzipped(deployable, tmp_path_factory.mktemp("task"))
