"""The registry client: resolve, fetch, push, auth, credentials, mirrors.

    transport     the HTTP seam (http.client, keep-alive pools, certs.d trust);
                  memory.MemoryRegistry is an in-memory registry behind it, for tests
    hosts         where a registry's requests go: mirrors, plain HTTP, TLS settings
    auth          WWW-Authenticate challenges, bearer tokens, basic auth
    credentials   docker's config.json and docker-credential-* helpers
    client        Session (shared per command) and Repository (the distribution API)
    manifests     manifest and index parsing, platform choice
    fetch         a blob into the content store: verified, resumable
    sources       per-layer notes: compressed forms, repositories seen holding them
    progress      docker's JSON progress messages and their terminal display
    errcode       registry error answers as Kade's error vocabulary

Pull and push themselves (which need images and snapshots) are kade.images.pull
and kade.images.push; the engine wires them up in kade.engine.run.
"""
