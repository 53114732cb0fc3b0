"""The deployment guide: present, linked from the README, and complete where completeness can be checked."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from chalicelib.domain.spec import TargetSpec
from chalicelib.settings import Settings
from tests.packaging.conftest import ROOT

DOCS = ROOT / "docs"
PAGES = ("README.md", "architecture.md", "deploy.md", "pipeline.md", "instances.md", "operations.md",
         "configuration.md", "iam.md")


def _leaf_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of every field that holds a value rather than another model."""
    paths = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        nested = [t for t in getattr(info.annotation, "__args__", (info.annotation,))
                  if isinstance(t, type) and issubclass(t, BaseModel)]
        paths += [p for sub in nested for p in _leaf_fields(sub, f"{path}.")] if nested else [path]
    return paths


def _code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_every_page_exists_and_the_index_links_them() -> None:
    index = (DOCS / "README.md").read_text()
    for page in PAGES:
        assert (DOCS / page).exists(), page
        if page != "README.md":
            assert f"({page})" in index, page


def test_the_readme_points_at_the_docs_just_before_its_tests() -> None:
    readme = (ROOT / "README.md").read_text()
    headings = re.findall(r"^## (.+)$", readme, flags=re.M)
    assert headings.index("Deploying for real") + 1 == headings.index("Tests")
    assert "docs/README.md" in readme and "berth:managed" in readme


def test_the_architecture_is_a_mermaid_diagram_of_every_function() -> None:
    (diagram,) = _code_blocks((DOCS / "architecture.md").read_text(), "mermaid")
    for function in ("pipeline_job", "ssm_command_events", "codedeploy_events", "pipeline_action_failed",
                     "retry_deployment", "codedeploy_hook", "api_handler", "Scheduler", "CodeDeploy"):
        assert function in diagram, function


def test_the_configuration_table_has_every_spec_field() -> None:
    text = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `([\w.]+)` \|", text, flags=re.M))
    missing = [path for path in _leaf_fields(TargetSpec) if path not in documented]
    assert not missing, f"docs/configuration.md lacks {missing}"


def test_the_configuration_table_has_every_setting() -> None:
    text = (DOCS / "configuration.md").read_text()
    settings = set(re.findall(r'env\.get\("(BERTH_\w+)"', (ROOT / "chalicelib" / "settings.py").read_text()))
    assert settings and len(settings) >= len(Settings.model_fields) - 2
    missing = [name for name in sorted(settings) if f"`{name}`" not in text]
    assert not missing, missing


@pytest.mark.parametrize("page", ["pipeline.md", "deploy.md"])
def test_yaml_examples_parse(page: str) -> None:
    class CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
        pass

    def tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        return {suffix: None}

    yaml.add_multi_constructor("!", tag, Loader=CfnLoader)
    for block in _code_blocks((DOCS / page).read_text(), "yaml"):
        assert yaml.load(block, Loader=CfnLoader)


def _buildspecs() -> list[dict[str, Any]]:
    return [yaml.safe_load(b) for b in _code_blocks((DOCS / "pipeline.md").read_text(), "yaml") if "version: 0.2" in b]


def test_the_buildspec_writes_imagedefinitions_that_berth_reads() -> None:
    (document,) = [b for b in _buildspecs() if "imagedefinitions.json" in b["artifacts"]["files"]]
    assert document["artifacts"]["files"] == ["imagedefinitions.json"]
    from chalicelib.domain.revision import ARTIFACT_FILES

    assert "imagedefinitions.json" in ARTIFACT_FILES


def test_the_codedeploy_buildspec_pins_deploy_env_by_digest(tmp_path: Path) -> None:
    (document,) = [b for b in _buildspecs() if "deploy.env" in b["artifacts"]["files"]]
    assert {"appspec.yml", "deploy.env", "scripts/**/*"} <= set(document["artifacts"]["files"])
    pinned = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:" + "ab" * 32
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A docker that pushes nothing and knows the digest of what it pushed, as docker does after a push.
    (bin_dir / "docker").write_text(f'#!/bin/sh\n[ "$1" = inspect ] && echo "{pinned}"\n[ "$1" = info ] && exit 1\n'
                                    "exit 0\n")
    (bin_dir / "docker").chmod(0o755)
    shutil.copy(ROOT / "deploy.env", tmp_path / "deploy.env")
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin",
           "IMAGE_URI": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:3f2a9c1d4e5f"}

    # Buildspec 0.2 runs a phase's commands in one shell, so a variable set by one is there for the next.
    post_build = "\n".join(document["phases"]["post_build"]["commands"])
    ran = subprocess.run(["bash", "-ec", post_build], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    start = subprocess.run(["bash", str(ROOT / "scripts" / "start_container.sh"), "--config", "deploy.env"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)

    assert f"IMAGE={pinned}" in (tmp_path / "deploy.env").read_text().splitlines()
    assert start.returncode == 10, start.stdout + start.stderr  # valid and pinned; only docker is missing


def test_the_pipeline_example_invokes_the_packaged_function_with_a_valid_spec() -> None:
    (pipeline,) = [b for b in _code_blocks((DOCS / "pipeline.md").read_text(), "yaml") if "AWS::CodePipeline" in b]
    parameters = re.search(r"UserParameters: \|\n((?:\s{18}.*\n)+)", pipeline)
    assert parameters, "no UserParameters block"
    spec = TargetSpec.model_validate(json.loads(parameters.group(1)))
    assert spec.target == "web-prod"
    assert 'berth-${Stage}-pipeline_job' in pipeline
