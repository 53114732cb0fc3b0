"""SendCommand's document and parameter checks, which moto skips.

moto ships none of the AWS-owned documents and accepts any DocumentName and any Parameters. AWS
refuses an unknown document (``InvalidDocument``) and parameters the document does not declare, misses,
or whose values break ``allowedPattern`` / ``allowedValues`` (``InvalidParameters``). The AWS-owned
shell documents are described here; documents created in moto (``CreateDocument``) are checked
against their own ``parameters`` block, so a Command document with ``allowedPattern`` guards work
under test as in AWS.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import AwsError

_TIMEOUT = {
    "type": "String",
    "default": "3600",
    "allowedPattern": "([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|(172[0-7][0-9]{2})|(172800)",
}
_SHELL = {
    "commands": {"type": "StringList"},
    "workingDirectory": {"type": "String", "default": ""},
    "executionTimeout": _TIMEOUT,
}
AWS_DOCUMENT_PLATFORMS = {
    "AWS-RunShellScript": {"Linux", "MacOS"},
    "AWS-RunPowerShellScript": {"Windows", "Linux", "MacOS"},
}
AWS_DOCUMENTS: dict[str, dict[str, dict[str, Any]]] = {
    "AWS-RunShellScript": _SHELL,
    "AWS-RunPowerShellScript": _SHELL,
}


def declared_parameters(backend: Any, name: str) -> dict[str, dict[str, Any]]:
    """The ``parameters`` block of the document SendCommand names."""
    if name in AWS_DOCUMENTS:
        return AWS_DOCUMENTS[name]
    documents = backend._documents.get(name)
    if not documents:
        raise AwsError("InvalidDocument", "The specified document does not exist.")
    document = documents.get_default_version()
    if document.document_type != "Command":
        raise AwsError("InvalidDocument", f"Document {name} is of type {document.document_type}, not Command.")
    parameters: dict[str, dict[str, Any]] = (document.content_json or {}).get("parameters") or {}
    return parameters


def supported_platforms(name: str) -> set[str] | None:
    """Platforms an AWS-owned document runs on; None for customer documents (not checked)."""
    return AWS_DOCUMENT_PLATFORMS.get(name)


def _refuse(message: str) -> AwsError:
    return AwsError("InvalidParameters", message)


def check_parameters(declared: dict[str, dict[str, Any]], sent: dict[str, list[str]]) -> None:
    for name in sent:
        if name not in declared:
            raise _refuse(f'Parameter "{name}" is not defined in the document.')
    for name, definition in declared.items():
        if name not in sent:
            if "default" not in definition:
                raise _refuse(f'Parameter "{name}" is required.')
            continue
        values = sent[name]
        if definition.get("type", "String") == "String" and len(values) > 1:
            raise _refuse(f'Parameter "{name}" takes one value.')
        pattern = definition.get("allowedPattern")
        allowed = definition.get("allowedValues")
        for value in values:
            if pattern is not None and not re.fullmatch(pattern, value):
                raise _refuse(f'Parameter "{name}" value "{value}" does not match allowedPattern {pattern}.')
            if allowed is not None and value not in allowed:
                raise _refuse(f'Parameter "{name}" value "{value}" is not one of {allowed}.')
