"""Rate a password policy by the weakest password people actually choose that it still admits.

Recipe: popular base words (zxcvbn's own frequency lists, the organisation's name,
seasons, keyboard walks) times the mutations people use to satisfy rules (capitalise, append digits or
the year, ``!``, leetspeak), filtered through the policy's rules, scored with zxcvbn (Wheeler, "zxcvbn:
Low-Budget Password Strength Estimation", USENIX Security 2016). The policy is as strong as its weakest
admitted candidate: composition rules admit predictable choices, which is why NIST SP 800-63B 5.1.1.2 asks
for a check against commonly used passwords instead.

Cost control: zxcvbn takes ~1 ms a call, so for each mutation pattern only the most popular admitted
bases are scored (guess counts grow with a base's rank, so the minimum sits among them), scores are
memoised per candidate, and ratings are cached per distinct set of policy rules.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from auditor.model import PasswordPolicy

_ZXCVBN_MAX = 72
_PER_PATTERN = 8  # admitted candidates scored per mutation pattern
_RAW_LIST_SCORED = 60  # admitted raw list entries scored
_LEET = str.maketrans({"a": "@", "o": "0", "e": "3", "s": "$", "i": "1"})
# Entra normalises substitutions and also fuzzy-matches; reading "1" as both "l" and "i" approximates that.
_BANNED_NORMALISE = (
    str.maketrans({"0": "o", "1": "l", "$": "s", "@": "a", "3": "e", "!": "i", "5": "s"}),
    str.maketrans({"0": "o", "1": "i", "$": "s", "@": "a", "3": "e", "!": "i", "5": "s"}),
)
_EXTRA_WORDS = (
    "password", "welcome", "letmein", "changeme", "admin", "summer", "winter", "spring", "autumn", "fall",
    "january", "february", "march", "april", "june", "july", "august", "september", "october",
    "november", "december", "monday", "friday", "qwerty", "qwertyuiop", "qazwsx", "1qaz2wsx", "asdfgh",
    "iloveyou", "secret", "company", "login", "access", "master",
)


# zxcvbn is a pure function of (user inputs, candidate): its scores are shared by every rater in the process.
_SCORES: dict[tuple[tuple[str, ...], str], tuple[float, int]] = {}


@dataclass(frozen=True)
class PolicyRating:
    strong: bool | None  # None: settings unknown, cannot rate
    score: int | None
    guesses_log10: float | None
    weakest_example: str | None  # a generated guess, never a real user's password
    candidates_admitted: int
    candidates_considered: int
    reason: str

    def as_evidence(self) -> dict[str, Any]:
        return {
            "zxcvbn_score": self.score, "guesses_log10": self.guesses_log10,
            "weakest_admitted_candidate": self.weakest_example,
            "candidates_admitted": self.candidates_admitted,
            "candidates_considered": self.candidates_considered, "method": self.reason,
        }


_RATINGS: dict[tuple[Any, ...], PolicyRating] = {}


class Candidate(NamedTuple):
    text: str
    length: int
    lower: int
    upper: int
    digits: int
    symbols: int
    classes: int


def _candidate(text: str) -> Candidate:
    lower = sum(c.islower() for c in text)
    upper = sum(c.isupper() for c in text)
    digits = sum(c.isdigit() for c in text)
    symbols = len(text) - lower - upper - digits
    return Candidate(text, len(text), lower, upper, digits, symbols,
                     sum(1 for n in (lower, upper, digits, symbols) if n))


def _words(org_tokens: tuple[str, ...]) -> list[str]:
    popular = [w for w in FREQUENCY_LISTS["passwords"][:400] if w.isalpha() and len(w) >= 4]
    names = FREQUENCY_LISTS["female_names"][:30] + FREQUENCY_LISTS["male_names"][:30]
    seen: dict[str, None] = {}
    for word in [*(t for t in org_tokens if len(t) >= 3), "".join(org_tokens), *_EXTRA_WORDS, *popular, *names]:
        if word:
            seen.setdefault(word, None)
    return list(seen)


@functools.lru_cache(maxsize=8)
def _candidate_groups(org_tokens: tuple[str, ...], year: int) -> tuple[tuple[Candidate, ...], ...]:
    """Candidates grouped by mutation pattern, each group in base-word popularity order; the last group
    is zxcvbn's raw password list. Built once per organisation and year: every policy filters the same set."""
    words = _words(org_tokens)
    years = [str(year), str(year - 1), str(year)[2:]]
    suffixes = ["", "1", "12", "123", "1234", "12345", "123456", "!", "1!", "123!", "01", "2", "@1",
                *years, *(y + "!" for y in years), "123456789", "1234567890", "!@#"]
    transforms: tuple[Callable[[str], str], ...] = (
        str, str.capitalize, lambda w: w.capitalize().translate(_LEET), str.upper)
    groups = [[transform(w) + suffix for w in words] for transform in transforms for suffix in suffixes]
    top = words[:20]
    # Two popular words joined, or one repeated: what long-length rules push people to.
    groups.append([a.capitalize() + b + "1" for a in top for b in top if a != b])
    groups.append([a + b for a in top for b in top if a != b])
    groups.append([w * n for w in top for n in (2, 3)])
    groups.append([(w * n).capitalize() + "1" for w in top for n in (2, 3)])
    groups.append([w for w in FREQUENCY_LISTS["passwords"] if w])
    return tuple(tuple(_candidate(c) for c in group if len(c) <= _ZXCVBN_MAX) for group in groups)


class PolicyRater:
    """Rates policies for one audit. Ratings depend only on the policy's rules, the organisation's name,
    the year and the strength threshold, so they are cached for the whole process."""

    def __init__(self, organization: str, strong_score: int, year: int) -> None:
        self.strong_score = strong_score
        self.year = year
        self._user_inputs = tuple(t for t in re.split(r"[^a-z0-9]+", organization.lower()) if t)
        self._banned = {w for w in FREQUENCY_LISTS["passwords"][:2000] if len(w) >= 4} | set(self._user_inputs)
        self._banned_memo: dict[str, int] = {}
        self.ratings_computed = 0  # policies actually rated by this rater (not served from a cache)

    @staticmethod
    def _rules_key(policy: PasswordPolicy) -> tuple[Any, ...]:
        return (policy.min_length or 0, policy.min_character_classes, policy.min_lowercase, policy.min_uppercase,
                policy.min_digits, policy.min_symbols, policy.banned_list)

    def admits(self, policy: PasswordPolicy, candidate: str | Candidate) -> bool:
        c = candidate if isinstance(candidate, Candidate) else _candidate(candidate)
        if c.length < (policy.min_length or 0) or c.length > _ZXCVBN_MAX or c.classes < policy.min_character_classes:
            return False
        if c.lower < policy.min_lowercase or c.upper < policy.min_uppercase:
            return False
        if c.digits < policy.min_digits or c.symbols < policy.min_symbols:
            return False
        return not (policy.banned_list and self._banned_score(c.text) < 5)

    def _banned_score(self, candidate: str) -> int:
        """Entra-style scoring (Microsoft Entra Password Protection, "How are passwords evaluated"): each banned
        token found counts 1 point, every other character 1 point; fewer than 5 points is rejected. Greedy
        longest-token match."""
        points = self._banned_memo.get(candidate)
        if points is None:
            points = min(self._banned_points(candidate.lower().translate(t)) for t in _BANNED_NORMALISE)
            self._banned_memo[candidate] = points
        return points

    def _banned_points(self, text: str) -> int:
        points, i = 0, 0
        while i < len(text):
            for size in range(min(16, len(text) - i), 3, -1):
                if text[i : i + size] in self._banned:
                    points += 1
                    i += size
                    break
            else:
                points += 1
                i += 1
        return points

    def _score(self, candidate: str) -> tuple[float, int]:
        key = (self._user_inputs, candidate)
        cached = _SCORES.get(key)
        if cached is None:
            result = zxcvbn(candidate, user_inputs=list(self._user_inputs), max_length=_ZXCVBN_MAX)
            cached = (float(result["guesses_log10"]), int(result["score"]))
            _SCORES[key] = cached
        return cached

    def rate(self, policy: PasswordPolicy) -> PolicyRating:
        if not policy.settings_known:
            return PolicyRating(None, None, None, None, 0, 0, policy.unknown_reason or "policy settings unknown")
        key = (self._user_inputs, self.year, self.strong_score, self._rules_key(policy))
        cached = _RATINGS.get(key)
        if cached is not None:
            return cached
        self.ratings_computed += 1
        considered = admitted = 0
        best: tuple[float, int, str] | None = None
        groups = _candidate_groups(self._user_inputs, self.year)
        for index, group in enumerate(groups):
            limit = _RAW_LIST_SCORED if index == len(groups) - 1 else _PER_PATTERN
            scored = 0
            considered += len(group)
            for candidate in group:
                if not self.admits(policy, candidate):
                    continue
                admitted += 1
                if scored >= limit:
                    continue
                scored += 1
                log10, score = self._score(candidate.text)
                if best is None or log10 < best[0]:
                    best = (log10, score, candidate.text)
        if best is None:
            rating = PolicyRating(True, 4, None, None, 0, considered,
                                  "no common-pattern candidate satisfies this policy's rules")
        else:
            log10, score, example = best
            rating = PolicyRating(
                score >= self.strong_score, score, round(log10, 2), example, admitted, considered,
                "weakest policy-compliant candidate from popular words and common mutations, scored by zxcvbn",
            )
        _RATINGS[key] = rating
        return rating
