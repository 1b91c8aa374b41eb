"""Benchmark: reading users from a real slapd with the ldap connector, against ldapsearch on the same data.

    python -m bench.ldap_read [--entries 20000] [--page-size 1000] [--repeat 3]

Starts a private slapd on loopback (tests/servers/install.sh installs it), seeds it offline, then times
the baseline (`ldapsearch -E pr=SIZE/noprompt`, C libldap, the same filter and attributes) and the
connector's full ``collect`` (read users, groups and policies, map to the inventory) on the same server,
and prints the ratio. Best of ``--repeat`` runs each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from auditor.gctuning import bulk_allocation
from connectors.base import CollectContext
from connectors.ldap import _OPENLDAP_USER_ATTRIBUTES as ATTRIBUTES
from connectors.ldap import LdapConfig, collect
from tests.servers.harness import USER_PASSWORD, Slapd

BASE = "dc=example,dc=org"
READER = f"uid=reader,ou=people,{BASE}"
FILTER = "(|(objectClass=inetOrgPerson)(objectClass=posixAccount)(objectClass=account))"


def best_of(repeat: int, action: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="bench-ldap-") as scratch:
        slapd = Slapd(Path(scratch) / "slapd", bulk_people=args.entries)
        seeded = time.perf_counter()
        slapd.start(now)
        print(f"slapd on 127.0.0.1:{slapd.port} with {args.entries} generated users "
              f"(seeded and started in {time.perf_counter() - seeded:.1f} s)")
        try:
            url = f"ldap://127.0.0.1:{slapd.port}"

            def baseline() -> None:
                subprocess.run(
                    ["ldapsearch", "-x", "-LLL", "-H", url, "-D", READER, "-w", USER_PASSWORD, "-b", BASE,
                     "-E", f"pr={args.page_size}/noprompt", FILTER, *ATTRIBUTES],
                    stdout=subprocess.DEVNULL, check=True)

            os.environ["BENCH_LDAP_PASSWORD"] = USER_PASSWORD
            config = LdapConfig.model_validate({
                "name": "bench", "type": "ldap", "url": url, "bind_dn": READER, "password_env": "BENCH_LDAP_PASSWORD",
                "allow_insecure_bind": True, "page_size": args.page_size, "flavor": "openldap",
                "default_policy_dn": f"cn=default,ou=policies,{BASE}",
            })
            counted: list[int] = []

            def ours() -> None:
                with bulk_allocation():  # as the audit collects every source (auditor.engine)
                    counted.append(len(collect(config, CollectContext(now)).accounts))

            base_time = best_of(args.repeat, baseline)
            our_time = best_of(args.repeat, ours)
        finally:
            slapd.stop()
    print(f"{'reader':<44}{'seconds':>10}{'ratio':>10}")
    print(f"{'ldapsearch -E pr (C libldap, to /dev/null)':<44}{base_time:>10.2f}{1.0:>10.1f}")
    print(f"{'ldap connector: read + map to inventory':<44}{our_time:>10.2f}{our_time / base_time:>10.1f}")
    print(f"accounts mapped: {counted[-1]}; entries per second (ours): {counted[-1] / our_time:,.0f}")


if __name__ == "__main__":
    main()
