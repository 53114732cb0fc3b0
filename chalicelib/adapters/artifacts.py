"""The pipeline's input artifact: a zip in S3, read with the job's temporary artifact credentials."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.errors import aws_call, error_code
from chalicelib.domain.errors import ArtifactUnreadable
from chalicelib.domain.job import Artifact, ArtifactCredentials
from chalicelib.domain.revision import ARTIFACT_FILES

MAX_ARTIFACT_BYTES = 50 * 1024 * 1024
MAX_FILE_BYTES = 1024 * 1024
# zipfile keeps an object of about 430 bytes per member listed: 4 MiB of directory is 40,000 to 90,000 members.
MAX_DIRECTORY_BYTES = 4 * 1024 * 1024
_END, _ZIP64_LOCATOR, _ZIP64_END = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
_END_SEARCH = 22 + 0xFFFF                         # the end record, and a comment of at most 64 KiB after it
_CHUNK = 64 * 1024
_ENCRYPTED = 0x1
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")      # signature ... file name length, extra field length
_METHODS = {1: "shrink", 6: "implode", 9: "deflate64", 12: "bzip2", 14: "LZMA", 93: "zstd", 95: "xz", 98: "PPMd",
            99: "AES encryption"}


class ArtifactReader:
    def __init__(self, s3_client_for: Callable[[ArtifactCredentials | None], Any]) -> None:
        self._s3_for = s3_client_for

    def read(self, artifact: Artifact, credentials: ArtifactCredentials | None) -> dict[str, bytes]:
        """The files berth reads (ARTIFACT_FILES, at the zip's top level), by name."""
        location = artifact.location.s3_location
        if artifact.location.type != "S3" or location is None:
            raise ArtifactUnreadable(f"input artifact {artifact.name!r} is not in S3")
        where = f"s3://{location.bucket_name}/{location.object_key}"

        def unreadable(exc: ClientError | BotoCoreError) -> ArtifactUnreadable:
            if isinstance(exc, ClientError):
                return ArtifactUnreadable(
                    f"cannot read input artifact {artifact.name!r} at {where}: {error_code(exc)}; check that the "
                    "artifact exists and the pipeline's artifact store is readable")
            return ArtifactUnreadable(f"cannot read input artifact {where}: {type(exc).__name__}")

        # The body is read inside the call: a stream that breaks off is as unreadable as a refused GetObject.
        body = aws_call("S3 GetObject", self._download, failure=unreadable, credentials=credentials,
                        bucket=location.bucket_name, key=location.object_key, where=where)
        return read_files(body, f"input artifact {artifact.name!r} ({where})")

    def _download(self, credentials: ArtifactCredentials | None, bucket: str, key: str, where: str) -> bytes:
        obj = self._s3_for(credentials).get_object(Bucket=bucket, Key=key)
        if int(obj.get("ContentLength", 0)) > MAX_ARTIFACT_BYTES:
            raise ArtifactUnreadable(f"input artifact {where} is larger than {MAX_ARTIFACT_BYTES} bytes")
        body = obj["Body"].read(MAX_ARTIFACT_BYTES + 1)
        if len(body) > MAX_ARTIFACT_BYTES:
            raise ArtifactUnreadable(f"input artifact {where} is larger than {MAX_ARTIFACT_BYTES} bytes")
        return bytes(body)


def read_files(body: bytes, where: str) -> dict[str, bytes]:
    """The files berth reads (ARTIFACT_FILES, at the zip's top level), by name, from the zip in `body`.

    Only those members are inflated, in bounded chunks whatever their headers claim, and each must come out whole,
    no longer than MAX_FILE_BYTES, matching its header's size and CRC. Anything else is an ArtifactUnreadable that
    names `where`, the member and what is wrong with it.
    """
    directory = _directory_size(body)
    if directory > MAX_DIRECTORY_BYTES:
        raise ArtifactUnreadable(
            f"{where}: its zip directory is {directory} bytes, more than berth reads ({MAX_DIRECTORY_BYTES}, some "
            "tens of thousands of files): give the berth action an artifact with only the files it reads "
            f"({', '.join(ARTIFACT_FILES)})")
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            members = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, struct.error):
        raise ArtifactUnreadable(f"{where} is not a zip file (or its directory is damaged)") from None
    return {name: _member(body, members[name], f"{where}: {name}") for name in ARTIFACT_FILES if name in members}


def _directory_size(body: bytes) -> int:
    """The central directory's size as the end records state it (zip64's when there is one), read before zipfile
    builds an object per member: a small artifact may list a million members. 0 when there is no end record."""
    at = body.rfind(_END, max(0, len(body) - _END_SEARCH))
    if at < 0 or len(body) < at + 22:
        return 0
    size = int.from_bytes(body[at + 12:at + 16], "little")
    locator = at - 20
    if locator >= 0 and body[locator:locator + 4] == _ZIP64_LOCATOR:
        record = int.from_bytes(body[locator + 8:locator + 16], "little")
        if body[record:record + 4] == _ZIP64_END and len(body) >= record + 56:
            size = int.from_bytes(body[record + 40:record + 48], "little")   # what zipfile reads, too
    return size


def _member(body: bytes, info: zipfile.ZipInfo, what: str) -> bytes:
    if info.flag_bits & _ENCRYPTED:
        raise ArtifactUnreadable(f"{what} is encrypted; berth reads only unencrypted members")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        method = info.compress_type
        raise ArtifactUnreadable(
            f"{what} is compressed with method {method} ({_METHODS.get(method, 'unknown')}); berth reads only stored "
            "or deflated members (zip's default): write the artifact with deflate")
    if info.file_size > MAX_FILE_BYTES:
        raise ArtifactUnreadable(f"{what} is {info.file_size} bytes; berth reads files of at most {MAX_FILE_BYTES} "
                                 "bytes (1 MiB)")
    data = _stored_bytes(body, info, what)
    if info.compress_type == zipfile.ZIP_STORED:
        content = bytes(data[:MAX_FILE_BYTES + 1])
        if len(content) != info.file_size:
            raise ArtifactUnreadable(f"{what} holds {len(content)} bytes but its header says {info.file_size}: the "
                                     "artifact is corrupt")
    else:
        content = _inflate(data, info, what)
    if zlib.crc32(content) != info.CRC:
        raise ArtifactUnreadable(f"{what} fails its CRC check: the artifact is corrupt")
    return content


def _stored_bytes(body: bytes, info: zipfile.ZipInfo, what: str) -> memoryview:
    """The member's bytes as stored, after its local header; never more than the archive holds."""
    start = info.header_offset
    header = body[start:start + _LOCAL_HEADER.size]
    if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise ArtifactUnreadable(f"{what}: its local header is missing or damaged: the artifact is corrupt")
    name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
    data_start = start + _LOCAL_HEADER.size + name_length + extra_length
    return memoryview(body)[data_start:data_start + info.compress_size]


def _inflate(data: memoryview, info: zipfile.ZipInfo, what: str) -> bytes:
    """Inflate a raw deflate stream a chunk at a time, refusing it as soon as it passes MAX_FILE_BYTES: the header's
    sizes are not trusted, so a zip bomb costs at most a chunk past the limit."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    content = bytearray()
    try:
        for start in range(0, len(data), _CHUNK):
            pending: bytes | memoryview = data[start:start + _CHUNK]
            while pending and not inflater.eof:
                content += inflater.decompress(pending, _CHUNK)
                if len(content) > MAX_FILE_BYTES:
                    raise ArtifactUnreadable(
                        f"{what} inflates to more than {MAX_FILE_BYTES} bytes (its header claims {info.file_size}); "
                        "refused unread: berth reads files of at most 1 MiB")
                pending = inflater.unconsumed_tail
            if inflater.eof:
                break
        content += inflater.flush()
    except zlib.error as exc:
        raise ArtifactUnreadable(f"{what} is not valid deflate data ({exc}): the artifact is corrupt") from None
    if not inflater.eof:
        raise ArtifactUnreadable(f"{what} ends before its deflate stream does: the artifact is truncated or corrupt")
    if len(content) != info.file_size:
        raise ArtifactUnreadable(f"{what} inflates to {len(content)} bytes but its header says {info.file_size}: the "
                                 "artifact is corrupt")
    return bytes(content)
