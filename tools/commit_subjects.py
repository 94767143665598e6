"""Commit subjects of 72 characters at most (CONTRIBUTING.md, "Commits").

    python tools/commit_subjects.py .git/COMMIT_EDITMSG   # a message (pre-commit's commit-msg)
    python tools/commit_subjects.py                       # every commit since the rule began

The rule began after commit `SINCE`: older subjects stay as they were written (history is
not rewritten). Exit status 1 names each subject over the limit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LIMIT = 72
# The last commit before the rule; commits after it are checked.
SINCE = "3bc74c014642981bb279b3caeb95be5cff92a76d"


def too_long(subject: str) -> bool:
    return len(subject) > LIMIT


def _since_the_rule() -> list[tuple[str, str]]:
    known = subprocess.run(
        ["git", "cat-file", "-e", f"{SINCE}^{{commit}}"], capture_output=True, check=False
    )
    # A shallow clone may lack the commit the rule began after: check the newest one only.
    span = [f"{SINCE}..HEAD"] if known.returncode == 0 else ["-1", "HEAD"]
    log = subprocess.run(
        ["git", "log", "--format=%h%x00%s", *span],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [tuple(line.split("\0", 1)) for line in log.splitlines()]  # type: ignore[misc]


def main(argv: list[str]) -> int:
    if argv:
        lines = Path(argv[0]).read_text(encoding="utf-8").splitlines()
        subject = next((line for line in lines if line and not line.startswith("#")), "")
        subjects = [("message", subject)]
    else:
        subjects = _since_the_rule()
    bad = [(commit, subject) for commit, subject in subjects if too_long(subject)]
    for commit, subject in bad:
        print(f"{commit}: subject has {len(subject)} characters (at most {LIMIT}): {subject}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
