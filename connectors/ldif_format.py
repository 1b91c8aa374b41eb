"""RFC 2849 LDIF reader: content records in, ``DirectoryEntry`` objects out.

Handles folded lines, ``::`` base64 values (binary objectSid/objectGUID), comments (folded too),
the ``version:`` line, attribute options, UTF-8/UTF-16 exports (``ldifde -u``) and CRLF line ends.
Change records and ``:<`` URL values are skipped with a warning: an export must never make the
auditor read other files.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, TypeVar

from connectors.dn import dn_key_uncached
from connectors.values import ValueProblems

# Plain ASCII digits (no "1_000", no other scripts' digits), at most 20 of them: a 4,000-digit value is not a number.
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")


class LdifError(ValueError):
    """The file is not LDIF; carries the line number."""


@dataclass
class DirectoryEntry:
    """One directory object: DN and its values as bytes, attribute names lower-cased, options dropped.

    The same shape comes from a live ldap3 search (``raw_attributes``), so the AD and OpenLDAP mappers
    work on both.
    """

    dn: str
    attributes: dict[str, list[bytes]] = field(default_factory=dict)

    @functools.cached_property
    def key(self) -> str:
        """The DN's comparison key (``dn_key``), worked out once: an entry's own DN is met once an export, so it is
        kept out of the cache the group DNs that members name again and again share."""
        return dn_key_uncached(self.dn)

    def values(self, name: str) -> list[bytes]:
        return self.attributes.get(name.lower(), [])

    def first(self, name: str) -> bytes | None:
        values = self.values(name)
        return values[0] if values else None

    def text(self, name: str) -> str | None:
        values = self.attributes.get(name.lower())  # the hottest call of every mapping: no helper in between
        return values[0].decode("utf-8", "replace") if values else None

    def texts(self, name: str) -> list[str]:
        return [v.decode("utf-8", "replace") for v in self.values(name)]

    def integer(self, name: str, problems: ValueProblems | None = None) -> int | None:
        """The value as a whole number; absent or unreadable is None (unreadable is noted in ``problems``)."""
        text = self.text(name)
        if text is None:
            return None
        if _INTEGER.fullmatch(text.strip()):
            return int(text.strip())
        if problems is not None:
            problems.add(self.dn, name, f"not a whole number: {text[:40]!r}")
        return None

    def moment(self, name: str, parse: Callable[[str], datetime | None], problems: ValueProblems) -> datetime | None:
        """The value parsed as a time; an unreadable or implausible value is noted and read as unknown."""
        text = self.text(name)
        if text is None:
            return None
        return problems.checked(lambda: parse(text), self.dn, name)

    def has(self, name: str) -> bool:
        return name.lower() in self.attributes

    def object_classes(self) -> set[str]:
        return {v.lower() for v in self.texts("objectClass")}


_UTF8_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 24  # a streamed export is read this much at a time (16 MB)


def _not_utf8(warnings: list[str], line: int, byte: int) -> None:
    # Old ldifde writes ANSI code page text; Latin-1 never fails and keeps ASCII intact, but non-ASCII
    # names may read wrongly: say where.
    warnings.append(f"line {line}: not UTF-8 (byte 0x{byte:02x}); the file is read as Latin-1 "
                    "(ldifde's ANSI output): non-ASCII names may be shown wrongly")


class _Records:
    """The records of an export as they are read, each as (number of its first line, its logical lines, its
    entry): an entry when the plain-record reader read it, its lines when :func:`_entry` will; and whether the
    text ends with a line end (known once every record is read)."""

    def __init__(self, items: Iterator[_Read], ends_with_newline: Callable[[], bool]) -> None:
        self.items, self.ends_with_newline = items, ends_with_newline


_Read = tuple[int, "list[tuple[int, str]] | None", "DirectoryEntry | None"]


def export_encoding(stream: BinaryIO, warnings: list[str], chunk_size: int = _CHUNK) -> str:
    """How the export from the stream's position is read: "utf-16" (``ldifde -u``, with its byte-order mark),
    "utf-8", or when it is not (checked in one pass that keeps nothing, and said in a warning) "latin-1". Leaves
    the stream at the start of the text (after a byte-order mark)."""
    start = stream.tell()
    if stream.read(2) in (b"\xff\xfe", b"\xfe\xff"):
        stream.seek(start)
        return "utf-16"
    stream.seek(start)
    if stream.read(3) != _UTF8_BOM:
        stream.seek(start)
    body = stream.tell()
    encoding = "utf-8" if _valid_utf8(stream, warnings, chunk_size) else "latin-1"
    stream.seek(body)
    return encoding


def _streamed_records(stream: BinaryIO, warnings: list[str], chunk_size: int, part: Part | None,
                      plain: bool = True) -> _Records:
    """The records of an export read from ``stream`` a chunk of whole records at a time, in the encoding
    :func:`export_encoding` finds (or ``part``'s: then only its bytes are read). UTF-16 is read whole.

    In UTF-8, a record of plain lines is read straight from its bytes (:func:`_plain_entry`), about three times
    faster than through text lines; any other (comments, URL values, change records, unusual spacing) is read by
    the general reader, as all of them are with ``plain`` False."""
    if part is None:
        encoding = export_encoding(stream, warnings, chunk_size)
        left, first_line = sys.maxsize, 1  # to the end
    else:
        encoding, left, first_line = part.encoding, part.end - part.start, part.first_line
        stream.seek(part.start)
    if encoding == "utf-16":
        text = stream.read().decode("utf-16", "replace")
        return _Records(_general(text.split("\n"), first_line), lambda: text.endswith("\n"))
    last_byte = bytearray()

    def pieces() -> Iterator[tuple[int, bytes]]:
        """Runs of whole records and the number of the first line of each: cut only where a record ends and
        the next line is not a continuation, so that each run reads alone as it reads in the whole file."""
        nonlocal left
        line = first_line
        carried: list[bytes] = []  # chunks without a record's end are kept, not re-copied with every chunk
        tail = b""  # the last bytes carried: a blank line there ends a record once the next byte is known
        while chunk := stream.read(min(chunk_size, left)):
            left -= len(chunk)
            last_byte[:] = chunk[-1:]
            window = tail + chunk
            end = _last_record_end(window)
            if end < max(len(tail), 1):  # none where the chunk adds one
                carried.append(chunk)
                tail = window[-3:]
                continue
            cut = end - len(tail)  # in the chunk (0: just before it)
            piece = b"".join([*carried, chunk[:cut]])
            yield line, piece
            line += piece.count(b"\n")
            carried, tail = [chunk[cut:]], chunk[cut:][-3:]
        yield line, b"".join(carried)

    def items() -> Iterator[_Read]:
        for line, piece in pieces():
            # CR LF as LF: the general reader drops one CR before each line end, and keeps any other. A blank
            # line that a continuation follows is not a record's end: such a run is read as text.
            if (plain and encoding == "utf-8" and b"\r" not in (lf_only := piece.replace(b"\r\n", b"\n"))
                    and b"\n\n " not in lf_only):
                yield from _plain_records(lf_only, line)
            else:  # a line end is one byte in UTF-8 and Latin-1, never inside a character: runs decode alone
                yield from _general(piece.decode(encoding).split("\n"), line)

    return _Records(items(), lambda: last_byte == b"\n")


def _last_record_end(data: bytes) -> int:
    """The offset just after the last blank line in ``data`` that a line other than a continuation follows; 0
    when there is none (what follows a blank line at the very end is not known yet). Linear in the bytes
    searched: each kind of blank line is looked for again only below the one turned down."""
    lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\n\r\n")
    while lf >= 0 or crlf >= 0:
        after = max(lf + 2 if lf >= 0 else -1, crlf + 3 if crlf >= 0 else -1)
        if after < len(data) and data[after] != 0x20:  # not " ": a line that continues even a blank one
            return after
        if lf >= 0 and lf + 2 == after:
            lf = data.rfind(b"\n\n", 0, lf + 1)
        else:
            crlf = data.rfind(b"\n\r\n", 0, crlf + 2)
    return 0


def _general(lines: Iterable[str], first_line: int) -> Iterator[_Read]:
    return ((record[0][0], record, None) for record in _records(lines, first_line))


def _plain_records(piece: bytes, line: int) -> Iterator[_Read]:
    """The records of a run of whole records in UTF-8 with no carriage return: each of plain lines as its
    entry, any other as its lines for the general reader (which reads it as it would in the whole file)."""
    names: dict[bytes, str | None] = _NAMES
    for block in piece.split(b"\n\n"):
        lines = block.lstrip(b"\n")
        number = line + len(block) - len(lines)
        if lines and (entry := _plain_entry(lines.rstrip(b"\n"), names)) is not None:
            yield number, None, entry
        elif lines:
            yield from _general(block.decode("utf-8").split("\n"), line)
        line += block.count(b"\n") + 2


_NAMES: dict[bytes, str | None] = {}  # attribute descriptions as written -> their names (an export uses few)
_MAX_NAMES = 4096


def _plain_entry(block: bytes, names: dict[bytes, str | None]) -> DirectoryEntry | None:
    """A record whose lines are all ``name: text`` or ``name:: base64``, the first a DN, read from its bytes;
    None for any other record: the general reader then reads it, with the warning or error it gives.
    Reads exactly as :func:`_entry` does: each value's bytes are what it would encode the decoded text to."""
    if b"\n " in block:
        block = block.replace(b"\n ", b"")  # unfolded (RFC 2849: a line end and one space)
    lines = block.split(b"\n")
    head = lines[0]
    if head[:3].lower() != b"dn:" or (value := _plain_value(head[3:])) is None:
        return None
    entry = DirectoryEntry(dn=value.decode("utf-8", "replace"))
    attributes = entry.attributes
    for line in lines[1:]:
        description, colon, rest = line.partition(b":")
        if not colon or not line[:1].isalpha() or (value := _plain_value(rest)) is None:
            return None  # no colon, a comment, a blank or spaced line, a URL or bad base64
        name = names.get(description, "")
        if name == "":
            try:
                name = _attribute_name(description.decode("utf-8"))
            except UnicodeDecodeError:
                return None
            if len(names) < _MAX_NAMES:
                names[description] = name
        if name is None:  # changetype, control: a change record
            return None
        attributes.setdefault(name, []).append(value)
    return entry


def _plain_value(rest: bytes) -> bytes | None:
    """What follows an attribute's colon as the value's bytes; None for a URL or base64 that does not decode."""
    if rest[:1] == b":":
        try:
            return base64.b64decode(rest[1:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
    return None if rest[:1] == b"<" else rest.lstrip(b" ")


def _valid_utf8(stream: BinaryIO, warnings: list[str], chunk_size: int) -> bool:
    """Whether the rest of ``stream`` is UTF-8; if not, say where it is not. Reads it once."""
    carried, lines = b"", 0
    while True:
        chunk = stream.read(chunk_size)
        data = carried + chunk
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if chunk and exc.reason == "unexpected end of data":  # a character cut by the chunk's end
                carried = data[exc.start:]
                lines += data.count(b"\n", 0, exc.start)
                continue
            _not_utf8(warnings, lines + data.count(b"\n", 0, exc.start) + 1, data[exc.start])
            return False
        if not chunk:
            return True
        carried = b""
        lines += data.count(b"\n")


def _records(lines: Iterable[str], first_line: int = 1) -> Iterator[list[tuple[int, str]]]:
    """Content records: their logical lines, continuation lines unfolded, as (first physical line number, line);
    comments dropped, blank lines between records. One loop: a million accounts are some 30 million lines."""
    record: list[tuple[int, str]] = []
    current: str | None = None
    start = 0
    # RFC 2849: SEP = CR LF / LF. str.splitlines() would also break on VT, FF, FS/GS/RS, NEL, U+2028/9,
    # which values may contain: "displayName: Alice<FF>isDeleted: TRUE" must stay one value.
    for number, raw in enumerate(lines, start=first_line):
        if raw.endswith("\r"):
            raw = raw[:-1]
        if current is not None:
            if raw.startswith(" "):
                current += raw[1:]
                continue
            if not current.startswith("#"):
                if current.strip():
                    record.append((start, current))
                elif record:
                    yield record
                    record = []
        current, start = raw, number
    if current is not None and not current.startswith("#") and current.strip():
        record.append((start, current))
    if record:
        yield record


def _split(number: int, line: str) -> tuple[str, bytes | None, str]:
    """Return (attribute description, value, kind) where kind is 'text', 'base64' or 'url'."""
    colon = line.find(":")
    if colon <= 0:
        raise LdifError(f"line {number}: expected 'attribute: value', got {line[:60]!r}")
    name = line[:colon].strip()
    rest = line[colon + 1 :]
    if rest.startswith(":"):
        try:
            return name, base64.b64decode(rest[1:].strip(), validate=True), "base64"
        except (binascii.Error, ValueError) as exc:
            raise LdifError(f"line {number}: attribute {name}: invalid base64 value") from exc
    if rest.startswith("<"):
        return name, None, "url"
    return name, rest.lstrip(" ").encode("utf-8"), "text"


@dataclass(frozen=True)
class Part:
    """A byte range of an export that starts at a record's first line (see :func:`record_start`), read on its own:
    ``first_line`` is the number of its first line in the whole file, ``encoding`` the whole file's."""

    start: int
    end: int
    first_line: int
    encoding: str
    first: bool  # the export's first part: a version line may open it


@dataclass
class ReadState:
    """What reading an export keeps across its parts: the DN keys read (a second record with one is not
    audited), and how many change records were skipped (said once, by whoever reads the last part)."""

    seen: set[str] = field(default_factory=set)
    skipped_changes: int = 0

    def skipped_warning(self) -> list[str]:
        return ([f"{self.skipped_changes} change record(s) skipped: only content records are audited"]
                if self.skipped_changes else [])


def read_ldif(
    data: bytes | BinaryIO, warnings: list[str], incomplete: list[str] | None = None, *, chunk_size: int = _CHUNK,
    part: Part | None = None, state: ReadState | None = None, plain: bool = True,
) -> Iterator[DirectoryEntry]:
    """Yield the content records of an LDIF file (its bytes, or a binary stream read a chunk at a time); append
    a warning for everything skipped.

    With ``incomplete``, a record that cannot be read, a second record with the same DN, and a last record cut
    off (no line end after it: a truncated export) are listed there and not audited; the rest is read. Without
    it, the first such problem raises :class:`LdifError`.

    ``ldapsearch`` without ``-LLL`` ends its output with a result record (``search: 2`` / ``result: 0 Success``);
    it is read, not audited, and a result other than 0 (``4 Size limit exceeded``) goes to ``incomplete``:
    the export stopped short.

    With ``part``, only that range of the stream is read; with ``state``, DNs already read in other parts count
    as read, and the skipped change records are counted there instead of said (``ReadState.skipped_warning``)."""
    records = _streamed_records(io.BytesIO(data) if isinstance(data, bytes) else data, warnings, chunk_size, part,
                                plain)
    own_state = state is None
    state = state or ReadState()
    seen = state.seen
    index = 0 if part is None or part.first else 1  # a version line opens only the export's first record
    for (number, record, entry), last in _with_last(records.items):  # one record at a time
        try:
            if last and not records.ends_with_newline() and not (
                    record is not None and record[0][1].lower().startswith(("search:", "version:"))):
                raise LdifError(f"line {number}: the file ends inside this record (a truncated export)")
            if record is not None:
                entry = _entry(index, record, warnings, incomplete)
        except LdifError as exc:
            if incomplete is None:
                raise
            incomplete.append(f"{exc}; the record is not audited")
            continue
        finally:
            index += 1
        if entry is None:
            continue
        if entry is _CHANGE_RECORD:
            state.skipped_changes += 1
            continue
        key = entry.key
        if key in seen:
            if incomplete is None:
                raise LdifError(f"line {number}: a second record for {entry.dn}")
            incomplete.append(f"line {number}: a second record for {entry.dn[:200]}: which one is true is "
                              "not known; only the first is audited")
            continue
        seen.add(key)
        yield entry
    if own_state:
        warnings.extend(state.skipped_warning())


def record_start(stream: BinaryIO, offset: int, chunk_size: int = 1 << 20) -> int | None:
    """The offset of the first record that starts after ``offset``: just after a blank line whose next line is not
    a continuation (a line that starts with a space continues even a blank one). None when there is none."""
    stream.seek(offset)
    data = b""
    position = offset
    while chunk := stream.read(chunk_size):
        data += chunk
        at = 0
        while (found := _BLANK_LINE.search(data, at)) is not None:
            after = found.end()
            if after >= len(data):
                break  # what follows the blank line is in the next chunk
            if data[after:after + 1] != b" ":
                return position + after
            at = after
        keep = max(len(data) - 4, 0)  # a blank line cut by the chunk's end is found with the next
        position += keep
        data = data[keep:]
    return None


_BLANK_LINE = re.compile(rb"\n\r?\n")


def lines_before(stream: BinaryIO, offset: int, chunk_size: int = _CHUNK) -> int:
    """How many line ends the stream holds before ``offset``."""
    stream.seek(0)
    count, left = 0, offset
    while left > 0 and (chunk := stream.read(min(chunk_size, left))):
        count += chunk.count(b"\n")
        left -= len(chunk)
    return count


_CHANGE_RECORD = DirectoryEntry(dn="")
T = TypeVar("T")


def _with_last(items: Iterator[T]) -> Iterator[tuple[T, bool]]:
    """Each item, and whether it is the last."""
    try:
        current = next(items)
    except StopIteration:
        return
    for following in items:
        yield current, False
        current = following
    yield current, True


def _entry(
    index: int, record: list[tuple[int, str]], warnings: list[str], incomplete: list[str] | None,
) -> DirectoryEntry | None:
    """One record as an entry; None for what is not content (the version line, ldapsearch's result)."""
    number, first = record[0]
    if index == 0 and first.lower().startswith("version:"):
        if first.split(":", 1)[1].strip() != "1":
            raise LdifError(f"line {number}: unsupported LDIF version {first.split(':', 1)[1].strip()!r}")
        record = record[1:]
        if not record:
            return None
        number, first = record[0]
    name, value, _kind = _split(number, first)
    if name.lower() == "search" and any(line.lower().startswith("result:") for _, line in record):
        result = next(line for _, line in record if line.lower().startswith("result:")).split(":", 1)[1].strip()
        if not result.startswith("0 ") and result != "0" and incomplete is not None:
            incomplete.append(f"line {number}: ldapsearch ended with result {result[:80]!r}: the export is "
                              "incomplete")
        return None
    if name.lower() != "dn" or value is None:
        raise LdifError(f"line {number}: a record must start with 'dn:', got {first[:60]!r}")
    entry = DirectoryEntry(dn=value.decode("utf-8", "replace"))
    attributes = entry.attributes
    for line_number, line in record[1:]:
        colon = line.find(":")
        attr_value: bytes | None
        if colon > 0 and line[colon + 1:colon + 2] not in (":", "<"):  # "name: text", most lines: no call
            description, attr_value = line[:colon], line[colon + 1:].lstrip(" ").encode("utf-8")
        else:
            description, attr_value, _kind = _split(line_number, line)
        base_name = _attribute_name(description)
        if base_name is None:
            return _CHANGE_RECORD
        if attr_value is None:  # a URL
            warnings.append(f"line {line_number}: {entry.dn}: value of {description} is a URL reference; "
                            "not followed")
            continue
        attributes.setdefault(base_name, []).append(attr_value)
    return entry


@functools.lru_cache(maxsize=4096)
def _attribute_name(description: str) -> str | None:
    """An attribute description's name, lower-cased, options such as ;binary or ;range=0-* dropped; None for the
    lines only change records have (changetype, control)."""
    lowered = description.strip().lower()
    return None if lowered in ("changetype", "control") else lowered.split(";", 1)[0]
