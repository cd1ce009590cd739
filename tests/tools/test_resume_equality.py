"""A training resumed from its last checkpoint continues exactly as the uninterrupted run: the same loss at every
later iteration (bit-identical floats on CPU), for the baseline CAM network and for CSD (whose COR draws come
from its own seeded generator and per-item visit counts).

Real configs (the toy ones, made tiny), the real MMEngine Runner and checkpoints on disk. The interrupted run
stops after iteration 3 (``train_cfg.max_iters=3``, the LR schedule still that of 5 iterations) and is resumed
with ``resume=True`` up to 5; 24 images in batches of 8 make iteration 4 the first of the second epoch, so the
resume also crosses the sampler's epoch boundary.
"""
import os.path as osp
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

pytestmark = pytest.mark.slow  # three short trainings per config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {'baseline': REPO / 'configs/toy/cam_resnet18_1xb16_300it_toy_64x64.py',
           'csd': REPO / 'configs/toy/csd_resnet18_1xb16_300it_toy_64x64.py'}
TOTAL, STOP = 5, 3


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    import csd_mm  # noqa: F401
    from csd_mm.datasets import build_source_bank, load_cls_labels, make_toy_voc
    root = tmp_path_factory.mktemp('resume')
    data = root / 'toy_voc'
    make_toy_voc(str(data), num_train=24, num_val=4, seed=3)
    ids = (data / 'ImageSets/Segmentation/train_aug.txt').read_text().split()
    labels = load_cls_labels(str(data / 'cls_labels.npy'))
    # the ground truth as the bank's prior: a few-iteration baseline's CAMs would give an empty bank
    build_source_bank(str(root / 'bank'), ids, np.stack([labels[i] for i in ids]),
                      pseudo_mask_dir=str(data / 'SegmentationClassAug'), progress=False)
    return root


def _train(name: str, root: Path, work_dir: Path, max_iters: int, resume: bool) -> list:
    """Trains the tiny toy config; returns the loss logged at each iteration (restored ones included).

    ``resume`` resumes as ``tools/train.py --resume`` does (:func:`set_resume_point`).
    """
    from csd_mm.utils.checkpoint import set_resume_point
    cfg = Config.fromfile(str(CONFIGS[name]))
    train_set = cfg.train_dataloader.dataset
    if name == 'csd':
        train_set.source_bank = str(root / 'bank')
        train_set = train_set.dataset
    train_set.data_root = str(root / 'toy_voc')
    cfg.train_dataloader.batch_size = 8
    cfg.train_cfg.max_iters = max_iters
    cfg.param_scheduler[0].end = TOTAL  # the schedule of the whole run, also for the interrupted one
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.logger.interval = 1
    cfg.custom_hooks = []  # no CAM pass after training
    cfg.work_dir = str(work_dir)
    cfg.resume = False
    if resume:
        set_resume_point(cfg)
    cfg.experiment_name = f'{work_dir.name}_{max_iters}'  # one logger per run
    runner = Runner.from_cfg(cfg)
    runner.train()
    return [float(v) for v in runner.message_hub.get_scalar('train/loss').data[0]]


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_resumed_training_gives_the_uninterrupted_losses(toy, name):
    full = _train(name, toy, toy / f'{name}_full', TOTAL, resume=False)
    first = _train(name, toy, toy / f'{name}_cut', STOP, resume=False)
    assert osp.isfile(toy / f'{name}_cut' / f'iter_{STOP}.pth')
    resumed = _train(name, toy, toy / f'{name}_cut', TOTAL, resume=True)
    assert len(full) == TOTAL and len(set(full)) == TOTAL and first == full[:STOP]
    # the message hub is restored from the checkpoint, then extended by the resumed iterations
    assert resumed == full, f'{name}: resumed {resumed} vs uninterrupted {full}'


def test_resume_after_a_torn_checkpoint_write_gives_the_uninterrupted_losses(toy):
    """mmengine writes checkpoints and ``last_checkpoint`` in place: a kill (or a lost machine) while writing
    them leaves an empty name or a file cut short; the resume then starts from the newest complete checkpoint
    and still ends with the uninterrupted run's losses."""
    full = _train('baseline', toy, toy / 'torn_full', TOTAL, resume=False)
    work = toy / 'torn_cut'
    _train('baseline', toy, work, STOP, resume=False)
    assert (work / 'last_checkpoint').read_text().strip().endswith(f'iter_{STOP}.pth')
    (work / 'last_checkpoint').write_text('')  # torn name: iter_3 (complete) is found
    assert _train('baseline', toy, work, TOTAL, resume=True) == full
    _train('baseline', toy, toy / 'torn_cut2', STOP, resume=False)
    last = toy / 'torn_cut2' / f'iter_{STOP}.pth'
    last.write_bytes(last.read_bytes()[:1000])  # torn checkpoint: iteration 3 is trained again from iter_2
    assert _train('baseline', toy, toy / 'torn_cut2', TOTAL, resume=True) == full
    work = toy / 'torn_cut3'
    _train('baseline', toy, work, STOP, resume=False)
    for ckpt in work.glob('iter_*.pth'):  # no complete checkpoint at all: a fresh start, not a crash
        ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert _train('baseline', toy, work, TOTAL, resume=True) == full
