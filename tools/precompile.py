"""Add Python bytecode to a Lambda package that `chalice package` built, so a cold Lambda does not compile it.

    .venv/bin/python -m tools.precompile build/prod/deployment.zip

Lambda unzips the package into /var/task, which is read-only: Python can write no `__pycache__` there, so without
bytecode in the package every cold start compiles berth and everything it imports from the package (pydantic,
Powertools, chalice's runtime, PyYAML) from source. That was more than a third of a cold first invocation's CPU.

The bytecode is hash-based and unchecked (PEP 552): Python loads it without comparing it with the source, whose
timestamps mean nothing after unzipping; the source stays in the package for tracebacks. It must come from the Python
version the functions run (`chalice package` targets the version that runs it, so run this with the same
interpreter); a Python of another version ignores it and compiles as before. Running it twice changes nothing.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import py_compile
import sys
import tempfile
import zipfile
from pathlib import Path

BYTECODE_DATE = (1980, 1, 1, 0, 0, 0)       # the zip format's earliest date: the same package bytes every build
TASK_ROOT = "/var/task"                     # where Lambda unzips the package


def precompile(package: Path) -> list[str]:
    """Rewrite `package` with a `__pycache__/<module>.<tag>.pyc` beside every module; returns the modules that did not
    compile (source this Python cannot compile, such as another version's test files: left as they are)."""
    with tempfile.TemporaryDirectory(prefix="berth-bytecode-") as tmp:
        tree = Path(tmp) / "tree"
        with zipfile.ZipFile(package) as archive:
            sources = [info for info in archive.infolist() if info.filename.endswith(".py")]
            for info in sources:
                archive.extract(info, tree)
        # Recorded as Lambda's paths (/var/task/...), not this temporary folder's: the same bytes every build.
        compileall.compile_dir(tree, ddir=TASK_ROOT, quiet=2, workers=1,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        bytecode = {}
        failed = []
        for info in sources:
            cached = Path(importlib.util.cache_from_source(str(tree / info.filename)))
            if cached.exists():
                bytecode[cached.relative_to(tree).as_posix()] = cached.read_bytes()
            else:
                failed.append(info.filename)
        rewritten = Path(tmp) / "package.zip"
        with zipfile.ZipFile(package) as source, zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
            for info in source.infolist():
                if "__pycache__/" not in info.filename:
                    target.writestr(info, source.read(info))
            for name, data in sorted(bytecode.items()):
                entry = zipfile.ZipInfo(name, BYTECODE_DATE)
                entry.external_attr = 0o644 << 16
                entry.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(entry, data)
        os.replace(rewritten, package)
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="the deployment.zip that `chalice package` wrote")
    args = parser.parse_args(argv)
    failed = precompile(args.package)
    print(f"{args.package}: bytecode for Python {sys.version_info.major}.{sys.version_info.minor} added"
          + (f"; not compiled (left as source): {', '.join(failed)}" if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
