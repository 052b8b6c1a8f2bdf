"""The container supervisor stays small: what its modules import is part of the memory
every running container costs (docs/benchmarks.md, "Memory kept per detached container")."""

import os
import subprocess
import sys

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "src")

# what a supervisor loads to create, start, watch and remove containers
SUPERVISOR = ("kade.engine.monitor", "kade.engine.core", "kade.engine.containers",
              "kade.engine.lifecycle", "kade.engine.spec", "kade.engine.logs",
              "kade.engine.health", "kade.images", "kade.snapshots", "kade.metadata",
              "kade.volumes", "kade.content", "kade.runtime", "kade.runtime.seccomp",
              "kade.oci.defaults")
# each costs hundreds of KB resident (hashlib: OpenSSL's libcrypto; shutil: bz2, lzma)
HEAVY = ("typing", "dataclasses", "inspect", "hashlib", "_hashlib", "tempfile", "shutil",
         "bz2", "lzma", "socket", "selectors", "random", "logging", "subprocess", "ssl")


def test_the_supervisors_modules_import_nothing_heavy():
    code = (f"import sys\nfor m in {SUPERVISOR!r}: __import__(m)\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.path.abspath(SRC)})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
