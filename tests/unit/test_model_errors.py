"""Tests of the model's errors and name suggestions."""

import pytest

from cpn_net.model.errors import (
    ModelError,
    Problem,
    ProblemLog,
    TopologyError,
    UnknownNameError,
    did_you_mean,
    unknown_fix,
)


def test_problem_text():
    p = Problem("t.yaml", "links[0].delay_ms", "-3 must be >= 0", "give 0 or more")
    assert str(p) == "t.yaml: links[0].delay_ms: -3 must be >= 0; give 0 or more"


def test_topology_error_lists_every_problem():
    problems = [Problem("f", "a", "m1", "x1"), Problem("f", "b", "m2", "x2")]
    err = TopologyError(problems)
    assert err.problems == problems and isinstance(err, ModelError)
    assert str(err) == "f: a: m1; x1\nf: b: m2; x2"


def test_topology_error_needs_a_problem():
    with pytest.raises(ValueError, match="at least one Problem"):
        TopologyError([])


def test_problem_log_raises_only_when_something_was_added():
    log = ProblemLog("f")
    log.raise_if_any()
    log.add("k", "m", "x")
    with pytest.raises(TopologyError, match="^f: k: m; x$"):
        log.raise_if_any()


def test_unknown_name_error_is_a_key_error_with_a_plain_message():
    err = UnknownNameError("no site 'x'; did you mean 'y'?")
    assert isinstance(err, KeyError) and isinstance(err, ModelError)
    assert str(err) == "no site 'x'; did you mean 'y'?"


@pytest.mark.parametrize("word, choices, expected", [
    ("esat", ["east", "west"], "east"),  # swapped letters beat a shared suffix
    ("delay", ["delay_ms", "rate_mbps"], "delay_ms"),  # partial name
    ("WORKERS", ["workers"], "workers"),  # case
    ("shangai", ["shanghai", "shenzhen"], "shanghai"),
    ("x", ["a", "b"], None),
    ("zzzz", ["beijing"], None),
    (3, ["a"], None),
])
def test_did_you_mean(word, choices, expected):
    assert did_you_mean(word, choices) == expected


def test_unknown_fix_lists_choices_when_nothing_is_close():
    assert unknown_fix("q", ["a", "b"], "sites") == "remove it or use one of the known sites: a, b"
    assert unknown_fix("q", [], "sites") == "there are no sites"
    many = [f"s{i}" for i in range(20)]
    assert unknown_fix("qqqq", many, "sites").endswith("s10, s11, ...")
