from __future__ import annotations

import hashlib
import io
import json
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from tests.conftest import HOSTILE_LOGIN

SECRET_VALUE = "Super-Secret-Bind-Password-77"


@pytest.fixture
def bundle(small_org: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, Path]:
    # A configured (disabled) live source whose password is in the environment: it must never reach the bundle.
    monkeypatch.setenv("AUDIT_BIND_PASSWORD", SECRET_VALUE)
    small_org.write_text(small_org.read_text() + (
        '\n[[sources]]\nname = "dc"\ntype = "ldap"\nenabled = false\nurl = "ldaps://dc.corp.test"\n'
        'bind_dn = "svc@corp.test"\npassword_env = "AUDIT_BIND_PASSWORD"\n'))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", str(small_org), "--output", str(out), "--as-of",
                                       "2026-06-30", "--evidence"])
    assert result.exit_code == 0, result.output
    run_id = json.loads((out / "findings.json").read_text())["run_id"]
    return out / f"evidence-{run_id}.zip", run_id, small_org


def verify(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["verify", str(path)], catch_exceptions=False)  # a crash is not a "fail"
    return result.exit_code, result.output


def rewrite(source: Path, target: Path, change: dict[str, bytes | None]) -> None:
    """Copy a bundle, replacing (bytes) or dropping (None) members, or adding new ones."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            if name not in change:
                new.writestr(name, old.read(name))
            elif change[name] is not None:
                new.writestr(name, change[name])  # type: ignore[arg-type]
        for name, data in change.items():
            if name not in old.namelist() and data is not None:
                new.writestr(name, data)


def test_bundle_round_trip_and_contents(bundle: tuple[Path, str, Path]) -> None:
    path, run_id, _ = bundle
    assert path.stat().st_mode & 0o777 == 0o600
    code, output = verify(path)
    assert code == 0 and "OK, every file matches the manifest" in output
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert names == {"report.html", "findings.json", "findings.csv", "accounts.csv", "inventory.json",
                         "config.json", "run.json", "controls.json", "manifest.json"}
        everything = b"".join(archive.read(n) for n in names)
        run = json.loads(archive.read("run.json"))
        controls = json.loads(archive.read("controls.json"))
        config = json.loads(archive.read("config.json"))
    assert SECRET_VALUE.encode() not in everything
    assert config["sources"][-1]["password_env"] == "AUDIT_BIND_PASSWORD"  # where the secret lives, not what it is
    assert run["run_id"] == run_id and run["as_of"] == "2026-06-30T00:00:00Z" and run["operator"]
    cis_53 = next(c for c in controls if c["framework"] == "CIS Controls v8" and c["control"] == "5.3")
    assert "inactive-enabled" in cis_53["rules"] and cis_53["population"]["accounts"] > 10
    assert {f["subject"] for f in cis_53["open_findings"]} >= {"stale", "stale-admin", "never"}
    assert [f["subject"] for f in cis_53["excluded_findings"]] == ["bg-admin"]


def test_one_altered_byte_fails_verification(bundle: tuple[Path, str, Path], tmp_path: Path) -> None:
    path, _, _ = bundle
    with zipfile.ZipFile(path) as archive:
        original = archive.read("findings.csv")
    altered = bytearray(original)
    altered[len(altered) // 2] ^= 0x01
    tampered = tmp_path / "tampered.zip"
    rewrite(path, tampered, {"findings.csv": bytes(altered)})
    code, output = verify(tampered)
    assert code == 1 and "findings.csv: SHA-256 does not match the manifest" in output
    # A flipped byte in the archive itself is caught too (as a digest or CRC failure).
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("report.html")
    raw[member.header_offset + 30 + len(member.filename) + 10] ^= 0xFF
    broken = tmp_path / "broken.zip"
    broken.write_bytes(bytes(raw))
    code, output = verify(broken)
    assert code == 1 and "report.html: unreadable" in output


def test_added_and_removed_files_fail_verification(bundle: tuple[Path, str, Path], tmp_path: Path) -> None:
    path, _, _ = bundle
    rewrite(path, tmp_path / "added.zip", {"extra.txt": b"planted"})
    code, output = verify(tmp_path / "added.zip")
    assert code == 1 and "extra.txt: not listed in the manifest" in output
    rewrite(path, tmp_path / "removed.zip", {"accounts.csv": None})
    code, output = verify(tmp_path / "removed.zip")
    assert code == 1 and "accounts.csv: listed in the manifest but missing" in output
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    assert verify(tmp_path / "junk.zip") == (1, f"{tmp_path / 'junk.zip'}: FAILED: not a zip file\n")


def test_bundle_of_a_past_run_from_history_with_pseudonyms(bundle: tuple[Path, str, Path], tmp_path: Path) -> None:
    path, run_id, config = bundle
    later = tmp_path / "later.zip"
    result = CliRunner().invoke(main, ["evidence", "--run", run_id, "--config", str(config), "--output", str(later),
                                       "--pseudonymise"])
    assert result.exit_code == 0, result.output
    assert verify(later)[0] == 0
    # Issue 12: pseudonymising now covers every file, so the run's own outputs are unchanged only in a bundle
    # made without --pseudonymise; with it, findings.json is the same audit under pseudonyms.
    plain = tmp_path / "plain.zip"
    result = CliRunner().invoke(main, ["evidence", "--run", run_id, "--config", str(config), "--output", str(plain)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(path) as first, zipfile.ZipFile(plain) as unmasked:
        assert first.read("findings.json") == unmasked.read("findings.json")  # the run's own outputs, unchanged
    with zipfile.ZipFile(path) as first, zipfile.ZipFile(later) as second:
        masked, real = json.loads(second.read("findings.json")), json.loads(first.read("findings.json"))
        assert [f["rule"] for f in masked["findings"]] == [f["rule"] for f in real["findings"]]
        inventory = json.loads(second.read("inventory.json"))
    assert inventory["pseudonymised"] is True
    usernames = {a["username"] for a in inventory["accounts"]}
    assert all(name.startswith("p-") for name in usernames) and len(usernames) == len(inventory["accounts"])
    text = json.dumps(inventory)
    assert "stale-admin" not in text and HOSTILE_LOGIN not in text and "S-1-5-21-" not in text


def test_unknown_run_is_a_clear_error(bundle: tuple[Path, str, Path]) -> None:
    _, run_id, config = bundle
    result = CliRunner().invoke(main, ["evidence", "--run", "20990101T000000Z-ffffff", "--config", str(config)])
    assert result.exit_code == 2
    assert "no evidence for run '20990101T000000Z-ffffff'" in result.output and run_id in result.output
    assert io.StringIO(result.output).read().count("\n") == 1


def _copy_with(source: Path, target: Path, extra: list[tuple[zipfile.ZipInfo | str, bytes]], *,
               first: bool = False, manifest: bytes | None = None) -> None:
    """Copy a bundle; ``extra`` entries go before (``first``) or after the originals."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        if first:
            for info, data in extra:
                new.writestr(info, data)
        for name in old.namelist():
            new.writestr(name, manifest if manifest is not None and name == "manifest.json" else old.read(name))
        if not first:
            for info, data in extra:
                new.writestr(info, data)


@pytest.mark.filterwarnings("ignore::UserWarning")  # zipfile warns about the duplicate name we plant
def test_tampered_bundles_are_refused_with_a_reason(bundle: tuple[Path, str, Path], tmp_path: Path) -> None:
    path, _, _ = bundle
    with zipfile.ZipFile(path) as original:
        findings = original.read("findings.json")
    cases: dict[str, tuple[list[tuple[zipfile.ZipInfo | str, bytes]], bool, str]] = {
        # The tampered copy first: a reader that takes the first entry would see it.
        "duplicate": ([("findings.json", findings.replace(b"high", b"low"))], True, "appears more than once"),
        "dotdot": ([("../evil.txt", b"x")], False, "unsafe entry name"),
        "absolute": ([("/etc/evil", b"x")], False, "unsafe entry name"),
        "backslash": ([("reports\\evil.txt", b"x")], False, "unsafe entry name"),
    }
    link = zipfile.ZipInfo("link.txt")
    link.external_attr = (0o120777 << 16)
    cases["symlink"] = ([(link, b"/etc/passwd")], False, "symbolic link entry")
    bzip = zipfile.ZipInfo("packed.txt")
    bzip.compress_type = zipfile.ZIP_BZIP2
    cases["compression"] = ([(bzip, b"x" * 100)], False, "unsupported compression method 12")
    for label, (extra, first, reason) in cases.items():
        target = tmp_path / f"{label}.zip"
        _copy_with(path, target, extra, first=first)
        code, output = verify(target)
        assert code == 1 and reason in output, (label, output)


@pytest.mark.parametrize("files", [b"[]", b'"everything"', b'{"a": 1}', b"null"])
def test_a_manifest_of_the_wrong_shape_is_refused_not_a_traceback(
    bundle: tuple[Path, str, Path], tmp_path: Path, files: bytes,
) -> None:
    path, _, _ = bundle
    target = tmp_path / "shape.zip"
    _copy_with(path, target, [], manifest=b'{"format": "identity-auditor-evidence/1", "files": ' + files + b"}")
    code, output = verify(target)
    assert code == 1 and "manifest.json is not a manifest" in output


def test_an_encrypted_entry_is_refused(bundle: tuple[Path, str, Path], tmp_path: Path) -> None:
    path, _, _ = bundle
    target = tmp_path / "encrypted.zip"
    _copy_with(path, target, [])
    data = bytearray(target.read_bytes())
    # Set the "encrypted" flag bit in the first local header and its central directory record.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature)
        data[at + offset] |= 0x1
    target.write_bytes(bytes(data))
    code, output = verify(target)
    assert code == 1 and "encrypted entry" in output


def test_an_oversized_entry_is_refused_before_it_is_read(bundle: tuple[Path, str, Path], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from auditor import evidence

    path, _, _ = bundle
    monkeypatch.setattr(evidence, "MAX_ENTRY_BYTES", 1000)  # the limit, scaled down: a bound, not a fake network
    code, output = verify(path)
    assert code == 1 and "over the 1000 byte limit" in output


def _keys(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A signing key and its public key as openssl makes them, and a second (wrong) public key."""
    key, public, other = tmp_path / "signing.pem", tmp_path / "signing.pub", tmp_path / "other.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(public)], check=True)
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(tmp_path / "other.pem")], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(tmp_path / "other.pem"), "-pubout", "-out", str(other)], check=True)
    return key, public, other


def test_signed_bundles_verify_with_the_key_and_only_with_it(small_org: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    key, public, other = _keys(tmp_path)
    monkeypatch.setenv("EVIDENCE_KEY", key.read_text())
    small_org.write_text(small_org.read_text() + '\n[evidence]\nsigning_key_env = "EVIDENCE_KEY"\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", str(small_org), "--output", str(out), "--evidence", "-q"])
    assert result.exit_code == 0, result.output
    run_id = json.loads((out / "findings.json").read_text())["run_id"]
    bundle_path = out / f"evidence-{run_id}.zip"
    result = CliRunner().invoke(main, ["verify", str(bundle_path), "--public-key", str(public)])
    assert result.exit_code == 0 and "the manifest is signed by SHA256:" in result.output
    assert key.read_text().splitlines()[1] not in (out / "findings.json").read_text()  # the key never leaves
    # The wrong key, and a manifest rewritten consistently (hashes updated): both fail, with the reason.
    result = CliRunner().invoke(main, ["verify", str(bundle_path), "--public-key", str(other)])
    assert result.exit_code == 1 and "not a signature of manifest.json" in result.output
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(bundle_path) as original, zipfile.ZipFile(forged, "w") as new:
        manifest = json.loads(original.read("manifest.json"))
        for name in original.namelist():
            data = original.read(name)
            if name == "findings.json":
                data = data.replace(b'"high"', b'"low"')
                manifest["files"][name]["sha256"] = hashlib.sha256(data).hexdigest()
            if name not in ("manifest.json", "manifest.sig"):
                new.writestr(name, data)
        new.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
        new.writestr("manifest.sig", original.read("manifest.sig"))
    assert verify(forged)[0] == 0  # hashes alone cannot tell: that is what the signature is for
    result = CliRunner().invoke(main, ["verify", str(forged), "--public-key", str(public)])
    assert result.exit_code == 1 and "manifest was rewritten" in result.output
    # An auditor without this tool checks the same signature with openssl alone (as the README says).
    with zipfile.ZipFile(bundle_path) as signed:
        (tmp_path / "manifest.json").write_bytes(signed.read("manifest.json"))
        (tmp_path / "manifest.sig").write_bytes(signed.read("manifest.sig"))
    check = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(public), "-rawin", "-in",
                            str(tmp_path / "manifest.json"), "-sigfile", str(tmp_path / "manifest.sig")],
                           capture_output=True, text=True)
    assert check.returncode == 0 and "Signature Verified Successfully" in check.stdout


def test_unsigned_bundle_with_a_public_key_fails_and_a_bad_key_is_a_clear_error(
    bundle: tuple[Path, str, Path], small_org: Path, tmp_path: Path,
) -> None:
    path, _, _ = bundle
    _key, public, _other = _keys(tmp_path)
    result = CliRunner().invoke(main, ["verify", str(path), "--public-key", str(public)])
    assert result.exit_code == 1 and "not signed" in result.output
    (tmp_path / "rsa.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    small_org.write_text(small_org.read_text() + f'\n[evidence]\nsigning_key_file = "{tmp_path / "rsa.pem"}"\n')
    result = CliRunner().invoke(main, ["run", "--config", str(small_org), "--output", str(tmp_path / "o2"),
                                       "--evidence"])
    assert result.exit_code == 2 and "evidence.signing_key" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o2").exists()  # checked before anything is read or written


def test_every_rule_lands_in_a_summary_area_and_the_demos_offboarding_gaps_are_in_it(tmp_path: Path) -> None:
    import re

    from auditor.rules import RULES
    from auditor.rules.base import AREAS

    assert {rule.meta.area for rule in RULES.values()} <= set(AREAS)
    result = CliRunner().invoke(main, ["run", "--demo", "--output", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "out" / "findings.json").read_text())
    html = (tmp_path / "out" / "report.html").read_text()
    rows = dict(re.findall(r"<tr><td>([^<]+)</td><td><span class=\"posture posture-[a-z-]+\">[^<]+</span></td>"
                           r"<td>([^<]*)</td>", html))
    for area in AREAS:
        expected = sum(1 for f in document["findings"] if f["status"] == "open" and f["severity"] != "info"
                       and RULES[f["rule"]].meta.area == area)
        assert rows[area] == (f"{expected} open finding(s)" if expected else "no open findings"), area
    gaps = [f for f in document["findings"] if f["rule"] == "offboarding-gap" and f["status"] == "open"]
    assert gaps and rows["Offboarding and ownership"] != "no open findings"


def test_controls_index_files_findings_by_their_status_and_population_by_rule(bundle: tuple[Path, str, Path],
                                                                              small_org: Path, tmp_path: Path) -> None:
    path, _, _ = bundle
    with zipfile.ZipFile(path) as evidence:
        controls = json.loads(evidence.read("controls.json"))
        findings = json.loads(evidence.read("findings.json"))["findings"]
    excluded = [f for f in findings if f["status"] == "excluded"]
    assert excluded  # the small org's break-glass exclusion
    by_control = {(c["framework"], c["control"]): c for c in controls}
    for control in controls:
        assert not any(f["status"] != "open" for f in control["open_findings"])
    weak_policy = by_control[("CIS Controls v8", "5.2")]  # tested by weak-password-policy: it examines policies
    assert "password_policies" in weak_policy["population"]
    dormant = by_control[("CIS Controls v8", "5.3")]  # inactive-enabled: accounts
    assert "accounts" in dormant["population"] and "password_policies" not in dormant["population"]
    filed = sum(len(c["excluded_findings"]) for c in controls)
    assert filed == sum(len(f["controls"]) for f in excluded)


def test_accepted_findings_are_filed_as_accepted_in_the_controls_index(small_org: Path, tmp_path: Path) -> None:
    small_org.write_text(small_org.read_text() + '\n[[accepted_risks]]\nusername = "kiosk"\nreason = "lobby kiosk"\n'
                         'owner = "Facilities"\nexpires = 2099-01-01\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", str(small_org), "--output", str(out), "--as-of",
                                       "2026-06-30", "--evidence", "-q"])
    assert result.exit_code == 0, result.output
    run_id = json.loads((out / "findings.json").read_text())["run_id"]
    with zipfile.ZipFile(out / f"evidence-{run_id}.zip") as evidence:
        controls = json.loads(evidence.read("controls.json"))
    accepted = [f for c in controls for f in c["accepted_findings"]]
    assert accepted and {f["subject"] for f in accepted} == {"kiosk"}
    assert not any(f["subject"] == "kiosk" for c in controls for f in c["open_findings"])


def test_outputs_are_zipped_as_they_are_written_in_the_bundles_order(small_org: Path, tmp_path: Path) -> None:
    """The bundle takes each output as it is written (its thread deflates it while the next is rendered): the
    members are the files as written, the outputs and the run's context by name, then the result's own files.
    An output that fails part way ends the bundle's thread and the failure is raised."""
    from auditor.config import load_config
    from auditor.engine import run_audit
    from auditor.evidence import context_files, write_evidence
    from auditor.history import History
    from auditor.outputs import output_names, written_each

    config = load_config(small_org)
    history = History(tmp_path / "history.db")
    result = run_audit(config, datetime(2026, 6, 30, tzinfo=UTC), history)
    history.close()
    names = sorted(output_names(result, jsonl=True))
    context = context_files(result, config)
    arrived: list[str] = []

    def outputs(directory: Path) -> Iterator[tuple[str, Path]]:
        for name, path in written_each(directory, result, names):
            arrived.append(name)
            yield name, path

    (tmp_path / "good").mkdir()
    bundle = write_evidence(tmp_path / "good", result, outputs(tmp_path / "good"), context, signing_key=None,
                            pseudonymise=False)
    with zipfile.ZipFile(bundle) as archive:
        members = archive.namelist()
        assert all(archive.read(name) == (tmp_path / "good" / name).read_bytes() for name in names)
    assert arrived == names
    assert members == [*sorted([*names, *context]), "inventory.json", "controls.json", "manifest.json"]

    def failing(directory: Path) -> Iterator[tuple[str, Path]]:
        for index, item in enumerate(outputs(directory)):
            if index == 2:
                raise OSError(28, "No space left on device")
            yield item

    (tmp_path / "full").mkdir()
    with pytest.raises(OSError, match="No space left"):
        write_evidence(tmp_path / "full", result, failing(tmp_path / "full"), context, signing_key=None,
                       pseudonymise=False)
    assert not [t for t in threading.enumerate() if t.name.startswith("bundle")]


def test_a_file_zipped_from_disk_is_deflated_as_one_given_whole(tmp_path: Path) -> None:
    """One deflate level for every entry: an entry given its own ZipInfo is deflated at zlib's default unless
    told, twice the time of the bundle's level for the gigabytes a million accounts write."""
    from auditor.evidence import write_bundle

    data = b"".join(b"%d,user%d,enabled,2026-06-%02d\n" % (i, i * 7919 % 10007, i % 28 + 1) for i in range(50_000))
    (tmp_path / "accounts.csv").write_bytes(data)
    buffer = io.BytesIO()
    write_bundle(buffer, [("from-disk.csv", tmp_path / "accounts.csv"), ("whole.csv", data)])
    with zipfile.ZipFile(buffer) as archive:
        assert archive.read("from-disk.csv") == archive.read("whole.csv") == data
        assert archive.getinfo("from-disk.csv").compress_size == archive.getinfo("whole.csv").compress_size


def test_a_file_made_as_it_is_zipped_is_whole_and_a_failure_either_side_ends_the_bundle(tmp_path: Path) -> None:
    """A file only the bundle holds (the inventory, the controls index) is handed to the bundle's thread as it is
    made, never written to disk first: its entry holds every byte and its digest; a failure making it, or in the
    thread writing the zip, is raised here at once (no wait on a thread that has stopped taking pieces), and no
    bundle thread is left running."""
    from auditor.evidence import _zip_while_made, verify_bundle

    lines = [b"%d,user%d\n" % (i, i * 7919 % 10007) for i in range(400_000)]  # some 5 MB in small chunks
    data = b"".join(lines)
    stream = io.BytesIO()
    _zip_while_made(stream, iter([("a.json", b"{}"), ("b.csv", iter(lines)), ("c.json", b"[]")]), None)
    problems, _ = verify_bundle(stream.getvalue())
    assert problems == []
    with zipfile.ZipFile(stream) as archive:
        assert archive.namelist() == ["a.json", "b.csv", "c.json", "manifest.json"]
        assert archive.read("b.csv") == data
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["files"]["b.csv"] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}

    def failing() -> Iterator[bytes]:
        yield from lines[:1000]
        raise OSError(5, "Input/output error")

    with pytest.raises(OSError, match="Input/output"):
        _zip_while_made(io.BytesIO(), iter([("b.csv", failing()), ("c.json", b"[]")]), None)

    class FullDisk(io.BytesIO):
        def write(self, chunk: bytes) -> int:  # type: ignore[override]
            if self.tell() > 1 << 20:
                raise OSError(28, "No space left on device")
            return super().write(chunk)

    endless = (b"%d,%d\n" % (i, i * i % 65537) for i in range(10**9))  # far more than the pieces waiting
    with pytest.raises(OSError, match="No space left"):
        _zip_while_made(FullDisk(), iter([("b.csv", endless)]), None)
    assert not [t for t in threading.enumerate() if t.name.startswith("bundle")]
