"""Helpers shared by the `kade build` integration tests (test_build*.py).

A context is a directory written from a dict {relative path: text or bytes};
`build` runs `kade build --progress=plain` on it through the module's `kade`
fixture, so a test reads what a user reads: the step log on stderr, the exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

KADE = [sys.executable, "-c", "from kade.cli.main import entry; entry()"]


def write_tree(root, files: dict) -> str:
    """Write files (path -> str | bytes) under root; returns root as a string."""
    root = str(root)
    os.makedirs(root, exist_ok=True)
    for rel, content in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(path, mode) as f:
            f.write(content)
    return root


def build(kade, ctx, *args, dockerfile: str | None = None, files: dict | None = None,
          check: bool = True, timeout: int = 120):
    """`kade build --progress=plain ARGS CTX`, writing dockerfile (as CTX/Dockerfile)
    and files into ctx first."""
    tree = dict(files or {})
    if dockerfile is not None:
        tree["Dockerfile"] = dockerfile
    write_tree(ctx, tree)
    return kade("build", "--progress=plain", *args, str(ctx), check=check, timeout=timeout)


def kade_bytes(kade, *args, input: bytes | None = None, check: bool = True, timeout: int = 120):
    """The CLI with binary stdin (a tar context, a Dockerfile on stdin)."""
    proc = subprocess.run(KADE + ["--root", kade.root, *args], input=input,
                          capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"kade {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout.decode()}{proc.stderr.decode()}")
    return proc


def inspect(kade, ref: str) -> dict:
    return json.loads(kade("image", "inspect", ref).stdout)[0]


def history(kade, ref: str) -> list[tuple[str, str]]:
    """(CREATED BY, SIZE) rows of `kade history --no-trunc`, newest first."""
    out = kade("history", "--no-trunc", "--format", "{{.CreatedBy}}\t{{.Size}}", ref).stdout
    return [tuple(line.rsplit("\t", 1)) for line in out.splitlines()]


def run(kade, ref: str, *cmd: str, args: tuple = ()) -> str:
    """`kade run --rm ARGS REF CMD...`'s output."""
    return kade("run", "--rm", *args, ref, *cmd).stdout


def image_id(kade, ref: str) -> str:
    return kade("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()


def steps(log: str) -> list[tuple[str, str]]:
    """(instruction, "CACHED" | "DONE" | "ERROR") of each step in a plain step log,
    in order: `#3 [2/5] RUN echo hi` ... `#3 CACHED` gives ("RUN echo hi", "CACHED")."""
    titles: dict[str, str] = {}
    order: list[str] = []
    status: dict[str, str] = {}
    for line in log.splitlines():
        num, _, rest = line.partition(" ")
        if not num.startswith("#"):
            continue
        if rest.startswith("[") and num not in titles:
            titles[num] = rest.split("] ", 1)[1]
            order.append(num)
        elif num in titles and rest.split(" ")[0] in ("CACHED", "DONE", "ERROR:"):
            status[num] = rest.split(" ")[0].rstrip(":")
    return [(titles[n], status.get(n, "")) for n in order]
