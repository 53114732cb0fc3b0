"""Which IAM actions each Lambda function can need, derived from the code rather than listed by hand.

1. A *client class* is any class in chalicelib/ whose `__init__` takes a `<service>_client...` parameter
   (`ssm_client`, `dynamodb_client`, `ecr_client_for_region`, `s3_client_for`, ...) and keeps it on `self`, or that
   inherits such an `__init__` (DeploymentStore and the parts of the store it is made of); a class has the methods
   of its bases in chalicelib/ that it does not define itself.
   Every attribute on that client (`self._ssm.send_command`, `self._client_for(region).describe_images`, or a
   bound method handed to a helper, `self._call("GetItem", self._db.get_item, ...)`) whose name is one of the
   service's operations (botocore's service model, `xform_name`) is a call.
2. What a function reaches starts at its entry point in app.py, follows `wiring.*` and the wiring functions and
   classes they build, the classes those services build in turn (DeploymentService's CommandSender, ...), then every
   attribute name those services use; a client class's method counts when a reached piece of code names it, plus the
   `self.` helpers it calls.
3. Operations become IAM actions (`<signing name>:<OperationName>`); DynamoDB transactions become the actions of
   the items they carry (`Put` -> PutItem, ...), as DynamoDB authorizes them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[2]
CLIENT_PARAM = re.compile(r"^(?P<service>[a-z0-9]+)_client")
ROUTE_DECORATOR_FUNCTION = "api_handler"   # every REST route runs in Chalice's one API handler Lambda
TRANSACT_ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                         "ConditionCheck": "ConditionCheckItem"}


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def operations(service: str) -> dict[str, str]:
    """snake_case method name -> API operation name."""
    model = _session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


# Services whose IAM prefix is not their signing name (Service Authorization Reference): CloudWatch signs as
# "monitoring" and authorizes as "cloudwatch".
IAM_PREFIXES = {"cloudwatch": "cloudwatch"}


@cache
def iam_prefix(service: str) -> str:
    return IAM_PREFIXES.get(service) or str(_session().get_service_model(service).signing_name)


@dataclass
class ClientClass:
    name: str
    module: str
    clients: dict[str, str]                                   # self attribute -> service
    calls: dict[str, set[tuple[str, str]]] = field(default_factory=dict)   # method -> {(service, method name)}
    self_refs: dict[str, set[str]] = field(default_factory=dict)           # method -> self.<name> it uses
    transact_keys: dict[str, set[str]] = field(default_factory=dict)       # method -> transaction item kinds
    attrs: dict[str, set[str]] = field(default_factory=dict)               # method -> every attribute it names
    names: set[str] = field(default_factory=set)                           # every bare name its methods use


def _receiver(node: ast.expr) -> str | None:
    """`self._x` or `self._x(...)` -> "_x"."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _client_attrs(cls: ast.ClassDef, nodes: dict[str, ast.ClassDef]) -> dict[str, str]:
    """The client attributes `cls`'s `__init__` keeps, or those of the first base in chalicelib/ that has them."""
    services = set(_session().get_available_services())
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is None:
        inherited = (_client_attrs(nodes[base], nodes) for base in _bases(cls) if base in nodes)
        return next((found for found in inherited if found), {})
    params = {}
    for arg in init.args.args + init.args.kwonlyargs:
        match = CLIENT_PARAM.match(arg.arg)
        if match and match.group("service") in services:
            params[arg.arg] = match.group("service")
    found = {}
    for node in ast.walk(init):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in params:
            for target in node.targets:
                name = _receiver(target)
                if name:
                    found[name] = params[node.value.id]
    return found


def _bases(cls: ast.ClassDef) -> list[str]:
    return [base.id for base in cls.bases if isinstance(base, ast.Name)]


def _methods(cls: ast.ClassDef, nodes: dict[str, ast.ClassDef]) -> dict[str, ast.FunctionDef]:
    """`cls`'s methods and those it inherits from its bases in chalicelib/ (the first base that defines one wins)."""
    methods: dict[str, ast.FunctionDef] = {}
    for base in reversed(_bases(cls)):
        if base in nodes:
            methods.update(_methods(nodes[base], nodes))
    methods.update({n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)})
    return methods


def _scan_class(cls: ast.ClassDef, module: str, nodes: dict[str, ast.ClassDef]) -> ClientClass:
    info = ClientClass(cls.name, module, _client_attrs(cls, nodes))
    for method in _methods(cls, nodes).values():
        calls, refs, kinds, attrs = set(), set(), set(), set()
        for node in ast.walk(method):
            if isinstance(node, ast.Name):
                info.names.add(node.id)
            if isinstance(node, ast.Attribute):
                attrs.add(node.attr)
                owner = _receiver(node.value)
                service = info.clients.get(owner or "")
                if service and node.attr in operations(service):
                    calls.add((service, node.attr))
                if isinstance(node.value, ast.Name) and node.value.id == "self":
                    refs.add(node.attr)
            elif isinstance(node, ast.Dict):
                kinds |= {key.value for key in node.keys
                          if isinstance(key, ast.Constant) and key.value in TRANSACT_ITEM_ACTIONS}
        info.calls[method.name], info.self_refs[method.name] = calls, refs
        info.transact_keys[method.name], info.attrs[method.name] = kinds, attrs
    return info


@cache
def classes() -> dict[str, ClientClass]:
    """Every class in chalicelib/, by name (client classes have a non-empty `clients`)."""
    nodes: dict[str, tuple[ast.ClassDef, str]] = {}
    for path in sorted((ROOT / "chalicelib").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                nodes[node.name] = (node, str(path.relative_to(ROOT)))
    by_name = {name: node for name, (node, _) in nodes.items()}
    return {name: _scan_class(node, module, by_name) for name, (node, module) in nodes.items()}


def _module_functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text(), str(path))
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _lambda_name(fn: ast.FunctionDef) -> str | None:
    for deco in fn.decorator_list:
        if not (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)):
            continue
        if deco.func.attr == "route":
            return ROUTE_DECORATOR_FUNCTION
        for kw in deco.keywords:
            if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                return str(kw.value.value)
        return fn.name
    return None


def _names(node: ast.AST) -> Iterator[str]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            yield sub.id
        elif isinstance(sub, ast.Attribute):
            yield sub.attr


def entry_points() -> dict[str, set[str]]:
    """Lambda function name -> every name its handlers use (following app.py's own helpers)."""
    functions = _module_functions(ROOT / "app.py")
    reached: dict[str, set[str]] = {}
    for fn in functions.values():
        name = _lambda_name(fn)
        if name is None:
            continue
        seen, todo = set(), [fn.name]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            used = set(_names(functions[current]))
            reached.setdefault(name, set()).update(used)
            todo += [n for n in used if n in functions]
    return reached


def _wiring_closure(start: Iterable[str]) -> tuple[set[str], set[str]]:
    """Names used by the wiring functions in `start` and every wiring function they name, transitively."""
    functions = _module_functions(ROOT / "chalicelib" / "wiring.py")
    seen: set[str] = set()
    used: set[str] = set()
    todo = [n for n in start if n in functions]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        names = set(_names(functions[current]))
        used |= names
        todo += [n for n in names if n in functions]
    return seen, used


def _reached_methods(info: ClientClass, used: set[str]) -> set[str]:
    methods = set(info.calls)
    todo = [m for m in methods if m in used or m == "__init__"]
    seen: set[str] = set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo += [r for r in info.self_refs[current] if r in methods]
    return seen


def required_actions() -> dict[str, dict[str, set[str]]]:
    """Lambda function name -> IAM action -> the `Class.method`s that need it."""
    known = classes()
    result: dict[str, dict[str, set[str]]] = {}
    for function, app_names in entry_points().items():
        _, wired = _wiring_closure(app_names)
        reached = _services_built(known, {name for name in wired | app_names if name in known})
        used = set(app_names) | wired
        for name in reached:
            if not known[name].clients:         # services: every name they use counts
                used |= {a for attrs in known[name].attrs.values() for a in attrs}
        while True:                               # client classes: only the methods something names
            before = len(used)
            for name in reached:
                info = known[name]
                if info.clients:
                    for method in _reached_methods(info, used):
                        used |= info.attrs[method]
            if len(used) == before:
                break
        actions: dict[str, set[str]] = {}
        for name in sorted(reached):
            info = known[name]
            for method in _reached_methods(info, used) if info.clients else ():
                for service, call in info.calls[method]:
                    for action in _iam_actions(service, call, info.transact_keys[method]):
                        actions.setdefault(action, set()).add(f"{name}.{method}")
        result[function] = actions
    return result


def _services_built(known: dict[str, ClientClass], reached: set[str]) -> set[str]:
    """`reached` and every class a reached service (a class without clients) names, transitively: the collaborators
    a service builds from the clients it was given."""
    todo = [name for name in reached if not known[name].clients]
    while todo:
        built = {name for name in known[todo.pop()].names if name in known} - reached
        reached |= built
        todo += [name for name in built if not known[name].clients]
    return reached


def _iam_actions(service: str, call: str, transact_kinds: set[str]) -> list[str]:
    operation = operations(service)[call]
    if service == "dynamodb" and operation in ("TransactWriteItems", "TransactGetItems"):
        kinds = transact_kinds or set(TRANSACT_ITEM_ACTIONS)
        return sorted(f"dynamodb:{TRANSACT_ITEM_ACTIONS[kind]}" for kind in kinds)
    return [f"{iam_prefix(service)}:{operation}"]
