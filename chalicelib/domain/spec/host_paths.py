"""Volumes and the host paths a container may not mount without `privileged: true`.

The Docker (containerd, podman) socket is root on the host, and so is any directory above it; /proc, /sys and /dev
reach the kernel and the devices. Mounted writable, the host's system directories and berth's own state (the proxies'
files) are root too; read-only they are not (`/etc/localtime:/etc/localtime:ro` is common). start_container.sh
checks the same lists on the instance.
"""

from __future__ import annotations

import re

from .fields import anchored, plain_text

VOLUME_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$"
CONTAINER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
                     "/var/run/containerd/containerd.sock", "/run/podman/podman.sock", "/var/run/podman/podman.sock")
HOST_TREES = ("/proc", "/sys", "/dev", "/root", "/var/lib/docker", "/var/lib/containerd", "/run/docker",
              "/var/run/docker", "/run/containerd", "/var/run/containerd")
HOST_TREES_WRITABLE = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/boot", "/var/lib/berth")


def is_normal_path(path: str) -> bool:
    """An absolute path in its normal form: no empty, `.` or `..` component, no trailing slash (but `/`)."""
    if not path.startswith("/"):
        return False
    return path == "/" or all(part not in ("", ".", "..") for part in path[1:].split("/"))


def _within(path: str, tree: str) -> bool:
    return tree == "/" or path == tree or path.startswith(tree + "/")


def host_path_widens(path: str, read_only: bool) -> str | None:
    """Why mounting host `path` gives a container its host, or None. `path` is normal (is_normal_path)."""
    for socket in CONTAINER_SOCKETS:
        if _within(socket, path):
            return f"it holds the container engine's socket {socket} (root on the host)"
    for tree in HOST_TREES:
        if _within(path, tree):
            return f"{tree} reaches the host's kernel, devices or the engine's own data"
    if not read_only:
        for tree in HOST_TREES_WRITABLE:
            if _within(path, tree):
                return f"{tree} written from a container is root on the host (mount it with :ro)"
    return None


def parse_volume(volume: str) -> tuple[str, str, bool]:
    """`SOURCE:TARGET[:ro]` -> (source, target, read_only); ValueError naming what is wrong."""
    parts = volume.split(":")
    read_only = len(parts) == 3 and parts[2] == "ro"
    if len(parts) not in (2, 3) or (len(parts) == 3 and not read_only):
        raise ValueError(f"volume {volume!r} must be SOURCE:TARGET or SOURCE:TARGET:ro (paths hold no ':')")
    source, target = parts[0], parts[1]
    plain_text(volume, "volume", 1024)
    if source.startswith("/"):
        if not is_normal_path(source):
            raise ValueError(f"volume {volume!r}: write the host path in its normal form (no '.', '..', '//' or "
                             "trailing '/')")
    elif not re.match(anchored(VOLUME_NAME), source):
        raise ValueError(f"volume {volume!r}: the source is a host path (starting with /) or a volume name "
                         "([a-zA-Z0-9][a-zA-Z0-9_.-]*)")
    if not is_normal_path(target) or target == "/":
        raise ValueError(f"volume {volume!r}: the target is an absolute path in its normal form, not /")
    if "," in volume:
        raise ValueError(f"volume {volume!r}: paths may not hold ','")
    return source, target, read_only
