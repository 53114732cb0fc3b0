"""The checks of an image before anything is touched (domain/image_checks.py): platforms against architectures, scan
findings against the image policy."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.errors import ArchitectureMismatch, ScanFindings, ScanPending
from chalicelib.domain.image_checks import (
    ScanResult,
    architecture_refusal,
    ec2_architectures_lacking,
    platforms_of,
    scan_counts,
    scan_refusal,
)

INDEX = "application/vnd.oci.image.index.v1+json"
LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:" + "a" * 64


def index(*archs: str) -> str:
    return json.dumps({"schemaVersion": 2, "manifests": [
        {"digest": "sha256:" + str(n) * 64, "platform": {"architecture": arch, "os": "linux"}}
        for n, arch in enumerate(archs)]})


def test_an_index_or_manifest_list_names_its_platforms_without_attestations() -> None:
    assert platforms_of(INDEX, index("amd64", "arm64", "unknown")) == frozenset({"amd64", "arm64"})
    assert platforms_of(LIST, index("arm64")) == frozenset({"arm64"})


@pytest.mark.parametrize("media_type, manifest", [
    ("application/vnd.docker.distribution.manifest.v2+json", index("amd64")),   # a single manifest: not told here
    (INDEX, "not json"), (INDEX, "[]"), (INDEX, '{"manifests": [{"platform": "x"}]}'), (INDEX, index("unknown")),
])
def test_what_cannot_be_told_without_the_config_blob_is_none(media_type: str, manifest: str) -> None:
    assert platforms_of(media_type, manifest) is None


def test_the_ec2_architectures_an_image_lacks() -> None:
    assert ec2_architectures_lacking(frozenset({"amd64"})) == ["i386", "arm64", "arm64_mac"]
    assert ec2_architectures_lacking(frozenset({"amd64", "arm64"})) == ["i386"]
    assert ec2_architectures_lacking(frozenset({"riscv64"})) == ["i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac"]


def test_instances_the_image_cannot_run_on_refuse_it_naming_image_platforms_and_instances() -> None:
    assert architecture_refusal(IMAGE, frozenset({"amd64"}), {}) is None
    lacking = {f"i-{n:017x}": "arm64" for n in range(7)}
    refusal = architecture_refusal(IMAGE, frozenset({"amd64"}), lacking)
    assert isinstance(refusal, ArchitectureMismatch) and refusal.http_status == 409 and refusal.field == "image"
    assert refusal.message.startswith(f"image {IMAGE} has platforms amd64 but the target's instances include arm64: "
                                      "i-00000000000000000 (arm64), ")
    assert "and 2 more" in refusal.message


def test_findings_at_or_above_the_policy_refuse_naming_the_counts() -> None:
    scan = ScanResult("COMPLETE", {"CRITICAL": 1, "HIGH": 2, "LOW": 5, "UNDEFINED": 3})
    refusal = scan_refusal(IMAGE, "HIGH", scan)
    assert isinstance(refusal, ScanFindings)
    assert "at or above HIGH (image_policy.max_severity): 1 CRITICAL, 2 HIGH." in refusal.message
    assert scan_refusal(IMAGE, "CRITICAL", ScanResult("COMPLETE", {"HIGH": 9, "UNDEFINED": 1})) is None
    low = scan_refusal(IMAGE, "INFORMATIONAL", ScanResult("COMPLETE", {"INFORMATIONAL": 4}))
    assert low is not None and "4 INFORMATIONAL" in low.message


def test_a_scan_still_running_waits_and_no_scan_or_a_failed_one_refuses() -> None:
    assert isinstance(scan_refusal(IMAGE, "HIGH", ScanResult("IN_PROGRESS", {})), ScanPending)
    assert isinstance(scan_refusal(IMAGE, "HIGH", ScanResult("PENDING", {})), ScanPending)
    none = scan_refusal(IMAGE, "HIGH", ScanResult("NONE", {}))
    assert isinstance(none, ScanFindings) and "ECR holds no scan of it" in none.message
    failed = scan_refusal(IMAGE, "HIGH", ScanResult("FAILED", {}, "UnsupportedImageError"))
    assert isinstance(failed, ScanFindings) and "its scan is FAILED (UnsupportedImageError)" in failed.message


def test_counts_come_from_the_findings_summary() -> None:
    assert scan_counts({"imageScanFindings": {"findingSeverityCounts": {"HIGH": 1}}}) == {"HIGH": 1}
    assert scan_counts({}) == {}
