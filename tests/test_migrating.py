"""docs/migrating.md: every diff is a well-formed unified diff whose before and after scripts run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("timm")
pytest.importorskip("torchvision")

DOC = Path(__file__).resolve().parents[1] / "docs" / "migrating.md"
HUNK = re.compile(r"^@@ -(\d+),(\d+) \+(\d+),(\d+) @@$")


def _diffs() -> list[str]:
    return re.findall(r"^```diff\n(.*?)^```$", DOC.read_text(), flags=re.S | re.M)


def _sides(diff: str) -> tuple[str, str]:
    """The file before and after ``diff``, which must be one hunk over the whole file."""
    lines = diff.splitlines()
    assert lines[0].startswith("--- ") and lines[1].startswith("+++ ")
    header = HUNK.match(lines[2])
    assert header, lines[2]
    body = lines[3:]
    assert all(line[:1] in (" ", "-", "+") or line == "" for line in body), "not a unified diff body"
    before = [line[1:] for line in body if line[:1] in (" ", "-") or line == ""]
    after = [line[1:] for line in body if line[:1] in (" ", "+") or line == ""]
    old_start, old_count, new_start, new_count = map(int, header.groups())
    assert (old_start, new_start) == (1, 1) and (old_count, new_count) == (len(before), len(after)), \
        f"hunk header says -1,{old_count} +1,{new_count}, the body has -1,{len(before)} +1,{len(after)}"
    assert any(line[:1] == "-" for line in body) or any(line[:1] == "+" for line in body)
    return "\n".join(before) + "\n", "\n".join(after) + "\n"


def test_the_page_has_its_diffs():
    assert len(_diffs()) == 3


@pytest.mark.parametrize("number", range(3))
@pytest.mark.parametrize("side", ["before", "after"])
def test_each_diff_runs_before_and_after(number, side):
    before, after = _sides(_diffs()[number])
    code = before if side == "before" else after
    assert ("mixmask" in code) == (side == "after")
    exec(compile(code, f"{DOC.name}:diff{number + 1}:{side}", "exec"), {"__name__": "__main__"})
