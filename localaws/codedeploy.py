"""CodeDeploy extensions (phase 2)."""

from __future__ import annotations

from typing import Any

METHODS: dict[str, Any] = {}
