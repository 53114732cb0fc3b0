"""berth: Chalice entry points. Each handler hands its event to one service; wiring builds the services lazily."""

from __future__ import annotations

from typing import Any

from chalice.app import Chalice

app = Chalice(app_name="berth")


@app.lambda_function(name="pipeline_job")
def pipeline_job(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The CodePipeline Invoke action. The event carries artifact credentials: it is never logged."""
    from chalicelib import wiring

    result = wiring.pipeline_job_service().handle(event)
    return {"result": type(result).__name__ if result else "ignored"}
