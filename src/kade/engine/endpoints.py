"""A container's endpoints through its life, in the supervisor worker that runs it:

    plan = endpoints.plan(engine, cid, record)    # leases, /etc/hosts, a new netns (fd)
    endpoints.begin(engine, cid, record, plan)    # lo, veths, DNS, ports: in a thread,
    ... runtime.create(...)                      #   while the init joins the netns by
    endpoints.finish(plan)                        #   path and sets up its rootfs
    ... runtime.start(...)                        # (an external runtime's `run` only
    plan.close()                                  #   after finish: no process before)
    endpoints.release(engine, cid)                # at exit (and on a failed start)
    endpoints.readopt(engine, cid, record, pid)   # a new worker: DNS sockets again

The worker makes the container's network namespace itself (kade.network.netlink.
new_netns) and holds it by an fd until the init is in it, so the namespace is ready
before any process of the container runs, whatever the runtime. A kill of the worker
closes that fd: a namespace no init joined goes with it, and its veths with it.

Each step records what it made in state["Net"] before the next begins, and every
resource is keyed by the container id, so whatever a kill interrupts is found by
Networks.reconcile (see kade.engine.networks).

`--network container:X`: no namespace, no lease; the container joins X's namespace
and, as docker's initializeNetworking does, takes X's /etc/hosts, /etc/resolv.conf
and /etc/hostname files (bind-mounted, so X's updates show) and X's hostname. When X
exits while others still share its namespace, X's interfaces are deleted before its
addresses are released (docker's sandbox.Delete): the sharers keep the namespace with
only lo, and no address is leased twice while still configured.
"""

from __future__ import annotations

import os

from kade.engine.networks import BUILTIN, endpoint_settings, mode_network, taken_ports
from kade.errors import FailedPrecondition, NotFound

TYPE_CHECKING = False  # threading loads only when a container has a network to join
if TYPE_CHECKING:
    import threading

_ensured: set[str] = set()  # networks whose bridge and rules this process has made


class Plan:
    __slots__ = ("endpoints", "netns_path", "own_netns", "netns_fd", "_thread", "_error")

    def __init__(self, endpoints=(), netns_path: str | None = None, own_netns: bool = True):
        self.endpoints = list(endpoints)  # (network record, Endpoint, settings)
        self.netns_path, self.own_netns = netns_path, own_netns
        self.netns_fd = -1  # the container's new netns, until its init is in it
        self._thread: threading.Thread | None = None  # begin()'s join, until finish()
        self._error: BaseException | None = None

    def make_netns(self) -> None:
        from kade.network import netlink
        self.netns_fd = netlink.new_netns()
        self.netns_path = f"/proc/{os.getpid()}/fd/{self.netns_fd}"

    def close(self) -> None:
        """Once the init is in the namespace (or never will be): the fd goes, so the
        namespace lives exactly as long as the container's processes."""
        self.wait()
        if self.netns_fd >= 0:
            os.close(self.netns_fd)
            self.netns_fd = -1

    def wait(self) -> BaseException | None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return self._error


def wanted(engine, record: dict) -> dict:
    """name -> EndpointSettings the container asks for (records older than networks
    name none: they are on the default bridge)."""
    mode = record["HostConfig"].get("NetworkMode") or "default"
    nets = (record.get("NetworkSettings") or {}).get("Networks") or {}
    if nets or mode.startswith("container:"):
        return nets
    name = mode_network(mode)
    if name == "bridge":
        name = engine.networks.default_network()
    return {name: endpoint_settings(engine.networks.get(name)["Id"])}


def plan(engine, cid: str, record: dict) -> Plan:
    mode = record["HostConfig"].get("NetworkMode") or "default"
    if mode == "host":
        return Plan(own_netns=False)
    if mode.startswith("container:"):
        return Plan(netns_path=_share(engine, cid, record, mode.split(":", 1)[1]),
                    own_netns=False)
    nets = engine.networks
    out: list[tuple] = []
    index = 0
    try:
        for name, settings in wanted(engine, record).items():
            net = _network(nets, name, settings)
            if net["Driver"] != "bridge":
                continue
            ep = _lease(engine, cid, net, settings, index, first=not out,
                        mac=record["Config"].get("MacAddress") if index == 0 else None)
            out.append((net, ep, settings))
            index += 1
    except BaseException:
        engine.db.release(cid)
        raise
    p = Plan(out)
    write_hosts(engine, record, p)
    try:
        p.make_netns()
    except BaseException:
        engine.db.release(cid)
        raise
    return p


def _network(nets, name: str, settings: dict) -> dict:
    try:
        return nets.get(settings.get("NetworkID") or name)
    except NotFound:
        return nets.get(name)


def _share(engine, cid: str, record: dict, ref: str) -> str:
    """X's netns path for `container:X`; the record takes X's /etc files and hostname
    (saved: inspect shows them, as docker's does)."""
    other = engine.containers.resolve(ref)
    if other == cid:
        raise FailedPrecondition("cannot join own network")
    state = engine.containers.state(other)
    if not state.get("Running"):
        raise FailedPrecondition(f"cannot join network of a non running container: {ref}")
    theirs = engine.db.container(other)[0]
    for key in ("HostnamePath", "HostsPath", "ResolvConfPath"):
        record[key] = theirs[key]
    for key in ("Hostname", "Domainname"):
        record["Config"][key] = theirs["Config"].get(key, "")
    engine.db.save_record(cid, record)
    return f"/proc/{state['Pid']}/ns/net"


def _owner() -> str:
    from kade.engine.procs import pid_start
    return f"{os.getpid()}:{pid_start(os.getpid())}"


def _lease(engine, cid: str, net: dict, settings: dict, index: int, first: bool,
           mac: str | None = None):
    from kade.network import ipam
    from kade.network.bridge import host_ifname
    from kade.network.driver import Endpoint
    value = engine.networks.value(net)
    fixed = settings.get("IPAMConfig") or {}
    v4 = v6 = gw4 = gw6 = None
    owner = _owner()
    for sub in value.subnets:
        want = fixed.get("IPv6Address" if ":" in sub.subnet else "IPv4Address") or None
        if (":" in sub.subnet and v6) or (":" not in sub.subnet and v4):
            continue
        addr = engine.db.lease(value.id, cid, owner, lambda used, s=sub, w=want: ipam.allocate(
            s.subnet, s.gateway, used, s.ip_range, w))
        cidr = f"{addr}/{ipam.prefixlen(sub.subnet)}"
        if ":" in sub.subnet:
            v6, gw6 = cidr, sub.gateway
        else:
            v4, gw4 = cidr, sub.gateway
    default_route = first and not value.internal
    mac = mac or settings.get("MacAddress") or ""
    return Endpoint(ifname=f"eth{index}", host_ifname=host_ifname(cid, index), ipv4=v4,
                    ipv6=v6, mac=mac or (ipam.mac_for(v4.split("/")[0]) if v4 else ""),
                    gateway4=gw4 if default_route else None,
                    gateway6=gw6 if default_route else None, mtu=value.mtu)


def begin(engine, cid: str, record: dict, p: Plan) -> None:
    """join() in a thread of its own: the interfaces are made while the runtime makes
    the init; finish() waits for it."""
    if p.netns_fd < 0 or not p.endpoints:  # lo is up already (new_netns)
        return
    import threading

    def run() -> None:
        try:
            join(engine, cid, record, p)
        except BaseException as e:  # noqa: BLE001 - raised by finish(), in the monitor
            p._error = e

    thread = threading.Thread(target=run, name="kade-join")
    p._thread = thread
    thread.start()


def finish(p: Plan) -> None:
    error = p.wait()
    if error is not None:
        raise error


def join(engine, cid: str, record: dict, p: Plan) -> None:
    if p.netns_fd < 0 or not p.endpoints:
        return
    fd = p.netns_fd
    settled = {}
    for net, ep, _settings in p.endpoints:
        _ensure(engine, net)
        engine.networks._driver(net).join(engine.networks.value(net), ep, fd)
        settled[net["Name"]] = _runtime_settings(net, ep, cid)
    engine.db.update_state(cid, {"Net": {"Endpoints": settled, "Ports": {},
                                         "Netns": _ns_id(fd)}})
    users = [net for net, _ep, _s in p.endpoints if net["Name"] not in BUILTIN]
    if users:
        _attach_dns(engine, cid, record, fd, users)
    _publish(engine, cid, record, p)


def _ns_id(fd: int) -> str:
    st = os.fstat(fd)
    return f"{st.st_dev}:{st.st_ino}"


def _ensure(engine, net: dict) -> None:
    if net["Id"] in _ensured:
        return
    engine.networks._driver(net).create(engine.networks.value(net))
    engine.networks._firewall_add(net)
    _ensured.add(net["Id"])


def _runtime_settings(net: dict, ep, cid: str) -> dict:
    v4, _, p4 = (ep.ipv4 or "").partition("/")
    v6, _, p6 = (ep.ipv6 or "").partition("/")
    subs = engine_subnets(net)
    return {"EndpointID": _endpoint_id(cid, net["Id"]), "IPAddress": v4,
            "IPPrefixLen": int(p4 or 0), "Gateway": subs.get(4, ""),
            "GlobalIPv6Address": v6, "GlobalIPv6PrefixLen": int(p6 or 0),
            "IPv6Gateway": subs.get(6, "") if v6 else "", "MacAddress": ep.mac,
            "Ifname": ep.ifname, "HostIfname": ep.host_ifname}


def engine_subnets(net: dict) -> dict:
    out: dict = {}
    for c in (net.get("IPAM") or {}).get("Config") or ():
        out.setdefault(6 if ":" in c["Subnet"] else 4, c["Gateway"])
    return out


def _endpoint_id(cid: str, nid: str) -> str:
    return nid[:32] + cid[:32]  # docker's are random; a derived one needs no store


# --- DNS ------------------------------------------------------------------------
def _attach_dns(engine, cid: str, record: dict, fd: int, nets: list[dict]) -> None:
    dns = engine.networks.dns()
    for net in nets:
        refresh_dns(engine, net)
    upstreams = record["HostConfig"].get("Dns") or None
    udp, tcp = dns.attach(cid, fd, [n["Id"] for n in nets], upstreams=upstreams)
    fw = engine.networks.firewall()
    if fw is not None:
        fw.redirect_dns(fd, udp, tcp)


def refresh_dns(engine, net: dict) -> None:
    """The network's records, from every running container's endpoint on it."""
    from kade.network.dns import Record
    records = []
    for rec, state in engine.db.containers():
        ep = ((state.get("Net") or {}).get("Endpoints") or {}).get(net["Name"])
        if not ep or state.get("Status") not in ("running", "paused", "restarting", "created"):
            continue
        settings = (rec.get("NetworkSettings") or {}).get("Networks", {}).get(net["Name"]) or {}
        names = [rec["Name"].lstrip("/"), *(settings.get("Aliases") or ()), rec["Id"][:12]]
        for link in settings.get("Links") or ():
            names.append(link.split(":")[-1])
        records.append(Record(tuple(dict.fromkeys(names)), ep["IPAddress"] or None,
                              ep["GlobalIPv6Address"] or None))
    engine.networks.dns().set_network(net["Id"], records, name=net["Name"])


def _publish(engine, cid: str, record: dict, p: Plan) -> None:
    bindings = _bindings(engine, cid, record, p)
    if bindings is None:
        return
    fw, bridge, ips, ports, published = bindings
    if published:
        fw.publish(cid, bridge, ips, published)
    engine.db.update_state(cid, {"Net": {**engine.db.container(cid)[1]["Net"], "Ports": ports}})


def _bindings(engine, cid: str, record: dict, p: Plan):
    """The firewall, the first bridge and its addresses, docker's Ports map and the
    bindings to publish; None when nothing is exposed."""
    host = record["HostConfig"]
    exposed = record["Config"].get("ExposedPorts") or {}
    if not (exposed or host.get("PortBindings")) or not p.endpoints:
        return None
    fw = engine.networks.firewall()
    net, ep, _ = p.endpoints[0]
    ips = [a.split("/")[0] for a in (ep.ipv4, ep.ipv6) if a]
    published = allocate_ports(host, exposed, taken_ports(fw, cid))
    ports: dict[str, list | None] = {k: None for k in exposed}
    for b in published:
        key = f"{b.container_port}/{b.proto}"
        hosts = [b.host_ip] if b.host_ip else ["0.0.0.0", "::"]
        ports[key] = (ports.get(key) or []) + [{"HostIp": h, "HostPort": str(b.host_port)}
                                               for h in hosts]
    return fw, engine.networks.value(net).bridge, ips, ports, published


def allocate_ports(host: dict, exposed: dict, taken: list) -> list:
    from kade.network import ports as portmod
    requests = portmod.from_port_bindings(host.get("PortBindings") or {})
    if host.get("PublishAllPorts"):
        have = {(r.container_port, r.proto) for r in requests}
        requests += [r for r in portmod.publish_all(exposed)
                     if (r.container_port, r.proto) not in have]
    return portmod.allocate(requests, taken)


# --- the end ---------------------------------------------------------------------
def release(engine, cid: str, exited: bool = False) -> None:
    """Undo join and plan; safe to call at any point, and twice. exited: the init is
    dead, so its namespace goes and the kernel deletes the veths in it, and their
    peers (deleting them here would wait ~10 ms each for the kernel's RCU grace)."""
    try:
        state = engine.db.container(cid)[1]
    except NotFound:
        state = {}
    eps = (state.get("Net") or {}).get("Endpoints") or {}
    if exited and eps and _shared(engine, cid, (state.get("Net") or {}).get("Netns")):
        exited = False  # the namespace lives on: its interfaces go before their leases
    nets = engine.networks
    if nets._dns is not None:
        nets._dns.detach(cid)
    fw = nets._firewall
    if fw is not None and (state.get("Net") or {}).get("Ports"):
        fw.unpublish(cid)
    for name, ep in eps.items() if not exited else ():
        try:
            net = nets.get(name)
        except NotFound:
            continue
        _leave(engine, net, ep)
    engine.db.release(cid)
    if state:
        try:
            engine.db.update_state(cid, {"Net": None})
        except NotFound:
            pass
    for name in eps:
        if name not in BUILTIN and nets._dns is not None:
            try:
                refresh_dns(engine, nets.get(name))
            except NotFound:
                pass


def _shared(engine, cid: str, netns: str | None) -> bool:
    """Whether a running container (`--network container:`) is still in the netns
    whose id ("dev:ino") the exited container had."""
    if not netns:
        return False
    for rec, st in engine.db.containers():
        mode = rec["HostConfig"].get("NetworkMode") or ""
        if rec["Id"] == cid or not mode.startswith("container:") or not st.get("Pid"):
            continue
        try:
            info = os.stat(f"/proc/{st['Pid']}/ns/net")
        except OSError:
            continue
        if f"{info.st_dev}:{info.st_ino}" == netns:
            return True
    return False


def _leave(engine, net: dict, ep: dict) -> None:
    from kade.network.driver import Endpoint
    engine.networks._driver(net).leave(engine.networks.value(net), Endpoint(
        ifname=ep.get("Ifname", ""), host_ifname=ep.get("HostIfname", "")))


def readopt(engine, cid: str, record: dict, pid: int) -> None:
    """A new worker watches a running container: its DNS sockets died with the old
    worker; open them again (new ports, so the DNAT changes too)."""
    state = engine.db.container(cid)[1]
    eps = (state.get("Net") or {}).get("Endpoints") or {}
    users = []
    for name in eps:
        if name not in BUILTIN:
            try:
                users.append(engine.networks.get(name))
            except NotFound:
                continue
    if not users:
        return
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _attach_dns(engine, cid, record, fd, users)
    finally:
        os.close(fd)


# --- /etc/hosts ------------------------------------------------------------------
def write_hosts(engine, record: dict, p: Plan) -> None:
    from kade.engine import spec
    cfg, host = record["Config"], record["HostConfig"]
    own = [(ep.ipv4 or ep.ipv6).split("/")[0] for _n, ep, _s in p.endpoints
           if ep.ipv4 or ep.ipv6][:1]
    links = _link_lines(engine, record)
    text = spec.hosts_file(cfg["Hostname"], host.get("ExtraHosts") or [],
                           links=links, own=own, gateway=_host_gateway(engine, host))
    rewrite(record["HostsPath"], text)


def _host_gateway(engine, host: dict) -> str | None:
    """docker's host-gateway: the default bridge's gateway address."""
    if not any(h.endswith(":host-gateway") for h in host.get("ExtraHosts") or ()):
        return None
    return engine_subnets(engine.networks.get("bridge")).get(4)


def _link_lines(engine, record: dict) -> list[tuple[str, str]]:
    settings = (record.get("NetworkSettings") or {}).get("Networks", {}).get("bridge") or {}
    out = []
    for link in settings.get("Links") or ():
        name, _, alias = link.partition(":")
        try:
            other = engine.containers.resolve(name)
            rec, state = engine.db.container(other)
        except NotFound:
            continue
        ep = ((state.get("Net") or {}).get("Endpoints") or {}).get("bridge") or {}
        if ep.get("IPAddress"):
            other_name = rec["Name"].lstrip("/")
            names = dict.fromkeys([alias or other_name, other[:12], other_name])
            out.append((ep["IPAddress"], " ".join(names)))
    return out


def rewrite(path: str, text: str) -> None:
    """In place, not by rename: a running container's bind mount keeps the inode."""
    from kade.engine.spec import write_new
    write_new(path, text, 0o644)


# --- network connect / disconnect of a running container (in its supervisor) ------
def connect_running(engine, cid: str, name: str) -> None:
    record, state = engine.db.container(cid)
    net = engine.networks.get(name)
    eps = dict((state.get("Net") or {}).get("Endpoints") or {})
    if net["Name"] in eps or net["Driver"] != "bridge":
        return
    settings = record["NetworkSettings"]["Networks"].get(net["Name"]) or {}
    index = 1 + max([int(e.get("Ifname", "eth0")[3:] or 0) for e in eps.values()] or [-1])
    ep = _lease(engine, cid, net, settings, index, first=not eps)
    fd = os.open(f"/proc/{state['Pid']}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _ensure(engine, net)
        engine.networks._driver(net).join(engine.networks.value(net), ep, fd)
        eps[net["Name"]] = _runtime_settings(net, ep, cid)
        engine.db.update_state(cid, {"Net": {**(state.get("Net") or {}), "Endpoints": eps}})
        users = [engine.networks.get(n) for n in eps if n not in BUILTIN]
        if users:
            dns = engine.networks.dns()
            if any(n not in BUILTIN for n in list(eps)[:-1]):
                for u in users:
                    refresh_dns(engine, u)
                dns.update(cid, [u["Id"] for u in users])
            else:
                _attach_dns(engine, cid, record, fd, users)
    except BaseException:
        engine.db.release(cid, net["Id"])
        raise
    finally:
        os.close(fd)


def disconnect_running(engine, cid: str, name: str) -> None:
    record, state = engine.db.container(cid)
    eps = dict((state.get("Net") or {}).get("Endpoints") or {})
    ep = eps.pop(name, None)
    if ep is None:
        return
    net = engine.networks.get(name)
    _leave(engine, net, ep)
    engine.db.release(cid, net["Id"])
    engine.db.update_state(cid, {"Net": {**(state.get("Net") or {}), "Endpoints": eps}})
    nets = engine.networks
    if name not in BUILTIN and nets._dns is not None:
        refresh_dns(engine, net)
        nets._dns.update(cid, [nets.get(n)["Id"] for n in eps if n not in BUILTIN])
