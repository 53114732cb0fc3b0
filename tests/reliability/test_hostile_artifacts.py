"""Hostile pipeline artifacts: zip bombs, corrupt or exotic compression, oversized and deeply nested files.

Each gets exactly one failure result that names the artifact, the member and what is wrong with it, and no command
is sent. The zip bomb is inflated in bounded chunks whatever its headers claim: a tracemalloc bound shows that
reading it never holds more than a few MiB.
"""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zipfile
import zlib
from dataclasses import dataclass
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.adapters.artifacts import MAX_FILE_BYTES, read_files
from chalicelib.domain.errors import InvalidRevision
from chalicelib.domain.revision import check_appspec, image_from_artifact
from tests.conftest import World
from tests.events import pipeline_job_event
from tests.functional.support import TAGS, invoke, jid, results, spec

WHERE = "input artifact 'ArtifactName' (s3://codepipeline-artifacts/pipeline/BuildArtif/hostile)"
GIB = 1 << 30


@dataclass(frozen=True)
class Member:
    """One zip member as written, headers included, so a test can make them lie."""

    name: str
    data: bytes                      # as stored: compressed with `method`
    method: int = zipfile.ZIP_STORED
    size: int | None = None          # the uncompressed size the headers claim (default: the true one, if stored)
    crc: int | None = None
    flags: int = 0


def raw_zip(*members: Member) -> bytes:
    """A zip archive written by hand: local headers, data, central directory, end record."""
    body, central = b"", b""
    for m in members:
        name = m.name.encode()
        size = len(m.data) if m.size is None else m.size
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        offset = len(body)
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, m.flags, m.method, 0, 0, crc, len(m.data), size,
                            len(name), 0) + name + m.data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, m.flags, m.method, 0, 0, crc, len(m.data),
                               size, len(name), 0, 0, 0, 0, 0, offset) + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(body), 0)
    return body + central + end


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@cache
def bomb_stream(inflated: int = GIB) -> bytes:
    """A raw deflate stream of `inflated` zero bytes, about 1 KB per MiB: the same fully flushed block repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * (inflated >> 20) + compressor.flush()


def bomb() -> bytes:
    """imagedefinitions.json that claims 26 bytes and inflates to 1 GiB, in an artifact of about 1 MB."""
    return raw_zip(Member("imagedefinitions.json", bomb_stream(), zipfile.ZIP_DEFLATED, size=26, crc=0))


def compressed_with(method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        archive.writestr("imagedefinitions.json", json.dumps([{"name": "web", "imageUri": "nginx:1.27"}]))
    return buffer.getvalue()


DEFINITIONS = json.dumps([{"name": "web", "imageUri": "nginx:1.27"}]).encode()
OVERSIZED = b"[" + b" " * (2 * MAX_FILE_BYTES) + b"]"

HOSTILE: dict[str, tuple[bytes, str]] = {
    "zip bomb": (bomb(), f"imagedefinitions.json inflates to more than {MAX_FILE_BYTES} bytes (its header claims 26)"),
    "corrupt deflate stream": (
        raw_zip(Member("imagedefinitions.json", b"\xff" * 64, zipfile.ZIP_DEFLATED, size=100)),
        "imagedefinitions.json is not valid deflate data"),
    "truncated deflate stream": (
        raw_zip(Member("imagedefinitions.json", deflated(DEFINITIONS * 50)[:40], zipfile.ZIP_DEFLATED,
                       size=len(DEFINITIONS) * 50)),
        "imagedefinitions.json ends before its deflate stream does"),
    "bzip2 member": (compressed_with(zipfile.ZIP_BZIP2),
                     "imagedefinitions.json is compressed with method 12 (bzip2)"),
    "lzma member": (compressed_with(zipfile.ZIP_LZMA), "imagedefinitions.json is compressed with method 14 (LZMA)"),
    "method 99": (raw_zip(Member("imagedefinitions.json", DEFINITIONS, 99)),
                  "imagedefinitions.json is compressed with method 99 (AES encryption)"),
    "unknown method": (raw_zip(Member("imagedefinitions.json", DEFINITIONS, 77)),
                       "imagedefinitions.json is compressed with method 77 (unknown)"),
    "encrypted member": (raw_zip(Member("imagedefinitions.json", DEFINITIONS, flags=1)),
                         "imagedefinitions.json is encrypted"),
    "oversized file": (raw_zip(Member("imagedefinitions.json", deflated(OVERSIZED), zipfile.ZIP_DEFLATED,
                                      size=len(OVERSIZED), crc=zlib.crc32(OVERSIZED))),
                       f"imagedefinitions.json is {len(OVERSIZED)} bytes; berth reads files of at most "
                       f"{MAX_FILE_BYTES} bytes"),
    "stored member longer than its header says": (
        raw_zip(Member("imagedefinitions.json", DEFINITIONS, size=5)),
        f"imagedefinitions.json holds {len(DEFINITIONS)} bytes but its header says 5"),
    "bad CRC": (raw_zip(Member("imagedefinitions.json", DEFINITIONS, crc=1234)),
                "imagedefinitions.json fails its CRC check"),
    "header pointing past the end": (raw_zip(Member("imagedefinitions.json", DEFINITIONS))[:20] + b"\0" * 200,
                                     "is not a zip file"),
    "not a zip": (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "is not a zip file"),
    "deeply nested JSON": (raw_zip(Member("imagedefinitions.json", b"[" * 100_000)),
                           "imagedefinitions.json is nested too deeply"),
    "deeply nested JSON, deflated": (
        raw_zip(Member("imagedefinitions.json", deflated(b"[" * 1_000_000), zipfile.ZIP_DEFLATED, size=1_000_000,
                       crc=zlib.crc32(b"[" * 1_000_000))),
        "imagedefinitions.json is nested too deeply"),
    "a 5000-digit number": (raw_zip(Member("imagedefinitions.json", b"[" + b"9" * 5000 + b"]")),
                            "imagedefinitions.json holds a number of more than 4300 digits"),
    "deeply nested appspec": (
        raw_zip(Member("image.txt", b"nginx:1.27"), Member("appspec.yml", b"[" * 100_000)),
        "appspec.yml is nested too deeply"),
    "nested imageDetail.json": (raw_zip(Member("imageDetail.json", b"{\"a\":" * 50_000)),
                                "imageDetail.json is nested too deeply"),
}


def failure_of(body: bytes) -> str:
    with pytest.raises(InvalidRevision) as caught:
        files = read_files(body, WHERE)
        if "appspec.yml" in files:
            check_appspec(files["appspec.yml"])
        image_from_artifact(files, "web")
    return caught.value.message


@pytest.mark.parametrize("case", HOSTILE)
def test_each_hostile_artifact_is_one_clear_error(case: str) -> None:
    body, expected = HOSTILE[case]
    message = failure_of(body)
    assert expected in message
    assert len(message) <= 5000


def test_a_zip_bomb_is_refused_without_inflating_it() -> None:
    body = bomb()
    assert len(body) < 1_100_000                       # an artifact of about 1 MB that would inflate to 1 GiB
    tracemalloc.start()
    try:
        with pytest.raises(InvalidRevision, match="inflates to more than"):
            read_files(body, WHERE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * (1 << 20), f"reading the bomb held {peak / (1 << 20):.0f} MiB at its peak"


def many_members(count: int) -> bytes:
    """A zip whose central directory lists `count` empty members (about 50 bytes each, nothing else)."""
    entry = struct.Struct("<4s6H3L5H2L")
    directory = b"".join(entry.pack(b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0)
                         + b"%06x" % (n % 0xFFFFFF) for n in range(count))
    return directory + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(directory), 0, 0)


def test_a_zip_listing_a_million_members_is_refused_before_its_directory_is_parsed() -> None:
    body = many_members(1_000_000)                     # 52 MB of directory: about 430 MB of ZipInfo objects
    tracemalloc.start()
    try:
        with pytest.raises(InvalidRevision, match=r"zip directory is 52000000 bytes, more than berth reads \(4194304"):
            read_files(body, WHERE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * (1 << 20), f"reading the directory held {peak / (1 << 20):.0f} MiB at its peak"


def test_a_zip_with_many_members_within_the_bound_is_read() -> None:
    body = raw_zip(*(Member(f"src/file{n}.py", b"") for n in range(20_000)), Member("image.txt", b"nginx:1.27"))
    assert read_files(body, WHERE) == {"image.txt": b"nginx:1.27"}


def test_a_zip64_directory_is_measured_by_its_zip64_end_record() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:       # more than 65535 members: zipfile writes zip64 end records
        for n in range(70_000):
            archive.writestr(f"f{n:05d}", b"")
        archive.writestr("image.txt", b"nginx:1.27")
    body = buffer.getvalue()
    assert b"PK\x06\x06" in body[-200:]
    assert read_files(body, WHERE) == {"image.txt": b"nginx:1.27"}


def test_a_bomb_that_tells_the_truth_in_its_header_is_refused_by_the_header() -> None:
    body = raw_zip(Member("image.txt", bomb_stream(64 << 20), zipfile.ZIP_DEFLATED, size=64 << 20))
    assert f"image.txt is {64 << 20} bytes; berth reads files of at most" in failure_of(body)


def test_a_member_up_to_the_limit_is_read_whole() -> None:
    content = b"nginx:1.27" + b" " * (MAX_FILE_BYTES - 10)
    body = raw_zip(Member("image.txt", deflated(content), zipfile.ZIP_DEFLATED, size=len(content),
                          crc=zlib.crc32(content)), Member("appspec.yml", b"version: 0.0\nos: linux\n"))
    assert read_files(body, WHERE) == {"image.txt": content, "appspec.yml": b"version: 0.0\nos: linux\n"}


def test_members_berth_does_not_read_are_never_inflated() -> None:
    body = raw_zip(Member("image.txt", b"nginx:1.27"),
                   Member("big/layer.tar", bomb_stream(), zipfile.ZIP_DEFLATED, size=26, crc=0))
    assert read_files(body, WHERE) == {"image.txt": b"nginx:1.27"}


VALID = raw_zip(Member("imagedefinitions.json", deflated(DEFINITIONS), zipfile.ZIP_DEFLATED, size=len(DEFINITIONS),
                      crc=zlib.crc32(DEFINITIONS)),
                Member("appspec.yml", deflated(b"version: 0.0\nos: linux\n"), zipfile.ZIP_DEFLATED, size=23,
                       crc=zlib.crc32(b"version: 0.0\nos: linux\n")))


@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, len(VALID)))
@settings(max_examples=400, deadline=None)
def test_damaged_artifacts_raise_nothing_but_invalid_revision(flips: list[tuple[int, int]], keep: int) -> None:
    """Any bytes of a real artifact changed, and the artifact perhaps cut short: berth's own error or a result."""
    body = bytearray(VALID)
    for at, value in flips:
        body[at] = value
    try:
        files = read_files(bytes(body[:keep] if keep < len(body) else body), WHERE)
        if "appspec.yml" in files:
            check_appspec(files["appspec.yml"])
        image_from_artifact(files, "web")
    except InvalidRevision as exc:
        assert exc.message and len(exc.message) <= 5000


# --------------------------------------------------------------------------------------- through the pipeline job

@pytest.mark.parametrize("case", ["zip bomb", "corrupt deflate stream", "bzip2 member", "method 99",
                                  "oversized file", "deeply nested JSON", "a 5000-digit number",
                                  "deeply nested appspec"])
def test_a_hostile_artifact_fails_the_job_once_naming_the_member(aws: World, case: str) -> None:
    body, expected = HOSTILE[case]
    aws.launch(1, TAGS)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="codepipeline-artifacts")
    s3.put_object(Bucket="codepipeline-artifacts", Key="pipeline/BuildArtif/hostile", Body=body)

    invoke(pipeline_job_event(job_id=jid(f"hostile-{case}"), user_parameters=json.dumps(spec()),
                              bucket="codepipeline-artifacts", key="pipeline/BuildArtif/hostile"))

    replies = results(jid(f"hostile-{case}"))
    assert len(replies) == 1 and replies[0]["type"] == "failure"
    message = replies[0]["failureDetails"]["message"]
    assert expected in message and "internal error" not in message
    assert replies[0]["failureDetails"]["type"] in ("RevisionUnavailable", "ConfigurationError")
    assert aws.client("ssm").list_commands()["Commands"] == []
