"""Do the pins of requirements.txt install on each given Python version?

For every version, asks pip (through the configured package index) to resolve the lock with
binary wheels only for that interpreter, without installing anything. A pin without a wheel
for the version is retried as a source package: pure-Python source-only packages (e.g.
connection_pool) build on any version and are listed as such.

    python tools/check_pins.py 3.11 3.12 3.13
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pins() -> list[str]:
    out = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            out.append(line)
    return out


def check(version: str) -> tuple[bool, list[str], str]:
    todo, source_only = pins(), []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(len(todo)):
            req = Path(tmp) / "req.txt"
            req.write_text("\n".join(todo) + "\n")
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps",
                 "--python-version", version, "--only-binary=:all:", "--target", str(Path(tmp) / "t"),
                 "-r", str(req)], capture_output=True, text=True)
            if proc.returncode == 0:
                return True, source_only, ""
            m = re.search(r"No matching distribution found for (\S+)", proc.stderr)
            if not m:
                return False, source_only, proc.stderr[-2000:]
            pin = m.group(1)
            source_only.append(pin)
            todo = [p for p in todo if p != pin]
    return False, source_only, "gave up"


def main(argv: list[str]) -> int:
    ok_all = True
    for version in argv or ["3.11", "3.12", "3.13"]:
        ok, source_only, err = check(version)
        ok_all &= ok
        extra = f" (source only, pure Python: {', '.join(source_only)})" if source_only else ""
        print(f"Python {version}: {'every pin has a wheel' if ok else 'FAILS'}{extra}")
        if err:
            print(err)
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
