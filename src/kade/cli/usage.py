"""What `kade --help`, `kade GROUP --help` and each verb's help say about commands:
docker 20.10's one-line descriptions and grouping, for the commands Kade has.

Imported only to print help, never on a verb's hot path.
"""

from __future__ import annotations

import sys

# docker 20.10's `Short` of each command; Kade's own commands in the same voice
DESCRIPTIONS = {
    "build": "Build an image from a Dockerfile",
    "commit": "Create a new image from a container's changes",
    "cp": "Copy files/folders between a container and the local filesystem",
    "create": "Create a new container",
    "diff": "Inspect changes to files or directories on a container's filesystem",
    "events": "Get real time events from the server",
    "exec": "Run a command in a running container",
    "export": "Export a container's filesystem as a tar archive",
    "history": "Show the history of an image",
    "images": "List images",
    "import": "Import the contents from a tarball to create a filesystem image",
    "info": "Display system-wide information",
    "inspect": "Return low-level information on Kade objects",
    "kill": "Kill one or more running containers",
    "load": "Load an image from a tar archive or STDIN",
    "login": "Log in to a Docker registry",
    "logout": "Log out from a Docker registry",
    "logs": "Fetch the logs of a container",
    "pause": "Pause all processes within one or more containers",
    "port": "List port mappings or a specific mapping for the container",
    "ps": "List containers",
    "pull": "Pull an image or a repository from a registry",
    "push": "Push an image or a repository to a registry",
    "rename": "Rename a container",
    "restart": "Restart one or more containers",
    "rm": "Remove one or more containers",
    "rmi": "Remove one or more images",
    "run": "Run a command in a new container",
    "save": "Save one or more images to a tar archive (streamed to STDOUT by default)",
    "start": "Start one or more stopped containers",
    "stats": "Display a live stream of container(s) resource usage statistics",
    "stop": "Stop one or more running containers",
    "tag": "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    "top": "Display the running processes of a container",
    "unpause": "Unpause all processes within one or more containers",
    "version": "Show the Kade version information",
    "wait": "Block until one or more containers stop, then print their exit codes",
    # management commands and the subcommands that are not a top-level verb
    "builder": "Manage builds",
    "builder prune": "Remove build cache",
    "compose": "Define and run multi-container applications",
    "compose config": "Parse, resolve and render compose file in canonical format",
    "container": "Manage containers",
    "container inspect": "Display detailed information on one or more containers",
    "container ls": "List containers",
    "container prune": "Remove all stopped containers",
    "image": "Manage images",
    "image bootstrap": "Make a busybox or Debian base image on this machine, without a registry",
    "image inspect": "Display detailed information on one or more images",
    "image layers": "Show each layer of an image: what made it, its size, its files",
    "image ls": "List images",
    "image prune": "Remove unused images",
    "image rm": "Remove one or more images",
    "network": "Manage networks",
    "network connect": "Connect a container to a network",
    "network create": "Create a network",
    "network disconnect": "Disconnect a container from a network",
    "network inspect": "Display detailed information on one or more networks",
    "network ls": "List networks",
    "network prune": "Remove all unused networks",
    "network rm": "Remove one or more networks",
    "registry": "Run a registry on this machine, and collect its garbage",
    "registry gc": "Remove blobs that no manifest references, and stale uploads",
    "registry serve": "Run a registry (OCI distribution spec) on this machine",
    "runtime": "Run containers from OCI bundles (runc's command line)",
    "system": "Manage Kade",
    "system check": "Check the store's consistency, and repair it",
    "system df": "Show Kade disk usage",
    "system monitor": "Stop the idle container supervisor ('monitor stop')",
    "system service": "Serve the Docker Engine API on a unix socket",
    "system prune": "Remove unused data",
    "volume": "Manage volumes",
    "volume create": "Create a volume",
    "volume inspect": "Display detailed information on one or more volumes",
    "volume ls": "List volumes",
    "volume prune": "Remove all unused local volumes",
    "volume rm": "Remove one or more volumes",
}

# each group's subcommands as its help lists them (aliases are not listed)
GROUPS = {
    "builder": ["build", "prune"],
    "compose": ["config"],
    "container": ["commit", "cp", "create", "diff", "exec", "export", "inspect", "kill",
                  "logs", "ls", "pause", "port", "prune", "rename", "restart", "rm", "run",
                  "start", "stats", "stop", "top", "unpause", "wait"],
    "image": ["bootstrap", "build", "history", "import", "inspect", "layers", "load", "ls",
              "prune", "pull", "push", "rm", "save", "tag"],
    "network": ["connect", "create", "disconnect", "inspect", "ls", "prune", "rm"],
    "registry": ["gc", "serve"],
    "system": ["check", "df", "info", "monitor", "prune", "service"],
    "volume": ["create", "inspect", "ls", "prune", "rm"],
}
MANAGEMENT = ["builder", "compose", "container", "image", "network", "registry", "runtime",
              "system", "volume"]
COMMANDS = ["commit", "cp", "create", "diff", "events", "exec", "export", "history", "images",
            "import", "info", "inspect", "kill", "load", "login", "logout", "logs", "pause",
            "port", "ps", "pull", "push", "rename", "restart", "rm", "rmi", "run", "save",
            "start", "stats", "stop", "tag", "top", "unpause", "version", "wait", "build"]

ROOT_OPTIONS = """\
  -D, --debug                   Enable debug mode
      --root string             Root of the store (default "/var/lib/kade", or $KADE_ROOT)
      --storage-driver string   overlay or copy (chosen when the store is made)
  -v, --version                 Print version information and quit"""


def describe(verb: str) -> str:
    """The one line of `verb` ("stop", "volume ls"); a group's subcommand that is also
    a verb (`container stop`) says what the verb says."""
    if verb in DESCRIPTIONS:
        return DESCRIPTIONS[verb]
    return DESCRIPTIONS.get(verb.split()[-1], "")


def _listing(title: str, group: str | None, names: list[str]) -> str:
    width = max(11, *(len(n) for n in names))
    lines = [f"  {n.ljust(width)} {describe(f'{group} {n}' if group else n)}" for n in names]
    return f"\n{title}:\n" + "\n".join(lines) + "\n"


def root_help() -> str:
    return ("\nUsage:  kade [OPTIONS] COMMAND\n\nA Docker-compatible container engine\n\n"
            f"Options:\n{ROOT_OPTIONS}\n"
            + _listing("Management Commands", None, MANAGEMENT)
            + _listing("Commands", None, sorted(COMMANDS))
            + "\nRun 'kade COMMAND --help' for more information on a command.\n")


def group_help(group: str) -> str:
    return (f"\nUsage:  kade {group} COMMAND\n\n{describe(group)}\n"
            + _listing("Commands", group, GROUPS[group])
            + f"\nRun 'kade {group} COMMAND --help' for more information on a command.\n")


def group_usage(group: str, args: list[str], stream=None) -> int:
    """`kade GROUP`, `kade GROUP --help`, `kade GROUP nonsense`, as docker answers them:
    help on stdout for --help; on stderr for no subcommand (exit 0, docker's ShowHelp)
    and for an unknown one (exit 1, docker's cli.NoArgs error)."""
    text = group_help(group)
    if args and args[0] in ("-h", "--help"):
        sys.stdout.write(text)
        return 0
    sys.stderr.write(text)
    return 1 if args else 0
