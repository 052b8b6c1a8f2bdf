"""nftables through libnftables' JSON interface.

    nft = Nft()
    nft.run([{"add": {"table": {"family": "inet", "name": "kade"}}},
             {"add": {"chain": {...}}}, {"add": {"rule": {...}}}])   # one transaction
    nft.list_table("inet", "kade")   # the table's objects as `nft -j list table` shows them

Every `run` sends its commands as one JSON document, which libnftables turns into
one netlink batch: the kernel applies all of it or none of it.

The binding is our own ctypes over libnftables.so.1 (Debian's `libnftables1`), the
same seven calls that Debian's python3-nftables makes: that module is a thin ctypes
wrapper shipped only as a Debian package (it is not on PyPI), so a venv cannot
depend on it. Where the library is missing we run `nft -j -f -`, which parses the
same JSON. ctypes and json are imported on first use, never at import time.

A context's netlink socket belongs to the network namespace of the thread that
made it; `Nft` objects are therefore made where they are used (see
`firewall.redirect_dns`, which makes one inside a container's namespace).
"""

from __future__ import annotations

from kade.errors import FailedPrecondition

_OUTPUT_HANDLE = 1 << 3  # NFT_CTX_OUTPUT_HANDLE
_OUTPUT_JSON = 1 << 4    # NFT_CTX_OUTPUT_JSON
_LIBRARY = "libnftables.so.1"


class NftError(FailedPrecondition):
    """nftables refused a command; the message is nft's own first error line."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail

    @property
    def missing(self) -> bool:
        """The object the command named does not exist (ENOENT)."""
        return "No such file or directory" in self.detail


def _error(text: str) -> NftError:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = next((line for line in lines if "Error:" in line), lines[0] if lines else "")
    first = first[first.find("Error:") + 7:] if "Error:" in first else first  # no "internal:0:0-0"
    return NftError(f"nftables: {first or 'command failed'}", text)


_lib: object = None  # the loaded library, False if it cannot be loaded


def _library():
    """libnftables with its prototypes declared, or None where it is not installed."""
    global _lib
    if _lib is None:
        import ctypes
        try:
            lib = ctypes.CDLL(_LIBRARY)
        except OSError:
            _lib = False
            return None
        p, c_int, c_char_p = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
        for name, args, result in (
                ("nft_ctx_new", [ctypes.c_uint32], p),
                ("nft_ctx_free", [p], None),
                ("nft_ctx_output_set_flags", [p, ctypes.c_uint], None),
                ("nft_ctx_buffer_output", [p], c_int),
                ("nft_ctx_buffer_error", [p], c_int),
                ("nft_run_cmd_from_buffer", [p, c_char_p], c_int),
                ("nft_ctx_get_output_buffer", [p], c_char_p),
                ("nft_ctx_get_error_buffer", [p], c_char_p)):
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, result
        _lib = lib
    return _lib or None


class Nft:
    """One nftables context. `use_library=False` forces the `nft` command (tests
    compare the two); None takes the library when it is installed."""

    def __init__(self, use_library: bool | None = None) -> None:
        import threading
        self._lib = _library() if use_library is not False else None
        if use_library and self._lib is None:
            raise FailedPrecondition(f"{_LIBRARY} is not installed (Debian: libnftables1)")
        self._ctx = None
        self._lock = threading.Lock()  # a libnftables context is not thread-safe

    def run(self, commands: list[dict]) -> list[dict]:
        """Run commands as one transaction; returns the `nftables` list of the output
        (the objects that `list` commands print), [] when nothing was printed."""
        import json
        if not commands:
            return []
        text = json.dumps({"nftables": commands})
        with self._lock:
            out = self._run_library(text) if self._lib else self._run_command(text)
        return json.loads(out).get("nftables", []) if out.strip() else []

    def list_table(self, family: str, name: str) -> list[dict] | None:
        """The table's objects (table, chains, sets, rules, with handles), or None if
        there is no such table."""
        try:
            return self.run([{"list": {"table": {"family": family, "name": name}}}])
        except NftError as e:
            if e.missing:
                return None
            raise

    def _context(self):
        if self._ctx is None:
            ctx = self._lib.nft_ctx_new(0)  # NFT_CTX_DEFAULT
            if not ctx:
                raise FailedPrecondition("nftables: cannot make a libnftables context")
            self._lib.nft_ctx_output_set_flags(ctx, _OUTPUT_JSON | _OUTPUT_HANDLE)
            self._lib.nft_ctx_buffer_output(ctx)
            self._lib.nft_ctx_buffer_error(ctx)
            self._ctx = ctx
        return self._ctx

    def _run_library(self, text: str) -> str:
        ctx = self._context()
        rc = self._lib.nft_run_cmd_from_buffer(ctx, text.encode())
        # reading a buffer also rewinds it for the next command
        out = (self._lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
        err = (self._lib.nft_ctx_get_error_buffer(ctx) or b"").decode()
        if rc != 0:
            raise _error(err)
        return out

    def _run_command(self, text: str) -> str:
        import shutil
        import subprocess
        nft = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
        if nft is None:
            raise FailedPrecondition("nftables is not installed: neither libnftables.so.1 "
                                     "nor the nft command (Debian: apt-get install nftables)")
        proc = subprocess.run([nft, "-j", "-f", "-"], input=text.encode(),
                              capture_output=True, check=False)
        if proc.returncode != 0:
            raise _error(proc.stderr.decode(errors="replace"))
        return proc.stdout.decode()

    def close(self) -> None:
        with self._lock:
            if self._ctx is not None:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None

    def __del__(self) -> None:
        if getattr(self, "_ctx", None) is not None and self._lib:
            self._lib.nft_ctx_free(self._ctx)
            self._ctx = None
