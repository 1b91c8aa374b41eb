"""A large AD export read on two cores (connectors.ldif_split) gives what one pass gives: the same accounts in the
same order, the same warnings and unread records with the same line numbers."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bench.ad_export import AS_OF, write
from connectors.activedirectory import AdOptions, AdScan, map_active_directory
from connectors.base import CollectContext, SourceResult
from connectors.ldif import LdifConfig, collect
from connectors.ldif_format import Part, ReadState, export_encoding, read_ldif, record_start
from connectors.ldif_split import SecondHalf, _Worker, parts
from tests.ldif_fixtures import DOMAIN, domain_head, group, ldif, pso, user
from tests.test_mapping_properties import _LDIF_PIECES, FUZZ

PEOPLE = f"OU=People,{DOMAIN}"
DA = f"CN=Domain Admins,CN=Users,{DOMAIN}"
IT = f"CN=IT Admins,CN=Users,{DOMAIN}"


def _halves(data: bytes, offset: int) -> tuple[Part, Part] | None:
    """The export cut at the first record that starts after ``offset``, as the reader cuts it."""
    stream = io.BytesIO(data)
    encoding = export_encoding(stream, [])
    if encoding == "utf-16":
        return None
    body = stream.tell()
    cut = record_start(stream, max(offset, body))
    if cut is None:
        return None
    return Part(body, cut, 1, encoding, first=True), SecondHalf(cut, len(data), encoding).part(stream)


def _read(data: bytes, halves: tuple[Part, Part] | None) -> tuple[Any, ...]:
    warnings: list[str] = []
    incomplete: list[str] = []
    if halves is None:
        entries = list(read_ldif(data, warnings, incomplete))
    else:
        stream, state = io.BytesIO(data), ReadState()
        export_encoding(stream, warnings)
        entries = [*read_ldif(stream, warnings, incomplete, part=halves[0], state=state),
                   *read_ldif(stream, warnings, incomplete, part=halves[1], state=state)]
        warnings += state.skipped_warning()
    return [(e.dn, e.attributes) for e in entries], warnings, incomplete


@FUZZ
@given(st.lists(st.one_of(_LDIF_PIECES, st.binary(max_size=6)), max_size=40), st.integers(0, 400))
def test_an_export_read_in_two_parts_reads_as_in_one_pass(pieces: list[bytes], offset: int) -> None:
    # Wherever the cut falls: line numbers, the version line, a DN repeated across the cut, change records, a
    # truncated last record, a blank line followed by a continuation, Latin-1 and CRLF exports.
    data = b"".join(pieces)
    halves = _halves(data, offset)
    assert _read(data, halves) == _read(data, None)


_RECORDS = [
    domain_head(), group("Domain Admins", 512, members=(IT, f"CN=Bob,{PEOPLE}")),
    group("IT Admins", 1200, member_of=(DA,)), group("Contractors", 1300),
    pso("ViaGroup", 10, 6, False, (f"CN=Contractors,CN=Users,{DOMAIN}",), guid_n=7),
    *(user(f"U{n}", f"u{n}", 512 if n % 3 else 514, n, "lastLogonTimestamp: 134000000000000000",
           *(["pwdLastSet: soon"] if n % 5 == 0 else []),
           member_of=((IT,) if n % 4 == 0 else (f"CN=Contractors,CN=Users,{DOMAIN}",) if n % 4 == 1 else ()))
      for n in range(1, 13)),
    user("Bob", "bob", 512, 99),
    group("Renamed Admins", 519),  # Enterprise Admins by its SID alone
    user("Carol", "carol", 512, 98, member_of=(f"CN=Renamed Admins,CN=Users,{DOMAIN}",)),
    "\n".join([f"dn: CN=Gone\\0ADEL:1,CN=Deleted Objects,{DOMAIN}", "objectClass: user", "isDeleted: TRUE",
               "whenChanged: 20260620120000.0Z"]) + "\n",
]


@FUZZ
@given(st.permutations(_RECORDS), st.integers(0, 4000))
def test_two_scans_joined_settle_as_one_scan(records: list[str], offset: int) -> None:
    # Each half scanned on its own (as the worker scans the second), joined in file order, settles to what one
    # pass gives, wherever the groups, PSOs and the domain head fall.
    data = ldif(*records)
    halves = _halves(data, offset)
    one = map_active_directory("ad", read_ldif(data, [], []))
    if halves is None:
        return
    scans = []
    for half in halves:
        scan = AdScan("ad", AdOptions())
        for entry in read_ldif(io.BytesIO(data), [], [], part=half, state=ReadState()):
            scan.add(entry)
        scans.append(scan)
    scans[0].extend(scans[1])
    two = scans[0].settle()
    assert (two.accounts, two.policies, two.change_events, two.warnings, two.partial_error) == (
        one.accounts, one.policies, one.change_events, one.warnings, one.partial_error)


def _collected(path: Path, split_above: int) -> tuple[Any, ...]:
    result: SourceResult = collect(LdifConfig(name="ad", type="ldif", path=path), CollectContext(AS_OF),
                                   split_above=split_above)
    return result.accounts, result.policies, result.change_events, result.warnings, result.partial_error


def test_the_bench_export_read_with_a_worker_process_is_the_one_pass_read(tmp_path: Path) -> None:
    path = tmp_path / "ad.ldif"
    write(path, 3_000)
    _second_half(path)
    two = _collected(path, split_above=1)
    assert two == _collected(path, split_above=1 << 62)
    assert len(two[0]) == 3_000 and two[4] is None


def test_a_dn_in_both_halves_an_unreadable_record_and_change_records_read_as_in_one_pass(tmp_path: Path) -> None:
    # The worker's half repeats a DN of the first: this process then reads that half itself, and says the second
    # record where one pass says it (line number and all).
    records = [domain_head(), *(user(f"U{n}", f"u{n}", 512, n, "whenChanged: someday") for n in range(1, 40)),
               "dn: CN=Change,DC=corp,DC=test\nchangetype: delete\n", "not a record\n",
               "dn: CN=Linked,DC=corp,DC=test\nobjectClass: top\nseeAlso:< file:///etc/passwd\n",
               *(user(f"V{n}", f"v{n}", 512, 100 + n) for n in range(1, 40)), user("U3", "u3-again", 512, 3)]
    path = tmp_path / "ad.ldif"
    path.write_bytes(data := ldif(*records))
    second = _second_half(path)
    assert data.index(b"CN=Change") < second.start < data.index(b"u3-again")
    two = _collected(path, split_above=1)
    assert two == _collected(path, split_above=1 << 62)
    assert "a second record for CN=U3" in (two[4] or "") and "not audited" in (two[4] or "")


def test_an_export_whose_first_half_is_not_ad_is_read_in_one_pass(tmp_path: Path) -> None:
    # Auto flavour: the first entry only AD writes is in the second half: the export is read here, in one pass.
    people = [f"dn: uid=p{n},ou=people,dc=corp,dc=test\nobjectClass: inetOrgPerson\nuid: p{n}\n" for n in range(30)]
    path = tmp_path / "mixed.ldif"
    path.write_bytes(ldif(*people, domain_head(), user("Alice", "alice", 512, 1)))
    assert _collected(path, split_above=1) == _collected(path, split_above=1 << 62)


def _second_half(path: Path) -> SecondHalf:
    with path.open("rb") as stream:
        second = parts(stream, export_encoding(stream, []), split_above=1)[1]
    assert second is not None  # the export is cut in two
    return second


def _worker_result(path: Path, second: SecondHalf) -> Any:
    worker = _Worker(path, second, "ad", AdOptions())
    try:
        return worker.result(set())
    finally:
        worker.close()  # reaped whatever the result


def test_the_worker_sends_its_half_scanned(tmp_path: Path) -> None:
    path = tmp_path / "ad.ldif"
    write(path, 500)
    second = _second_half(path)
    later = _worker_result(path, second)
    assert later is not None
    scan, warnings, incomplete, skipped_changes = later
    users = path.read_bytes()[second.start:].count(b"objectClass: user\n")
    assert len(scan.pending) == users > 100 and (warnings, incomplete, skipped_changes) == ([], [], 0)


def test_a_worker_that_fails_gives_no_half_and_is_reaped(tmp_path: Path) -> None:
    # The reader then reads the half itself (the audit is the same, only slower): here the file is gone.
    assert _worker_result(tmp_path / "gone.ldif", SecondHalf(0, 10, "utf-8")) is None


def test_an_export_read_where_no_worker_can_start_is_read_in_one_pass(tmp_path: Path) -> None:
    # A machine where the worker cannot be started (here: the interpreter's path leads nowhere, so starting the
    # process fails as under a process limit) still audits the whole export, in one pass, in this process.
    path = tmp_path / "ad.ldif"
    write(path, 1_000)
    script = (
        "import pickle, sys\n"
        "sys.executable = '/nonexistent/python3'\n"
        "from pathlib import Path\n"
        "from tests.test_ldif_split import _collected\n"
        f"sys.stdout.buffer.write(pickle.dumps(_collected(Path({str(path)!r}), split_above=1)))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    read_here = pickle.loads(done.stdout)  # noqa: S301 - this test's own child
    assert read_here == _collected(path, split_above=1 << 62) and len(read_here[0]) == 1_000


def test_a_worker_reads_nothing_from_a_file_put_in_the_exports_place(tmp_path: Path) -> None:
    # The worker opens the export again by name: another file there now (a new export written meanwhile) is not
    # the one this process is reading, and its half is then read here, from the file already open.
    path = tmp_path / "ad.ldif"
    write(path, 500)
    second = _second_half(path)
    replacement = tmp_path / "new.ldif"
    write(replacement, 600)
    replacement.replace(path)
    assert _worker_result(path, second) is None


def test_utf16_and_byte_order_marked_exports_read_as_in_one_pass(tmp_path: Path) -> None:
    # UTF-16 (ldifde -u) is read whole, never cut; a UTF-8 byte-order mark stays out of the first part's text.
    text = ldif(domain_head(), *(user(f"U{n}", f"u{n}", 512, n) for n in range(1, 30))).decode()
    for name, data in (("u16.ldif", text.encode("utf-16")), ("bom.ldif", b"\xef\xbb\xbf" + text.encode())):
        path = tmp_path / name
        path.write_bytes(data)
        two = _collected(path, split_above=1)
        assert two == _collected(path, split_above=1 << 62) and len(two[0]) == 29
