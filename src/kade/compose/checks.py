"""What the schema cannot say: references between services and resources, and
dependency cycles. Each error is one line naming the files, the key path and the
bad value, in compose-go's words."""

from __future__ import annotations

from kade.errors import InvalidArgument


def check(model: dict, disabled: dict, where: str) -> None:
    services = model.get("services", {})
    for name, svc in services.items():
        for problem in _service(name, svc, model, disabled):
            raise InvalidArgument(f"{where}: {problem}: invalid compose project")
    cycle = find_cycle(services)
    if cycle:
        raise InvalidArgument(f"{where}: dependency cycle detected: {' -> '.join(cycle)}")


def _service(name: str, svc: dict, model: dict, disabled: dict):
    p = f"services.{name}"
    if not svc.get("image") and not svc.get("build") and "provider" not in svc:
        yield f"{p}: service \"{name}\" has neither an image nor a build context specified"
    for dep, spec in (svc.get("depends_on") or {}).items():
        if dep not in model["services"] and (spec or {}).get("required", True):
            why = " (its profiles are not enabled)" if dep in disabled else ""
            yield (f"{p}.depends_on.{dep}: service \"{name}\" depends on undefined "
                   f"service \"{dep}\"{why}")
    if "network_mode" in svc and svc.get("networks"):
        yield f"{p}: service {name} declares mutually exclusive `network_mode` and `networks`"
    mode = svc.get("network_mode") or ""
    if mode.startswith("service:") and mode[8:] not in model["services"]:
        yield f"{p}.network_mode: service \"{mode[8:]}\" not found for network_mode '{mode}'"
    yield from _references(name, svc, model)
    yield from _scalars(name, svc)


def _references(name: str, svc: dict, model: dict):
    p = f"services.{name}"
    for net in svc.get("networks") or {}:
        if net not in (model.get("networks") or {}):
            yield f"{p}.networks.{net}: service \"{name}\" refers to undefined network {net}"
    for i, vol in enumerate(svc.get("volumes") or ()):
        src = vol.get("source")
        if vol.get("type") == "volume" and src and src not in (model.get("volumes") or {}):
            yield (f"{p}.volumes.{i}: service \"{name}\" refers to undefined volume {src}")
    for kind in ("secrets", "configs"):
        for i, ref in enumerate(svc.get(kind) or ()):
            if ref.get("source") not in (model.get(kind) or {}):
                yield (f"{p}.{kind}.{i}: service \"{name}\" refers to undefined "
                       f"{kind[:-1]} {ref.get('source')}")


def _scalars(name: str, svc: dict):
    p = f"services.{name}"
    replicas = (svc.get("deploy") or {}).get("replicas")
    if "scale" in svc and replicas is not None and svc["scale"] != replicas:
        yield f"{p}: can't set distinct values on 'scale' and 'deploy.replicas'"
    if svc.get("scale", 0) < 0:
        yield f"{p}.scale: must be greater than or equal to 0"
    test = (svc.get("healthcheck") or {}).get("test")
    if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        yield f'{p}.healthcheck.test: must start either by "CMD", "CMD-SHELL" or "NONE"'
    seen: dict = {}
    for i, vol in enumerate(svc.get("volumes") or ()):
        target = vol.get("target")
        if target in seen:
            yield f"{p}.volumes.{i}: target {target} already mounted as {p}.volumes.{seen[target]}"
        seen[target] = i
    if svc.get("container_name") and max(svc.get("scale", 1), replicas or 1) > 1:
        yield (f"{p}: can't set container_name and {name} as container name must be "
               "unique")


def find_cycle(services: dict) -> list[str] | None:
    """The first depends_on cycle, as `a -> b -> a`, in sorted order of services."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]):
        state[name] = 1
        for dep in sorted((services.get(name) or {}).get("depends_on") or {}):
            if dep not in services:
                continue
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[name] = 2
        return None

    for name in sorted(services):
        if name not in state:
            found = visit(name, [name])
            if found:
                return found
    return None
