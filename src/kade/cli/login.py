"""`kade login [-u USER] [-p PASSWORD | --password-stdin] [SERVER]` and `kade logout [SERVER]`.

Credentials live in docker's config.json (or its credential helper), shared
with docker; the default server is Docker Hub.
"""

from __future__ import annotations

import sys

from kade.cli.errmap import ArgParser, UsageError

USAGE_LOGIN = "kade login [OPTIONS] [SERVER]"
USAGE_LOGOUT = "kade logout [SERVER]"
PLAINTEXT_WARNING = """WARNING! Your password will be stored unencrypted in {path}.
Configure a credential helper to remove this warning. See
https://docs.docker.com/engine/reference/commandline/login/#credentials-store

"""


def main(ctx, verb: str, args: list[str]) -> int:
    return _logout(args) if verb == "logout" else _login(ctx, args)


def _login(ctx, args: list[str]) -> int:
    p = ArgParser("login", USAGE_LOGIN)
    p.add_argument("-u", "--username", help="Username")
    p.add_argument("-p", "--password", help="Password")
    p.add_argument("--password-stdin", action="store_true", help="Take the password from stdin")
    p.add_argument("server", nargs="?")
    ns = p.parse_args(args)
    from kade.engine import run as engine_run
    user, password = _credentials(ns, engine_run)
    _, stored_in = engine_run.login(ctx.engine, ns.server, user, password)
    if not stored_in.startswith("docker-credential-"):
        sys.stderr.write(PLAINTEXT_WARNING.format(path=stored_in))
    print("Login Succeeded")
    return 0


def _credentials(ns, engine_run) -> tuple[str, str]:
    if ns.password is not None:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. "
                         "Use --password-stdin.\n")
        if ns.password_stdin:
            raise UsageError("--password and --password-stdin are mutually exclusive")
    if ns.password_stdin:
        if not ns.username:
            raise UsageError("Must provide --username with --password-stdin")
        return ns.username, sys.stdin.read().rstrip("\r\n")
    if ns.username and ns.password is not None:
        return ns.username, ns.password
    if not ns.username and ns.password is None:
        stored = engine_run.stored_login(ns.server)
        if stored is not None:
            print("Authenticating with existing credentials...", flush=True)
            return stored.username, stored.secret
    return _prompt(ns.username, ns.password)


def _prompt(user: str | None, password: str | None) -> tuple[str, str]:
    from kade.errors import FailedPrecondition
    if not sys.stdin.isatty():
        raise FailedPrecondition("Cannot perform an interactive login from a non TTY device")
    if not user:
        sys.stdout.write("Username: ")
        sys.stdout.flush()
        user = sys.stdin.readline().strip()
        if not user:
            raise UsageError("Username cannot be empty")
    if password is None:
        import getpass
        password = getpass.getpass("Password: ")
        if not password:
            raise UsageError("Password Required")
    return user, password


def _logout(args: list[str]) -> int:
    p = ArgParser("logout", USAGE_LOGOUT)
    p.add_argument("server", nargs="?")
    ns = p.parse_args(args)
    from kade.engine import run as engine_run
    print(f"Removing login credentials for {engine_run.logout(ns.server)}")
    return 0
