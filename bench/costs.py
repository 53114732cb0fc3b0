"""Lambda GB-seconds of one 10-minute deployment: berth's continuation tokens against a handler that sleeps.

berth answers every invocation at once and CodePipeline invokes the job again later. CodePipeline does not publish
its re-invocation interval for continued jobs; this model assumes about one invocation a minute, so a 10-minute
deployment is one dispatch plus 10 polls. Each is billed for its duration (measured by bench.fleet on the embedded
AWS, plus an assumed AWS API latency per call, since the embedded AWS answers from this machine) at the function's
configured memory, plus one cold-start init (measured by bench.cold_start) in case every deployment starts cold.

The naive design polls SSM with `time.sleep` inside one invocation: billed for the whole deployment (600 s), or
for Lambda's 900 s limit when the deployment runs longer, and then it times out without reporting a result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench.harness import ROOT

DEPLOYMENT_SECONDS = 600
INVOCATION_INTERVAL_SECONDS = 60        # assumed: CodePipeline re-invokes a continued job about once a minute
LAMBDA_TIMEOUT_SECONDS = 900
AWS_CALL_LATENCY_SECONDS = 0.030        # assumed: one AWS API round trip from Lambda, same region


def configured_memory_gb(function: str = "pipeline_job", stage: str = "prod") -> float:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    settings = config["stages"][stage].get("lambda_functions", {}).get(function, {})
    return float(settings.get("lambda_memory_size", config.get("lambda_memory_size", 128))) / 1024


@dataclass(frozen=True)
class CostModel:
    memory_gb: float
    init_seconds: float
    dispatch_seconds: float
    dispatch_calls: int
    poll_seconds: float
    poll_calls: int

    @property
    def polls(self) -> int:
        return DEPLOYMENT_SECONDS // INVOCATION_INTERVAL_SECONDS

    @property
    def dispatch_billed(self) -> float:
        return self.dispatch_seconds + self.dispatch_calls * AWS_CALL_LATENCY_SECONDS

    @property
    def poll_billed(self) -> float:
        return self.poll_seconds + self.poll_calls * AWS_CALL_LATENCY_SECONDS

    @property
    def berth_seconds(self) -> float:
        return self.init_seconds + self.dispatch_billed + self.polls * self.poll_billed

    @property
    def berth_gb_seconds(self) -> float:
        return self.memory_gb * self.berth_seconds

    @property
    def naive_gb_seconds(self) -> float:
        return self.memory_gb * min(DEPLOYMENT_SECONDS, LAMBDA_TIMEOUT_SECONDS)

    @property
    def naive_timeout_gb_seconds(self) -> float:
        return self.memory_gb * LAMBDA_TIMEOUT_SECONDS

    def arithmetic(self) -> list[str]:
        gb = self.memory_gb
        return [
            f"assumptions: a {DEPLOYMENT_SECONDS // 60}-minute deployment; CodePipeline re-invokes a continued job "
            f"about every {INVOCATION_INTERVAL_SECONDS} s (assumed; not published); "
            f"{AWS_CALL_LATENCY_SECONDS * 1000:.0f} ms per AWS call added to each measured duration (assumed); "
            f"memory {gb * 1024:.0f} MB = {gb:.3f} GB "
            "(.chalice/config.json)",
            f"berth: init {self.init_seconds:.3f} s + dispatch ({self.dispatch_seconds:.3f} s + {self.dispatch_calls} "
            f"calls x {AWS_CALL_LATENCY_SECONDS:.3f} s = {self.dispatch_billed:.3f} s) + {self.polls} polls x "
            f"({self.poll_seconds:.3f} s + {self.poll_calls} calls x {AWS_CALL_LATENCY_SECONDS:.3f} s = "
            f"{self.poll_billed:.3f} s) = {self.berth_seconds:.2f} s x {gb:.3f} GB = {self.berth_gb_seconds:.2f} GB-s",
            f"naive: {DEPLOYMENT_SECONDS} s x {gb:.3f} GB = {self.naive_gb_seconds:.1f} GB-s (a deployment longer "
            f"than {LAMBDA_TIMEOUT_SECONDS // 60} minutes: {LAMBDA_TIMEOUT_SECONDS} s x {gb:.3f} GB = "
            f"{self.naive_timeout_gb_seconds:.1f} GB-s, then a timeout and no job result)",
            f"ratio: naive / berth = {self.naive_gb_seconds / self.berth_gb_seconds:.0f}x",
        ]
