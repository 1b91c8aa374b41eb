"""Pseudonymise a scored result before anything is rendered from it, so every file of a bundle agrees.

Each identifying value (username, name, address, id, DN, group, join key, event actor) becomes a keyed
pseudonym: HMAC-SHA256 under a random key that is never kept, so the same value gives the same pseudonym
everywhere in one bundle (records still join) and means nothing outside it. Free text (messages, evidence,
warnings, gaps, selectors) is searched for every identifying value the result holds and each occurrence is
replaced by the same pseudonym. Raw directory values are dropped. GDPR Art. 4(5) calls this
pseudonymisation (not anonymisation): whoever holds the un-pseudonymised outputs can still link them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from auditor import jsonio
from auditor.engine import AuditResult
from auditor.history import RunRecord
from auditor.model import (
    Account,
    AccountLink,
    ChangeEvent,
    Finding,
    IdentityGraph,
    Inventory,
    PasswordPolicy,
    Person,
    ReviewCampaign,
    ReviewDecision,
    SourceStatus,
    Subject,
    UnlinkedAccount,
)
from auditor.scoring import AccountVerdicts, Verdicts, verdict_key

_TOKEN = re.compile(r"\w+|[^\w\s]")
# Raw attribute names whose values identify someone (quoted in evidence): their values are searched for too.
_IDENTIFYING_RAW = re.compile(r"name|mail|dn$|principal|login|uid|sid|guid|upn|handle|user|manager|member|id$", re.I)
# Short all-digit ids (GitHub, Slack numbers) are pseudonymised in their own fields; in free text such a number
# is far more often a count or a day than that id.
_MIN_DIGITS_IN_TEXT = 6
_PERSONAL_SUBJECTS = ("account", "person")  # finding subjects that are someone (policies and sources are not)


class Pseudonymiser:
    def __init__(self, result: AuditResult, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)
        self._source = result
        self._first_token: dict[str, list[str]] = {}
        self._known: set[str] = set()
        for value in _identifying_values(result):
            self._learn(value)
        for candidates in self._first_token.values():
            candidates.sort(key=len, reverse=True)  # the longest identifier at a position wins

    def _learn(self, value: str) -> None:
        value = value.strip()
        lowered = value.lower()
        if not value or lowered in self._known:
            return
        self._known.add(lowered)
        if value.isdigit() and len(value) < _MIN_DIGITS_IN_TEXT:
            return
        first = _TOKEN.match(lowered)
        if first is not None:
            self._first_token.setdefault(first.group(), []).append(lowered)

    def alias(self, value: str) -> str:
        return "p-" + hmac.new(self._key, value.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()[:16]

    def ident(self, value: str) -> str:
        """An identifying field: its pseudonym when the whole value is known, else the value with every known
        identifier inside it replaced (a person id "source:account id" keeps its source)."""
        return self.alias(value) if value.strip().lower() in self._known else self.text(value)

    def text(self, value: str) -> str:
        lowered = value.lower()
        if len(lowered) != len(value):  # a few characters change length when lowered: compare as written
            lowered = value
        out: list[str] = []
        done = 0
        for token in _TOKEN.finditer(lowered):
            start = token.start()
            if start < done:
                continue
            for candidate in self._first_token.get(token.group(), ()):
                end = start + len(candidate)
                if lowered.startswith(candidate, start) and not (
                        end < len(lowered) and _word(lowered[end]) and _word(candidate[-1])):
                    out.append(value[done:start])
                    out.append(self.alias(candidate))
                    done = end
                    break
        out.append(value[done:])
        return "".join(out)

    def deep(self, value: Any) -> Any:
        """Every string inside JSON-like data (keys are ours and stay)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):  # a finding's evidence is a compact mapping, not a dict
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value

    def json_file(self, data: bytes) -> bytes:
        """A JSON file of the bundle written outside the result (config.json, run.json)."""
        return jsonio.dumps(self.deep(jsonio.loads(data)), indent=True, sort_keys=True)

    # ---- the result ----

    def result(self) -> AuditResult:
        source = self._source
        inventory = source.inventory
        accounts = {id(a): self._account(a) for a in _all_accounts(inventory)}
        graph = inventory.identity
        new_inventory = Inventory(
            accounts=[accounts[id(a)] for a in inventory.accounts],
            policies=[self._policy(p) for p in inventory.policies],
            change_events=[self._event(e) for e in inventory.change_events],
            sources=[self._status(s) for s in inventory.sources],
            identity=None if graph is None else self._graph(graph, accounts),
            reviews=[self._campaign(c) for c in inventory.reviews],
        )
        account_verdicts = AccountVerdicts()
        for account in _all_accounts(inventory):
            pseudonymous = accounts[id(account)]
            account_verdicts.put(pseudonymous.source, pseudonymous.id, source.verdicts.of(account))
        verdicts = Verdicts(
            accounts=account_verdicts,
            policies={verdict_key(p.source, self.ident(p.id)): source.verdicts.rating(p) for p in inventory.policies},
        )
        return dataclasses.replace(
            source, inventory=new_inventory, verdicts=verdicts, findings=[self._finding(f) for f in source.findings],
            kpis=[dataclasses.replace(k, detail=self.deep(k.detail)) for k in source.kpis],
            exclusions=self.deep(source.exclusions), accepted_risks=self.deep(source.accepted_risks),
            previous_run=self._run(source.previous_run) if source.previous_run else None,
            past_runs=[self._run(r) for r in source.past_runs], gaps=self.deep(source.gaps),
            notes=self.deep(source.notes), changes=None, pseudonymised=True,
        )

    def _account(self, account: Account) -> Account:
        return dataclasses.replace(
            account, id=self.ident(account.id), username=self.alias(account.username),
            email=self.alias(account.email) if account.email else account.email,
            display_name=self.alias(account.display_name) if account.display_name else account.display_name,
            activity_unknown_reason=self._maybe(account.activity_unknown_reason),
            last_activity_raw=None if account.last_activity_raw is None else self.text(account.last_activity_raw),
            privilege_evidence=[self.text(e) for e in account.privilege_evidence],
            groups=[self.ident(g) for g in account.groups],
            password_policy_id=None if account.password_policy_id is None else self.ident(account.password_policy_id),
            identifiers={k: self.alias(v) for k, v in account.identifiers.items()},
            email_aliases=[self.alias(v) for v in account.email_aliases], raw={},
            manager=self._maybe(account.manager),
        )

    def _campaign(self, campaign: ReviewCampaign) -> ReviewCampaign:
        def decision(d: ReviewDecision) -> ReviewDecision:
            return dataclasses.replace(d, account_id=self.ident(d.account_id), username=self.alias(d.username),
                                       comment=self.text(d.comment))

        return dataclasses.replace(
            campaign, unassigned=[[s, self.ident(i), self.alias(u)] for s, i, u in campaign.unassigned],
            packets=[dataclasses.replace(p, reviewer=self.alias(p.reviewer),
                                         accounts=[[s, self.ident(i), self.alias(u)] for s, i, u in p.accounts],
                                         decisions=[decision(d) for d in p.decisions]) for p in campaign.packets])

    def _maybe(self, value: str | None) -> str | None:
        return None if value is None else self.text(value)

    def _policy(self, policy: PasswordPolicy) -> PasswordPolicy:
        return dataclasses.replace(policy, id=self.ident(policy.id), name=self.text(policy.name),
                                   unknown_reason=self._maybe(policy.unknown_reason),
                                   applies_to=[self.ident(t) for t in policy.applies_to], raw={})

    def _event(self, event: ChangeEvent) -> ChangeEvent:
        return dataclasses.replace(
            event, account_id=self.ident(event.account_id),
            username=None if event.username is None else self.alias(event.username),
            actor=None if event.actor is None else self.ident(event.actor), detail=self._maybe(event.detail))

    def _status(self, status: SourceStatus) -> SourceStatus:
        return dataclasses.replace(status, error=self._maybe(status.error), warnings=self.deep(status.warnings))

    def _graph(self, graph: IdentityGraph, accounts: dict[int, Account]) -> IdentityGraph:
        def person(p: Person) -> Person:
            departure = p.departure
            return Person(
                id=self.ident(p.id), name=self.alias(p.name), authoritative=accounts[id(p.authoritative)],
                links=[AccountLink(accounts[id(link.account)], link.key,
                                   None if link.value is None else self.ident(link.value)) for link in p.links],
                departure=None if departure is None else dataclasses.replace(departure,
                                                                             evidence=self.text(departure.evidence)),
            )

        return IdentityGraph(
            authoritative_source=graph.authoritative_source, keys=graph.keys,
            people=[person(p) for p in graph.people],
            unlinked=[UnlinkedAccount(accounts[id(u.account)], u.reason, self.text(u.detail)) for u in graph.unlinked],
            service_accounts=tuple(self.text(s) for s in graph.service_accounts),
        )

    def _finding(self, finding: Finding) -> Finding:
        subject = finding.subject
        if subject.type in _PERSONAL_SUBJECTS:
            subject = Subject(subject.type, self.ident(subject.id), self.ident(subject.name))
        else:  # a policy or a source: its own id pseudonymised where it is an identifier (a DN), name kept
            subject = Subject(subject.type, self.ident(subject.id), self.text(subject.name))
        return dataclasses.replace(
            finding, subject=subject,
            message=self.text(finding.message), evidence=self.deep(finding.evidence),
            excluded_by=self._maybe(finding.excluded_by), accepted_by=self._maybe(finding.accepted_by))

    def _run(self, run: RunRecord) -> RunRecord:
        """Past runs' finding keys and subjects, pseudonymised as this run's are (so "new since" still counts)."""
        findings = []
        for f in run.findings:
            parts = str(f.get("key", "")).split("|", 3)
            personal = len(parts) == 4 and parts[2] in _PERSONAL_SUBJECTS
            if personal:
                parts[3] = self.ident(parts[3])
            subject = str(f.get("subject", ""))
            findings.append({**f, "key": "|".join(parts),
                             "subject": self.ident(subject) if personal else self.text(subject)})
        return dataclasses.replace(run, sources=self.deep(run.sources), findings=findings)


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _all_accounts(inventory: Inventory) -> Iterator[Account]:
    """Every account object the result holds: the inventory's, and history copies of people who left."""
    seen: set[int] = set()
    graph = inventory.identity
    linked: Iterable[Account] = () if graph is None else (
        [link.account for p in graph.people for link in p.links] + [p.authoritative for p in graph.people]
        + [u.account for u in graph.unlinked])
    for account in [*inventory.accounts, *linked]:
        if id(account) not in seen:
            seen.add(id(account))
            yield account


def _identifying_values(result: AuditResult) -> Iterator[str]:
    inventory = result.inventory
    for account in _all_accounts(inventory):
        yield from (account.id, account.username, *account.groups, *account.email_aliases,
                    *account.identifiers.values())
        yield from (v for v in (account.email, account.display_name) if v)
        if account.manager:  # "dn:CN=Ann Lee,OU=...": the name inside is found as the DN's own account's
            yield account.manager.partition(":")[2]
        yield from (v for k, v in account.raw.items() if _IDENTIFYING_RAW.search(k))
    for campaign in inventory.reviews:
        for packet in campaign.packets:
            yield packet.reviewer
            yield from (v for d in packet.decisions for v in (d.account_id, d.username))
    for policy in inventory.policies:
        yield policy.id
        yield from policy.applies_to
    for event in inventory.change_events:
        yield from (v for v in (event.account_id, event.username, event.actor) if v)
    if inventory.identity is not None:
        for person in inventory.identity.people:
            yield from (person.id, person.name)
            yield from (link.value for link in person.links if link.value)
    for run in (*result.past_runs, *([result.previous_run] if result.previous_run else [])):
        for finding in run.findings:  # accounts earlier audits reported and this one may not hold any more
            parts = str(finding.get("key", "")).split("|", 3)
            if len(parts) == 4 and parts[2] in _PERSONAL_SUBJECTS:
                yield from (parts[3], str(finding.get("subject", "")))
