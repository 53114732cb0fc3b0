"""The pipeline's input artifact: a zip in S3, read with the job's temporary artifact credentials."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.errors import error_code
from chalicelib.domain.errors import ArtifactUnreadable
from chalicelib.domain.job import Artifact, ArtifactCredentials
from chalicelib.domain.revision import ARTIFACT_FILES

MAX_ARTIFACT_BYTES = 50 * 1024 * 1024
MAX_FILE_BYTES = 1024 * 1024


class ArtifactReader:
    def __init__(self, s3_client_for: Callable[[ArtifactCredentials | None], Any]) -> None:
        self._s3_for = s3_client_for

    def read(self, artifact: Artifact, credentials: ArtifactCredentials | None) -> dict[str, bytes]:
        """The files berth reads (ARTIFACT_FILES, at the zip's top level), by name."""
        location = artifact.location.s3_location
        if artifact.location.type != "S3" or location is None:
            raise ArtifactUnreadable(f"input artifact {artifact.name!r} is not in S3")
        where = f"s3://{location.bucket_name}/{location.object_key}"
        try:
            obj = self._s3_for(credentials).get_object(Bucket=location.bucket_name, Key=location.object_key)
            if int(obj.get("ContentLength", 0)) > MAX_ARTIFACT_BYTES:
                raise ArtifactUnreadable(f"input artifact {where} is larger than {MAX_ARTIFACT_BYTES} bytes")
            body = obj["Body"].read(MAX_ARTIFACT_BYTES + 1)
        except ClientError as exc:
            raise ArtifactUnreadable(
                f"cannot read input artifact {artifact.name!r} at {where}: {error_code(exc)}; check that the "
                "artifact exists and the pipeline's artifact store is readable"
            ) from None
        except BotoCoreError as exc:
            raise ArtifactUnreadable(f"cannot read input artifact {where}: {type(exc).__name__}") from None
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                names = {info.filename: info for info in archive.infolist()}
                return {name: archive.read(names[name]) for name in ARTIFACT_FILES
                        if name in names and names[name].file_size <= MAX_FILE_BYTES}
        except zipfile.BadZipFile:
            raise ArtifactUnreadable(f"input artifact {where} is not a zip file") from None
