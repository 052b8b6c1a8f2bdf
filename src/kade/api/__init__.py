"""The Docker Engine API: `kade system service` (docs/ARCHITECTURE.md row 7).

A front door like the CLI: HTTP in, the same engine calls the CLI makes, docker's
JSON out. No policy here; only HTTP.

Layout:

    api/server.py          listeners (unix, loopback TCP, systemd's LISTEN_FDS), TLS,
                           the idle clock; HTTP is kade.registry.httpd's core
    api/service.py         `kade system service`'s flags -> server.serve()
    api/router.py          Route, Context, App (dispatch), response helpers
    api/httpstatus.py      THE mapping kade.errors -> HTTP status + {"message": ...}
    api/versions.py        1.24..1.50, the /v1.xx prefix, dockerd's headers, /version
    api/streams.py         docker's multiplexed frames, copying for hijacked sockets
    api/routers/__init__.py  ROUTERS: the router modules' names, in load order
    api/routers/<name>.py  one module per resource: Backend, backend, routes()

How to add a router (say `volumes`):

1. Create `kade/api/routers/volumes.py` with three things:

       class Backend(Protocol):            # the narrow engine surface it consumes
           def list_volumes(self, filters: dict | None = None) -> list[...]: ...

       class EngineBackend:                # the engine's existing calls behind it
           def __init__(self, engine): ...  # (engine methods, or engine/*.py functions)

       backend = EngineBackend             # factory: engine -> Backend

       def routes() -> list[Route]:
           return [Route("GET", "/volumes", list_), Route("GET", "/volumes/{name}", get)]

   `{name}` matches one path segment; `{name:.*}` the rest (image names: slashes).
   Paths are registered bare: `/v1.43/volumes` and `/volumes` both reach them, and
   `ctx.version` says which version the client asked for (`ctx.at_least(1, 42)`).
   A GET route answers HEAD too unless a HEAD route of its own comes first.
   Larger routers may put Backend and EngineBackend in `routers/<name>_backend.py`.
2. Add "volumes" to ROUTERS in `kade/api/routers/__init__.py`.
3. Handlers: `def get(ctx: Context) -> Response`:
   - `ctx.params["name"]`; the query: `ctx.query(k)`, `ctx.query_bool(k)` (docker's
     "1"/"true"), `ctx.query_int(k)`, `ctx.filters()` (both of docker's forms);
     the body: `ctx.json(default={})` (size-limited; bad JSON is a 400);
     headers: `ctx.header("X-Registry-Auth")`; raw body: `ctx.req.body.pieces()`.
   - `b: Backend = ctx.backend` (unit tests pass fakes: `App(..., backends={"volumes": fake})`).
     `ctx.engine` is this worker thread's Engine (own SQLite connection).
   - answer with `json_response(value, status=200)`, `no_content()` (204),
     `text_response(...)`, or a raw `kade.registry.httpd.Response`.
4. Errors: raise kade.errors (NotFound, Conflict, InvalidArgument, ...). Never build
   an error status by hand: App.handle maps every exception through
   `httpstatus.status_of` (NotFound 404, Conflict/AlreadyExists 409, InvalidArgument
   400, Forbidden 403, NotImplementedYet 501, Unavailable 503, anything else 500 with
   a traceback on the service's stderr) and answers `{"message": ...}` ("no such x"
   becomes docker's "No such x"). Unknown paths answer 404 "page not found".
5. Streaming (events, pull/push/build progress, logs -f, stats): return
   `stream_response(chunks, content_type)`, where chunks is an iterator of bytes
   (`json_lines(values)` for docker's one-JSON-object-per-line streams). It is sent
   chunked as produced; when the client leaves, the iterator is closed, so put
   cleanup in the generator's `finally`. Raise errors before returning the
   response when they should be a status code (the head goes out first).
6. Hijacking (attach, exec start): `hijack_response(ctx, run, multiplexed)`; the
   server answers 101 (client sent `Upgrade: tcp`) or 200, then calls
   `run(sock, buffered)` in the worker thread with the raw socket and any bytes
   already read past the head; the socket is closed when `run` returns.
   Use kade.api.streams (`Framer` for docker's 8-byte stream headers without a tty,
   `pump`) to copy between the socket and pipes or a pty the *container* owns:
   never hand the socket's fd to the engine or a container (issue 9).
7. Tests: tests/unit/api/ drive `App.handle` with a fake backend through
   tests/unit/api/helpers (no socket); tests/integration/api/ run the real service.
"""
