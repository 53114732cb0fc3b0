"""The demo's canary scene: a canary whose CloudWatch alarm fires during its bake, rolled back automatically.

The alarm is a metric alarm in the embedded AWS; the scene puts it into ALARM (SetAlarmState) the moment berth
reports the canary baking, as CloudWatch would when the canary's 5xx climb. Nothing waits: the next continuation reads
the alarm, halts the rollout and sends the previous digest to the canary, and the job fails naming the alarm.
"""

from __future__ import annotations

import json
from typing import Any

ALARM = "web-demo-5xx"
REASON = "Threshold Crossed: 1 out of the last 1 datapoints [37.0] was greater than the threshold (10.0)"


def canary_rolled_back(demo: Any, spec: dict[str, Any], image: str, previous_digest: str) -> str:
    """Run the scene on `demo` (tools.demo.Demo); returns what the summary shows."""
    from tools.demo import say
    from tools.emulated import put_artifact
    from tools.local_pipeline import Reply, run_job

    cloudwatch = demo.boto_client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName=ALARM, Namespace="web-demo", MetricName="HTTPCode_5XX", Statistic="Sum",
                                Period=60, EvaluationPeriods=1, Threshold=10,
                                ComparisonOperator="GreaterThanThreshold")
    canary_spec = {**spec, "rollout": {**spec["rollout"], "canary": {"instances": 1, "bake_seconds": 300},
                                       "alarms": [ALARM], "bake_seconds": 60}}
    say(f"   rollout: canary of 1 instance baking 300 s, then the rest; alarm {ALARM} (OK)")
    bucket, key = put_artifact(demo.boto_client("s3"), {"imagedefinitions.json": json.dumps(
        [{"name": "web", "imageUri": image}])}, "codepipeline-us-east-1-berth-demo", "pipeline/BuildArtif/canary")

    def show(reply: Reply) -> None:
        say(f"   <- {reply.kind:<8} {reply.text[:220]}")
        if "baking" in reply.text and cloudwatch.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"][0][
                "StateValue"] != "ALARM":
            cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason=REASON)
            say(f"   !! CloudWatch: {ALARM} -> ALARM ({REASON})")

    replies = run_job(lambda event: demo.invoke("pipeline_job", event), demo.control.job_results,
                      json.dumps(canary_spec), bucket, key, show)
    last = replies[-1]
    if last.kind != "failure" or ALARM not in last.text:
        return f"job {last.kind}"
    deployment = demo.deployment(last.result["failureDetails"]["externalExecutionId"])
    for decision in deployment.history:
        say(f"     {decision.at:%H:%M:%S} {decision.action:<12} {decision.detail[:150]}")
    rollback = deployment.attempts[-1]
    if deployment.status.value != "ROLLED_BACK" or not (rollback.image or "").endswith(previous_digest):
        return f"{deployment.status.value}"
    return f"canary rolled back to the previous digest on {len(rollback.expected_instances)} instance"
