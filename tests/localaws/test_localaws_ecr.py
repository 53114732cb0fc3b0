"""ECR as berth's checks read it: BatchGetImage hands back an image index as pushed (moto), and the scan findings a
test sets (localaws) come back in DescribeImageScanFindings' own shape, beside moto's answer for other images."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError
from localaws_shape_check import assert_matches_output
from localaws_testkit import client

import localaws

INDEX = "application/vnd.oci.image.index.v1+json"


def push(ecr: Any, tag: str, manifest: dict[str, Any]) -> str:
    return str(ecr.put_image(repositoryName="web", imageManifest=json.dumps(manifest), imageTag=tag)["image"][
        "imageId"]["imageDigest"])


@pytest.fixture
def ecr(aws: None) -> Any:
    ecr = client("ecr")
    ecr.create_repository(repositoryName="web")
    return ecr


def test_batch_get_image_returns_an_index_with_its_media_type_and_platforms(ecr: Any) -> None:
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": "sha256:" + "1" * 64,
         "platform": {"architecture": "arm64", "os": "linux"}}]}
    digest = push(ecr, "v1", index)
    found = ecr.batch_get_image(repositoryName="web", imageIds=[{"imageDigest": digest}],
                                acceptedMediaTypes=[INDEX])["images"][0]
    assert found["imageManifestMediaType"] == INDEX
    assert json.loads(found["imageManifest"])["manifests"][0]["platform"]["architecture"] == "arm64"


def test_scan_findings_set_for_an_image_come_back_shaped(ecr: Any) -> None:
    digest = push(ecr, "v1", {"schemaVersion": 2, "mediaType": INDEX, "manifests": []})
    localaws.set_scan_findings("web", digest, "COMPLETE", {"CRITICAL": 2, "LOW": 1})
    reply = ecr.describe_image_scan_findings(repositoryName="web", imageId={"imageDigest": digest}, maxResults=1)
    assert_matches_output("ecr", "DescribeImageScanFindings", reply)
    assert reply["imageScanStatus"]["status"] == "COMPLETE"
    assert reply["imageScanFindings"]["findingSeverityCounts"] == {"CRITICAL": 2, "LOW": 1}
    by_tag = ecr.describe_image_scan_findings(repositoryName="web", imageId={"imageTag": "v1"})
    assert by_tag["imageScanFindings"]["findingSeverityCounts"] == {"CRITICAL": 2, "LOW": 1}

    localaws.set_scan_findings("web", digest, "IN_PROGRESS")
    running = ecr.describe_image_scan_findings(repositoryName="web", imageId={"imageDigest": digest})
    assert running["imageScanStatus"]["status"] == "IN_PROGRESS" and "imageScanFindings" not in running


def test_other_images_keep_motos_answer_and_unknown_ones_its_errors(ecr: Any) -> None:
    digest = push(ecr, "v2", {"schemaVersion": 2, "mediaType": INDEX, "manifests": []})
    with pytest.raises(ClientError) as unscanned:
        ecr.describe_image_scan_findings(repositoryName="web", imageId={"imageDigest": digest})
    assert unscanned.value.response["Error"]["Code"] == "ScanNotFoundException"
    with pytest.raises(ClientError) as missing:
        ecr.describe_image_scan_findings(repositoryName="web", imageId={"imageDigest": "sha256:" + "0" * 64})
    assert missing.value.response["Error"]["Code"] == "ImageNotFoundException"
    with pytest.raises(ParamValidationError):
        ecr.describe_image_scan_findings(repositoryName="web", imageId={"imageDigest": digest}, maxResults=0)
