"""csd_mm.utils.process: children that die with their parent, and the work-dir lock."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from csd_mm.utils import process
from csd_mm.utils.process import LOCK_FILE, WorkDirLockedError, lock_work_dir

# the helper processes load csd_mm/utils/process.py alone (importing csd_mm would take seconds)
_LOAD = (f'import importlib.util; spec = importlib.util.spec_from_file_location("process", {process.__file__!r}); '
         'process = importlib.util.module_from_spec(spec); spec.loader.exec_module(process)')


def _wait_file(path, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isfile(path) and open(path).read().strip():
            return open(path).read().strip()
        time.sleep(0.05)
    raise AssertionError(f'{path} was not written within {timeout} s')


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='PR_SET_PDEATHSIG is Linux only')
def test_child_started_with_die_with_parent_ends_when_the_parent_is_killed(tmp_path, pid_gone):
    """A parent (its own process) starts a sleeping child with die_with_parent, writes the child's pid and is
    killed with SIGKILL: the kernel ends the child too."""
    pid_file = tmp_path / 'child.pid'
    parent_code = textwrap.dedent(f'''
        import functools, os, subprocess, sys, time
        {_LOAD}
        child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],
                                 preexec_fn=functools.partial(process.die_with_parent, parent=os.getpid()))
        open({str(pid_file)!r}, 'w').write(str(child.pid))
        time.sleep(60)
    ''')
    parent = subprocess.Popen([sys.executable, '-c', parent_code])
    try:
        child_pid = int(_wait_file(pid_file))
        os.kill(child_pid, 0)  # running
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert pid_gone(child_pid), f'child {child_pid} outlived its killed parent'
    finally:
        parent.kill()


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='PR_SET_PDEATHSIG is Linux only')
def test_a_child_whose_parent_is_already_gone_ends_at_once():
    """The parent's pid taken before the fork: a child that finds another parent (the one that forked it died
    before the call) ends itself instead of running unguarded; with the true parent's pid it runs."""
    from functools import partial
    ok = subprocess.run([sys.executable, '-c', 'print("ran")'], capture_output=True, text=True,
                        preexec_fn=partial(process.die_with_parent, parent=os.getpid()))
    assert ok.returncode == 0 and ok.stdout.strip() == 'ran'
    orphan = subprocess.run([sys.executable, '-c', 'print("ran")'], capture_output=True, text=True,
                            preexec_fn=partial(process.die_with_parent, parent=os.getpid() + 10 ** 6))
    assert orphan.returncode == -signal.SIGKILL and orphan.stdout == ''


@pytest.mark.parametrize('call', ['die_with_parent()', 'die_with_parent(parent=None)',
                                  'die_with_parent(parent=True)', 'die_with_parent(parent=0)'])
def test_die_with_parent_requires_the_parents_pid(call):
    """No fallback to the child's os.getppid() (racy: a parent gone before the call is not seen): a call without
    a pid is refused, before prctl. Run in a child, so a call that did set the death signal affects only it."""
    code = f'{_LOAD}\ntry:\n    process.{call}\nexcept TypeError as e:\n    print("refused:", e)\n'
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('refused:'), f'{call} was accepted: {result.stdout!r}'


def test_lock_refuses_a_second_process_naming_the_holder_and_frees_on_sigkill(tmp_path):
    work = tmp_path / 'work'
    ready = tmp_path / 'ready'
    holder_code = textwrap.dedent(f'''
        import time
        {_LOAD}
        process.lock_work_dir({str(work)!r})
        open({str(ready)!r}, 'w').write('1')
        time.sleep(60)
    ''')
    holder = subprocess.Popen([sys.executable, '-c', holder_code])
    try:
        _wait_file(ready)
        with pytest.raises(WorkDirLockedError, match=rf'{work}.*held by pid {holder.pid}'):
            lock_work_dir(str(work))
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        # the lock file stays behind, but the kernel released the lock with the process
        assert (work / LOCK_FILE).is_file()
        f = lock_work_dir(str(work))
        assert f is not None and f'pid {os.getpid()}' in (work / LOCK_FILE).read_text()
        assert lock_work_dir(str(work)) is f  # a process may ask again for a lock it holds
    finally:
        holder.kill()
