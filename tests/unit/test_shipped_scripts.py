"""The instance scripts as SSM ships them: their comment lines dropped, not one line of code changed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from chalicelib.domain.command import SHIPPED_SCRIPTS
from chalicelib.domain.shipped_scripts import without_comment_lines

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts"


def functions_of(path: Path) -> str:
    """Every function bash defines from the script, as bash prints them (no comments, code normalized)."""
    # The guard that runs main() is kept out: only the definitions are compared.
    text = re.sub(r'^(\s*)main "\$@"$', r"\1:", path.read_text(), flags=re.MULTILINE)
    done = subprocess.run(["bash", "-c", 'eval "$1"; declare -f', "_", text], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("() \n{") >= 5       # the definitions are all there
    return done.stdout


@pytest.mark.parametrize("name", SHIPPED_SCRIPTS)
def test_the_shipped_script_defines_the_same_functions_and_is_smaller(name: str, tmp_path: Path) -> None:
    original = (SCRIPTS_DIR / name).read_text()
    shipped = tmp_path / name
    shipped.write_text(without_comment_lines(original))
    assert functions_of(shipped) == functions_of(SCRIPTS_DIR / name)
    assert subprocess.run(["bash", "-n", str(shipped)]).returncode == 0
    code = [line for line in original.splitlines() if not line.lstrip().startswith("#")]
    assert [line for line in shipped.read_text().splitlines()[1:]] == code
    assert shipped.read_text().startswith("#!/usr/bin/env bash\n")


def test_heredoc_bodies_and_continued_lines_keep_their_hash_lines() -> None:
    text = ("#!/bin/sh\n# a comment\ncat <<'EOF'\n# kept: the heredoc's text\nEOF\necho a \\\n# kept: continues echo\n"
            "  # indented comment\nx=1 # trailing comment stays with its code\nread -r y <<<\"$x\"\n# gone\n")
    assert without_comment_lines(text) == ("#!/bin/sh\ncat <<'EOF'\n# kept: the heredoc's text\nEOF\necho a \\\n"
                                           "# kept: continues echo\nx=1 # trailing comment stays with its code\n"
                                           "read -r y <<<\"$x\"\n")
