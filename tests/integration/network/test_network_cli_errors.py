"""`kade network` errors as docker 20.10 prints them (message, stream, exit code), and
nothing left behind; in the test's own network namespace (conftest.netkade)."""

import pytest

CASES = [
    # inspect: the CLI's own words, after an empty array on stdout
    (("network", "inspect", "nosuch"), 1, "Error: No such network: nosuch\n", "[]\n"),
    (("network", "rm", "nosuch"), 1, "Error: No such network: nosuch\n", ""),
    (("network", "connect", "nosuch", "nobody"), 1,
     "Error response from daemon: network nosuch not found\n", ""),
    (("network", "disconnect", "nosuch", "nobody"), 1,
     "Error response from daemon: network nosuch not found\n", ""),
    (("network", "create", "bridge"), 1,
     "Error response from daemon: operation is not permitted on predefined bridge network\n",
     ""),
    (("network", "create", "default"), 1,
     "Error response from daemon: operation is not permitted on predefined default "
     "network\n", ""),
    (("network", "rm", "host"), 1,
     "Error response from daemon: host is a pre-defined network and cannot be removed\n", ""),
    (("network", "create", "-d", "nosuchd", "e1"), 1,
     'Error response from daemon: plugin "nosuchd" not found\n', ""),
    (("network", "create", "--subnet", "bad", "e2"), 1,
     "Error response from daemon: invalid CIDR address: bad\n", ""),
    # createIPAMConfig: refused by docker's CLI itself, so no daemon prefix
    (("network", "create", "--gateway", "10.1.1.1", "e3"), 1,
     "every ip-range or gateway must have a corresponding subnet\n", ""),
    (("network", "create", "--subnet", "10.3.0.0/24", "--gateway", "10.4.0.1", "e4"), 1,
     "no matching subnet for gateway 10.4.0.1\n", ""),
    (("network", "create", "--subnet", "10.3.0.0/24", "--ip-range", "10.5.0.0/25", "e5"), 1,
     "no matching subnet for range 10.5.0.0/25\n", ""),
    (("network", "create", "--subnet", "10.3.0.0/16", "--subnet", "10.3.1.0/24", "e6"), 1,
     "multiple overlapping subnet configuration is not allowed\n", ""),
]


@pytest.mark.parametrize("args,code,err,out", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_network_errors_are_dockers(netkade, args, code, err, out):
    before = netkade("network", "ls", "-q").stdout
    proc = netkade(*args, check=False)
    assert (proc.returncode, proc.stderr, proc.stdout) == (code, err, out)
    assert netkade("network", "ls", "-q").stdout == before


def test_gateway_and_range_go_to_the_subnet_that_holds_them(netkade):
    netkade("network", "create", "--subnet", "10.31.0.0/24", "--subnet", "10.32.0.0/24",
            "--gateway", "10.32.0.9", "--ip-range", "10.31.0.128/25", "both")
    try:
        cfg = netkade.inspect("network", "inspect", "both")[0]["IPAM"]["Config"]
        assert cfg[0]["Subnet"] == "10.31.0.0/24" and cfg[0]["IPRange"] == "10.31.0.128/25"
        assert cfg[1]["Gateway"] == "10.32.0.9"
    finally:
        netkade("network", "rm", "both")


def test_run_on_an_unknown_network_exits_125(netkade):
    proc = netkade("run", "--network", "nosuchnet", "busybox", "true", check=False)
    assert proc.returncode == 125
    assert proc.stderr.strip().endswith("network nosuchnet not found")
