"""Progress of a long experiment run: plain lines, and a progress bar on a terminal.

Every experiment reports through one callable, ``progress(message)``, which
prints ``[  12.3s] message`` (or ``[label] message``). Around its long loop an
experiment opens :meth:`Progress.bar`; then

- on a terminal (stdout is a TTY) a `rich <https://rich.readthedocs.io>`_ bar
  sits at the bottom of the screen (done / total, elapsed, remaining) and the
  lines scroll above it;
- anywhere else (CI logs, a pipe, a file) the bar does nothing and the output
  is exactly the plain lines, with no control codes.

rich rather than tqdm: it is already pinned (``requirements.lock``), it keeps
lines printed during the run above a live bar without tearing it, and its
console decides by itself how to draw; the bar is display only, so result
files do not change. Without rich installed the plain lines are all there is.

Examples
--------
>>> import io
>>> out = io.StringIO()
>>> progress = Progress(out, label="demo")
>>> with progress.bar("trials", total=2):
...     for trial in range(2):
...         progress(f"trial {trial + 1}/2")
...         progress.advance()
>>> print(out.getvalue(), end="")
[demo] trial 1/2
[demo] trial 2/2
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time


class Progress:
    """Print progress lines; show a bar over a long loop when ``stream`` is a terminal.

    Parameters
    ----------
    stream : file, optional
        Where lines go (default ``sys.stdout``).
    label : str, optional
        Lines read ``[label] message``; without it ``[  12.3s] message``, the
        seconds since this object was made.
    terminal : bool, optional
        Draw bars; default: whether ``stream`` is a TTY.
    """

    def __init__(self, stream=None, *, label: str | None = None, terminal: bool | None = None) -> None:
        self.stream = sys.stdout if stream is None else stream
        self.label = label
        self.start = time.monotonic()
        if terminal is None:
            isatty = getattr(self.stream, "isatty", None)
            terminal = bool(isatty and isatty())
        self.terminal = terminal
        self._live = None  # the rich Progress while a bar is shown
        self._task = None
        self._lock = threading.Lock()

    def line(self, message: str) -> str:
        """The line printed for ``message``.

        >>> Progress(label="slices").line("booted")
        '[slices] booted'
        """
        prefix = self.label if self.label is not None else f"{time.monotonic() - self.start:6.1f}s"
        return f"[{prefix}] {message}"

    def __call__(self, message: str) -> None:
        text = self.line(message)
        live = self._live
        if live is not None:  # above the bar; no markup: "[  1.0s]" is not a style tag
            live.console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
        else:
            print(text, file=self.stream, flush=True)

    @contextlib.contextmanager
    def bar(self, description: str, total: float, unit: str = ""):
        """Show a bar of ``total`` steps while the block runs (on a terminal; elsewhere nothing).

        Advance it with :meth:`advance` or :meth:`running_for`; :meth:`describe`
        changes its text. One bar at a time.
        """
        live = self._start_bar(description, total, unit) if self.terminal else None
        try:
            yield self
        finally:
            if live is not None:
                self._live = self._task = None
                live.stop()

    def _start_bar(self, description: str, total: float, unit: str):
        try:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
        except ImportError:
            return None
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
        if unit:
            columns.append(TextColumn(unit))
        columns += [TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn()]
        live = RichProgress(*columns, console=Console(file=self.stream), redirect_stdout=True, redirect_stderr=True)
        self._task = live.add_task(description, total=total)
        live.start()
        self._live = live
        return live

    def advance(self, steps: float = 1) -> None:
        """Move the bar on by ``steps`` (nothing without a bar)."""
        with self._lock:
            if self._live is not None:
                self._live.advance(self._task, steps)

    def describe(self, description: str) -> None:
        """Change the bar's text (nothing without a bar)."""
        with self._lock:
            if self._live is not None:
                self._live.update(self._task, description=description)

    @contextlib.contextmanager
    def running_for(self, seconds: float, tick_s: float = 0.5):
        """Advance the bar with the clock while the block runs: ``seconds`` in all once it ends.

        For a loop whose steps are runs of a known duration (a workload of
        ``--duration-s`` per policy): the bar moves during each run, not only
        between them, and never goes past the run's share.
        """
        if self._live is None:
            yield self
            return
        base = next(task.completed for task in self._live.tasks if task.id == self._task)
        started = time.monotonic()
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(tick_s):
                with self._lock:
                    if self._live is not None:
                        self._live.update(self._task, completed=base + min(seconds, time.monotonic() - started))

        thread = threading.Thread(target=tick, name="progress-bar", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            with self._lock:
                if self._live is not None:
                    self._live.update(self._task, completed=base + seconds)
