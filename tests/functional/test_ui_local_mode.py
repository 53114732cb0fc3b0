"""`make local` starts the dashboard beside the local API and prints its URL; the URL opens the page, and the page's
calls reach the local API through it."""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_local_mode_prints_the_dashboard_s_url_and_the_dashboard_reaches_the_local_api() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen([sys.executable, "-m", "tools.local_mode"], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C stops both servers" in line:
                break
        url = next(line.split()[-1] for line in lines if line.startswith("dashboard"))
        assert url.startswith("http://127.0.0.1:") and "?token=" in url
        assert any("berth ui --port 8001" in line for line in lines)

        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with browser.open(url, timeout=60) as page:        # the token URL sets the cookie and redirects to /
            assert page.status == 200 and b'name="berth-csrf"' in page.read()
        base = url.split("?")[0]
        with browser.open(f"{base}api/targets", timeout=60) as answer:
            assert json.loads(answer.read()) == {"targets": []}
        with pytest.raises(urllib.error.HTTPError) as refused:    # without the cookie: nothing
            urllib.request.urlopen(f"{base}api/targets", timeout=60)
        assert refused.value.code == 401
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        process.stdout.close()
    assert process.returncode == 0, "".join(lines)
