"""From a container record to an OCI runtime spec (config.json), docker's way."""

from __future__ import annotations

import os
import resource

from kade.engine import users
from kade.errors import InvalidArgument
from kade.oci import defaults

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_RLIMITS = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
            "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack", "as"}


def build(record: dict, *, passwd: bytes | None, group: bytes | None,
          volume_mounts: list[dict], init_path: str | None = None,
          netns_path: str | None = None) -> dict:
    """netns_path: the network namespace to join (`--network container:NAME`)."""
    cfg, host = record["Config"], record["HostConfig"]
    uid, gid, extra = users.resolve(cfg.get("User") or "0", passwd, group)
    caps = defaults.resolve(host.get("CapAdd") or [], host.get("CapDrop") or [],
                            host.get("Privileged", False))
    if host.get("Privileged"):
        caps = [c for c in caps if c in _host_bounding()]  # all the host has, no more
    env = list(cfg["Env"])
    if not any(e.startswith("PATH=") for e in env):  # docker's default for images without one
        env.insert(0, DEFAULT_PATH)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={users.home_of(uid, passwd)}")
    if cfg.get("Tty") and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    args = [record["Path"], *record["Args"]]
    if host.get("Init") and init_path:
        args = ["/sbin/docker-init", "--", *args]
    spec = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": bool(cfg.get("Tty")), "args": args, "env": env,
            "cwd": cfg.get("WorkingDir") or "/",
            "user": {"uid": uid, "gid": gid, "additionalGids": extra},
            "capabilities": defaults.capabilities_spec(caps),
            "rlimits": rlimits(host.get("Ulimits") or []),
            "noNewPrivileges": _no_new_privs(host.get("SecurityOpt") or []),
        },
        "root": {"path": "rootfs", "readonly": bool(host.get("ReadonlyRootfs"))},
        "hostname": cfg["Hostname"],
        "mounts": mounts(record, volume_mounts, init_path),
        "linux": linux(record, caps, netns_path),
    }
    return spec


def _host_bounding() -> set[str]:
    """The capabilities this process may pass on (its bounding set)."""
    with open("/proc/self/status") as f:
        mask = int(next(line for line in f if line.startswith("CapBnd:")).split()[1], 16)
    return {name for bit, name in enumerate(defaults.CAPABILITIES) if mask >> bit & 1}


def _no_new_privs(security_opt: list[str]) -> bool:
    for opt in security_opt:
        key, _, value = opt.partition("=" if "=" in opt else ":")
        if key == "no-new-privileges":
            return value in ("", "true")
    return False


def rlimits(ulimits: list[dict]) -> list[dict]:
    out = []
    for u in ulimits:
        if u["Name"] not in _RLIMITS:
            raise InvalidArgument(f'invalid ulimit type: "{u["Name"]}"')
        resource_id = getattr(resource, f"RLIMIT_{u['Name'].upper()}")
        host_hard = resource.getrlimit(resource_id)[1]
        hard = u["Hard"] if host_hard == resource.RLIM_INFINITY else min(u["Hard"], host_hard)
        out.append({"type": f"RLIMIT_{u['Name'].upper()}", "soft": min(u["Soft"], hard),
                    "hard": hard})
    return out


def mounts(record: dict, volume_mounts: list[dict], init_path: str | None) -> list[dict]:
    host = record["HostConfig"]
    out = defaults.default_mounts()
    if host.get("Privileged"):
        for m in out:
            if m["destination"] in ("/sys", "/sys/fs/cgroup"):
                m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    taken = {m["destination"] for m in volume_mounts}
    for name, path in (("resolv.conf", record["ResolvConfPath"]),
                       ("hostname", record["HostnamePath"]), ("hosts", record["HostsPath"])):
        if f"/etc/{name}" not in taken:
            out.append({"destination": f"/etc/{name}", "type": "bind", "source": path,
                        "options": ["rbind", "rprivate"]})
    if host.get("Init") and init_path:
        out.append({"destination": "/sbin/docker-init", "type": "bind", "source": init_path,
                    "options": ["bind", "ro"]})
    return out + volume_mounts


def linux(record: dict, caps: list[str], netns_path: str | None = None) -> dict:
    host = record["HostConfig"]
    privileged = host.get("Privileged", False)
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")]
    if netns_path:
        namespaces.append({"type": "network", "path": netns_path})
    elif host.get("NetworkMode") != "host":
        namespaces.append({"type": "network"})
    out: dict = {
        "namespaces": namespaces,
        "cgroupsPath": f"/kade/{record['Id']}",
        "resources": resources(host),
        "maskedPaths": [] if privileged else defaults.masked_paths(),
        "readonlyPaths": [] if privileged else list(defaults.READONLY_PATHS),
    }
    if host.get("Devices") or host.get("DeviceCgroupRules"):
        _add_devices(out, host)
    seccomp = _seccomp(host.get("SecurityOpt") or [], caps, privileged)
    if seccomp:
        out["seccomp"] = seccomp
    return out


def _add_devices(linux_spec: dict, host: dict) -> None:
    """--device nodes (stat-ed on the host at each start, as docker does) and their
    rules, then the --device-cgroup-rule ones: after the defaults' deny-all."""
    from kade.engine import devices
    rules = linux_spec["resources"]["devices"]
    for mapping in host.get("Devices") or ():
        device, rule = devices.from_host(mapping)
        linux_spec.setdefault("devices", []).append(device)
        rules.append(rule)
    rules.extend(devices.parse_cgroup_rule(r) for r in host.get("DeviceCgroupRules") or ())


def _seccomp(security_opt: list[str], caps: list[str], privileged: bool) -> dict | None:
    for opt in security_opt:
        key, _, value = opt.partition("=" if "=" in opt else ":")
        if key != "seccomp":
            continue
        if value == "unconfined":
            return None
        try:
            with open(value) as f:
                import json
                return defaults.seccomp_from_profile(json.load(f), caps)
        except (OSError, ValueError) as e:
            raise InvalidArgument(f'opening seccomp profile ("{value}") failed: {e}') from None
    return None if privileged else defaults.default_seccomp(caps)


def resources(host: dict) -> dict:
    res: dict = {"devices": [{"allow": True, "access": "rwm"}] if host.get("Privileged")
                 else list(defaults.DEFAULT_DEVICE_RULES)}
    mem = {}
    if host.get("Memory"):
        mem["limit"] = host["Memory"]
        swap = host.get("MemorySwap") or 0
        mem["swap"] = swap if swap else host["Memory"] * 2
    if mem:
        res["memory"] = mem
    cpu = {}
    if host.get("NanoCpus"):
        cpu["quota"], cpu["period"] = defaults.cpu_quota(host["NanoCpus"] / 1e9)
    if host.get("CpuShares"):
        cpu["shares"] = host["CpuShares"]
    if cpu:
        res["cpu"] = cpu
    if host.get("PidsLimit"):
        res["pids"] = {"limit": host["PidsLimit"]}
    return res


def hosts_file(hostname: str, extra: list[str], links=(), own=(),
               gateway: str | None = None) -> str:
    """docker's /etc/hosts: the fixed lines, --add-host entries (host-gateway is
    `gateway`), --link entries (address, names), then the container's own address."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters"]
    from kade.engine.records import extra_host
    for item in extra:
        name, addr = extra_host(item)  # checked at create already; records may be older
        if addr == "host-gateway":
            if not gateway:
                continue
            addr = gateway
        lines.append(f"{addr}\t{name}")
    lines += [f"{addr}\t{names}" for addr, names in links]
    lines += [f"{addr}\t{hostname}" for addr in own]
    return "\n".join(lines) + "\n"


def resolv_conf(dns: list[str], search=(), options=(), mode: str = "bridge") -> str:
    """docker's /etc/resolv.conf. mode: "bridge" (the default bridge and none: the
    host's resolvers without loopback ones, or Google's if none is left), "host"
    (the host's file as it is), "user" (a user network: the embedded server at
    127.0.0.11, which forwards to --dns or the host's resolvers)."""
    try:
        with open("/etc/resolv.conf") as f:
            text = f.read()
    except OSError:
        text = ""
    lines = text.splitlines()
    host_search = [w for ln in lines if ln.startswith(("search", "domain"))
                   for w in ln.split()[1:]]
    host_opts = [w for ln in lines if ln.startswith("options") for w in ln.split()[1:]]
    if mode == "host" and not (dns or search or options):
        return text
    if mode == "user":
        servers = ["127.0.0.11"]
        opts = list(options or [o for o in host_opts if not o.startswith("ndots")])
        opts = ["ndots:0", *[o for o in opts if o != "ndots:0"]] if not any(
            o.startswith("ndots") for o in options) else opts
    else:
        servers = list(dns) or [w for ln in lines if ln.startswith("nameserver")
                                for w in ln.split()[1:2] if not _loopback(w)]
        if not servers and mode != "host":
            servers = ["8.8.8.8", "8.8.4.4"]  # docker's defaults when none is left
        opts = list(options) or host_opts
    out = [f"search {' '.join(search or host_search)}"] if (search or host_search) else []
    if list(search) == ["."]:
        out = []
    out += [f"nameserver {s}" for s in servers]
    if opts:
        out.append(f"options {' '.join(opts)}")
    return "\n".join(out) + "\n"


def _loopback(addr: str) -> bool:
    return addr.startswith("127.") or addr == "::1"


def ensure_file(path: str, text: str) -> None:
    """Replace path's content at once (readers see the old file or the new one)."""
    tmp = path + ".tmp"
    write_new(tmp, text)
    os.replace(tmp, path)


def write_new(path: str, text: str, mode: int = 0o666) -> None:
    """Write a file nothing reads yet (one in a bundle made moments ago), or rewrite one
    in place (a running container's bind mount keeps the inode): no temp file and
    rename, and plain os calls (open() adds fstat, ioctl and two lseeks), since every
    container start writes a few of these."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)
