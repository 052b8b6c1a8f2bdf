"""Container cgroups on cgroup v1, hybrid and v2-only hosts.

The public surface is `open_cgroup(path) -> Cgroup`; `list_cgroups()` finds
what Kade made (everything lives under a `kade` parent). One module per
controller turns OCI linux.resources into control-file writes for v1 and v2;
`hierarchy` finds the mounts; `fs` is the file seam tests replace.
"""

from kade.runtime.cgroups.cgroup import Cgroup, list_cgroups, open_cgroup
from kade.runtime.cgroups.cpu import shares_to_weight
from kade.runtime.cgroups.fs import HostFS
from kade.runtime.cgroups.hierarchy import Hierarchy, host_hierarchy, parse_mountinfo
from kade.runtime.cgroups.memory import swap_v2

__all__ = ["Cgroup", "Hierarchy", "HostFS", "host_hierarchy", "list_cgroups", "open_cgroup",
           "parse_mountinfo", "shares_to_weight", "swap_v2"]
