"""Reading the revision out of a pipeline's input artifact: which image to deploy, and whether its appspec is sound.

An artifact may carry, in order of preference: `imagedefinitions.json` written by CodeBuild
(`[{"name": ..., "imageUri": ...}]`, the entry whose name is the container's), `imageDetail.json` written by an ECR
source action (`{"ImageURI": ...}`), or a plain `image.txt` holding the reference.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import InvalidRevision

ARTIFACT_FILES = ("imagedefinitions.json", "imageDetail.json", "image.txt", "appspec.yml", "appspec.yaml")
APPSPEC_HOOKS = frozenset({
    "ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic", "DownloadBundle", "BeforeInstall", "Install",
    "AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic",
})


def image_from_artifact(files: dict[str, bytes], container_name: str) -> str:
    """Pick the image reference out of the artifact's files, or say which file to add."""
    if "imagedefinitions.json" in files:
        return _from_image_definitions(files["imagedefinitions.json"], container_name)
    if "imageDetail.json" in files:
        detail = _json(files["imageDetail.json"], "imageDetail.json")
        uri = detail.get("ImageURI") if isinstance(detail, dict) else None
        if not isinstance(uri, str) or not uri:
            raise InvalidRevision("imageDetail.json has no ImageURI string")
        return uri
    if "image.txt" in files:
        text = _text(files["image.txt"], "image.txt").strip()
        if not text or "\n" in text:
            raise InvalidRevision("image.txt must hold exactly one image reference on one line")
        return text
    raise InvalidRevision(
        "no image to deploy: the input artifact has none of imagedefinitions.json, imageDetail.json or image.txt, "
        "and UserParameters name no 'image'"
    )


def _from_image_definitions(raw: bytes, container_name: str) -> str:
    definitions = _json(raw, "imagedefinitions.json")
    if not isinstance(definitions, list):
        raise InvalidRevision('imagedefinitions.json must be a list like [{"name": ..., "imageUri": ...}]')
    names = []
    for entry in definitions:
        if not isinstance(entry, dict):
            raise InvalidRevision("imagedefinitions.json entries must be objects with 'name' and 'imageUri'")
        names.append(str(entry.get("name")))
        if entry.get("name") == container_name:
            uri = entry.get("imageUri")
            if not isinstance(uri, str) or not uri:
                raise InvalidRevision(f"imagedefinitions.json entry {container_name!r} has no imageUri string")
            return uri
    raise InvalidRevision(
        f"imagedefinitions.json has no entry named {container_name!r} (the container's name); "
        f"it names: {', '.join(names) or 'nothing'}"
    )


def check_appspec(raw: bytes) -> None:
    """Raise InvalidRevision unless `raw` is a well-formed EC2/On-Premises appspec."""
    import yaml  # only revisions that ship an appspec pay for the YAML parser

    try:
        spec = yaml.safe_load(_text(raw, "appspec.yml"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidRevision(f"appspec.yml is not valid YAML{where}") from None
    except RecursionError:
        raise InvalidRevision("appspec.yml is nested too deeply to be an appspec") from None
    if not isinstance(spec, dict):
        raise InvalidRevision("appspec.yml must be a mapping with version, os and hooks")
    if str(spec.get("version")) != "0.0":
        raise InvalidRevision("appspec.yml: 'version' must be 0.0")
    if spec.get("os") not in ("linux", "windows"):
        raise InvalidRevision("appspec.yml: 'os' must be linux or windows")
    hooks = spec.get("hooks") or {}
    if not isinstance(hooks, dict):
        raise InvalidRevision("appspec.yml: 'hooks' must map lifecycle event names to lists of scripts")
    for event, scripts in hooks.items():
        if event not in APPSPEC_HOOKS:
            raise InvalidRevision(f"appspec.yml: {event!r} is not a CodeDeploy lifecycle event")
        _check_hook_scripts(event, scripts)


def _check_hook_scripts(event: str, scripts: Any) -> None:
    if not isinstance(scripts, list) or not scripts:
        raise InvalidRevision(f"appspec.yml: hook {event} must be a list of scripts")
    for script in scripts:
        if not isinstance(script, dict) or not isinstance(script.get("location"), str):
            raise InvalidRevision(f"appspec.yml: every script of hook {event} needs a 'location'")
        timeout = script.get("timeout", 3600)
        if type(timeout) is not int or not 1 <= timeout <= 3600:
            raise InvalidRevision(f"appspec.yml: hook {event} timeout must be 1 to 3600 seconds")


def _json(raw: bytes, name: str) -> Any:
    try:
        return json.loads(_text(raw, name))
    except json.JSONDecodeError as exc:
        raise InvalidRevision(f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise InvalidRevision(f"{name} is nested too deeply to be the file it should be") from None
    except ValueError:  # Python refuses to read integers of more than 4300 digits
        raise InvalidRevision(f"{name} holds a number of more than 4300 digits: it is not the file it should be") \
            from None


def _text(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidRevision(f"{name} is not UTF-8 text") from None
