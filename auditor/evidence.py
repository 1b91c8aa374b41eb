"""Evidence bundles for auditors: one zip with the report, the exports, the inventory, the effective config,
run metadata, a per-control index, and a manifest of SHA-256 digests that ``auditor verify`` checks.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import hashlib
import heapq
import io
import itertools
import json
import operator
import platform
import queue
import socket
import time
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auditor import __version__, jsonio
from auditor.config import Config, EvidenceSettings, redacted_config
from auditor.engine import AuditResult
from auditor.jsonio import Streamed
from auditor.model import Finding, to_jsonable
from auditor.review_outcomes import campaign_evidence
from auditor.rules import RULES
from auditor.secrets import SecretUnavailable, resolve_secret, scrub_bytes
from auditor.timeconv import to_iso

BUNDLE_FORMAT = "identity-auditor-evidence/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
INVENTORY = "inventory.json"
RUN_CONTEXT_FILES = ("config.json", "run.json")  # written from the config and the machine, not from the result


def context_files(result: AuditResult, config: Config) -> dict[str, bytes]:
    """The bundle's files written from the config and the machine, not from the result (the history keeps them)."""
    return {
        "config.json": _json(redacted_config(config)),
        "run.json": _json({
            "tool": {"name": "identity-auditor", "version": __version__}, "run_id": result.run_id,
            "as_of": to_iso(result.as_of), "generated_at": to_iso(result.generated_at), "complete": result.complete,
            "gaps": result.gaps, "notes": result.notes, "sources": to_jsonable(result.inventory.sources),
            "operator": _operator(), "host": socket.gethostname(), "python": platform.python_version(),
        }),
    }


def inventory_json(result: AuditResult) -> Iterator[bytes]:
    """What was examined: the accounts, policies and the period's change events, a batch at a time."""
    inventory: dict[str, Any] = {"as_of": to_iso(result.as_of), "password_policies": result.inventory.policies}
    if result.inventory.reviews:  # the access reviews: scope, packets' digests, decisions and their outcome
        inventory["access_reviews"] = campaign_evidence(result.inventory, result.as_of)
    if result.pseudonymised:
        inventory["pseudonymised"] = True
    start, end = result.period_start, result.as_of
    period = (e for e in result.inventory.change_events if start < e.at <= end)
    inventory.update(accounts=Streamed(result.inventory.accounts), change_events=Streamed(period))
    return jsonio.dumps_streamed(inventory, indent=True, sort_keys=True)


RESULT_FILES: dict[str, Callable[[AuditResult], Iterable[bytes]]] = {
    INVENTORY: inventory_json,
    # Each control's findings written a batch at a time: they are every finding again, under each control.
    "controls.json": lambda result: jsonio.dumps_streamed(
        [{name: Streamed(value, keys_sorted=True) if name.endswith("_findings") else value
          for name, value in entry.items()} for entry in control_index(result)], indent=True, sort_keys=True),
}


def _renderers() -> dict[str, Callable[[AuditResult], Iterable[bytes]]]:
    """Every file a bundle makes from a result: the outputs and the result's own files."""
    from auditor.outputs import RENDERERS

    return {**RENDERERS, **RESULT_FILES}


def write_evidence(directory: Path, result: AuditResult, outputs: Iterable[tuple[str, Path]],
                   context: dict[str, bytes], *, signing_key: Ed25519PrivateKey | None, pseudonymise: bool) -> Path:
    """Write the run's bundle into ``directory`` beside ``outputs``: (name, path) of each file the run writes
    there, in the order of their names, as each is written (a lazy iterator is consumed here). Streamed: the
    outputs are zipped as they arrive, while the next is rendered; the result's own files, or with
    ``pseudonymise`` every file made again from the pseudonymised result, are zipped as they are made."""
    from auditor.fileio import private_file
    from auditor.outputs import made_each

    target = directory / f"evidence-{result.run_id}.zip"
    renderers = _renderers()
    if pseudonymise:
        from auditor.pseudonymise import Pseudonymiser

        names = [name for name, _ in outputs]  # the outputs are written as they are, the bundle's made again
        pseudonymiser = Pseudonymiser(result)
        ready: Iterable[tuple[str, Content]] = sorted(
            (name, scrub_bytes(pseudonymiser.json_file(data))) for name, data in context.items())
        made = made_each(pseudonymiser.result(), [*names, *RESULT_FILES], renderers)
    else:
        # The bundle's order (by name) kept: each context file goes in between the outputs where it sorts.
        ready = heapq.merge(sorted(context.items()), outputs, key=_NAME)
        made = made_each(result, list(RESULT_FILES), renderers)
    with private_file(target) as stream:
        _zip_while_made(stream, itertools.chain(ready, made), signing_key)
    return target


def write_past_bundle(target: Path, files: Mapping[str, bytes], rendered: Collection[str],
                      result: AuditResult | None, *, signing_key: Ed25519PrivateKey | None, pseudonymise: bool) -> int:
    """The bundle of a recorded run into ``target``, replaced whole or not at all; the number of files in it.
    ``files`` are the ones the history keeps as they are, ``rendered`` the ones it keeps as ``result`` (made
    again from it), or with ``pseudonymise`` every file made again from the pseudonymised result (config.json
    and run.json given the same pseudonyms). Streamed as a run's own bundle is: each file made goes through the
    redaction boundary and is zipped as it is made, never the whole of it in memory (a million accounts' files
    are gigabytes)."""
    from auditor.fileio import replaced_whole
    from auditor.outputs import made_each

    source = result
    if pseudonymise:
        from auditor.pseudonymise import Pseudonymiser

        assert result is not None
        pseudonymiser = Pseudonymiser(result)
        ready = {name: scrub_bytes(pseudonymiser.json_file(data)) for name, data in files.items()
                 if name in RUN_CONTEXT_FILES}
        source = pseudonymiser.result()
        made = sorted(name for name in {*files, *rendered} if name not in ready)
    else:
        ready = {name: data for name, data in files.items() if name not in rendered}
        made = sorted(rendered)
    assert source is not None or not made, "files to make again need the run's result"
    with replaced_whole(target) as stream:
        arriving = made_each(source, made, _renderers()) if source is not None else iter(())
        ready_files: Iterator[tuple[str, Content]] = iter(sorted(ready.items()))
        _zip_while_made(stream, heapq.merge(ready_files, arriving, key=_NAME), signing_key)
    return len(ready) + len(made)


Content = Path | bytes | Iterator[bytes]  # a bundle entry: a file on disk, its bytes, or its chunks as made


def _zip_while_made(stream: BinaryIO, files: Iterator[tuple[str, Content]],
                    signing_key: Ed25519PrivateKey | None) -> None:
    """Zip each of ``files`` as it is made. The zipping (reading, hashing, deflating, writing: C code that lets
    other threads run) has a thread of its own, so the next file is rendered meanwhile on the other core: at a
    million accounts each is a minute or so of the run on its own. A file given as chunks is handed to the
    thread as it is made, a few pieces ahead at most."""
    arrivals: queue.SimpleQueue[tuple[str, Content] | None] = queue.SimpleQueue()

    def arrived() -> Iterator[tuple[str, Content]]:
        while (item := arrivals.get()) is not None:
            yield item

    with ThreadPoolExecutor(1, thread_name_prefix="bundle") as pool:
        zipping = pool.submit(write_bundle, stream, arrived(), signing_key=signing_key)
        try:
            for name, content in files:
                if isinstance(content, Path | bytes):
                    arrivals.put((name, content))
                else:
                    _hand_over(name, content, arrivals, zipping)
        finally:
            arrivals.put(None)  # on a failure too: the thread ends, and the failure is raised here
        zipping.result()


class _Abandoned(Exception):
    """The file being zipped failed where it is made: the bundle is not finished (that failure is raised)."""


class _Marker:
    """A value no piece can be."""


_ABANDONED = _Marker()  # given in place of a file's next piece when making it failed
_PIECES_AHEAD = 2


def _hand_over(name: str, chunks: Iterator[bytes], arrivals: queue.SimpleQueue[tuple[str, Content] | None],
               zipping: Future[None]) -> None:
    """Make ``chunks`` here and give them to the zipping thread in pieces of ``_PIECE`` bytes, two ahead at most."""
    pieces: queue.Queue[bytes | _Marker | None] = queue.Queue(_PIECES_AHEAD)

    def received() -> Iterator[bytes]:
        while (piece := pieces.get()) is not None:
            if isinstance(piece, _Marker):
                raise _Abandoned(name)
            yield piece

    def give(piece: bytes | _Marker | None) -> None:
        while True:  # a thread that has ended (failed) takes nothing more: raise its failure, never wait on it
            try:
                pieces.put(piece, timeout=0.2)
                return
            except queue.Full:
                if zipping.done():
                    zipping.result()
                    raise RuntimeError("the bundle's thread ended before its last file") from None

    arrivals.put((name, received()))
    try:
        waiting: list[bytes] = []
        size = 0
        for chunk in chunks:
            waiting.append(chunk)
            size += len(chunk)
            if size >= _PIECE:
                give(b"".join(waiting))
                waiting, size = [], 0
        if size:
            give(b"".join(waiting))
        give(None)
    except BaseException:
        with contextlib.suppress(BaseException):
            if not zipping.done():
                give(_ABANDONED)
        raise


def control_index(result: AuditResult) -> list[dict[str, Any]]:
    """For each control: the rules that test it, the population those rules examined (each rule declares
    what it examines), and the findings by their own status (open, accepted, excluded)."""
    inventory = result.inventory
    graph = inventory.identity
    start, end = result.period_start, result.as_of
    examined = {
        "accounts": len(inventory.accounts), "password_policies": len(inventory.policies),
        "change_events": sum(1 for e in inventory.change_events if start < e.at <= end),
        "people": len(graph.people) if graph is not None else 0,
    }
    index: dict[tuple[str, str], dict[str, Any]] = {}
    for rule_id, rule in RULES.items():
        for control in rule.meta.controls:
            entry = index.setdefault((control.framework, control.control), {
                "framework": control.framework, "control": control.control, "rules": [],
                "population": {"sources": [s.name for s in inventory.sources]},
                "open_findings": FindingSummaries(), "accepted_findings": FindingSummaries(),
                "excluded_findings": FindingSummaries()})
            entry["rules"].append(rule_id)
            entry["population"][rule.meta.examines] = examined[rule.meta.examines]
    for finding in result.findings:
        listed = f"{finding.status}_findings"
        for control in finding.controls:
            index[(control.framework, control.control)][listed].findings.append(finding)
    return sorted(index.values(), key=lambda e: (e["framework"], e["control"]))


class FindingSummaries:
    """The findings listed under one control with one status, each summarised as it is read: summaries made
    beforehand (one a finding, under each of its controls) were 400 MB at a million findings. A summary's keys
    are in sorted order, so a sorted document writes it as it is (``Streamed(keys_sorted=True)``)."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def __len__(self) -> int:
        return len(self.findings)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for finding in self.findings:
            yield {"message": finding.message, "rule": finding.rule, "severity": finding.severity.value,
                   "source": finding.source, "status": finding.status, "status_note": finding.status_note,
                   "subject": finding.subject.name}


class SigningKeyError(Exception):
    """The configured signing key cannot be used; the message names where it was expected."""


def load_signing_key(settings: EvidenceSettings) -> Ed25519PrivateKey | None:
    """The configured Ed25519 private key, or None when bundles are not signed."""
    if not settings.signing_key_file and not settings.signing_key_env:
        return None
    try:
        pem = resolve_secret("evidence.signing_key", settings.signing_key_env, settings.signing_key_file)
    except SecretUnavailable as exc:
        raise SigningKeyError(str(exc)) from None
    where = settings.signing_key_env or str(settings.signing_key_file)
    try:
        key = serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SigningKeyError(f"evidence.signing_key: {where} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"evidence.signing_key: {where} is not an Ed25519 key "
                              "(make one with: openssl genpkey -algorithm ed25519 -out key.pem)")
    return key


def key_fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()


def write_bundle(stream: BinaryIO, files: Mapping[str, Content] | Iterable[tuple[str, Content]], *,
                 signing_key: Ed25519PrivateKey | None = None) -> None:
    """The zip an auditor receives: the files (contents, files on disk copied in chunks, or chunks as they are
    made; a mapping's in the order of their names, or (name, content) pairs as they come), manifest.json with
    each file's SHA-256, and with a signing key manifest.sig, the raw Ed25519 signature (RFC 8032) of
    manifest.json's bytes. Each file is read once: hashed as it is compressed."""
    entries = sorted(files.items()) if isinstance(files, Mapping) else files
    digests: dict[str, dict[str, Any]] = {}
    # Deflate level 3: half the time of the default 6 for a fifth more bytes (a 100,000-account run's 248 MB of
    # outputs: 0.8 s and 19 MB against 1.7 s and 16 MB); at a million accounts the bundle is gigabytes of text.
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED, compresslevel=_LEVEL) as bundle:
        for name, content in entries:
            if isinstance(content, bytes):
                bundle.writestr(name, content)
                digests[name] = {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
                continue
            # As writestr makes an entry (its time, owner-only mode), filled a piece at a time.
            info = zipfile.ZipInfo(name, date_time=time.localtime(time.time())[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            # The archive's level is given only to entries it names itself; one given its ZipInfo is deflated at
            # zlib's default (6) unless told (Python 3.13 names this compress_level).
            info._compresslevel = _LEVEL  # type: ignore[attr-defined]
            info.external_attr = 0o600 << 16
            digest, size = hashlib.sha256(), 0
            with contextlib.ExitStack() as stack:
                if isinstance(content, Path):
                    source = stack.enter_context(content.open("rb"))
                    pieces: Iterator[bytes] = iter(functools.partial(source.read, _PIECE), b"")
                    large = content.stat().st_size >= zipfile.ZIP64_LIMIT
                else:
                    pieces, large = content, True  # its size is known only at the end: room for any
                entry = stack.enter_context(bundle.open(info, "w", force_zip64=large))
                for piece in pieces:
                    digest.update(piece)
                    entry.write(piece)
                    size += len(piece)
            digests[name] = {"sha256": digest.hexdigest(), "bytes": size}
        manifest: dict[str, Any] = {"format": BUNDLE_FORMAT, "files": digests}
        if signing_key is not None:
            manifest["signed_by"] = key_fingerprint(signing_key.public_key())
        raw_manifest = _json(manifest)  # keys sorted: the files in the order of their names
        bundle.writestr(MANIFEST, raw_manifest)
        if signing_key is not None:
            bundle.writestr(SIGNATURE, signing_key.sign(raw_manifest))


# A piece zipped at a time. Each costs the zipping thread a few waits for the interpreter (up to the 5 ms
# switch interval each, while the main thread runs Python): a megabyte at a time it zipped some 50 MB/s of a
# million accounts' outputs while the next was made, slower than they are made.
_PIECE = 8 << 20
_LEVEL = 3
_NAME = operator.itemgetter(0)  # of a (name, content) pair: the bundle's entries are in name order


# Larger entries are refused before anything is read (a zip bomb's entry inflates a thousandfold), and reading
# one stops there. A bundle's largest entry, inventory.json, is 1.9 GB at a million accounts (the 1 GiB this was
# refused the tool's own bundle of that audit): 16 GiB holds some eight million, and is read in seconds.
MAX_ENTRY_BYTES = 16 << 30
MAX_MANIFEST_BYTES = 16 << 20
_SYMLINK = 0o120000


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an entry must not be in a bundle, or None. Names are plain relative paths of our own files."""
    name = info.filename
    if "\\" in name or name.startswith("/") or ":" in name.split("/", 1)[0] or \
            any(part in ("", ".", "..") for part in name.split("/")):
        return "unsafe entry name (absolute, backslash, drive or '..' path)"
    if (info.external_attr >> 16) & 0o170000 == _SYMLINK:
        return "symbolic link entry"
    if info.flag_bits & 0x1:
        return "encrypted entry"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return f"unsupported compression method {info.compress_type}"
    if info.file_size > MAX_ENTRY_BYTES:
        return f"entry of {info.file_size} bytes is over the {MAX_ENTRY_BYTES} byte limit"
    return None


def _sha256(bundle: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """Streamed: an entry is never held in memory whole."""
    digest = hashlib.sha256()
    read = 0
    with bundle.open(info) as stream:
        while chunk := stream.read(1 << 20):
            read += len(chunk)
            if read > MAX_ENTRY_BYTES:  # the header may understate the size
                raise ValueError("entry larger than the size limit")
            digest.update(chunk)
    return digest.hexdigest()


def verify_bundle(data: bytes | Path, public_key: Ed25519PublicKey | None = None) -> tuple[list[str], str]:
    """(problems, manifest digest). No problems: every file is present once, unaltered, listed, and safe; with
    ``public_key``, manifest.sig is also a valid signature of manifest.json by that key."""
    try:
        bundle = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
        return ["not a zip file"], ""  # NotImplementedError: a version or feature zipfile does not read
    with bundle:
        infos = bundle.infolist()
        problems: list[str] = []
        seen: set[str] = set()
        for info in infos:
            if info.filename in seen:
                problems.append(f"{info.filename}: appears more than once (a second copy could hide a change)")
            seen.add(info.filename)
            if (why := _entry_problem(info)) is not None:
                problems.append(f"{info.filename}: {why}")
        if problems:
            return problems, ""
        entries = {info.filename: info for info in infos}
        if MANIFEST not in entries:
            return ["no manifest.json"], ""
        if entries[MANIFEST].file_size > MAX_MANIFEST_BYTES:
            return ["manifest.json is too large to be a manifest"], ""
        try:
            raw_manifest = bundle.read(MANIFEST)
            manifest = json.loads(raw_manifest)
        except (ValueError, zipfile.BadZipFile, OSError, zlib.error, EOFError, RuntimeError, NotImplementedError):
            return ["manifest.json is not a manifest"], ""
        listed = manifest.get("files") if isinstance(manifest, dict) else None
        if not isinstance(listed, dict) or not all(
                isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in listed.values()):
            return ["manifest.json is not a manifest (\"files\" must map names to {\"sha256\": ...})"], ""
        if manifest.get("format") != BUNDLE_FORMAT:
            problems.append(f"unknown bundle format {manifest.get('format')!r}")
        for name, expected in sorted(listed.items()):
            if name not in entries:
                problems.append(f"{name}: listed in the manifest but missing")
                continue
            try:
                actual = _sha256(bundle, entries[name])
            except (zipfile.BadZipFile, OSError, zlib.error, EOFError, RuntimeError, NotImplementedError,
                    ValueError) as exc:  # damaged data, CRC, size
                problems.append(f"{name}: unreadable ({exc})")
                continue
            if actual != expected["sha256"]:
                problems.append(f"{name}: SHA-256 does not match the manifest")
        for name in sorted(set(entries) - set(listed) - {MANIFEST, SIGNATURE}):
            problems.append(f"{name}: not listed in the manifest")
        if public_key is not None:
            problems += _signature_problems(bundle, entries, raw_manifest, public_key)
    return problems, hashlib.sha256(raw_manifest).hexdigest()


def _signature_problems(bundle: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo], raw_manifest: bytes,
                        public_key: Ed25519PublicKey) -> list[str]:
    if SIGNATURE not in entries:
        return ["not signed: there is no manifest.sig, so who made the manifest cannot be checked"]
    if entries[SIGNATURE].file_size > 1024:
        return ["manifest.sig is not an Ed25519 signature"]
    try:
        public_key.verify(bundle.read(SIGNATURE), raw_manifest)
    except (InvalidSignature, ValueError, zipfile.BadZipFile, OSError, zlib.error, RuntimeError,
            NotImplementedError):
        return [f"manifest.sig is not a signature of manifest.json by {key_fingerprint(public_key)}: the bundle "
                "was not signed with this key, or its manifest was rewritten"]
    return []


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (``openssl pkey -in key.pem -pubout``); ValueError otherwise."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def _json(value: Any) -> bytes:
    return jsonio.dumps(value, indent=True, sort_keys=True)


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"
