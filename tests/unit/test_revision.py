"""The revision inside a pipeline artifact: which image it names, and whether its appspec is sound."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain.errors import InvalidRevision
from chalicelib.domain.revision import check_appspec, image_from_artifact

REPO = Path(__file__).resolve().parents[2]
WEB = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:20240912"
SIDECAR = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sidecar:3"


def definitions(entries: Any) -> bytes:
    return json.dumps(entries).encode()


def error_of(files: dict[str, bytes], container: str = "web") -> str:
    with pytest.raises(InvalidRevision) as caught:
        image_from_artifact(files, container)
    return caught.value.message


# ------------------------------------------------------------------------------------------------ imagedefinitions

def test_image_definitions_pick_the_entry_named_after_the_container() -> None:
    files = {"imagedefinitions.json": definitions([{"name": "sidecar", "imageUri": SIDECAR},
                                                    {"name": "web", "imageUri": WEB}])}
    assert image_from_artifact(files, "web") == WEB
    assert image_from_artifact(files, "sidecar") == SIDECAR


def test_image_definitions_with_a_byte_order_mark() -> None:
    files = {"imagedefinitions.json": b"\xef\xbb\xbf" + definitions([{"name": "web", "imageUri": WEB}])}
    assert image_from_artifact(files, "web") == WEB


def test_a_missing_container_name_lists_the_names_there_are() -> None:
    files = {"imagedefinitions.json": definitions([{"name": "sidecar", "imageUri": SIDECAR},
                                                    {"name": "worker", "imageUri": WEB}])}
    assert error_of(files) == ("imagedefinitions.json has no entry named 'web' (the container's name); "
                               "it names: sidecar, worker")


def test_an_empty_definitions_list_names_nothing() -> None:
    assert error_of({"imagedefinitions.json": b"[]"}).endswith("it names: nothing")


@pytest.mark.parametrize("raw", [b'{"name": "web", "imageUri": "x"}', b'"web"', b"null", b"3"])
def test_image_definitions_must_be_a_list(raw: bytes) -> None:
    assert "must be a list" in error_of({"imagedefinitions.json": raw})


@pytest.mark.parametrize("entry", [{"name": "web"}, {"name": "web", "imageUri": ""},
                                   {"name": "web", "imageUri": None}, {"name": "web", "imageUri": ["x"]}])
def test_an_entry_without_an_image_uri_string(entry: dict[str, Any]) -> None:
    assert error_of({"imagedefinitions.json": definitions([entry])}) == (
        "imagedefinitions.json entry 'web' has no imageUri string")


@pytest.mark.parametrize("entries", [["web"], [None], [{"name": "other", "imageUri": "x"}, 7]])
def test_entries_must_be_objects(entries: list[Any]) -> None:
    assert "entries must be objects" in error_of({"imagedefinitions.json": definitions(entries)})


@pytest.mark.parametrize(("name", "raw"), [
    ("imagedefinitions.json", b"[{"),
    ("imagedefinitions.json", b"\xff\xfe not utf-8"),
    ("imageDetail.json", b"{'ImageURI': 'x'}"),
    ("imageDetail.json", b"\x80"),
    ("image.txt", b"\xc3\x28"),
])
def test_unreadable_files_name_themselves(name: str, raw: bytes) -> None:
    assert error_of({name: raw}).startswith(name)


# ------------------------------------------------------------------------------------------ imageDetail, image.txt

def test_image_detail_from_an_ecr_source_action() -> None:
    detail = {"ImageSizeInBytes": "1", "ImageDigest": "sha256:" + "a" * 64, "Version": "1.0",
              "ImagePushedAt": "Mon Jan 21 20:04:24 UTC 2019", "RegistryId": "123456789012",
              "RepositoryName": "web", "ImageURI": WEB, "ImageTags": ["20240912"]}
    assert image_from_artifact({"imageDetail.json": json.dumps(detail).encode()}, "web") == WEB


@pytest.mark.parametrize("raw", [b"{}", b'{"ImageURI": ""}', b'{"ImageURI": 5}', b'["x"]', b'{"imageUri": "x"}'])
def test_image_detail_without_an_image_uri(raw: bytes) -> None:
    assert error_of({"imageDetail.json": raw}) == "imageDetail.json has no ImageURI string"


@pytest.mark.parametrize("raw", [WEB.encode(), f"{WEB}\n".encode(), f"  {WEB}  \r\n".encode(),
                                 b"\xef\xbb\xbf" + WEB.encode() + b"\n\n"])
def test_image_txt_holds_one_reference(raw: bytes) -> None:
    assert image_from_artifact({"image.txt": raw}, "web") == WEB


@pytest.mark.parametrize("raw", [f"{WEB}\n{SIDECAR}\n".encode(), b"", b"\n\n", b"   "])
def test_image_txt_with_other_than_one_line_is_rejected(raw: bytes) -> None:
    assert error_of({"image.txt": raw}) == "image.txt must hold exactly one image reference on one line"


def test_preference_order() -> None:
    everything = {"imagedefinitions.json": definitions([{"name": "web", "imageUri": "from-definitions"}]),
                  "imageDetail.json": b'{"ImageURI": "from-detail"}', "image.txt": b"from-text\n"}
    assert image_from_artifact(everything, "web") == "from-definitions"
    del everything["imagedefinitions.json"]
    assert image_from_artifact(everything, "web") == "from-detail"
    del everything["imageDetail.json"]
    assert image_from_artifact(everything, "web") == "from-text"


def test_a_bad_preferred_file_is_not_skipped_for_a_good_one() -> None:
    files = {"imagedefinitions.json": definitions([{"name": "other", "imageUri": "x"}]), "image.txt": b"web:1"}
    with pytest.raises(InvalidRevision):
        image_from_artifact(files, "web")


@pytest.mark.parametrize("files", [{}, {"appspec.yml": b"version: 0.0"}, {"imagedefinitions.JSON": b"[]"}])
def test_no_image_file_says_which_to_add(files: dict[str, bytes]) -> None:
    message = error_of(files)
    for name in ("imagedefinitions.json", "imageDetail.json", "image.txt", "image"):
        assert name in message


# ------------------------------------------------------------------------------------------------ appspec

GOOD_APPSPEC = b"""\
version: 0.0
os: linux
files:
  - source: /
    destination: /opt/app
hooks:
  BeforeInstall:
    - location: scripts/install.sh
      timeout: 300
      runas: root
  ApplicationStart:
    - location: scripts/start.sh
    - location: scripts/warm.sh
      timeout: 3600
"""


def test_the_repositorys_own_appspec_passes() -> None:
    assert check_appspec((REPO / "appspec.yml").read_bytes()) is None


@pytest.mark.parametrize("raw", [
    GOOD_APPSPEC,
    b"version: 0.0\nos: linux\n",
    b"version: 0.0\nos: windows\nhooks: {}\n",
    b'version: "0.0"\nos: linux\nhooks:\n  ValidateService:\n    - location: v.sh\n      timeout: 1\n',
    b"\xef\xbb\xbfversion: 0.0\nos: linux\n",
])
def test_well_formed_appspecs(raw: bytes) -> None:
    assert check_appspec(raw) is None


@pytest.mark.parametrize(("raw", "message"), [
    (b"version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: [unclosed\n",
     "appspec.yml is not valid YAML at line"),
    (b"version: 0.0\n\tos: linux\n", "appspec.yml is not valid YAML"),
    (b"\xff\xfe", "appspec.yml is not UTF-8 text"),
    (b"", "appspec.yml must be a mapping"),
    (b"- version: 0.0\n", "appspec.yml must be a mapping"),
    (b"just text", "appspec.yml must be a mapping"),
    (b"os: linux\n", "'version' must be 0.0"),
    (b"version: 1.0\nos: linux\n", "'version' must be 0.0"),
    (b"version: 0.1\nos: linux\n", "'version' must be 0.0"),
    (b"version: 0.0\n", "'os' must be linux or windows"),
    (b"version: 0.0\nos: macos\n", "'os' must be linux or windows"),
    (b"version: 0.0\nos: linux\nhooks: [BeforeInstall]\n", "'hooks' must map"),
    (b"version: 0.0\nos: linux\nhooks:\n  AfterDeploy:\n    - location: a.sh\n",
     "'AfterDeploy' is not a CodeDeploy lifecycle event"),
    (b"version: 0.0\nos: linux\nhooks:\n  beforeinstall:\n    - location: a.sh\n", "not a CodeDeploy lifecycle"),
    (b"version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n", "hook BeforeInstall must be a list"),
    (b"version: 0.0\nos: linux\nhooks:\n  BeforeInstall: []\n", "hook BeforeInstall must be a list"),
    (b"version: 0.0\nos: linux\nhooks:\n  BeforeInstall: a.sh\n", "hook BeforeInstall must be a list"),
    (b"version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - timeout: 30\n", "needs a 'location'"),
    (b"version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - a.sh\n", "needs a 'location'"),
    (b"version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: 5\n", "needs a 'location'"),
    (b"version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: a.sh\n      timeout: 3601\n",
     "hook BeforeInstall timeout must be 1 to 3600 seconds"),
    (b"version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: a.sh\n      timeout: 0\n",
     "timeout must be 1 to 3600"),
    (b"version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: a.sh\n      timeout: '60'\n",
     "timeout must be 1 to 3600"),
    (b"version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: a.sh\n      timeout: 1.5\n",
     "timeout must be 1 to 3600"),
])
def test_bad_appspecs(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidRevision) as caught:
        check_appspec(raw)
    assert message in caught.value.message


def test_a_yaml_error_names_its_line() -> None:
    raw = b"version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: \"unclosed\n"
    with pytest.raises(InvalidRevision) as caught:
        check_appspec(raw)
    assert caught.value.message.startswith("appspec.yml is not valid YAML at line ")
    assert caught.value.__cause__ is None
