"""Process management for interrupted runs: children that die with their parent, and a work-dir lock.

``kill -9`` of a parent gives it no chance to stop its children (no ``atexit``, no signal handler), so a
training started by ``tools/run_pipeline.py`` would keep writing into its work dir while a rerun starts a second
one there. Two guards, both kept by the kernel and therefore effective after SIGKILL:

* :func:`die_with_parent` (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, the ``preexec_fn`` of a child): the
  kernel kills the child when its parent dies;
* :func:`lock_work_dir` (``fcntl.flock`` on ``<work_dir>/.lock``): held for the life of the process and released
  by the kernel when it ends, however it ends; a second process asking for it is refused with the holder's pid.
"""
import ctypes
import errno
import fcntl
import os
import os.path as osp
import signal
import sys
from typing import IO, Optional

__all__ = ['die_with_parent', 'lock_work_dir', 'WorkDirLockedError', 'LOCK_FILE']

LOCK_FILE = '.lock'
_PR_SET_PDEATHSIG = 1  # linux/prctl.h

#: The lock files this process holds, by path: kept open (and so locked) until the process ends.
_HELD = {}
#: The C library (the interpreter's own symbols), loaded here in the parent: loading a library between fork and
#: exec (in ``preexec_fn``) can deadlock.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith('linux') else None


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> None:
    """Asks the kernel to send ``sig`` to this process when its parent dies (Linux; a no-op elsewhere).

    Meant as ``subprocess.Popen(..., preexec_fn=partial(die_with_parent, parent=os.getpid()))``: it runs in the
    child between fork and exec and survives the exec. If the parent died before the call took effect the
    child is an orphan already, so it checks for that and exits.

    Args:
        parent (int): The parent's pid, taken by the parent before the fork (``os.getpid()``). Required: the
            child's own ``os.getppid()`` cannot tell a parent that died between the fork and this call (the
            child then looks adopted from the start and would run unguarded).
        sig (int): The signal. Defaults to SIGKILL.

    Raises:
        TypeError: ``parent`` is not a pid (an ``int``; ``bool`` and None are refused).
    """
    if isinstance(parent, bool) or not isinstance(parent, int) or parent <= 0:
        raise TypeError(f'die_with_parent: parent must be the parent\'s pid (a positive int taken with os.getpid() '
                        f'before the fork), got {parent!r}')
    if _LIBC is None:
        return
    if _LIBC.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), 'prctl(PR_SET_PDEATHSIG) failed')
    if os.getppid() != parent:  # the parent died before prctl: nobody will signal us
        os.kill(os.getpid(), sig)


class WorkDirLockedError(RuntimeError):
    """Another live process holds the lock of a work dir."""


def _read_holder(f: IO[str]) -> str:
    f.seek(0)
    return f.read().strip() or 'unknown'


def lock_work_dir(work_dir: str, what: str = 'training') -> Optional[IO[str]]:
    """Takes the exclusive lock of ``work_dir`` for the rest of this process's life (idempotent).

    The lock is ``fcntl.flock`` on ``<work_dir>/.lock``, whose text is the holder's pid and command. The kernel
    releases it when the process ends, also on SIGKILL, so a stale lock file never blocks a rerun.

    Args:
        work_dir (str): The folder (created if needed).
        what (str): What holds it, for the error message. Defaults to 'training'.

    Returns:
        The open lock file (this module keeps it open, hence locked, until the process ends), or None where
        the file system does not support ``fcntl.flock`` (the run then goes ahead unguarded).

    Raises:
        WorkDirLockedError: A live process holds the lock; the message names its pid and command.
    """
    os.makedirs(work_dir, exist_ok=True)
    path = osp.abspath(osp.join(work_dir, LOCK_FILE))
    if path in _HELD:
        return _HELD[path]
    f = open(path, 'a+')
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(f)
        f.close()
        raise WorkDirLockedError(
            f'{work_dir} is in use by another {what} (lock {path} held by {holder}); wait for it to end or stop '
            'it, then rerun. Two runs in one work dir would overwrite each other\'s checkpoints and outputs.')
    except OSError as e:
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            f.close()
            return None
        raise
    f.seek(0)
    f.truncate()
    f.write(f'pid {os.getpid()}: {" ".join(sys.argv)}\n')
    f.flush()
    _HELD[path] = f
    return f
