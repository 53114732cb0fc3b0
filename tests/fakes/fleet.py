"""A fleet of EC2 instances in memory, and the instance directory (chalicelib.adapters.ec2) that reads it.

The fleet is shared: FakeSsmGateway sends commands to its instances, FakeInstanceDirectory lists them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from chalicelib.adapters.ec2 import InstanceDirectory
from chalicelib.domain.spec import InstancesSpec


@dataclass
class Fleet:
    tags: dict[str, dict[str, str]] = field(default_factory=dict)       # instance id -> its tags
    stopped: set[str] = field(default_factory=set)
    architectures: dict[str, str] = field(default_factory=dict)       # instance id -> EC2 architecture (x86_64)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def launch(self, count: int, tags: dict[str, str], architecture: str = "x86_64") -> list[str]:
        """Start `count` running instances carrying `tags`; their ids, sorted (as tools.emulated.launch)."""
        launched = [f"i-{next(self._ids):017x}" for _ in range(count)]
        for instance_id in launched:
            self.tags[instance_id] = dict(tags)
            self.architectures[instance_id] = architecture
        return sorted(launched)

    def stop(self, instance_id: str) -> None:
        self.stopped.add(instance_id)

    def running(self) -> list[str]:
        return sorted(i for i in self.tags if i not in self.stopped)

    def matching(self, tags: dict[str, str], running_only: bool = True) -> list[str]:
        candidates = self.running() if running_only else sorted(self.tags)
        return [i for i in candidates if all(self.tags[i].get(key) == value for key, value in tags.items())]


class FakeInstanceDirectory(InstanceDirectory):
    def __init__(self, fleet: Fleet) -> None:
        super().__init__(ec2_client=None)
        self.fleet = fleet

    def running_instances(self, instances: InstancesSpec) -> list[str]:
        # As the adapter: ids are filtered to running ones; tags are read from the tags alone, whatever the state.
        if instances.ids is not None:
            running = set(self.fleet.running())
            return sorted(i for i in set(instances.ids) if i in running)
        return self.fleet.matching(instances.tags, running_only=False) if instances.tags else []

    def running_among(self, instance_ids: list[str]) -> set[str]:
        return set(instance_ids) & set(self.fleet.running())

    def of_architectures(self, instances: InstancesSpec, architectures: list[str]) -> dict[str, str]:
        running = self.fleet.running()
        chosen = (set(instances.ids) & set(running) if instances.ids is not None
                  else set(self.fleet.matching(instances.tags or {})))
        return {i: self.fleet.architectures.get(i, "x86_64") for i in sorted(chosen)
                if self.fleet.architectures.get(i, "x86_64") in architectures}
