"""`kade runtime ...`: the OCI runtime alone, in runc's command-line shape."""

from __future__ import annotations

import os


def main(ctx, verb: str, args: list[str]) -> int:
    from kade.engine import default_root
    from kade.runtime.cli import main as runtime_main
    root = os.path.abspath(ctx.root or default_root())
    return runtime_main(args, os.path.join(root, "runtime"))
