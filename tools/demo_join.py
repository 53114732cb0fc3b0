"""The demo's join scene: a new instance with the fleet's tags starts, and receives the target's current revision.

EC2 announces the instance (EventBridge, "EC2 Instance State-change Notification", running) before its SSM agent has
registered: berth does not sleep, it schedules a look. The agent registers, the schedule fires, and berth sends the
current digest to that instance alone; SSM's command event settles the join deployment.
"""

from __future__ import annotations

from typing import Any


def instance_joined(demo: Any, tags: dict[str, str], target: str) -> str:
    """Run the scene on `demo` (tools.demo.Demo); returns what the summary shows."""
    from chalicelib import wiring
    from localaws import InstanceOutcome
    from tools.demo import say
    from tools.emulated import launch
    from tools.local_events import instance_running_event

    with demo.client:
        record = wiring.store().get_target(target)
    current = record.current_revision if record else None
    if current is None or current.digest is None:
        return f"target {target} has no current revision by digest"
    new = launch(demo.boto_client("ec2"), 1, tags)[0]
    say(f"   {new} starts with the fleet's tags; the target runs ...{current.pinned[-24:]}")
    demo.control.set_outcome(new, InstanceOutcome(skip=True))       # its SSM agent is still starting
    answer = demo.invoke("instance_launches", instance_running_event(new))
    say(f"   ~> EventBridge: {new} running: {answer['action']}: {answer['detail']}")

    say("   .. the SSM agent registers: the instance is Online")
    demo.control.set_outcome(new, InstanceOutcome(polls_before_done=1, stdout="berth-step: health\n"))
    demo.fire_schedules()
    with demo.client:
        join = wiring.store().get_join(new)
    if join is None or join.deployment_id is None:
        return "no join deployment"
    for _ in range(5):
        demo.deliver_events()
        deployment = demo.deployment(join.deployment_id)
        if deployment.status.is_final:
            break
    for decision in deployment.history:
        say(f"     {decision.at:%H:%M:%S} {decision.action:<12} {decision.detail[:150]}")
    command = demo.boto_client("ssm").list_commands(CommandId=deployment.attempts[-1].command_id)["Commands"][0]
    script = "\n".join(command["Parameters"]["commands"])
    if deployment.status.value != "SUCCEEDED" or command.get("InstanceIds") != [new] or current.digest not in script:
        return f"{deployment.status.value} to {command.get('InstanceIds')}"
    return "the new instance joined at the current digest"
