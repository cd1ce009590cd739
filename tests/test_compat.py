"""Tests of csd_mm/compat.py (mmcv-lite ops stand-in, weights_only checkpoints, CPU distributed)."""
import copy
import os
import importlib
import importlib.util
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import save_checkpoint

import csd_mm  # noqa: F401  (applies compat)
from csd_mm import compat

HAS_COMPILED_OPS = importlib.util.find_spec('mmcv._ext') is not None


def test_mmseg_models_and_point_sample_import():
    import mmseg.models  # noqa: F401
    from mmcv.ops import point_sample
    # point_sample of a 1x1x2x2 map at the centre is the mean of the four values (bilinear)
    feat = torch.tensor([[[[1., 2.], [3., 4.]]]])
    out = point_sample(feat, torch.tensor([[[0.5, 0.5]]]), align_corners=False)
    torch.testing.assert_close(out, torch.tensor([[[2.5]]]))


@pytest.mark.skipif(HAS_COMPILED_OPS, reason='full mmcv with compiled ops is installed')
def test_compiled_ops_raise_module_not_found():
    with pytest.raises(ModuleNotFoundError, match='CrissCrossAttention.*mmcv-lite'):
        from mmcv.ops import CrissCrossAttention  # noqa: F401
    assert compat.install_mmcv_ops_fallback() is False  # idempotent: already installed


def _checkpoint(path):
    hub = MessageHub.get_instance('test_compat_ckpt')
    for v in (1.0, 0.5, 0.25):
        hub.update_scalar('train/loss', v)
    hub.update_info('iter', 7)
    hub.update_info('np_value', np.float32(1.5))
    model = torch.nn.Linear(3, 2)
    ckpt = dict(meta=dict(epoch=1, iter=7, seed=0), state_dict=model.state_dict(),
                message_hub=hub.state_dict(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1).state_dict())
    save_checkpoint(ckpt, str(path))
    return ckpt


def test_mmengine_checkpoint_loads_weights_only(tmp_path):
    ckpt = _checkpoint(tmp_path / 'ckpt.pth')
    loaded = torch.load(str(tmp_path / 'ckpt.pth'))  # torch's default: weights_only=True
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx((1.0 + 0.5 + 0.25) / 3) and buf.current() == 0.25
    assert loaded['message_hub']['runtime_info']['iter'] == 7
    assert float(loaded['message_hub']['runtime_info']['np_value']) == 1.5
    torch.testing.assert_close(loaded['state_dict']['weight'], ckpt['state_dict']['weight'])
    # and explicitly weights_only
    torch.load(str(tmp_path / 'ckpt.pth'), weights_only=True)


class _BuiltinsModule:
    def __reduce__(self):
        return importlib.import_module, ('builtins', )


class _GetEval:
    def __reduce__(self):
        return getattr, (_BuiltinsModule(), 'eval')


class _GetInit:
    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


class _GetMin:
    def __reduce__(self):
        return getattr, (HistoryBuffer, 'min')


@pytest.mark.parametrize('payload', [_GetEval, _GetInit])
def test_crafted_pickles_are_refused(tmp_path, payload):
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(x=payload()), path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


def test_only_history_buffer_statistics_are_reachable(tmp_path):
    path = str(tmp_path / 'ok.pth')
    torch.save(dict(x=_GetMin()), path)
    assert torch.load(path)['x'] is HistoryBuffer.min
    with pytest.raises(pickle.UnpicklingError, match='only HistoryBuffer statistics'):
        compat._history_buffer_getattr(HistoryBuffer, '__init__')
    with pytest.raises(pickle.UnpicklingError):
        compat._history_buffer_getattr(object, 'min')


def test_setup_cpu_distributed_is_a_noop_without_launcher():
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    before = copy.deepcopy(cfg.to_dict())
    assert compat.setup_cpu_distributed(cfg, 'none') is False
    assert cfg.to_dict() == before
    assert not torch.distributed.is_initialized()


_DIST_VARS = ('MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'SLURM_PROCID', 'SLURM_NTASKS',
              'SLURM_NODELIST', 'SLURM_LOCALID')


def _clear_dist_env(monkeypatch):
    """Unsets the launcher variables so that the test's end restores them, also those the code under test sets:
    ``delenv`` of an unset variable records nothing, so a RANK set by ``_slurm_dist_env`` would outlive the test
    (and make every later tools/train.py subprocess believe it is rank 3)."""
    for var in _DIST_VARS:
        monkeypatch.setenv(var, '')  # recorded: undone at teardown (unset again, or the old value back)
        monkeypatch.delenv(var)


def test_slurm_variables_become_torch_distributed_ones(monkeypatch):
    """--launcher slurm on CPU: what srun gives each task, turned into what torch.distributed reads (as
    mmengine's slurm set-up); an existing MASTER_ADDR is kept (no scontrol call). The end-to-end run with
    tools/slurm_train.sh is in tests/tools/test_train_test_e2e.py."""
    _clear_dist_env(monkeypatch)
    monkeypatch.setenv('SLURM_PROCID', '3')
    monkeypatch.setenv('SLURM_NTASKS', '4')
    monkeypatch.setenv('SLURM_LOCALID', '1')
    monkeypatch.setenv('SLURM_NODELIST', 'node-[1-2]')
    monkeypatch.setenv('MASTER_ADDR', '10.0.0.7')
    compat._slurm_dist_env()
    assert {v: os.environ[v] for v in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')} == \
        dict(RANK='3', WORLD_SIZE='4', LOCAL_RANK='1', MASTER_ADDR='10.0.0.7', MASTER_PORT='29500')


def test_launcher_variables_set_by_a_test_do_not_outlive_it():
    """The slurm test above runs first (file order) and sets RANK=3 through the code under test."""
    assert 'RANK' not in os.environ or os.environ['RANK'] != '3'


def test_slurm_launcher_outside_srun_says_what_is_missing(monkeypatch):
    _clear_dist_env(monkeypatch)
    monkeypatch.setenv('SLURM_PROCID', '0')
    with pytest.raises(RuntimeError, match='--launcher slurm: SLURM_NTASKS, SLURM_NODELIST not set; start the '
                                           'tool with srun'):
        compat._slurm_dist_env()


@pytest.mark.skipif(torch.cuda.is_available(), reason='mmengine sets up every launcher on GPUs')
def test_mpi_launcher_on_cpu_is_refused():
    with pytest.raises(RuntimeError, match="launcher 'mpi' on a CPU-only machine is not supported; use pytorch "
                                           r'\(tools/dist_train.sh\) or slurm'):
        compat.setup_cpu_distributed(Config(dict()), 'mpi')


def test_dataset_subsets_never_share_a_deepcopy_memo():
    """mmengine's default memo dict of _copy_without_annotation would remember every copied dataset by its id
    (a freed dataset's address reused by a transform made get_subset put a dataset into a pipeline)."""
    from mmengine.dataset import BaseDataset
    compat.apply()
    original = BaseDataset._copy_without_annotation
    assert getattr(original, '_csd_mm_fresh_memo', False)

    class Tiny(BaseDataset):
        def load_data_list(self):
            return [dict(i=i) for i in range(4)]

    shared_default = original.__closure__[0].cell_contents.__defaults__[0]
    first = Tiny(pipeline=[], serialize_data=False)
    sub = first.get_subset([1, 2])
    assert [sub.get_data_info(i)['i'] for i in range(2)] == [1, 2]
    assert shared_default == {}  # mmengine's shared default memo stays empty: nothing is remembered across calls


@pytest.mark.parametrize('factor, shift', [(0.0, 0), (0.1, 25), (-0.1, 231), (0.5, 127), (-0.5, 129)])
def test_hue_shift_wraps_negative_factors_like_numpy_1(factor, shift):
    assert compat.hue_shift(factor) == shift  # trunc(factor * 255) mod 256: -25 -> 231, -127 -> 129


@pytest.mark.parametrize('backend', ['pillow', 'cv2'])
def test_negative_hue_factors_shift_the_hue_instead_of_raising(backend):
    """numpy >= 2 refuses mmcv's np.uint8(-25.5): mmpretrain's ColorJitter(hue=0.1) crashed on half its draws."""
    import mmcv
    from mmpretrain.datasets.transforms import ColorJitter
    from PIL import Image
    compat.apply()
    img = np.array([[[0, 0, 255], [0, 255, 0], [255, 0, 0]]], np.uint8)  # BGR: red, green, blue (hue 0, 85, 170)
    out = mmcv.adjust_hue(img, -0.1, backend=backend)
    # red's hue 0 - 25 = 231 of 255 (326 degrees): R 255, G 0, B 255 * (360 - 326.1) / 60 = 144
    np.testing.assert_array_equal(out[0, 0], [144, 0, 255])
    hue = np.asarray(Image.fromarray(np.ascontiguousarray(out[..., ::-1]), 'RGB').convert('HSV'))[0, :, 0]
    assert np.abs(hue.astype(int) - [231, 60, 145]).max() <= 1  # every hue moved by -25 (mod 256)
    if backend == 'pillow':  # non-negative factors: mmcv's own function (cv2's HSV round trip is lossy)
        np.testing.assert_array_equal(mmcv.adjust_hue(img, 0.0, backend=backend), img)
    with pytest.raises(ValueError, match='not in'):
        mmcv.adjust_hue(img, -0.6, backend=backend)
    jitter = ColorJitter(hue=(-0.1, -0.1), backend=backend)  # the ecosystem transform reaches the adaptation
    np.testing.assert_array_equal(jitter(dict(img=img.copy()))['img'], out)
