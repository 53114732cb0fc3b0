"""Checks of an image before anything is touched: its platforms against the instances' architecture, its scan
findings against the target's image policy. Pure: services/deployments.py gathers the facts (ECR BatchGetImage and
DescribeImageScanFindings, EC2 DescribeInstances) and these functions decide.

Architecture names differ between the two worlds: an image index names OCI/Go architectures (`amd64`, `arm64`,
`386`), EC2 names its own (`x86_64`, `arm64`, `i386`, and the `_mac` kinds of Mac instances). The check asks EC2 for
the target's running instances of any architecture the image lacks, so one small answer settles a fleet of any size.

An image whose platforms cannot be read without pulling (a single-platform manifest: its architecture sits in the
config blob, which only a layer download reaches) is not refused here: start_container.sh compares the pulled
image's architecture with the host's before the swap, with its own exit code, as it does for images outside ECR.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ArchitectureMismatch, BerthError, ScanFindings, ScanPending

# Media types whose manifest lists one manifest per platform (BatchGetImage acceptedMediaTypes asks for these as
# they are, rather than a single manifest ECR might pick).
INDEX_MEDIA_TYPES = ("application/vnd.oci.image.index.v1+json",
                     "application/vnd.docker.distribution.manifest.list.v2+json")
SINGLE_MEDIA_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                      "application/vnd.docker.distribution.manifest.v2+json")
ACCEPTED_MEDIA_TYPES = (*INDEX_MEDIA_TYPES, *SINGLE_MEDIA_TYPES)
# EC2's architecture values (DescribeInstances Architecture, and its `architecture` filter).
EC2_ARCHITECTURES = ("i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac")
_EC2_FOR_PLATFORM = {"amd64": ("x86_64", "x86_64_mac"), "arm64": ("arm64", "arm64_mac"), "386": ("i386",)}
# An index also lists attestation manifests (BuildKit's provenance): platform unknown/unknown, never a runnable image.
_NOT_A_PLATFORM = "unknown"

# ECR's severities, from the gravest; UNDEFINED and UNTRIAGED findings have none and never refuse.
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL")


def platforms_of(media_type: str, manifest: str) -> frozenset[str] | None:
    """The OCI architectures an image index or manifest list holds (attestations left out); None for a single
    manifest, or anything unreadable: its architecture cannot be told without its config blob."""
    if media_type not in INDEX_MEDIA_TYPES:
        return None
    try:
        entries = json.loads(manifest).get("manifests")
        found = {entry["platform"]["architecture"] for entry in entries
                 if isinstance(entry.get("platform"), dict) and isinstance(entry["platform"].get("architecture"), str)}
    except (ValueError, AttributeError, TypeError, KeyError):
        return None
    return frozenset(found - {_NOT_A_PLATFORM}) or None


def ec2_architectures_lacking(platforms: frozenset[str]) -> list[str]:
    """EC2 architectures none of the image's platforms runs on: instances of these cannot run it."""
    runs_on = {arch for platform in platforms for arch in _EC2_FOR_PLATFORM.get(platform, ())}
    return [arch for arch in EC2_ARCHITECTURES if arch not in runs_on]


def architecture_refusal(image: str, platforms: frozenset[str], lacking: Mapping[str, str],
                         shown: int = 5) -> ArchitectureMismatch | None:
    """The refusal when instances (id -> EC2 architecture) cannot run the image, else None."""
    if not lacking:
        return None
    archs = sorted(set(lacking.values()))
    named = ", ".join(f"{instance_id} ({arch})" for instance_id, arch in sorted(lacking.items())[:shown])
    more = f" and {len(lacking) - shown} more" if len(lacking) > shown else ""
    return ArchitectureMismatch(
        f"image {image} has platforms {', '.join(sorted(platforms))} but the target's instances include "
        f"{', '.join(archs)}: {named}{more}. Build the image for {', '.join(archs)} too (docker buildx --platform), "
        "or target instances of the image's architecture")


@dataclass(frozen=True)
class ScanResult:
    """What DescribeImageScanFindings says of one image: its scan status and the findings' counts per severity.
    status NONE: ECR holds no scan of the image (ScanNotFoundException)."""

    status: str
    counts: Mapping[str, int]
    description: str = ""


def scan_counts(reply: Mapping[str, Any]) -> dict[str, int]:
    """The counts per severity of a DescribeImageScanFindings reply: findingSeverityCounts."""
    counts = (reply.get("imageScanFindings") or {}).get("findingSeverityCounts") or {}
    return {str(severity): int(count) for severity, count in counts.items()}


def scan_refusal(image: str, max_severity: str, scan: ScanResult) -> BerthError | None:
    """The refusal of an image whose scan has findings at or above `max_severity`, or whose scan cannot say.

    No scan and a failed scan refuse: the target asked for a gate, and an image no one scanned has not passed it. A
    scan still running (IN_PROGRESS, PENDING) is ScanPending, which a pipeline job waits through."""
    if scan.status in ("IN_PROGRESS", "PENDING"):
        return ScanPending(f"image {image}: its scan is {scan.status}; image_policy.max_severity needs it complete")
    if scan.status != "COMPLETE":
        why = "ECR holds no scan of it" if scan.status == "NONE" else f"its scan is {scan.status}"
        detail = f" ({scan.description})" if scan.description else ""
        return ScanFindings(f"image {image}: {why}{detail}, and image_policy.max_severity needs a complete scan: turn "
                            "on scan on push for the repository, or start a scan (aws ecr start-image-scan)")
    gate = SEVERITIES[:SEVERITIES.index(max_severity) + 1]
    reached = {severity: scan.counts.get(severity, 0) for severity in gate if scan.counts.get(severity, 0)}
    if not reached:
        return None
    named = ", ".join(f"{count} {severity}" for severity, count in reached.items())
    return ScanFindings(f"image {image} has scan findings at or above {max_severity} (image_policy.max_severity): "
                        f"{named}. Fix them and push a new image, or raise max_severity")
