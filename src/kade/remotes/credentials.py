"""Registry credentials in docker's own config file, so Kade and docker share logins.

    $DOCKER_CONFIG/config.json   (default ~/.docker/config.json)
    {
      "auths": {
        "https://index.docker.io/v1/": {"auth": base64("user:password")},
        "localhost:5000": {"auth": "...", "identitytoken": "..."},
        "registry.example": {}                 <- kept in a credential store
      },
      "credsStore": "pass",                    <- docker-credential-pass for every registry
      "credHelpers": {"gcr.io": "gcloud"}      <- docker-credential-gcloud for one registry
    }

A helper is `docker-credential-<name> get|store|erase`: `get` and `erase` read
the server name on stdin, `store` reads {"ServerURL", "Username", "Secret"};
`get` answers {"ServerURL", "Username", "Secret"} ("<token>" as the username
means Secret is an identity token). Docker Hub is keyed by its v1 address,
every other registry by host[:port].
"""

from __future__ import annotations

import base64
import json
import os
import subprocess

from kade.errors import FailedPrecondition, InvalidArgument
from kade.remotes.auth import IDENTITY_TOKEN_USER, Credential

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_NAMES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
HELPER_NOT_FOUND = "credentials not found in native keychain"


def server_key(registry: str) -> str:
    """The config.json key of a registry (docker login's `serverAddress`)."""
    host = hostname(registry)
    return DOCKER_HUB_KEY if host in _HUB_NAMES else host


def hostname(address: str) -> str:
    """docker's ConvertToHostname: drop the scheme and any path."""
    for prefix in ("http://", "https://"):
        if address.startswith(prefix):
            address = address[len(prefix):]
    return address.split("/", 1)[0]


def config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


class DockerConfig:
    """Read and write credentials in config.json, through helpers when configured."""

    def __init__(self, directory: str | None = None):
        self.directory = directory or config_dir()
        self.path = os.path.join(self.directory, "config.json")

    def _load(self) -> dict:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise FailedPrecondition(f'cannot read "{self.path}": {e.strerror}') from None
        try:
            doc = json.loads(data) if data.strip() else {}
        except ValueError as e:
            raise InvalidArgument(f'"{self.path}" is not valid json: {e}') from None
        return doc if isinstance(doc, dict) else {}

    def _save(self, doc: dict) -> None:
        from kade.util.fs import atomic_write
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        atomic_write(self.path, json.dumps(doc, indent="\t").encode(), mode=0o600)

    def helper_for(self, key: str, doc: dict | None = None) -> str | None:
        doc = self._load() if doc is None else doc
        helpers = doc.get("credHelpers") or {}
        return helpers.get(hostname(key)) or helpers.get(key) or doc.get("credsStore") or None

    def get(self, registry: str) -> Credential | None:
        """The credential for a registry host (or Docker Hub's names), or None."""
        key = server_key(registry)
        doc = self._load()
        helper = self.helper_for(key, doc)
        if helper:
            return helper_get(helper, key)
        return _from_auths(doc.get("auths") or {}, key)

    def store(self, registry: str, cred: Credential) -> str:
        """Save a login; returns where it went (the file or the helper's name)."""
        key = server_key(registry)
        doc = self._load()
        auths = doc.setdefault("auths", {})
        helper = self.helper_for(key, doc)
        if helper:
            helper_call(helper, "store", json.dumps(
                {"ServerURL": key, "Username": cred.username, "Secret": cred.secret}))
            auths[key] = {}
        elif cred.username == IDENTITY_TOKEN_USER:
            auths[key] = {"identitytoken": cred.secret}
        else:
            raw = f"{cred.username}:{cred.secret}".encode()
            auths[key] = {"auth": base64.b64encode(raw).decode()}
        self._save(doc)
        return f"docker-credential-{helper}" if helper else self.path

    def erase(self, registry: str) -> bool:
        """Forget a login; False when there was none."""
        key = server_key(registry)
        doc = self._load()
        auths = doc.get("auths") or {}
        found = _pop_matching(auths, key)
        helper = self.helper_for(key, doc)
        if helper:
            try:
                helper_call(helper, "erase", key)
                found = True
            except FailedPrecondition:
                pass
        if found:
            self._save(doc)
        return found


def _from_auths(auths: dict, key: str) -> Credential | None:
    entry = auths.get(key)
    if entry is None:
        entry = next((v for k, v in auths.items() if server_key(k) == key), None)
    if not isinstance(entry, dict):
        return None
    if entry.get("identitytoken"):
        return Credential(IDENTITY_TOKEN_USER, entry["identitytoken"])
    if entry.get("auth"):
        try:
            user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise InvalidArgument(f'invalid "auth" for "{key}" in docker\'s config.json') from None
        return Credential(user, secret)
    if entry.get("username"):
        return Credential(entry["username"], entry.get("password", ""))
    return None


def _pop_matching(auths: dict, key: str) -> bool:
    names = [k for k in auths if k == key or server_key(k) == key]
    for k in names:
        del auths[k]
    return bool(names)


def helper_get(helper: str, key: str) -> Credential | None:
    try:
        out = helper_call(helper, "get", key)
    except FailedPrecondition as e:
        if HELPER_NOT_FOUND in str(e):
            return None
        raise
    try:
        doc = json.loads(out)
    except ValueError:
        raise FailedPrecondition(f"docker-credential-{helper} get: answer is not json") from None
    if not doc.get("Secret"):
        return None
    return Credential(doc.get("Username") or "", doc["Secret"])


def helper_call(helper: str, action: str, stdin: str) -> str:
    program = f"docker-credential-{helper}"
    try:
        proc = subprocess.run([program, action], input=stdin.encode(), capture_output=True,
                              timeout=60)
    except FileNotFoundError:
        raise FailedPrecondition(f'credential helper "{program}" not found in $PATH') from None
    except subprocess.TimeoutExpired:
        raise FailedPrecondition(f"{program} {action} timed out") from None
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        msg = (out.strip() or proc.stderr.decode(errors="replace").strip()).splitlines()
        raise FailedPrecondition(f"{program} {action}: {msg[-1] if msg else 'failed'}")
    return out
