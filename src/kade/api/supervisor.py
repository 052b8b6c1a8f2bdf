"""Starting the root's container supervisor from the service.

The engine starts it on demand by fork() without exec (engine/monitorclient.py),
which is right for a one-shot CLI but not for this threaded server: the child
would keep a copy of every descriptor the service holds at that moment (other
clients' sockets, attach pipes), and those streams would never end. So the
service starts it from a fresh interpreter that holds nothing of ours.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

_lock = threading.Lock()
_START = ("import sys; from kade.engine import monitorclient; from kade.engine.core import "
          "Engine; monitorclient.connect(Engine(sys.argv[1], sys.argv[2] or None)).close()")


def ensure(engine) -> None:
    """The supervisor of engine's root runs (started now if need be)."""
    from kade.engine import monitorclient
    path = monitorclient.sock_path(engine.root)
    with _lock:
        sock = monitorclient._try_connect(path)
        if sock is not None:
            sock.close()
            return
        subprocess.run([sys.executable, "-c", _START, engine.root, engine.driver],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, close_fds=True, check=False,
                       env=dict(os.environ), timeout=30)
