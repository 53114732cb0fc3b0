"""The peer of berth's pipeline Lambda in the first-invocation benchmark (bench/first_call.py).

A CodePipeline invoke action written plainly with boto3, doing the AWS work of berth's first invocation and no more:
read the input artifact from S3 with the job's artifact credentials, pin the image to its ECR digest, find the tagged
instances, record the deployment with a conditional write, send one SSM command by tag, and answer with a
continuation token. No validation, no retries, no logs or metrics: the least any function doing this work pays.
"""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from typing import Any

import boto3


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    job = event["CodePipeline.job"]
    data = job["data"]
    params = json.loads(data["actionConfiguration"]["configuration"]["UserParameters"])
    container = params["container"]["name"]

    credentials = data["artifactCredentials"]
    location = data["inputArtifacts"][0]["location"]["s3Location"]
    s3 = boto3.client("s3", aws_access_key_id=credentials["accessKeyId"],
                      aws_secret_access_key=credentials["secretAccessKey"],
                      aws_session_token=credentials["sessionToken"])
    body = s3.get_object(Bucket=location["bucketName"], Key=location["objectKey"])["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        definitions = json.loads(archive.read("imagedefinitions.json"))
    image = next(entry["imageUri"] for entry in definitions if entry["name"] == container)

    registry, _, repository_tag = image.partition("/")
    repository, _, tag = repository_tag.rpartition(":")
    account, region = registry.split(".")[0], registry.split(".")[3]
    details = boto3.client("ecr", region_name=region).describe_images(
        registryId=account, repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    pinned = f"{registry}/{repository}@{details[0]['imageDigest']}"

    ec2 = boto3.client("ec2")
    instances: set[str] | None = None
    for key, value in params["instances"]["tags"].items():
        tags = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["instance"]},
                                          {"Name": "key", "Values": [key]},
                                          {"Name": "value", "Values": [value]}])["Tags"]
        found = {tag["ResourceId"] for tag in tags}
        instances = found if instances is None else instances & found

    deployment_id = f"d-{uuid.uuid4().hex[:16]}"
    boto3.client("dynamodb").put_item(
        TableName=os.environ["BERTH_TABLE"], ConditionExpression="attribute_not_exists(pk)",
        Item={"pk": {"S": f"PEER#{params['target']}"}, "sk": {"S": "LOCK"}, "deployment_id": {"S": deployment_id},
              "image": {"S": pinned}, "instances": {"SS": sorted(instances or {"none"})}})

    ports = " ".join(f"-p {mapping}" for mapping in params["container"].get("ports", []))
    command_id = boto3.client("ssm").send_command(
        DocumentName="AWS-RunShellScript", Comment=f"peer {deployment_id}",
        Targets=[{"Key": f"tag:{key}", "Values": [value]} for key, value in params["instances"]["tags"].items()],
        Parameters={"commands": [f"docker pull {pinned}", f"docker rm -f {container} || true",
                                 f"docker run -d --name {container} {ports} {pinned}"]},
    )["Command"]["CommandId"]

    boto3.client("codepipeline").put_job_success_result(
        jobId=job["id"], continuationToken=json.dumps({"d": deployment_id}),
        executionDetails={"summary": f"{pinned} sent to {len(instances or ())} instances", "percentComplete": 0,
                          "externalExecutionId": deployment_id})
    return {"deployment_id": deployment_id, "command_id": command_id}
