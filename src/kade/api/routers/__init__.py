"""The routers: one module per resource, as moby's `daemon/server/router/<name>`.

Add a router by adding its module's name here (see kade.api's docstring)."""

ROUTERS: tuple[str, ...] = ("system", "containers", "exec",
                            "volumes", "networks", "images", "build")
