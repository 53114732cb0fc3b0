"""The instance scripts as SSM ships them: without their comment lines.

SSM refuses a command whose document passes 64 KB, and the scripts' comments (their documentation, the exit-code
table in each header) are about a third of their compressed size: the repository keeps them, the instances need
them not. Only whole comment lines go, never a line of code: a line that continues a command (after a trailing
backslash) and the body of a heredoc are kept as they are, and the first line (`#!`) stays.
"""

from __future__ import annotations

import re

_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


def without_comment_lines(text: str) -> str:
    """`text` less its comment lines (see the module); every other line byte for byte, in order."""
    kept: list[str] = []
    heredoc_end: str | None = None
    continued = False
    for number, line in enumerate(text.splitlines(keepends=True)):
        body = line.rstrip("\n")
        if heredoc_end is not None:
            kept.append(line)
            if body.strip() == heredoc_end:
                heredoc_end = None
            continue
        if number > 0 and not continued and body.lstrip().startswith("#"):
            continue
        kept.append(line)
        continued = body.endswith("\\")
        opened = [match.group(2) for match in _HEREDOC.finditer(body.replace("<<<", "   "))]
        if opened:
            heredoc_end = opened[-1]
    return "".join(kept)
