"""Experiment progress: the plain lines off a terminal, a bar on one."""

import io
import re
import time

from experiments.common.progress import Progress


def test_off_a_terminal_only_the_plain_lines():
    out = io.StringIO()  # not a TTY, like a CI log
    progress = Progress(out)
    with progress.bar("trials", total=3):
        for trial in range(3):
            progress(f"trial {trial + 1}/3")
            progress.advance()
            progress.describe("still nothing")
        with progress.running_for(5.0, tick_s=0.01):
            pass
    progress("done")
    lines = out.getvalue().splitlines()
    assert [re.sub(r"^\[ *\d+\.\ds\] ", "", line) for line in lines] == ["trial 1/3", "trial 2/3", "trial 3/3",
                                                                          "done"]
    assert all(re.match(r"^\[ {0,5}\d+\.\ds\] ", line) for line in lines)  # "[  12.3s] ", as before
    assert "\x1b" not in out.getvalue()


def test_a_label_instead_of_the_clock():
    out = io.StringIO()
    Progress(out, label="slices")("booted")
    assert out.getvalue() == "[slices] booted\n"


def test_on_a_terminal_lines_scroll_above_a_bar_that_ends_full():
    out = io.StringIO()
    progress = Progress(out, terminal=True)
    with progress.bar("policies", total=4, unit="s of workload"):
        progress.describe("joint (2/2)")
        progress("[bracketed] text is not markup")
        with progress.running_for(2.0, tick_s=0.01):
            pass
        progress.advance(2)
    text = out.getvalue()
    assert "] [bracketed] text is not markup" in text
    assert re.search(r"joint \(2/2\) .* 4/4 s of workload", text)


def test_running_for_moves_the_bar_with_the_clock_within_its_share():
    progress = Progress(io.StringIO(), terminal=True)
    with progress.bar("policies", total=10):
        task = progress._live.tasks[0]
        with progress.running_for(4.0, tick_s=0.01):
            time.sleep(0.1)
            during = task.completed
        assert 0 < during < 4.0 and task.completed == 4.0
        with progress.running_for(4.0, tick_s=0.01):
            pass
        assert task.completed == 8.0
