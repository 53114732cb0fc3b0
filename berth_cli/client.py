"""Calling berth's REST API: SigV4-signed requests (botocore's signer, service `execute-api`) over urllib.

The API URL comes from, in order: `--url`, `BERTH_API_URL`, or the Chalice deployment record
`.chalice/deployed/<stage>.json` (its `rest_api_url`) found from the current directory upwards.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

SERVICE = "execute-api"
_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


class CliError(Exception):
    """Something the person can fix; printed as one line."""


class ApiError(CliError):
    def __init__(self, status: int, message: str, code: str | None = None, field: str | None = None) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.code = code
        self.field = field


def find_api_url(flag: str | None, stage: str, start: Path | None = None) -> str:
    if flag:
        return flag
    if os.environ.get("BERTH_API_URL"):
        return os.environ["BERTH_API_URL"]
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        record = folder / ".chalice" / "deployed" / f"{stage}.json"
        if record.is_file():
            return _url_from_record(record)
        if (folder / ".chalice").is_dir():
            break
    raise CliError(f"no API URL: pass --url, set BERTH_API_URL, or run inside the Chalice project after "
                   f"`chalice deploy --stage {stage}` (it writes .chalice/deployed/{stage}.json)")


def _url_from_record(record: Path) -> str:
    try:
        resources = json.loads(record.read_text()).get("resources", [])
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {record}: {exc}") from None
    for resource in resources:
        if isinstance(resource, dict) and resource.get("rest_api_url"):
            return str(resource["rest_api_url"])
    raise CliError(f"{record} names no rest_api_url: is the stage deployed with its REST API?")


def region_for(url: str, flag: str | None, session_region: str | None) -> str:
    host = urllib.parse.urlsplit(url).hostname or ""
    match = _API_HOST.search(host)
    return flag or (match.group(1) if match else None) or session_region or "us-east-1"


class Api:
    def __init__(self, url: str, region: str, credentials: Any, timeout: float = 30) -> None:
        if credentials is None:
            raise CliError("no AWS credentials found: configure them as for the AWS CLI (environment, profile, SSO)")
        self._base = url.rstrip("/")
        self._region = region
        self._credentials = credentials
        self._timeout = timeout

    @property
    def region(self) -> str:
        """The region the requests are signed for: berth's own."""
        return self._region

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             query: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self._base + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        headers = self.signed_headers(method, url, data)
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 (http/https)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return _json(response.read())
        except urllib.error.HTTPError as exc:
            raise _api_error(exc.code, exc.read()) from None
        except urllib.error.URLError as exc:
            raise CliError(f"cannot reach {self._base}: {exc.reason}") from None
        except TimeoutError:
            raise CliError(f"{self._base} did not answer within {self._timeout:g} s") from None

    def signed_headers(self, method: str, url: str, data: bytes | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"} if data is not None else {}
        request = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
        credentials = self._credentials
        frozen = credentials.get_frozen_credentials() if hasattr(credentials, "get_frozen_credentials") else credentials
        SigV4Auth(frozen, SERVICE, self._region).add_auth(request)
        return dict(request.headers.items())


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise CliError("the API answered with something that is not JSON") from None
    return data if isinstance(data, dict) else {"value": data}


def _api_error(status: int, raw: bytes) -> ApiError:
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        error = data["error"]
        return ApiError(status, str(error.get("message", "")), error.get("code"), error.get("field"))
    if isinstance(data, dict) and ("message" in data or "Message" in data):  # API Gateway's own errors
        return ApiError(status, str(data.get("message") or data.get("Message")))
    text = raw.decode("utf-8", "replace").strip().splitlines()
    return ApiError(status, text[0][:300] if text else "(no body)")
