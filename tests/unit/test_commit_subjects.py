"""The commit-subject rule of CONTRIBUTING.md, as the commit-msg hook applies it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.commit_subjects import LIMIT, main


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("Say why in the body\n\nBecause.\n", 0),
        ("x" * LIMIT + "\n", 0),
        ("x" * (LIMIT + 1) + "\n\nA body may be as long as it likes.\n", 1),
        ("# a comment git strips\n" + "y" * (LIMIT + 5) + "\n", 1),
    ],
)
def test_a_subject_over_the_limit_is_refused(tmp_path: Path, message: str, status: int) -> None:
    path = tmp_path / "COMMIT_EDITMSG"
    path.write_text(message, encoding="utf-8")
    assert main([str(path)]) == status


def test_the_commits_since_the_rule_keep_it() -> None:
    assert main([]) == 0
