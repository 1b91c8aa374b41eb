"""Benchmark: linking accounts to people across sources (auditor.identity.correlate).

    python -m bench.identity_scale [--people 100000]

Generates a directory of N people and three SaaS sources (a login by employee ID, one by an alias-domain
address with plus tags, one by lower-case address only), plus shadow accounts and leavers, then links them
with all four keys. Baseline, in the same run: a plain dictionary join of the same accounts on a lower-cased
email address, the least work any linking can do.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from auditor.config import IdentitySettings
from auditor.identity import correlate
from auditor.model import Account


def generate(people: int) -> list[Account]:
    accounts = []
    for n in range(people):
        accounts.append(Account("ad", f"g{n}", f"user{n}", n % 19 != 0, email=f"user{n}@example.com",
                                identifiers={"sid": f"S-1-5-21-1-2-3-{1000 + n}", "employee_id": f"E{n:07d}"}))
        accounts.append(Account("entra", f"e{n}", f"user{n}@example.com", True,
                                identifiers={"on_prem_sid": f"S-1-5-21-1-2-3-{1000 + n}"}))
        if n % 2 == 0:
            accounts.append(Account("okta", f"o{n}", f"u{n}@example.com", True, email=f"u{n}@example.com",
                                    identifiers={"employee_id": f"e{n:07d}"}))
        if n % 3 == 0:
            accounts.append(Account("google", f"w{n}", f"USER{n}+g@example.co.uk", True))
        if n % 5 == 0:
            accounts.append(Account("slack", f"s{n}", f"s{n}", True, email=f"user{n}@example.com"))
    accounts += [Account("okta", f"x{n}", f"shadow{n}@gmail.example", True) for n in range(people // 100)]
    return accounts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    people = parser.parse_args().people
    accounts = generate(people)
    settings = IdentitySettings(authoritative_source="ad", domain_aliases=(("example.com", "example.co.uk"),))
    as_of = datetime.now(UTC)

    started = time.perf_counter()
    by_email = {a.email.lower(): a for a in accounts if a.source == "ad" and a.email}
    joined = sum(1 for a in accounts if a.source != "ad" and (a.email or a.username).lower() in by_email)
    baseline = time.perf_counter() - started

    started = time.perf_counter()
    graph = correlate(accounts, settings, as_of)
    elapsed = time.perf_counter() - started
    linked = sum(len(p.links) - 1 for p in graph.people)
    print(f"{len(accounts):,} accounts, {len(graph.people):,} people")
    print(f"baseline (one-key dict join): {baseline:.2f} s, {joined:,} joined")
    print(f"correlate (4 keys, normalised): {elapsed:.2f} s, {linked:,} linked, {len(graph.unlinked):,} unlinked")
    print(f"ratio: {elapsed / baseline:.1f}")


if __name__ == "__main__":
    main()
