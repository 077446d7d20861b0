"""Errors of the topology model: one hierarchy, messages that say what to do.

Every problem found in a topology file names the file, the key path inside it
(``sites[2].lat``, ``links[0].delay_ms``), what is wrong, and how to fix it.
Loaders collect every problem they can find before raising, so a user fixes a
file in one pass instead of one error per run.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable

#: Key used for problems about the file as a whole (missing, empty, unreadable).
FILE_KEY = "(file)"
#: Key used for problems about the top-level value of a document.
TOP_KEY = "(top level)"


class ModelError(Exception):
    """Base class of every error raised by :mod:`cpn_net.model`."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a topology file.

    Examples
    --------
    >>> str(Problem("t.yaml", "links[0].delay_ms", "-3 must be >= 0",
    ...             "give a one-way delay of 0 ms or more"))
    't.yaml: links[0].delay_ms: -3 must be >= 0; give a one-way delay of 0 ms or more'
    """

    file: str
    key: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}; {self.fix}"


class TopologyError(ModelError):
    """A topology file could not be turned into a :class:`Topology`.

    Attributes
    ----------
    problems : list of Problem
        Every problem found, in the order found; ``str(err)`` prints one a line.

    Examples
    --------
    >>> err = TopologyError([Problem("t.yaml", "name", "missing", "add name: t"),
    ...                      Problem("t.yaml", "sites", "missing", "add a site")])
    >>> print(err)
    t.yaml: name: missing; add name: t
    t.yaml: sites: missing; add a site
    """

    def __init__(self, problems: Iterable[Problem]):
        self.problems: list[Problem] = list(problems)
        if not self.problems:
            raise ValueError("TopologyError needs at least one Problem")
        super().__init__("\n".join(str(p) for p in self.problems))


class UnknownNameError(ModelError, KeyError):
    """A lookup (site, link, host, service) named something the topology lacks.

    A ``KeyError`` too, so ``except KeyError`` works; ``str()`` is the plain
    message rather than ``KeyError``'s quoted repr.
    """

    def __str__(self) -> str:
        return str(self.args[0])


class ProblemLog:
    """Collects the problems of one file; raise them all at the end.

    Examples
    --------
    >>> log = ProblemLog("t.yaml")
    >>> log.add("name", "missing", "add name: t")
    >>> len(log.problems)
    1
    >>> log.raise_if_any()
    Traceback (most recent call last):
    ...
    cpn_net.model.errors.TopologyError: t.yaml: name: missing; add name: t
    """

    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []

    def add(self, key: str, message: str, fix: str) -> None:
        self.problems.append(Problem(self.file, key, message, fix))

    def raise_if_any(self) -> None:
        if self.problems:
            raise TopologyError(self.problems)


def did_you_mean(word: object, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word`` (case-insensitive), if one is close.

    Examples
    --------
    >>> did_you_mean("delay", ["delay_ms", "jitter_ms"])
    'delay_ms'
    >>> did_you_mean("Beijing", ["beijing", "shanghai"])
    'beijing'
    >>> did_you_mean("esat", ["east", "west"])
    'east'
    >>> did_you_mean("zzz", ["beijing"]) is None
    True
    """
    if not isinstance(word, str):
        return None
    by_lower = {c.lower(): c for c in choices}
    # Typos first (a swapped or wrong letter), then difflib for partial names.
    typo_limit = len(word) // 4 if len(word) < 8 else len(word) // 5 + 1
    distance, best = min(((_edit_distance(word.lower(), c), c) for c in by_lower), default=(typo_limit + 1, ""))
    if distance <= typo_limit:
        return by_lower[best]
    match = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


def _edit_distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap neighbours) turning a into b."""
    previous, current = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        before, previous, current = previous, current, [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
    return current[len(b)]


def unknown_fix(word: object, choices: Iterable[str], what: str) -> str:
    """A fix hint for an unknown name: the close match, else the list of valid ones.

    Examples
    --------
    >>> unknown_fix("delay", ["delay_ms", "rate_mbps"], "keys")
    "did you mean 'delay_ms'?"
    >>> unknown_fix("x", ["a", "b"], "keys")
    'remove it or use one of the known keys: a, b'
    """
    choices = list(choices)
    close = did_you_mean(word, choices)
    if close is not None:
        return f"did you mean {close!r}?"
    listed = ", ".join(choices[:12]) + (", ..." if len(choices) > 12 else "")
    return f"remove it or use one of the known {what}: {listed}" if choices else f"there are no {what}"
