"""Docker image references: distribution/reference's grammar, ECR hosts, and what berth pins instances to."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import InvalidRevision
from chalicelib.domain.image_ref import ImageRef, parse_image_ref

DIGEST = "sha256:" + "0123456789abcdef" * 4
OTHER_DIGEST = "sha256:" + "f" * 64
ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize(("text", "expected"), [
    ("busybox", ImageRef(None, "busybox")),
    ("busybox:1.36", ImageRef(None, "busybox", "1.36")),
    ("library/busybox:1.36.1-musl", ImageRef(None, "library/busybox", "1.36.1-musl")),
    ("team/group/sub/app:v2", ImageRef(None, "team/group/sub/app", "v2")),
    ("my_app__x-z--w/a.b_c", ImageRef(None, "my_app__x-z--w/a.b_c")),
    # A first component with "." is a registry host, as Docker decides.
    ("a.b/c", ImageRef("a.b", "c")),
    ("0/9", ImageRef(None, "0/9")),
    ("docker.io/library/nginx:1.27", ImageRef("docker.io", "library/nginx", "1.27")),
    ("registry.example.com:5000/team/app:v1.2.3", ImageRef("registry.example.com:5000", "team/app", "v1.2.3")),
    ("Registry.Example.COM/app", ImageRef("Registry.Example.COM", "app")),
    ("my-registry.internal/app", ImageRef("my-registry.internal", "app")),
    ("localhost/app", ImageRef("localhost", "app")),
    ("localhost:5000/app:dev", ImageRef("localhost:5000", "app", "dev")),
    ("registry:5000/app", ImageRef("registry:5000", "app")),
    # Docker reads a lone "localhost:5000" as repository "localhost" with tag "5000"; so does berth.
    ("localhost:5000", ImageRef(None, "localhost", "5000")),
    (f"{ECR}/web:20240912", ImageRef(ECR, "web", "20240912")),
    (f"{ECR}/team/web", ImageRef(ECR, "team/web")),
    (f"busybox@{DIGEST}", ImageRef(None, "busybox", None, DIGEST)),
    (f"{ECR}/web@{DIGEST}", ImageRef(ECR, "web", None, DIGEST)),
    (f"ghcr.io/org/app:1.0@{DIGEST}", ImageRef("ghcr.io", "org/app", "1.0", DIGEST)),
    ("app:" + "t" * 128, ImageRef(None, "app", "t" * 128)),
    ("app:_Tag.With-Mixed_CASE", ImageRef(None, "app", "_Tag.With-Mixed_CASE")),
])
def test_valid_references_parse_into_their_parts(text: str, expected: ImageRef) -> None:
    assert parse_image_ref(text) == expected
    assert str(parse_image_ref(text)) == text


@pytest.mark.parametrize(("text", "region", "account"), [
    (f"{ECR}/web:1", "us-east-1", "123456789012"),
    ("210987654321.dkr.ecr.eu-west-3.amazonaws.com/a/b", "eu-west-3", "210987654321"),
    ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/web", "us-gov-west-1", "123456789012"),
    ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/web:1", "cn-north-1", "123456789012"),
    ("docker.io/library/nginx", None, None),
    ("nginx", None, None),
    ("localhost:5000/web", None, None),
    ("12345678901.dkr.ecr.us-east-1.amazonaws.com/web", None, None),
    (f"{ECR}.evil.example/web", None, None),
    ("public.ecr.aws/nginx/nginx:1", None, None),
])
def test_ecr_region_and_account_come_from_private_ecr_hosts_only(text: str, region: str | None,
                                                                 account: str | None) -> None:
    ref = parse_image_ref(text)
    assert (ref.ecr_region, ref.ecr_account) == (region, account)


@pytest.mark.parametrize("text", [
    "",
    "Busybox",
    "library/Busybox",
    "busy box",
    " busybox",
    "busybox ",
    "busybox\n",
    "busybox\t:1",
    "foo..bar",
    "foo/../bar",
    "foo//bar",
    "-foo",
    "_foo",
    ".foo",
    "foo-",
    "foo/",
    "/foo",
    "registry.example.com/",
    "registry.example.com//app",
    "exa_mple.com/app",
    "-bad.example.com/app",
    "host:port/app",
    "host:123456/app",
    "foo:",
    "foo:-tag",
    "foo:.tag",
    "foo:" + "t" * 129,
    "foo:bar:baz",
    "foo:ta/g",
    "foo@",
    "@" + DIGEST,
    "foo@sha256:abc",
    "foo@sha256:" + "a" * 63,
    "foo@sha256:" + "a" * 65,
    "foo@sha256:" + "A" * 64,
    "foo@sha512:" + "a" * 128,
    f"foo@{DIGEST}@{DIGEST}",
    "ümlaut",
    "foo:täg",
    "regístry.com/app",
    "foo\u200b",
    "foo\x00",
    "a" * 256,
    "r.example.com/" + "a" * 250,
    "x" * 513,
    "$(reboot)",
    "foo;reboot",
])
def test_invalid_references_raise_invalid_revision(text: str) -> None:
    with pytest.raises(InvalidRevision):
        parse_image_ref(text)


@pytest.mark.parametrize("value", [None, 5, b"busybox", ["busybox"]])
def test_non_strings_raise_invalid_revision(value: object) -> None:
    with pytest.raises(InvalidRevision):
        parse_image_ref(value)


def test_name_of_exactly_255_characters_is_accepted() -> None:
    assert parse_image_ref("a" * 255) == ImageRef(None, "a" * 255)


@pytest.mark.parametrize(("text", "mutable"), [
    ("busybox", True),
    ("busybox:latest", True),
    (f"{ECR}/web:latest", True),
    ("busybox:1.36", False),
    (f"busybox@{DIGEST}", False),
    (f"busybox:latest@{DIGEST}", False),
])
def test_is_mutable(text: str, mutable: bool) -> None:
    assert parse_image_ref(text).is_mutable == mutable


@pytest.mark.parametrize(("text", "pinned"), [
    ("busybox", "busybox"),
    ("busybox:1.36", "busybox:1.36"),
    (f"{ECR}/web:20240912", f"{ECR}/web:20240912"),
    (f"busybox:1.36@{DIGEST}", f"busybox@{DIGEST}"),
    (f"localhost:5000/app:dev@{DIGEST}", f"localhost:5000/app@{DIGEST}"),
])
def test_pinned_prefers_the_digest_over_the_tag(text: str, pinned: str) -> None:
    assert parse_image_ref(text).pinned == pinned


def test_with_digest_keeps_the_tag_and_pins_by_digest() -> None:
    ref = parse_image_ref(f"{ECR}/web:20240912")
    pinned = ref.with_digest(DIGEST)
    assert pinned == ImageRef(ECR, "web", "20240912", DIGEST)
    assert pinned.pinned == f"{ECR}/web@{DIGEST}"
    assert str(pinned) == f"{ECR}/web:20240912@{DIGEST}"
    assert ref == ImageRef(ECR, "web", "20240912")
    assert pinned.is_mutable is False


def test_with_digest_replaces_an_existing_digest() -> None:
    assert parse_image_ref(f"app@{DIGEST}").with_digest(OTHER_DIGEST) == ImageRef(None, "app", None, OTHER_DIGEST)


@pytest.mark.parametrize("digest", ["", "sha256:abc", "sha512:" + "a" * 128, "sha256:" + "A" * 64, "a" * 64,
                                    f" {DIGEST}", "sha256:" + "g" * 64])
def test_with_digest_rejects_what_is_not_a_sha256_digest(digest: str) -> None:
    with pytest.raises(InvalidRevision):
        parse_image_ref("app:1").with_digest(digest)


def test_with_digest_rejects_a_trailing_newline() -> None:
    with pytest.raises(InvalidRevision):
        parse_image_ref("app:1").with_digest(DIGEST + "\n")


# ------------------------------------------------------------------------------------------------ properties

_ALNUM = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_SEPARATORS = st.sampled_from([".", "_", "__", "-", "--"])


@st.composite
def _path_component(draw: st.DrawFn, separators: st.SearchStrategy[str] = _SEPARATORS) -> str:
    text = draw(_ALNUM)
    for _ in range(draw(st.integers(0, 2))):
        text += draw(separators) + draw(_ALNUM)
    return text


_DOMAIN_COMPONENT = st.from_regex(r"\A[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?\Z")
_PORT = st.integers(1, 99999).map(lambda port: f":{port}")


@st.composite
def _registry(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["dotted", "port", "localhost", "ecr"]))
    if kind == "localhost":
        return "localhost" + draw(st.one_of(st.just(""), _PORT))
    if kind == "ecr":
        account = draw(st.from_regex(r"\A[0-9]{12}\Z"))
        region = draw(st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2"]))
        return f"{account}.dkr.ecr.{region}.amazonaws.com"
    components = draw(st.lists(_DOMAIN_COMPONENT, min_size=2 if kind == "dotted" else 1, max_size=3))
    port = draw(_PORT) if kind == "port" else draw(st.one_of(st.just(""), _PORT))
    return ".".join(components) + port


@st.composite
def image_refs(draw: st.DrawFn) -> ImageRef:
    registry = draw(st.one_of(st.none(), _registry()))
    # Without a registry, a first component holding "." (or "localhost") would be read as one, as Docker reads it.
    first = draw(_path_component(st.sampled_from(["_", "__", "-"]) if registry is None else _SEPARATORS)
                 .filter(lambda c: registry is not None or c != "localhost"))
    rest = draw(st.lists(_path_component(), max_size=3))
    tag = draw(st.one_of(st.none(), st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")))
    digest = draw(st.one_of(st.none(), st.from_regex(r"\Asha256:[0-9a-f]{64}\Z")))
    return ImageRef(registry, "/".join([first, *rest]), tag, digest)


@given(image_refs())
@settings(max_examples=300, deadline=None)
def test_parse_round_trips_generated_references(ref: ImageRef) -> None:
    assert parse_image_ref(str(ref)) == ref
    assert str(parse_image_ref(str(ref))) == str(ref)
    assert parse_image_ref(ref.pinned).digest == ref.digest


_GRAMMAR_ALPHABET = "abcAB09:/@._-_ \n%$*sha256"


@given(st.one_of(st.text(), st.text(_GRAMMAR_ALPHABET, max_size=40),
                 image_refs().map(str).flatmap(lambda s: st.integers(0, len(s)).map(lambda i: s[:i] + "X" + s[i:]))))
@settings(max_examples=400, deadline=None)
def test_arbitrary_text_raises_nothing_but_invalid_revision(text: str) -> None:
    try:
        ref = parse_image_ref(text)
    except InvalidRevision:
        return
    assert str(ref) == text
