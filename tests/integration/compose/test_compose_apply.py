"""`kade compose` on real projects, in a network namespace of the module's own: a web
app (busybox httpd built from a Dockerfile) talking by service name to a health-gated
"db" (busybox httpd serving a file from a named volume)."""

import json
import os
import signal

DB = """
  db:
    image: busybox
    command: ["sh", "-c", "mkdir -p /data/www && (cat /data/www/index.html 2>/dev/null || echo ${DB_GREETING:-fresh} > /data/www/index.html) && httpd -f -p 5432 -h /data/www"]
    healthcheck:
      test: wget -q -O- http://localhost:5432/ || exit 1
      interval: 1s
      retries: 20
    volumes: [data:/data]
"""

WEB = """
  web:
    build: ./web
    ports: ["8080:80"]
    depends_on:
      db: {condition: service_healthy}
"""

DOCKERFILE = """\
FROM busybox
RUN mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\nwget -q -O- http://db:5432/\\n' > /www/cgi-bin/db && chmod +x /www/cgi-bin/db && echo web > /www/index.html
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
"""


def app(ckade, tmp_path, name="demo", extra_env=""):
    return ckade.project(tmp_path / name, {
        "compose.yaml": "services:" + DB + WEB + "volumes:\n  data: {}\n",
        "web/Dockerfile": DOCKERFILE, ".env": extra_env})


def labels(ckade, name):
    return ckade.inspect("inspect", name)[0]["Config"]["Labels"]


def test_web_reaches_db_by_name_behind_health_gate_volume_survives(ckade, tmp_path):
    where = app(ckade, tmp_path, extra_env="DB_GREETING=hello-from-db\n")
    out = ckade.compose(where, "up", "-d")
    # the db was healthy before web was created
    err = out.stderr
    assert err.index("Container demo-db-1  Healthy") < err.index("Container demo-web-1  Created")
    assert ckade.names("label=com.docker.compose.project=demo") == ["demo-db-1", "demo-web-1"]
    assert ckade.fetch("http://127.0.0.1:8080/cgi-bin/db").strip() == "hello-from-db"
    lab = labels(ckade, "demo-web-1")
    assert lab["com.docker.compose.service"] == "web"
    assert lab["com.docker.compose.container-number"] == "1"
    assert lab["com.docker.compose.oneoff"] == "False"
    assert lab["com.docker.compose.depends_on"] == "db:service_healthy:false"
    assert lab["com.docker.compose.project.working_dir"] == where
    expected_hash = ckade.compose(where, "config", "--hash", "web").stdout.split()[1]
    assert lab["com.docker.compose.config-hash"] == expected_hash
    net = ckade.inspect("network", "inspect", "demo_default")[0]
    assert net["Labels"]["com.docker.compose.network"] == "default"
    # down keeps the volume: the db's data is there after the next up
    ckade.compose(where, "down", "-t", "1")
    assert ckade.leftovers("demo") == ([], [], ["demo_data"])
    ckade.project(where, {".env": "DB_GREETING=changed\n"})
    ckade.compose(where, "up", "-d")
    assert ckade.fetch("http://127.0.0.1:8080/cgi-bin/db").strip() == "hello-from-db"
    ckade.compose(where, "down", "-v")
    assert ckade.leftovers("demo") == ([], [], [])


def test_second_up_recreates_only_the_changed_service_and_scales(ckade, tmp_path):
    where = ckade.project(tmp_path / "rec", {"compose.yaml": """
        services:
          a: {image: busybox, command: sleep 1000}
          b: {image: busybox, command: sleep 1000}
        """})
    ckade.compose(where, "up", "-d")
    before = {n: ckade.inspect("inspect", n)[0]["Id"] for n in ("rec-a-1", "rec-b-1")}
    ckade.project(where, {"compose.yaml": """
        services:
          a: {image: busybox, command: sleep 1000}
          b: {image: busybox, command: sleep 1001}
        """})
    ckade.compose(where, "up", "-d")
    after = {n: ckade.inspect("inspect", n)[0]["Id"] for n in ("rec-a-1", "rec-b-1")}
    assert after["rec-a-1"] == before["rec-a-1"]
    assert after["rec-b-1"] != before["rec-b-1"]
    ckade.compose(where, "up", "-d", "--scale", "a=3")
    assert ckade.names("label=com.docker.compose.service=a") == ["rec-a-1", "rec-a-2",
                                                                 "rec-a-3"]
    ckade.compose(where, "up", "-d", "-t", "1", "--scale", "a=1")
    assert ckade.names("label=com.docker.compose.service=a") == ["rec-a-1"]
    ps = ckade.compose(where, "ps", "--format", "json").stdout.splitlines()
    assert sorted(json.loads(x)["Service"] for x in ps) == ["a", "b"]
    # an orphan is reported, and removed with --remove-orphans
    ckade.project(where, {"compose.yaml": "services:\n  a: {image: busybox, command: sleep 1000}\n"})
    out = ckade.compose(where, "up", "-d")
    assert "Found orphan containers ([rec-b-1])" in out.stderr
    ckade.compose(where, "up", "-d", "-t", "1", "--remove-orphans")
    assert ckade.names("label=com.docker.compose.project=rec") == ["rec-a-1"]
    ckade.compose(where, "down", "-t", "1")
    assert ckade.leftovers("rec") == ([], [], [])


def test_profiles_files_env_and_run_rm(ckade, tmp_path):
    where = ckade.project(tmp_path / "prof", {
        "compose.yaml": """
            services:
              main: {image: busybox, command: sleep 1000, environment: [GREETING]}
              debug: {image: busybox, command: sleep 1000, profiles: [dbg]}
            """,
        "extra.yaml": """
            services:
              main: {environment: {GREETING: "${WHO:-nobody}"}}
            """,
        ".env": "WHO=dotenv\n"})
    files = ["-f", os.path.join(where, "compose.yaml"), "-f", os.path.join(where, "extra.yaml")]
    ckade.compose(where, *files, "up", "-d")
    assert ckade.names("label=com.docker.compose.project=prof") == ["prof-main-1"]
    out = ckade.compose(where, *files, "exec", "-T", "main", "sh", "-c", "echo $GREETING")
    assert out.stdout.strip() == "dotenv"
    ckade.compose(where, *files, "--profile", "dbg", "up", "-d")
    assert ckade.names("label=com.docker.compose.project=prof") == ["prof-debug-1",
                                                                    "prof-main-1"]
    out = ckade.compose(where, *files, "run", "--rm", "-T", "main", "sh", "-c", "echo $GREETING")
    assert out.stdout.strip() == "dotenv"
    assert ckade.names("label=com.docker.compose.oneoff=True") == []
    ckade.compose(where, *files, "--profile", "dbg", "down", "-t", "1")
    assert ckade.leftovers("prof") == ([], [], [])


def test_bad_input_leaves_nothing(ckade, tmp_path):
    cases = {
        "unknown-key": ("services:\n  a: {image: busybox, nonsense: 1}\n", "nonsense"),
        "sysctls": ("services:\n  a: {image: busybox, sysctls: {net.core.somaxconn: 1}}\n",
                    "sysctls"),
        "missing-secret": ("services:\n  a: {image: busybox, secrets: [s]}\n"
                           "secrets:\n  s: {file: ./nope.txt}\n", "nope.txt"),
        "bad-dep": ("services:\n  a: {image: busybox, depends_on: [zz]}\n", "zz"),
        "bad-driver": ("services:\n  a: {image: busybox}\nnetworks:\n  default: "
                       "{driver: overlay}\n", "overlay"),
    }
    for name, (text, word) in cases.items():
        where = ckade.project(tmp_path / name, {"compose.yaml": text})
        out = ckade.compose(where, "up", "-d", check=False)
        assert out.returncode != 0, name
        assert word in out.stderr and "Traceback" not in out.stderr, (name, out.stderr)
        assert ckade.leftovers(name) == ([], [], []), name


def test_failed_dependency_stops_up_naming_it(ckade, tmp_path):
    where = ckade.project(tmp_path / "dep", {"compose.yaml": """
        services:
          init: {image: busybox, command: ["sh", "-c", "echo migration broke; exit 3"]}
          app:
            image: busybox
            command: sleep 1000
            depends_on: {init: {condition: service_completed_successfully}}
        """})
    out = ckade.compose(where, "up", "-d", check=False)
    assert out.returncode != 0
    assert "dep-init-1" in out.stderr and "migration broke" in out.stderr
    assert "dep-app-1" not in ckade.names()
    ckade.compose(where, "down", "-t", "1")
    assert ckade.leftovers("dep") == ([], [], [])


def test_kill_9_during_up_then_up_and_down_finish(ckade, tmp_path):
    where = ckade.project(tmp_path / "kill", {"compose.yaml": """
        services:
          a:
            image: busybox
            command: sleep 1000
            healthcheck: {test: "true", interval: 1s}
          a2: {image: busybox, command: sleep 1000}
          b:
            image: busybox
            command: sleep 1000
            depends_on: {a: {condition: service_healthy}}
        """})
    proc = ckade.popen(where, "up", "-d")
    # killed once its first container exists, whatever it was doing then
    for line in proc.stderr:
        if "Created" in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ckade.compose(where, "up", "-d")
    assert ckade.names("label=com.docker.compose.project=kill") == ["kill-a-1", "kill-a2-1",
                                                                    "kill-b-1"]
    ckade.compose(where, "down", "-t", "1")
    assert ckade.leftovers("kill") == ([], [], [])
