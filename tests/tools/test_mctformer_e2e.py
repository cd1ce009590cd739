"""End to end with MCTformer-V2: the stock tools on the tiny MCTformer toy configs, real Runner, real files.

tools/train.py (baseline) -> CAM hook writes CAMs + source bank -> tools/test.py reports the seed sweep (CAMs to
--out) -> CSD training on that bank (loss_cls, loss_patch, loss_fg, loss_bg logged; the total is their sum).
"""
import json
import re
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # real trainings in subprocesses

REPO = Path(__file__).resolve().parents[2]
BASE_CFG = REPO / 'configs/toy/mctformer_tiny_1xb16_300it_toy_64x64.py'
CSD_CFG = REPO / 'configs/toy/csd_mctformer_tiny_1xb16_300it_toy_64x64.py'
# 4 iterations of batch 4: 2 warm-up iterations, then cosine to the end
TINY = ['train_dataloader.batch_size=4', 'train_cfg.max_iters=4', 'default_hooks.checkpoint.interval=2',
        'param_scheduler.0.end=2', 'param_scheduler.1.begin=2', 'param_scheduler.1.end=4',
        'param_scheduler.1.T_max=2', 'default_hooks.logger.interval=1']


@pytest.fixture(scope='module')
def workspace(tmp_path_factory, run_tool):
    """A working folder holding data/toy_voc (the path the toy configs read), generated small."""
    root = tmp_path_factory.mktemp('mct_e2e')
    run_tool([REPO / 'tools/dataset_converters/make_toy_voc.py', root / 'data/toy_voc', '--num-train', 24,
             '--num-val', 4, '--seed', 5], cwd=root)
    return root


def _ids(root, split):
    return (root / f'data/toy_voc/ImageSets/Segmentation/{split}.txt').read_text().split()


@pytest.fixture(scope='module')
def baseline(workspace, run_tool):
    work = workspace / 'work_dirs/mct'
    log = run_tool([REPO / 'tools/train.py', BASE_CFG, '--work-dir', work, '--cfg-options', *TINY], cwd=workspace)
    return work, log


def test_train_logs_both_losses_and_writes_cams_and_source_bank(workspace, baseline):
    work, log = baseline
    assert (work / 'iter_4.pth').is_file()
    last = re.findall(r'Iter\(train\) \[4/4\].*', log)[-1]
    for key in ('loss_cls', 'loss_patch'):
        assert np.isfinite(float(re.search(key + r': ([0-9.e+-]+)', last).group(1)))
    from csd_mm.utils.cam_io import load_cam
    labels = np.load(workspace / 'data/toy_voc/cls_labels.npy', allow_pickle=True).item()
    for img_id in _ids(workspace, 'train_aug'):
        cam, keys = load_cam(str(work / 'cams' / f'{img_id}.npz'))
        assert keys.tolist() == np.flatnonzero(labels[img_id]).tolist()
        assert cam.shape[1:] == (64, 64)  # the toy image size: CAMs at the original size
        assert cam.min() >= 0 and cam.max() <= 1 + 1e-3
    index = json.loads((work / 'source_bank/index.json').read_text())
    single = [i for i in _ids(workspace, 'train_aug') if labels[i].sum() == 1]
    assert sorted(e['img_id'] for e in index['entries']) == sorted(single)
    assert all((work / 'source_bank' / e['mask']).is_file() for e in index['entries'])


def test_test_tool_reports_seed_miou(workspace, baseline, run_tool):
    work, _ = baseline
    cam_dir = workspace / 'test_cams'  # --out: mmseg's option for the predictions, the CAM files here
    out = run_tool([REPO / 'tools/test.py', BASE_CFG, work / 'iter_4.pth', '--work-dir', workspace / 'work_dirs/test',
                   '--out', cam_dir], cwd=workspace)
    miou = float(re.search(r'seed/mIoU: ([0-9.]+)', out).group(1))
    assert 0.0 < miou <= 100.0
    assert sorted(p.stem for p in cam_dir.glob('*.npz')) == sorted(_ids(workspace, 'train'))


def test_csd_training_on_the_source_bank(workspace, baseline, run_tool):
    work, _ = baseline
    log = run_tool([REPO / 'tools/train.py', CSD_CFG, '--work-dir', workspace / 'work_dirs/csd', '--cfg-options',
                   *TINY, f'train_dataloader.dataset.source_bank={work / "source_bank"}', 'custom_hooks=[]',
                   'log_processor.window_size=1', 'log_processor.num_digits=8'], cwd=workspace)
    keys = ('loss_cls', 'loss_patch', 'loss_fg', 'loss_bg')
    rows = [{k: float(re.search(r'(?<![a-z_])' + k + r': ([0-9.e+-]+)', line).group(1)) for k in ('loss', ) + keys}
            for line in re.findall(r'Iter\(train\) \[\d/4\].*', log)]
    assert len(rows) == 4
    for row in rows:  # each iteration's values (window 1, 8 digits): the optimised loss is the sum of the terms
        assert row['loss'] == pytest.approx(sum(row[k] for k in keys), rel=3e-7, abs=5e-8)  # float32 sum
        assert row['loss_cls'] > 0 and row['loss_patch'] > 0 and row['loss_fg'] >= 0 and row['loss_bg'] >= 0
    assert (workspace / 'work_dirs/csd/iter_4.pth').is_file()
