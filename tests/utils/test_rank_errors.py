"""Tests of csd_mm/utils/rank_errors.py: the pure helpers on hand-made flags, the deferral in one process (the
collective is then a no-op); the 2-rank behaviour is tested through the hooks (tests/engine/hooks)."""
import pytest

from csd_mm.utils.rank_errors import DeferredRankError, failed_ranks, failed_ranks_message, gather_failed_ranks


def test_failed_ranks_are_the_indices_of_the_set_flags():
    assert failed_ranks([0, 1, 0, 2]) == [1, 3]  # all-reduced flags: 2 = two processes claimed rank 3
    assert failed_ranks([0, 0]) == []
    assert failed_ranks([1]) == [0]


def test_failed_ranks_message_names_the_work_and_the_ranks():
    assert failed_ranks_message('writing the CAM files to /d/cams', (1, 3)) == \
        'writing the CAM files to /d/cams failed on rank(s) [1, 3] (see their log)'


def test_gather_failed_ranks_without_a_process_group_is_this_process():
    assert gather_failed_ranks(True) == [0]
    assert gather_failed_ranks(False) == []


def test_one_process_raises_at_once():
    errors = DeferredRankError('writing x')
    assert not errors.defer  # no process group: nobody waits for this one
    with pytest.raises(OSError, match='disk full'):
        errors.call(_fail, OSError('disk full'))
    assert errors.call(lambda a, b=0: a + b, 1, b=2) == 3


def _fail(error):
    raise error


def test_deferred_keeps_the_first_error_skips_the_rest_and_raises_it_at_the_end(logged_warnings):
    errors = DeferredRankError('writing the PNGs to /p', defer=True)
    calls = []
    assert errors.call(calls.append, 'a') is None and not errors.failed
    assert errors.call(_fail, IsADirectoryError('/p/x.png')) is None
    assert errors.failed
    assert errors.call(calls.append, 'b') is None  # skipped once failed
    errors.keep(ValueError('second'))  # a later error (e.g. of the close) does not replace the cause
    assert calls == ['a']
    assert logged_warnings == ['writing the PNGs to /p failed on rank 0: IsADirectoryError: /p/x.png. This rank '
                               'writes nothing more and raises it once the other ranks end their loop.']
    with pytest.raises(IsADirectoryError, match='/p/x.png'):
        errors.raise_if_any_failed()
    errors.raise_if_any_failed()  # raised once; nothing kept now
    errors.call(calls.append, 'c')
    assert calls == ['a', 'c']


def test_keyboard_interrupt_is_not_kept():
    errors = DeferredRankError('writing x', defer=True)
    with pytest.raises(KeyboardInterrupt):
        errors.call(_fail, KeyboardInterrupt())
    assert not errors.failed
