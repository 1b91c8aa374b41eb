"""Benchmark: auditing a generated Entra ID tenant end to end through the local Graph simulator.

    python -m bench.entra_collect [--users 50000] [--latency 0.02]

The simulator answers every Graph request after ``--latency`` seconds, like a remote service would; the
connector reads pages one after another (nextLink paging is sequential), so the floor for collection is
pages x latency. Prints the measured collect time against that floor, then the whole audit's time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from auditor.config import parse_config
from auditor.engine import run_audit
from auditor.exports import accounts_csv, findings_json
from auditor.history import History
from auditor.report_html import render_report
from connectors.base import CollectContext
from connectors.entra import EntraConfig, collect
from tests.servers.harness import Pki
from tests.simulators.graph import GraphSimulator, make_tenant

SECRET = "bench-client-secret"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per simulated Graph request")
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    os.environ["BENCH_ENTRA_SECRET"] = SECRET
    with tempfile.TemporaryDirectory(prefix="bench-entra-") as scratch:
        pki = Pki(Path(scratch) / "pki")
        pki.create()
        tenant = make_tenant(args.users, now, client_secret=SECRET)
        with GraphSimulator(tenant, pki.cert, pki.key, latency=args.latency) as sim:
            settings = {
                "name": "entra", "type": "entra", "tenant_id": tenant.tenant_id, "client_id": tenant.client_id,
                "client_secret_env": "BENCH_ENTRA_SECRET", "authority_host": sim.base_url,
                "graph_endpoint": sim.base_url, "ca_bundle": str(pki.ca),
            }
            start = time.perf_counter()
            result = collect(EntraConfig.model_validate(settings), CollectContext(now))
            collect_time = time.perf_counter() - start
            pages = len(sim.requests)
            floor = pages * args.latency
            print(f"tenant: {args.users:,} users; simulator latency {args.latency * 1000:.0f} ms per request")
            print(f"{'step':<46}{'seconds':>10}{'ratio':>10}")
            print(f"{'floor: ' + str(pages) + ' sequential requests x latency':<46}{floor:>10.2f}{1.0:>10.1f}")
            print(f"{'entra connector collect (' + str(len(result.accounts)) + ' accounts)':<46}"
                  f"{collect_time:>10.2f}{collect_time / floor:>10.1f}")
            config_text = "[audit]\nhistory_db = '" + str(Path(scratch) / "h.sqlite") + "'\n[[sources]]\n" + "\n".join(
                f"{k} = '{v}'" for k, v in settings.items()) + "\n"
            config = parse_config(config_text)
            start = time.perf_counter()
            history = History(config.history_db)
            audit = run_audit(config, now, history)
            outputs = [b"".join(findings_json(audit)), b"".join(accounts_csv(audit)), render_report(audit)]
            history.close()
            total = time.perf_counter() - start
            print(f"{'whole audit: collect, rules, three outputs':<46}{total:>10.2f}{total / floor:>10.1f}")
            print(f"findings: {len(audit.findings):,}; report.html {len(outputs[2]) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
