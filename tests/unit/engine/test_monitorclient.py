"""The supervisor's wire format, and `kade run`'s client side against a stand-in
supervisor: what it sends, how it exits, and how little it imports."""

import os
import socket
import subprocess
import sys
import threading

from kade.engine.monitorclient import Reader, encode

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

# modules `kade run`'s client must not import (each costs ms on every run); the ones
# the interpreter loaded before kade do not count
HEAVY = ("json", "re", "socket", "selectors", "enum", "signal", "functools", "collections",
         "contextlib", "typing", "dataclasses", "threading", "sqlite3", "importlib",
         "kade.runtime", "kade.images", "kade.snapshots", "kade.metadata", "kade.volumes",
         "kade.engine.containers")


def test_frames_round_trip_across_split_reads():
    msgs = [{"started": {"pid": 7, "pty": None, "cid": "c" * 64}}, {"exit": 3},
            {"error": "no such image: \u00e9", "kind": "NotFound"}]
    r, w = os.pipe()
    data = b"".join(encode(m) for m in msgs)
    for i in range(0, len(data), 5):  # five bytes at a time, frames straddling reads
        os.write(w, data[i:i + 5])
    os.close(w)
    reader = Reader(r)
    assert [reader.read() for _ in msgs] == msgs
    assert reader.read() is None
    os.close(r)


def _stand_in_supervisor(root: str, seen: list, exit_code: int = 3) -> threading.Thread:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(os.path.join(root, "monitor.sock"))
    listener.listen(1)

    def serve():
        conn, _ = listener.accept()
        with conn, listener:
            data, fds, _, _ = socket.recv_fds(conn, 65536, 3)
            seen.append((Reader(conn.fileno(), data).read(), len(fds)))
            for fd in fds:
                os.close(fd)
            conn.sendall(encode({"started": {"pid": 0, "pty": None, "cid": "c" * 64}}))
            conn.sendall(encode({"exit": exit_code}))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_kade_run_client_speaks_frames_exits_with_the_code_and_stays_lean(tmp_path):
    seen: list = []
    thread = _stand_in_supervisor(str(tmp_path), seen)
    code = ("import sys; before = set(sys.modules); from kade.cli.main import main; "
            f"rc = main(['--root', {str(tmp_path)!r}, 'run', '--rm', '-e', 'A=1', "
            "'busybox', 'sh', '-c', 'exit 3']); "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules and m not in before)); "
            "sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")})
    thread.join(5)
    assert out.returncode == 3, out.stderr
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    msg, nfds = seen[0]
    assert msg["op"] == "run" and msg["attach"] == {"stdin": False, "tty": False}
    assert msg["opts"]["image"] == "busybox" and msg["opts"]["auto_remove"] is True
    assert msg["opts"]["command"] == ["sh", "-c", "exit 3"] and msg["opts"]["env"] == ["A=1"]
    assert nfds == 3  # attached: our stdin, stdout and stderr went along


def test_detached_run_prints_the_id_through_the_fast_exit(tmp_path):
    """entry() leaves with os._exit when nothing but stdio is left: stdout gets out."""
    seen: list = []
    thread = _stand_in_supervisor(str(tmp_path), seen)
    code = "from kade.cli.main import entry; entry()"
    out = subprocess.run([sys.executable, "-c", code, "--root", str(tmp_path), "run", "-d",
                          "busybox", "sleep", "9"], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")})
    thread.join(5)
    assert (out.returncode, out.stdout, out.stderr) == (0, "c" * 64 + "\n", "")
    assert seen[0][0]["attach"] is None and seen[0][1] == 0  # detached: no fds passed
