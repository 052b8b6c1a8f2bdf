from kade.compose.merge import enforce_unicity, merge
from kade.compose.yamlfile import RESET, Override, parse


def _merge(a: str, b: str) -> dict:
    return enforce_unicity(merge(parse(a, "a")[0], parse(b, "b")[0]))


def test_mappings_merge_and_scalars_override():
    out = _merge("services: {web: {image: a, user: u}}", "services: {web: {image: b}}")
    assert out == {"services": {"web": {"image": "b", "user": "u"}}}


def test_command_and_entrypoint_are_replaced():
    out = _merge("services: {w: {command: [a, b], entrypoint: [x]}}",
                 "services: {w: {command: [c]}}")
    assert out["services"]["w"] == {"command": ["c"], "entrypoint": ["x"]}


def test_environment_list_and_map_merge_by_key():
    out = _merge("services: {w: {environment: [A=1, B=2]}}",
                 "services: {w: {environment: {B: 3, C: null}}}")
    assert out["services"]["w"]["environment"] == ["A=1", "B=3", "C"]


def test_ports_volumes_dns_deduplicated():
    out = _merge("services: {w: {ports: ['80:80'], volumes: ['./a:/a'], dns: [1.1.1.1],"
                 " expose: [80], cap_add: [NET_ADMIN]}}",
                 "services: {w: {ports: ['80:80', '81:81'], volumes: ['./b:/a'],"
                 " dns: [1.1.1.1, 8.8.8.8], expose: [80, 81], cap_add: [NET_ADMIN]}}")
    w = out["services"]["w"]
    assert w["ports"] == ["80:80", "81:81"]
    assert w["volumes"] == ["./b:/a"]  # same target: the later file's entry
    assert w["dns"] == ["1.1.1.1", "8.8.8.8"]
    assert w["expose"] == [80, 81]
    assert w["cap_add"] == ["NET_ADMIN"]


def test_depends_on_list_and_map():
    out = _merge("services: {w: {depends_on: [db]}}",
                 "services: {w: {depends_on: {cache: {condition: service_healthy}}}}")
    assert out["services"]["w"]["depends_on"] == {
        "db": {"condition": "service_started", "required": True},
        "cache": {"condition": "service_healthy"}}


def test_build_string_merges_with_mapping():
    out = _merge("services: {w: {build: ./app}}", "services: {w: {build: {target: dev}}}")
    assert out["services"]["w"]["build"] == {"context": "./app", "target": "dev"}


def test_logging_with_another_driver_replaces():
    out = _merge("services: {w: {logging: {driver: a, options: {x: 1}}}}",
                 "services: {w: {logging: {driver: b}}}")
    assert out["services"]["w"]["logging"] == {"driver": "b"}


def test_reset_and_override_tags():
    out = _merge("services: {w: {ports: ['80:80'], labels: {a: 1}, environment: {A: 1}}}",
                 "services: {w: {ports: !reset [], labels: !override {b: 2},"
                 " environment: {A: !reset null, B: 2}}}")
    assert out["services"]["w"] == {"labels": {"b": 2}, "environment": ["B=2"]}
    assert parse("a: !reset null\nb: !override [1]", "f")[0] == {"a": RESET,
                                                                  "b": Override([1])}
