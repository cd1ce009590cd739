"""Console progress of the stages that run in child processes, and the wall time of every stage.

``tools/run_pipeline.py`` runs each stage with a stock tool (``tools/train.py``, ``tools/test.py``) whose output
goes to a log file. :class:`ConsoleProgress` follows that file while the child runs and keeps one updating console
line per stage: the phase (``train`` iterations, ``val`` / ``test`` iterations, the CAM pass after training),
``done/total``, a bar and the ETA. It reads only what mmengine already writes there (the ``Iter(train) [ 25/300]
... eta: 0:01:10`` lines of its LoggerHook, whose ETA its IterTimerHook computes from the iterations of this run,
and the ``[>>>  ] 40/100, ... ETA:     6s`` lines of its ProgressBar), so the log files stay as they are, the
children need no change, and the ETA shown is mmengine's own. :class:`StageTimer` adds up the wall time of each
stage.

The parsing and formatting are small pure functions (:func:`parse_progress_line`, :func:`format_duration`,
:func:`progress_line`).
"""
import os
import re
import sys
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, TextIO, Tuple

__all__ = ['parse_progress_line', 'LogProgressParser', 'format_duration', 'progress_line', 'ConsoleProgress',
           'StageTimer']

#: mmengine LoggerHook lines: ``Iter(train) [ 25/300]`` or ``Epoch(val) [1][ 10/100]``
_LOOP = re.compile(r'(?:Iter|Epoch)\((\w+)\)\s*(?:\[(\d+)\])?\s*\[\s*(\d+)/(\d+)\]')
#: their ETA (mmengine's LogProcessor writes ``str(datetime.timedelta)``: ``0:01:10``, ``1 day, 2:03:04``)
_LOOP_ETA = re.compile(r'\beta: (?:(\d+) days?, )?(\d+):(\d{2}):(\d{2})\b')
#: mmengine ProgressBar lines: ``[>>>>>      ] 40/100, 10.3 task/s, elapsed: 4s, ETA:     6s``
_BAR = re.compile(r'^\[[> ]*\]\s*(\d+)/(\d+),')
#: their ETA (none on the bar's first line, ``ETA:`` alone)
_BAR_ETA = re.compile(r'ETA:\s*(\d+)s')

#: phase of an epoch-based training's line (``train epoch 2``), whose ETA is the run's, not the epoch's
RUN_ETA_PHASE_PREFIX = 'train epoch '

Progress = Tuple[str, int, int, Optional[float]]  # (phase, done, total, mmengine's ETA in seconds or None)


def parse_progress_line(line: str, bar_phase: str = 'progress') -> Optional[Progress]:
    """The progress a line of an mmengine log reports, if any, with the ETA mmengine wrote on it.

    Args:
        line (str): One line (without its ``\\r`` / ``\\n``).
        bar_phase (str): Phase name given to a ProgressBar line (the bar itself names no task).

    Returns:
        tuple or None: ``(phase, done, total, eta)``: the loop name (``train``, ``val``, ``test``; ``train epoch
        N`` for an epoch-based training, whose ``done/total`` count epoch N's iterations while mmengine's ETA is
        the whole run's) of a LoggerHook line or ``bar_phase`` for a ProgressBar line, and the line's ETA in
        seconds (None when it has none: a bar's first line, a loop without mmengine's IterTimerHook); None for
        any other line.
    """
    match = _LOOP.search(line)
    if match:
        eta = _LOOP_ETA.search(line, match.end())
        seconds = None
        if eta:
            days, hours, minutes, secs = (int(v or 0) for v in eta.groups())
            seconds = float(((days * 24 + hours) * 60 + minutes) * 60 + secs)
        loop, epoch, done, total = match.groups()
        if loop == 'train' and epoch is not None:
            # an epoch-based training: the bar counts this epoch's iterations, mmengine's ETA the whole run's
            loop = f'{RUN_ETA_PHASE_PREFIX}{epoch}'
        return loop, int(done), int(total), seconds
    match = _BAR.match(line.strip())
    if match:
        eta = _BAR_ETA.search(line, match.end())
        return bar_phase, int(match.group(1)), int(match.group(2)), float(eta.group(1)) if eta else None
    return None


class LogProgressParser:
    """Turns chunks of a growing log file into progress updates (lines may be split across chunks).

    A ProgressBar line is named after the last log line that announced a pass, so the CAM pass after training
    (announced by ``CAMGenerationHook`` as ``CAM generation: ...``) reads as ``CAM generation``.
    """

    #: substrings of announcing log lines -> the phase name of the ProgressBar that follows
    ANNOUNCEMENTS = (('CAM generation', 'CAM generation'), ('pseudo mask', 'pseudo masks'))

    def __init__(self) -> None:
        self._partial = ''
        self._bar_phase = 'progress'

    def feed(self, chunk: str, final: bool = False) -> List[Progress]:
        """Parses ``chunk`` (appended text of the log); returns the progress updates of its complete lines, and
        with ``final`` (the writer has ended) also of its unterminated last line (a ProgressBar's last state ends
        without a newline)."""
        text = self._partial + chunk
        lines = re.split(r'[\r\n]', text)
        self._partial = '' if final else lines.pop()  # an unterminated line is parsed once complete
        updates = []
        for line in lines:
            for needle, phase in self.ANNOUNCEMENTS:
                if needle in line and _BAR.match(line.strip()) is None:
                    self._bar_phase = phase
            found = parse_progress_line(line, self._bar_phase)
            if found is not None:
                updates.append(found)
                if found[0] == self._bar_phase and found[1] >= found[2]:
                    self._bar_phase = 'progress'  # the announced pass ended; a later bar is another task
        return updates


def format_duration(seconds: Optional[float]) -> str:
    """``m:ss`` under an hour, ``h:mm:ss`` above, ``-:--`` when unknown."""
    if seconds is None:
        return '-:--'
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f'{hours}:{minutes:02d}:{secs:02d}' if hours else f'{minutes}:{secs:02d}'


def progress_line(label: str, phase: str, done: int, total: int, eta: Optional[float], width: int = 20) -> str:
    """One console line: ``label | phase [#####-----] done/total pct% ETA m:ss`` (``run ETA`` when the bar
    counts one epoch of a training and the ETA the whole run)."""
    frac = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
    filled = int(frac * width)
    bar = '#' * filled + '-' * (width - filled)
    eta_name = 'run ETA' if phase.startswith(RUN_ETA_PHASE_PREFIX) else 'ETA'
    return f'{label} | {phase} [{bar}] {done}/{total} {100 * frac:3.0f}% {eta_name} {format_duration(eta)}'


class ConsoleProgress:
    """The pipeline's console: its messages and one updating progress line per running stage.

    On a terminal the progress line is redrawn in place (``\\r``); elsewhere (a log file, a pipe) a progress line
    is printed when a phase ends and, during a phase, every ``plain_interval`` seconds. ``quiet`` prints nothing.

    Args:
        stream (TextIO, optional): Where to print. Defaults to ``sys.stdout`` (the current one at each write).
        quiet (bool): Print nothing (messages and progress). Defaults to False.
        interactive (bool, optional): Redraw in place; default: whether ``stream`` is a terminal.
        poll_interval (float): Seconds between two reads of a followed log. Defaults to 0.5.
        plain_interval (float): Seconds between two progress lines when not interactive. Defaults to 30.
    """

    def __init__(self,
                 stream: Optional[TextIO] = None,
                 quiet: bool = False,
                 interactive: Optional[bool] = None,
                 poll_interval: float = 0.5,
                 plain_interval: float = 30.0) -> None:
        self._stream = stream
        self.quiet = quiet
        self._interactive = interactive
        self.poll_interval = poll_interval
        self.plain_interval = plain_interval
        self._lock = threading.Lock()
        self._live = 0  # length of the progress line drawn in place, 0 when none
        self._last_plain = time.monotonic()  # when the last plain progress line was printed

    @property
    def stream(self) -> TextIO:
        """The given stream, else the current ``sys.stdout`` (looked up at each write: it may be replaced)."""
        return self._stream if self._stream is not None else sys.stdout

    @property
    def interactive(self) -> bool:
        if self._interactive is not None:
            return self._interactive
        return bool(getattr(self.stream, 'isatty', lambda: False)())

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _end_live_line(self) -> None:
        if self._live:
            self._write('\n')
            self._live = 0

    def message(self, text: str) -> None:
        """Prints a message on its own line (after the current progress line)."""
        if self.quiet:
            return
        with self._lock:
            self._end_live_line()
            self._write(text + '\n')

    def show(self, line: str, final: bool = False) -> None:
        """Draws a progress line: in place on a terminal; as a new line elsewhere when ``final`` or when
        ``plain_interval`` passed since the last one."""
        if self.quiet:
            return
        with self._lock:
            if self.interactive:
                self._write('\r' + line.ljust(self._live))
                self._live = len(line)
                if final:
                    self._end_live_line()
            elif final or time.monotonic() - self._last_plain >= self.plain_interval:
                self._write(line + '\n')
                self._last_plain = time.monotonic()

    @contextmanager
    def follow(self, log_file: str, label: str, start: Optional[int] = None) -> Iterator[None]:
        """Follows what is appended to ``log_file`` during the ``with`` block and shows its progress.

        Args:
            log_file (str): The log a child process appends to (may not exist yet).
            label (str): What the line names (e.g. ``train.py seed0/resnet/csd``).
            start (int, optional): Offset to read from (the log's size before the child started, when the
                child is started before the block). Defaults to the log's size now.
        """
        if self.quiet:
            yield
            return
        if start is None:
            start = os.path.getsize(log_file) if os.path.isfile(log_file) else 0
        stop = threading.Event()
        thread = threading.Thread(target=self._follow, args=(log_file, start, label, stop), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _follow(self, log_file: str, offset: int, label: str, stop: threading.Event) -> None:
        parser = LogProgressParser()
        current = None  # [phase, total, done, eta]
        while True:
            finished = stop.wait(self.poll_interval)  # read once more after the child ended
            if os.path.isfile(log_file):
                with open(log_file, 'r', errors='replace') as f:
                    f.seek(offset)
                    chunk = f.read()
                    offset = f.tell()
                for phase, done, total, eta in parser.feed(chunk, final=finished):
                    if current is not None and (current[0], current[1]) != (phase, total):
                        self._show_state(label, current, final=True)  # the previous phase ended
                    current = [phase, total, done, eta]
                    if done >= total:
                        self._show_state(label, current, final=True)
                        current = None
                    else:
                        self._show_state(label, current)
            if finished:
                if current is not None:
                    self._show_state(label, current, final=True)
                return

    def _show_state(self, label: str, state: list, final: bool = False) -> None:
        phase, total, done, eta = state
        # a finished bar has nothing left, unless it was one epoch of a longer run (its ETA is the run's)
        ended = done >= total and not phase.startswith(RUN_ETA_PHASE_PREFIX)
        self.show(progress_line(label, phase, done, total, 0.0 if ended else eta), final=final)


class StageTimer:
    """Adds up wall times by run and stage: ``with timer.measure(run, stage): ...``.

    ``seconds[run][stage]`` holds each run's times; :meth:`totals` sums each stage over the runs.
    """

    def __init__(self) -> None:
        self.seconds: Dict[str, Dict[str, float]] = defaultdict(dict)

    @contextmanager
    def measure(self, run: str, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            self.seconds[run][stage] = round(self.seconds[run].get(stage, 0.0) + spent, 1)

    def of_run(self, run: str) -> Dict[str, float]:
        """The stage times of one run (the stages this invocation ran; a skipped stage is absent)."""
        return dict(self.seconds.get(run, {}))

    def totals(self) -> Dict[str, float]:
        """Each stage's time summed over every run."""
        total: Dict[str, float] = defaultdict(float)
        for stages in self.seconds.values():
            for stage, spent in stages.items():
                total[stage] += spent
        return {stage: round(spent, 1) for stage, spent in total.items()}
