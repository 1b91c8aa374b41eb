"""No cyclic garbage collection while an audit builds its inventory (auditor.engine) and, in the CLI, for the
whole run.

Reading a large directory allocates millions of container objects that all live until the audit ends.
CPython 3.11's collector walks every new container at each young collection and everything at each full
one, finding nothing to free: at 100,000 OpenLDAP users that was about a fifth of the read and half of the
mapping (bench/README.md). Inventory objects hold no reference cycles and are freed by reference counting
as before; measured at 100,000 users, peak RSS was the same with the collector paused, and about a thousand
cyclic objects (ldap3's) were left to the first collection after it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def bulk_allocation() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
