"""htpasswd files with bcrypt entries (`htpasswd -B`), as docker-registry reads them.

Other hash kinds (MD5 `$apr1$`, `{SHA}`, crypt) are ignored, as distribution
ignores them. bcrypt is slow on purpose (~50 ms a check), and registry clients
send credentials on every request, so a successful check is remembered, keyed
by a hash of user, password and entry; the file is re-read when it changes.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading

BCRYPT_PREFIXES = ("$2y$", "$2b$", "$2a$")
_MAX_REMEMBERED = 1024


def _bcrypt_check(password: bytes, hashed: bytes) -> bool:
    try:
        import bcrypt
    except ImportError:
        return _crypt_check(password, hashed)
    # the bcrypt package knows $2b$/$2a$; htpasswd writes $2y$, the same algorithm
    if hashed.startswith(b"$2y$"):
        hashed = b"$2b$" + hashed[4:]
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        return False


def _crypt_check(password: bytes, hashed: bytes) -> bool:
    """glibc's crypt(3) (libxcrypt on Debian) does bcrypt too, when bcrypt is missing."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            return False
    import hmac
    out = crypt.crypt(password.decode("utf-8", "replace"), hashed.decode())
    return out is not None and hmac.compare_digest(out.encode(), hashed)


class Htpasswd:
    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._entries: dict[str, bytes] = {}
        self._good: dict[bytes, None] = {}
        self._load()

    def _load(self) -> None:
        st = os.stat(self.path)
        stamp = (st.st_mtime, st.st_size)
        if stamp == self._stamp:
            return
        entries = {}
        with open(self.path, "rb") as f:
            for raw in f:
                line = raw.strip()
                if not line or line.startswith(b"#") or b":" not in line:
                    continue
                user, _, hashed = line.partition(b":")
                if hashed.startswith(tuple(p.encode() for p in BCRYPT_PREFIXES)):
                    entries[user.decode("utf-8", "replace")] = hashed
                else:
                    sys.stderr.write(f"warning: htpasswd entry for {user.decode()!r} is not "
                                     "bcrypt (use htpasswd -B); ignored\n")
        self._entries, self._stamp, self._good = entries, stamp, {}

    def check(self, user: str, password: str) -> bool:
        with self._lock:
            try:
                self._load()
            except OSError:
                return False
            hashed = self._entries.get(user)
        if hashed is None:
            return False
        key = hashlib.sha256(b"\0".join([user.encode(), password.encode(), hashed])).digest()
        if key in self._good:
            return True
        if not _bcrypt_check(password.encode(), hashed):
            return False
        with self._lock:
            if len(self._good) >= _MAX_REMEMBERED:
                self._good.clear()
            self._good[key] = None
        return True
