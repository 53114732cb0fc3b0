"""start_container.sh's checks of the pulled image and the engine's disk, on podman: an image of another
architecture is refused before anything is touched (exit 24); a pull that runs out of space prunes this container's
older images and exits 25; every swap prunes them too, keeping the last --keep-images, the running and the previous."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.domain.exit_codes import ScriptExit
from tests.containers.support import SERVE_COMMAND, Engine, Target, http_get, write_rootfs

TAGS = [f"prune-{n}" for n in range(1, 6)]


@pytest.fixture(scope="module")
def variants(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Five images that serve and pass the health check, each its own image id, in the registry."""
    work = tmp_path_factory.mktemp("variants")
    for tag in TAGS:
        tar_path = work / f"{tag}.tar"
        write_rootfs(tar_path, {"www/version": f"berth-test {tag}\n", "www/health": "ok\n"})
        local = f"localhost/berth-build:{tag}"
        command = json.dumps(["/bin/sh", "-c", SERVE_COMMAND])
        engine.podman("import", "--change", f"CMD {command}", "--change", "EXPOSE 8080", str(tar_path), local)
        engine.podman("push", local, engine.image(tag))
        engine.podman("rmi", local)
    return TAGS


def shimmed(engine: Engine, tmp_path: Path, **scripts: str) -> dict[str, str]:
    """The engine's environment with stand-ins first on PATH: name -> its shell text."""
    bin_dir = tmp_path / "shims"
    bin_dir.mkdir()
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + text)
        path.chmod(0o755)
    return {**engine.env, "PATH": f"{bin_dir}{os.pathsep}{engine.env['PATH']}"}


def image_id(engine: Engine, ref: str) -> str:
    return engine.podman("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def deploy(engine: Engine, target: Target, tag: str, *extra: str, env: dict[str, str] | None = None) -> tuple[
        int, str]:
    from tests.containers.support import run_script
    done = run_script("start_container.sh", *target.deploy_args(engine, tag, *extra), env=env or engine.env)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def fresh(engine: Engine, variants: list[str]) -> Iterator[None]:
    """The variants are pulled afresh by each test (a prune removes them from the store)."""
    yield
    for tag in variants:
        engine.podman("rmi", "-f", engine.image(tag), check=False)


def test_an_image_of_another_architecture_exits_24_and_leaves_the_service_alone(
        engine: Engine, deployed_v1: Target, tmp_path: Path) -> None:
    env = shimmed(engine, tmp_path, uname='[ "$1" = -m ] && echo aarch64 && exit 0\nexec /bin/uname "$@"\n')
    code, output = deploy(engine, deployed_v1, "v2", env=env)
    assert code == ScriptExit.ARCHITECTURE_MISMATCH, output
    assert "berth-error: 24 ARCHITECTURE_MISMATCH" in output
    assert f"{engine.image('v2')} is built for amd64 but this instance is arm64" in output
    assert "berth-step: start" not in output
    assert http_get(deployed_v1.port) == (200, "berth-test v1")


def test_every_swap_prunes_the_containers_images_beyond_keep_images_never_the_running_or_previous(
        engine: Engine, target: Target, variants: list[str], fresh: None) -> None:
    engine.podman("pull", "-q", engine.image("v2"))            # an image this container never ran: never pruned
    ids = {}
    for tag in variants[:4]:
        code, output = deploy(engine, target, tag, "--keep-images", "2")
        assert code == 0, output
        ids[tag] = image_id(engine, engine.image(tag))
    assert [engine.image_exists(engine.image(tag)) for tag in variants[:4]] == [False, False, True, True]
    assert engine.image_exists(engine.image("v2"))
    # keep_images 1 still keeps the previous image (a rollback needs no pull) beside the running one.
    code, output = deploy(engine, target, variants[4], "--keep-images", "1")
    assert code == 0, output
    assert f"pruned image {ids[variants[2]]}" in output
    assert [engine.image_exists(engine.image(tag)) for tag in variants[2:]] == [False, True, True]
    assert http_get(target.port) == (200, f"berth-test {variants[4]}")
    recorded = (Path(engine.env["BERTH_STATE_DIR"]) / "images" / target.name).read_text().split()
    assert recorded == [ids[variants[3]], image_id(engine, engine.image(variants[4]))]


def test_a_pull_out_of_space_prunes_older_images_and_exits_25(engine: Engine, target: Target, variants: list[str],
                                                               fresh: None, tmp_path: Path) -> None:
    for tag in variants[:3]:
        code, output = deploy(engine, target, tag)
        assert code == 0, output
    full = engine.image(variants[3])
    env = shimmed(engine, tmp_path, docker=(
        f'if [ "$1" = pull ] && [ "$2" = "{full}" ]; then\n'
        '  echo "Error: copying system image: writing blob: storing blob to file: write /var/lib/containers: '
        'no space left on device" >&2; exit 125\nfi\nexec podman "$@"\n'))
    code, output = deploy(engine, target, variants[3], "--keep-images", "1", env=env)
    assert code == ScriptExit.NO_SPACE, output
    assert "berth-error: 25 NO_SPACE" in output
    assert [engine.image_exists(engine.image(tag)) for tag in variants[:3]] == [False, True, True]
    assert http_get(target.port) == (200, f"berth-test {variants[2]}")
