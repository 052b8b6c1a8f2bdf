"""Networks: records and policy (create, ls, inspect, rm, prune, connect, disconnect),
and a container's endpoints through its life.

Where things are:
- a network is a row of `networks` (docker's inspect JSON, plus "Private": the bridge
  name); the built-in `bridge`, `host` and `none` are made on first use;
- a container's wish is in its record: HostConfig.NetworkMode and
  NetworkSettings.Networks[name] (aliases, IPAMConfig, links; no addresses);
- while it runs, state["Net"] = {"Endpoints": {name: {...addresses, Ifname,
  HostIfname}}, "Ports": docker's NetworkSettings.Ports}; inspect merges both;
- an address is a row of `leases`, taken by the supervisor worker that starts the
  container (owner "pid:start") before its init exists, released at its exit.

Crash rules (see kade.network.bridge for the kernel side): a lease whose container
is not running and whose owner is dead is stale; a firewall entry (keyed by container
id) of a container not running is stale; a host veth of ours whose container is not
running is stale. `reconcile()` drops them all: every supervisor worker runs it when it
starts (before re-adopting), and `network prune` / `system prune` run it too.
"""

from __future__ import annotations

import threading

from kade.errors import Conflict, FailedPrecondition, Forbidden, InvalidArgument, NotFound

BUILTIN = ("bridge", "host", "none")
DEFAULT_MODES = ("default", "bridge")
RUNNING = ("running", "paused", "restarting")


def mode_network(mode: str) -> str:
    """The network a NetworkMode puts the container on ('' for container:)."""
    if mode in DEFAULT_MODES or not mode:
        return "bridge"
    return "" if mode.startswith("container:") else mode


class Networks:
    def __init__(self, engine):
        self.engine = engine
        self.db = engine.db
        self._lock = threading.RLock()
        self._dns = None
        self._firewall = None
        self._cfg = None

    # --- records ----------------------------------------------------------------
    def _config(self):
        if self._cfg is None:  # read once per process, as dockerd reads daemon.json
            from kade.network import config
            self._cfg = config.load(self.engine.root)
        return self._cfg

    def default_network(self) -> str:
        """What `run` without --network joins: the default bridge, or nothing but lo
        where daemon.json says "bridge": "none" (docker's --bridge=none)."""
        return "none" if self._config().bridge == "none" else "bridge"

    def all(self) -> list[dict]:
        records = self.db.networks()
        if {r["Name"] for r in records} >= set(BUILTIN):
            return records
        self._make_builtin({r["Name"] for r in records})
        return self.db.networks()

    def _make_builtin(self, have: set[str]) -> None:
        from kade.util.ids import new_id
        for name in BUILTIN:
            if name in have:
                continue
            record = _builtin_record(name, new_id(), self) if name == "bridge" else \
                _record(new_id(), name, "host" if name == "host" else "null")
            try:
                self.db.add_network(record["Id"], name, _now(), record)
            except Exception:  # noqa: BLE001 - another process made it first
                pass

    def listing(self, filters: dict) -> list[dict]:
        """`network ls`: docker's filters (driver, id, label, name, scope, type,
        dangling), each key any of its values; newest last, as docker sorts by name."""
        from kade.util.filters import bool_filter, check_keys, match_labels
        check_keys(filters, ("driver", "id", "label", "name", "scope", "type", "dangling"))
        tests = {
            "driver": lambda r, v: r["Driver"] == v,
            "id": lambda r, v: r["Id"].startswith(v),
            "name": lambda r, v: v in r["Name"],
            "scope": lambda r, v: v == "local",
            "type": lambda r, v: _check_type(v) == (r["Name"] in BUILTIN),
        }
        out = []
        dangling = bool_filter(filters, "dangling", False) if "dangling" in filters else None
        for record in self.all():
            if any(not any(tests[k](record, v) for v in vals)
                   for k, vals in filters.items() if k in tests):
                continue
            if "label" in filters and not match_labels(record.get("Labels"), filters["label"]):
                continue
            if dangling is not None and dangling == (record["Name"] in BUILTIN or bool(
                    self.users(record))):
                continue
            out.append(record)
        return sorted(out, key=lambda r: r["Name"])

    def get(self, ref: str) -> dict:
        records = self.all()
        for match in (lambda r: r["Id"] == ref, lambda r: r["Name"] == ref,
                      lambda r: r["Id"].startswith(ref)):
            found = [r for r in records if match(r)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise Conflict(f"network {ref} is ambiguous ({len(found)} matches found "
                               "based on ID prefix)")
        raise NotFound(f"network {ref} not found")

    def create(self, name: str, driver: str = "bridge", subnets=(), gateways=(),
               ip_ranges=(), internal: bool = False, ipv6: bool = False, labels=None,
               options=None, attachable: bool = False) -> str:
        from kade.network import driver as drivers
        from kade.util.ids import new_id
        if name in (*BUILTIN, "default"):  # docker's PredefinedNetworkError
            raise Forbidden(f"operation is not permitted on predefined {name} network")
        if any(r["Name"] == name for r in self.all()):
            raise Conflict(f"network with name {name} already exists")
        if driver in ("host", "null", "none"):
            raise Forbidden(f"only one instance of \"{driver}\" network is allowed")
        drivers.get(driver)  # plugin "x" not found
        nid = new_id()
        ipam = self._ipam_config(list(subnets), list(gateways), list(ip_ranges), ipv6)
        record = _record(nid, name, driver, ipam=ipam, internal=internal, ipv6=ipv6,
                         labels=labels, options=options, attachable=attachable)
        record["Private"] = {"Bridge": (options or {}).get("com.docker.network.bridge.name")
                             or f"kade-{nid[:10]}"}
        self._check_bridge_name(record["Private"]["Bridge"])
        with self._lock:
            # recorded first: a kill before the bridge exists leaves a record whose
            # bridge the next join (or rm) makes (or removes): never a bridge of nobody
            self.db.add_network(nid, name, _now(), record)
            try:
                self._driver(record).create(self.value(record))
                self._firewall_add(record)
            except BaseException:
                self._drop(record)
                raise
        self.engine.emit("network", "create", nid, {"name": name, "type": driver})
        return nid

    def _check_bridge_name(self, bridge: str) -> None:
        if any((r.get("Private") or {}).get("Bridge") == bridge for r in self.all()):
            raise Conflict(f"bridge name {bridge} is already used by another network")

    def _ipam_config(self, subnets: list, gateways: list, ranges: list, ipv6: bool) -> list:
        from kade.network import ipam
        if len(gateways) > len(subnets) or len(ranges) > len(subnets):
            raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
        taken = self._subnets_in_use()
        out = []
        for i, text in enumerate(subnets):
            subnet = ipam.parse_subnet(text)
            if ipam.overlaps(subnet, taken):
                raise Conflict("Pool overlaps with other one on this address space")
            taken.append(subnet)
            entry = {"Subnet": subnet, "Gateway": ipam.gateway_for(
                subnet, gateways[i] if i < len(gateways) else None)}
            rng = ipam.check_range(subnet, ranges[i] if i < len(ranges) else None)
            if rng:
                entry["IPRange"] = rng
            out.append(entry)
        if not any(":" not in e["Subnet"] for e in out):
            subnet = ipam.pick_subnet(self._config().pools, taken + _host_networks())
            out.insert(0, {"Subnet": subnet, "Gateway": ipam.gateway_for(subnet, None)})
        if ipv6 and not any(":" in e["Subnet"] for e in out):
            raise InvalidArgument("non-overlapping IPv6 address pool not found: give "
                                  "--ipv6 networks a v6 --subnet")
        return out

    def _subnets_in_use(self) -> list[str]:
        return [c["Subnet"] for r in self.db.networks()
                for c in (r.get("IPAM") or {}).get("Config") or ()]

    def value(self, record: dict):
        """The network as the driver sees it (kade.network.driver.Network)."""
        from kade.network.driver import Network, Subnet
        cfg = (record.get("IPAM") or {}).get("Config") or []
        mtu = int((record.get("Options") or {}).get("com.docker.network.driver.mtu")
                  or self._config().mtu)
        return Network(id=record["Id"], name=record["Name"], driver=record["Driver"],
                       bridge=(record.get("Private") or {}).get("Bridge", ""),
                       subnets=tuple(Subnet(c["Subnet"], c["Gateway"], c.get("IPRange"))
                                     for c in cfg),
                       mtu=mtu, internal=bool(record.get("Internal")),
                       ipv6=bool(record.get("EnableIPv6")))

    def _driver(self, record: dict):
        from kade.network import driver as drivers
        return drivers.get(record["Driver"])

    def remove(self, ref: str) -> str:
        record = self.get(ref)
        if record["Name"] in BUILTIN:
            raise Forbidden(f"{record['Name']} is a pre-defined network and cannot be removed")
        users = self.users(record)
        if users:
            raise Forbidden(f"error while removing network: network {record['Name']} id "
                            f"{record['Id']} has active endpoints")
        with self._lock:
            self._drop(record)
        self.engine.emit("network", "destroy", record["Id"],
                         {"name": record["Name"], "type": record["Driver"]})
        return record["Name"]

    def _drop(self, record: dict) -> None:
        bridge = (record.get("Private") or {}).get("Bridge")
        if bridge and record["Driver"] == "bridge":
            self.firewall().remove_network(bridge)
        self._driver(record).delete(self.value(record))
        self.db.delete_network(record["Id"])

    def users(self, record: dict) -> list[str]:
        """Containers with an endpoint on the network (running ones: docker counts
        only endpoints, which exist while a container runs)."""
        out = []
        for rec, state in self.db.containers():
            if record["Name"] in ((state.get("Net") or {}).get("Endpoints") or {}) and \
                    self.engine.containers.state(rec["Id"]).get("Running"):
                out.append(rec["Id"])
        return out

    def prune(self, flt=None) -> list[str]:
        """Remove the networks no container names; flt: a kade.engine.prune.Filter."""
        from kade.util.ids import parse_rfc3339
        self.reconcile()
        used = {n for rec, _ in self.db.containers() for n in self.configured(rec)}
        gone = []
        for record in self.all():
            if record["Name"] in BUILTIN or record["Name"] in used or self.users(record):
                continue
            if flt is not None and not flt.matches(parse_rfc3339(record["Created"]),
                                                   record.get("Labels")):
                continue
            try:
                gone.append(self.remove(record["Id"]))
            except (Forbidden, NotFound):
                continue
        return gone

    def configured(self, record: dict) -> list[str]:
        """The networks a container record names (not host/none/container:)."""
        names = list((record.get("NetworkSettings") or {}).get("Networks") or {})
        return [n for n in names if n not in ("host", "none")]

    # --- connect and disconnect --------------------------------------------------
    def connect(self, ref: str, container: str, aliases=(), ip=None, ip6=None,
                links=()) -> None:
        net = self.get(ref)
        cid = self.engine.containers.resolve(container)
        record, _ = self.db.container(cid)
        mode = record["HostConfig"].get("NetworkMode") or "default"
        if mode == "host" or mode.startswith("container:") or net["Name"] in ("host", "none"):
            raise Forbidden("container sharing network namespace with another container or "
                            "host cannot be connected to any other network")
        nets = record["NetworkSettings"].setdefault("Networks", {})
        if net["Name"] in nets:
            raise Forbidden(f"endpoint with name {record['Name'].lstrip('/')} already "
                            f"exists in network {net['Name']}")
        if "none" in nets:
            raise Forbidden("container cannot be disconnected from host network or "
                            "connected to host network")
        if (ip or ip6 or aliases) and net["Name"] in BUILTIN:
            raise InvalidArgument("user specified IP address is supported on user defined "
                                  "networks only")
        nets[net["Name"]] = endpoint_settings(net["Id"], aliases=aliases, ip=ip, ip6=ip6,
                                              links=links)
        self.db.save_record(cid, record)
        if self.engine.containers.state(cid).get("Running"):
            try:
                self._ask_supervisor("connect", cid, net["Name"])
            except BaseException:
                nets.pop(net["Name"], None)
                self.db.save_record(cid, record)
                raise
        self.engine.emit("network", "connect", net["Id"], {"container": cid,
                                                            "name": net["Name"],
                                                            "type": net["Driver"]})

    def disconnect(self, ref: str, container: str, force: bool = False) -> None:
        net = self.get(ref)
        cid = self.engine.containers.resolve(container)
        record, _ = self.db.container(cid)
        nets = record["NetworkSettings"].get("Networks") or {}
        if net["Name"] not in nets:
            if force:
                return
            raise Forbidden(f"container {cid} is not connected to network {net['Name']}")
        if net["Name"] in ("host", "none") and not force:
            raise Forbidden("container cannot be disconnected from host network or "
                            "connected to host network")
        if self.engine.containers.state(cid).get("Running"):
            self._ask_supervisor("disconnect", cid, net["Name"])
        nets.pop(net["Name"])
        self.db.save_record(cid, record)
        self.engine.emit("network", "disconnect", net["Id"], {"container": cid,
                                                               "name": net["Name"],
                                                               "type": net["Driver"]})

    def _ask_supervisor(self, action: str, cid: str, name: str) -> None:
        """The supervisor that runs the container joins or leaves (it holds the DNS)."""
        from kade.engine import monitorclient
        sock = monitorclient.connect(self.engine)
        try:
            monitorclient.send(sock, {"op": "network", "action": action, "cid": cid,
                                      "network": name})
            msg = monitorclient.Reader(sock.fileno()).read() or {
                "error": "container monitor died", "kind": "KadeError"}
        finally:
            sock.close()
        if "error" in msg:
            raise monitorclient.error_class(msg["kind"])(msg["error"])

    # --- docker's JSON ----------------------------------------------------------
    def inspect(self, ref: str) -> dict:
        record = dict(self.get(ref))
        record.pop("Private", None)
        containers = {}
        for rec, state in self.db.containers():
            ep = ((state.get("Net") or {}).get("Endpoints") or {}).get(record["Name"])
            if ep and self.engine.containers.state(rec["Id"]).get("Running"):
                containers[rec["Id"]] = {
                    "Name": rec["Name"].lstrip("/"), "EndpointID": ep["EndpointID"],
                    "MacAddress": ep["MacAddress"],
                    "IPv4Address": f"{ep['IPAddress']}/{ep['IPPrefixLen']}"
                    if ep["IPAddress"] else "",
                    "IPv6Address": f"{ep['GlobalIPv6Address']}/{ep['GlobalIPv6PrefixLen']}"
                    if ep["GlobalIPv6Address"] else ""}
        record["Containers"] = containers
        return record

    # --- a container's wish, checked at create --------------------------------
    def settings_for(self, opts) -> dict:
        """NetworkSettings.Networks for a new container, or docker's error (before
        anything is created)."""
        mode = opts.network or "default"
        if mode.startswith("container:"):
            other = mode.split(":", 1)[1]
            if not other:
                raise InvalidArgument("--network: container name or id is empty")
            self.engine.containers.resolve(other)
            if opts.publish or opts.publish_all:
                raise InvalidArgument("conflicting options: port publishing and the "
                                      "container type network mode")
            return {}
        name = mode_network(mode)
        if name == "bridge" and self.default_network() == "none":
            if mode == "bridge":
                raise NotFound("network bridge not found")
            name = "none"
        record = self.get(name)
        static = opts.ip or opts.ip6
        if static and (record["Name"] in BUILTIN):
            raise InvalidArgument("user specified IP address is supported on user defined "
                                  "networks only")
        if opts.network_aliases and record["Name"] in BUILTIN:
            raise InvalidArgument("network-scoped alias is supported only for containers "
                                  "in user defined networks")
        if opts.links and record["Name"] != "bridge":
            if record["Name"] in ("host", "none"):
                raise InvalidArgument("conflicting options: host type networking can't be "
                                      "used with links. This would result in undefined "
                                      "behavior")
        for link in opts.links:
            self.engine.containers.resolve(link.split(":")[0])
        if opts.publish and record["Driver"] == "bridge":
            self._check_ports(opts.publish)
        return {record["Name"]: endpoint_settings(
            record["Id"], aliases=opts.network_aliases, ip=opts.ip, ip6=opts.ip6,
            links=opts.links if record["Name"] == "bridge" else [])}

    def _check_ports(self, publish: list[str]) -> None:
        """A fixed host port that is taken: docker's error now, not at start (a
        run with a taken port then leaves no container behind). The start checks
        again: another may take it in between."""
        from kade.network import ports
        fixed = [r for r in ports.parse_publish(publish)
                 if r.host_port and r.host_port == r.host_port_end]
        if fixed:
            # only read: a check must not make Kade's table where no bridge needs it
            from kade.network.firewall import Firewall
            ports.allocate(fixed, taken_ports(self._firewall or Firewall()))

    # --- firewall and DNS (the net-nft and net-dns modules) ----------------------
    def firewall(self):
        """The nftables table of this process's network namespace."""
        if self._firewall is None:
            from kade.network.firewall import Firewall
            fw = Firewall()
            fw.ensure()  # no nftables at all: the error says so, in one line
            self._firewall = fw
        return self._firewall

    def _firewall_add(self, record: dict) -> None:
        fw = self.firewall()
        net = self.value(record)
        if fw is None or net.driver != "bridge":
            return
        fw.add_network(net.bridge, [s.subnet for s in net.subnets], internal=net.internal,
                       masquerade=not net.internal, isolate=True)

    def dns(self):
        """The embedded DNS server of this process (the supervisor worker)."""
        with self._lock:
            if self._dns is None:
                from kade.network.dns import DNSServer
                self._dns = DNSServer(list(self._config().dns) or None)
                self._dns.start()
            return self._dns

    # --- cleaning what a crash left -------------------------------------------
    def reconcile(self) -> None:
        """Drop stale leases, firewall entries and veths (see the module docstring)."""
        from kade.engine.procs import pid_alive
        running = {rec["Id"] for rec, _ in self.db.containers()
                   if self.engine.containers.state(rec["Id"]).get("Status") in RUNNING}
        for _nid, _addr, cid, owner in self.db.leases():
            pid, _, start = owner.partition(":")
            if cid not in running and not pid_alive(int(pid or 0), int(start or 0) or None):
                self.db.release(cid)
        if not self._uses_kernel():
            return  # no bridge ever: no table or veth of ours to look at (nor to make)
        fw = self.firewall()
        for key in fw.published():
            if key not in running:
                fw.unpublish(key)
        from kade.network import driver as drivers
        drivers.get("bridge").sweep({c[:10] for c in running} | self._starting())

    def _uses_kernel(self) -> bool:
        """A bridge or veth of ours exists in this netns (read from /proc/self/net/dev,
        not netlink): else there is nothing to sweep, and a worker that only ever runs
        `--network none` or host containers never opens netlink nor loads nftables."""
        bridges = {(r.get("Private") or {}).get("Bridge") for r in self.db.networks()
                   if r["Driver"] == "bridge"}
        try:
            with open("/proc/self/net/dev") as f:
                names = [line.split(":")[0].strip() for line in f.readlines()[2:]]
        except OSError:
            return True
        return any(n in bridges or n.startswith("kv") for n in names)

    def _starting(self) -> set[str]:
        """Id prefixes of containers a live worker is starting (their leases' owner)."""
        from kade.engine.procs import pid_alive
        out = set()
        for _nid, _addr, cid, owner in self.db.leases():
            pid, _, start = owner.partition(":")
            if pid_alive(int(pid or 0), int(start or 0) or None):
                out.add(cid[:10])
        return out


def _check_type(value: str) -> bool:
    """type=builtin -> True, type=custom -> False."""
    if value not in ("builtin", "custom"):
        raise InvalidArgument(f"invalid filter: 'type'='{value}'")
    return value == "builtin"


def taken_ports(fw, cid: str = "") -> list:
    """Host ports published in the firewall, but for container cid's own."""
    return [b for key, bs in fw.published().items() if key != cid for b in bs]


def endpoint_settings(nid: str, aliases=(), ip=None, ip6=None, links=()) -> dict:
    ipam = {"IPv4Address": ip or "", "IPv6Address": ip6 or ""} if (ip or ip6) else None
    return {"IPAMConfig": ipam, "Links": list(links) or None, "Aliases": list(aliases) or None,
            "NetworkID": nid, "EndpointID": "", "Gateway": "", "IPAddress": "",
            "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}


def _record(nid: str, name: str, driver: str, ipam=None, internal=False, ipv6=False,
            labels=None, options=None, attachable=False) -> dict:
    from kade.util.ids import now_rfc3339
    return {"Name": name, "Id": nid, "Created": now_rfc3339(), "Scope": "local",
            "Driver": driver, "EnableIPv6": ipv6,
            "IPAM": {"Driver": "default", "Options": {} if ipam is not None else None,
                     "Config": ipam or []},
            "Internal": internal, "Attachable": attachable, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": {},
            "Options": dict(options or {}), "Labels": dict(labels or {})}


def _builtin_record(name: str, nid: str, nets: Networks) -> dict:
    """The default bridge: `bip` if set, else the first free pool entry (docker
    tries 172.17.0.0/16 first)."""
    from kade.network import ipam
    cfg = nets._config()
    if cfg.bip:
        import ipaddress
        iface = ipaddress.ip_interface(cfg.bip)
        subnet, gateway = str(iface.network), str(iface.ip)
    else:
        subnet = ipam.pick_subnet(cfg.pools, nets._subnets_in_use() + _host_networks())
        gateway = ipam.gateway_for(subnet, None)
    config = [{"Subnet": subnet, "Gateway": gateway}]
    if cfg.ipv6 and cfg.fixed_cidr_v6:  # dockerd's --ipv6 --fixed-cidr-v6
        config.append({"Subnet": cfg.fixed_cidr_v6,
                       "Gateway": ipam.gateway_for(cfg.fixed_cidr_v6, None)})
    record = _record(nid, name, "bridge", ipam=config, ipv6=cfg.ipv6,
                     options={"com.docker.network.bridge.default_bridge": "true",
                              "com.docker.network.bridge.enable_icc": "true",
                              "com.docker.network.bridge.enable_ip_masquerade": "true",
                              "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                              "com.docker.network.bridge.name": cfg.bridge,
                              "com.docker.network.driver.mtu": str(cfg.mtu)})
    record["IPAM"]["Options"] = None
    record["Private"] = {"Bridge": cfg.bridge}
    return record


def _host_networks() -> list[str]:
    from kade.network import netlink
    return netlink.host_networks()


def _now() -> float:
    import time
    return time.time()


__all__ = ["Networks", "FailedPrecondition", "endpoint_settings", "mode_network"]
