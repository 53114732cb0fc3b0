"""`berth targets`: list the targets, and get or put one target's spec as a file (JSON, or YAML through PyYAML).

A spec round-trips: `berth targets get NAME --output yaml > spec.yaml` then `berth targets put NAME --file spec.yaml`
changes nothing, because `get` prints the spec exactly as the API holds it (every field, defaults filled in) and
YAML is written so that every value reads back as the same JSON type (PyYAML quotes "5000:5000", "on", "1e3").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from berth_cli import render
from berth_cli.client import Api, CliError

MAX_SPEC_FILE_BYTES = 1024 * 1024       # the API takes bodies of at most 1 MiB


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    targets = commands.add_parser("targets", parents=[common], help="list the targets; get or put one's spec")
    actions = targets.add_subparsers(dest="targets_action", metavar="ACTION")
    actions.add_parser("list", parents=[common], help="list the registered targets (the default)")
    get = actions.add_parser("get", parents=[common], help="print a target's spec, as `put` takes it")
    get.add_argument("name")
    get.add_argument("--output", "-o", choices=("json", "yaml"), default="json", help="format (default json)")
    put = actions.add_parser("put", parents=[common], help="register or update a target from a spec file")
    put.add_argument("name")
    put.add_argument("--file", "-f", required=True, type=Path, help="the spec: .yaml/.yml as YAML, else JSON")


def run(api: Api, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    action = args.targets_action or "list"
    if action == "list":
        body = api.call("GET", "/targets")
        print(json.dumps(body, indent=2) if args.json else render.visible(render.targets(body, api.region)), file=out)
    elif action == "get":
        spec = api.call("GET", f"/targets/{quote(args.name, safe='')}")["spec"]
        # On stderr, so the spec on stdout still round-trips through `put`.
        print(render.visible(f"{args.name}: {render.place(spec, api.region)}"), file=err)
        print(dump_spec(spec, args.output), end="", file=out)
    else:
        body = api.call("PUT", f"/targets/{quote(args.name, safe='')}", load_spec(args.file))
        registered = f"target {body['name']} registered by {body.get('updated_by') or 'unknown'}"
        print(json.dumps(body, indent=2) if args.json else render.visible(
            f"{registered}\n{render.status(body, api.region)}"), file=out)
    return 0


def dump_spec(spec: dict[str, Any], output: str) -> str:
    if output == "yaml":
        import yaml

        return str(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, default_flow_style=False))
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def load_spec(path: Path) -> dict[str, Any]:
    """The spec in `path`: YAML for .yaml/.yml, JSON otherwise. CliError naming the file when it is not a mapping."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_SPEC_FILE_BYTES:
        raise CliError(f"{path}: larger than {MAX_SPEC_FILE_BYTES} bytes, more than the API takes")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(raw)
        else:
            data = json.loads(raw)
    except UnicodeDecodeError:
        raise CliError(f"{path}: not UTF-8 text") from None
    except ValueError as exc:
        raise CliError(f"{path}: not valid JSON: {exc}") from None
    except Exception as exc:  # yaml.YAMLError, imported only for YAML files
        raise CliError(f"{path}: not valid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                       ) from None
    if not isinstance(data, dict):
        raise CliError(f"{path}: a spec is a mapping (a JSON object), not {type(data).__name__}")
    return data
