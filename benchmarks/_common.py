"""Helpers shared by the benchmarks of ``benchmarks/run_all.py``: timing, peak memory, the result record.

Every benchmark module exposes ``run(size, device, work_dir, log) -> dict`` returning a :func:`section`; the
figures are ratios of two things measured in the same run, never timed assertions (docs/benchmarks.md).
"""
import os
import resource
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch

__all__ = ['SIZES', 'timed', 'rss_mib', 'peak_rss_mib', 'reset_peak_cuda', 'peak_cuda_mib', 'section', 'fmt']

SIZES = ('tiny', 'toy', 'voc')  # tiny: the test's smoke size; toy: the 64x64 toy; voc: VOC's real sizes


def timed(fn: Callable[[], object], steps: int, device: str = 'cpu', warmup: int = 1) -> float:
    """Mean seconds of ``fn`` over ``steps`` calls after ``warmup`` calls (CUDA synchronised)."""
    for _ in range(warmup):
        fn()
    if device == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device == 'cuda':
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / max(steps, 1)


def rss_mib() -> float:
    """Current resident set size of this process, MiB (from /proc; the peak where /proc is missing)."""
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
    except (OSError, ValueError):
        return peak_rss_mib()


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == 'darwin' else rss / 1024


def reset_peak_cuda(device: str) -> None:
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()


def peak_cuda_mib(device: str) -> Optional[float]:
    return torch.cuda.max_memory_allocated() / 2**20 if device == 'cuda' else None


def fmt(value: Optional[float], spec: str = '.2f', suffix: str = '') -> str:
    """A table cell: ``value`` formatted, '-' for None."""
    return '-' if value is None else f'{value:{spec}}{suffix}'


def section(title: str, header: Sequence[str], rows: List[Sequence[str]], notes: Sequence[str] = (),
            targets: Optional[Dict[str, bool]] = None) -> Dict:
    """The record a benchmark returns: a markdown table, notes and which targets were met."""
    return dict(title=title, header=list(header), rows=[[str(c) for c in r] for r in rows], notes=list(notes),
                targets=dict(targets or {}))


def standalone_main(run: Callable[..., Dict], doc: str, sizes: Sequence[str], cuda: bool = True) -> None:
    """The command line of one benchmark run on its own (``run_all.py`` runs them all): ``--size``, ``--device``
    (when the benchmark uses one) and ``--work-dir``; prints the section's record."""
    import argparse
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', choices=sorted(sizes), default='toy')
    parser.add_argument('--device', choices=('cpu', 'cuda') if cuda else ('cpu', ), default='cpu')
    parser.add_argument('--work-dir', default='work_dirs/benchmarks')
    args = parser.parse_args()
    print(run(args.size, args.device, args.work_dir))
