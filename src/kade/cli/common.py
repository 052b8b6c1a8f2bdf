"""Small helpers shared by verbs: per-container loops and prompts."""

from __future__ import annotations

import sys

from kade import errors
from kade.util.escape import escape


def each(refs: list[str], fn) -> int:
    """Docker's multi-container verbs: go on past failures, exit 1 if any failed."""
    failed = 0
    for ref in refs:
        try:
            out = fn(ref)
            if out is not None:
                print(out)
        except errors.KadeError as e:
            sys.stderr.write(f"Error: {escape(str(e))}\n")
            failed = 1
    return failed


def confirm(warning: str, force: bool) -> bool:
    if force:
        return True
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")
