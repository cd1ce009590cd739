"""End to end on the generated COCO-format toy: the real COCO configs (IRN-style ResNet-50 and MCTformer-V2
baselines, CSD on both, DeepLabV3+ with 81 classes) each train a few iterations with the stock tools/train.py
(real Runner, real files), only shrunk in image size and data; and tools/run_pipeline.py --dataset coco runs
baseline -> source bank -> CSD -> seeds -> CRF pseudo masks on the converted toy."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # trainings in subprocesses

REPO = Path(__file__).resolve().parents[2]
NUM_TRAIN = 12


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """data/coco holding the converted COCO-format toy (the configs' own data_root)."""
    root = tmp_path_factory.mktemp('coco_e2e')
    import csd_mm  # noqa: F401
    from csd_mm.datasets import convert_coco, make_toy_coco
    data = str(root / 'data/coco')
    summary = convert_coco(make_toy_coco(data, num_train=NUM_TRAIN, num_val=3)['ann_files'], data, progress=False,
                           log=None)
    assert summary['train2014']['num_labelled'] == NUM_TRAIN
    return root


# one epoch over 4 of the toy's images (2 iterations of 2), 64x64 crops, 4 images for the CAM hook (and its bank)
SMALL = ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False', 'default_hooks.logger.interval=1']
HOOK = ['custom_hooks.0.dataloader.dataset.indices=4', 'custom_hooks.0.dataloader.num_workers=0']


def _train(run_tool, root, config, work, options):
    return run_tool([REPO / 'tools/train.py', REPO / 'configs' / config, '--work-dir', root / 'work_dirs' / work,
                     '--cfg-options', *options], cwd=root)


def _bank(root):
    """A source bank whose prior is the converted ground truth (a 3-iteration baseline's CAMs are near 0)."""
    from csd_mm.datasets import build_source_bank, load_cls_labels, read_split
    bank = root / 'gt_bank'
    if not (bank / 'index.json').is_file():
        ids = read_split(str(root / 'data/coco/ImageSets/train2014_cls.txt'))
        labels = load_cls_labels(str(root / 'data/coco/cls_labels.npz'))
        build_source_bank(str(bank), ids, np.stack([labels[i] for i in ids]),
                          pseudo_mask_dir=str(root / 'data/coco/SegmentationClass/train2014'), progress=False)
    return bank


RESNET = ['train_dataloader.dataset.indices=4', 'train_dataloader.dataset.pipeline.1.scale=(64,64)',
          'train_dataloader.dataset.pipeline.3.crop_size=(64,64)', 'model.test_cfg.scales=(1.0,)']
MCT = ['train_dataloader.dataset.indices=4', 'train_dataloader.dataset.pipeline.1.scale=(64,64)',
       'model.backbone.img_size=64']


@pytest.mark.parametrize('config, extra', [
    ('resnet50_cam/resnet50_cam_1xb16_5e_coco2014_512.py', RESNET),
    ('mctformer/mctformer_v2_deits_8xb8_60e_coco2014_224.py', MCT),
], ids=['resnet50', 'mctformer'])
def test_baseline_trains_writes_cams_and_bank_then_csd_trains(workspace, run_tool, config, extra):
    name = Path(config).stem
    log = _train(run_tool, workspace, config, name, SMALL + HOOK + extra)
    assert 'Iter(train) [2/2]' in log  # one epoch: 2 iterations of 2 images
    work = workspace / 'work_dirs' / name
    assert len(list((work / 'cams').glob('COCO_train2014_*.npz'))) == 4
    index = json.loads((work / 'source_bank/index.json').read_text())
    assert index['num_classes'] == 80
    csd = 'csd/' + ('resnet50' if 'resnet' in name else 'mctformer') + '_csd_coco.py'
    wrapped = [o.replace('train_dataloader.dataset.', 'train_dataloader.dataset.dataset.') for o in extra]
    log = _train(run_tool, workspace, csd, 'csd_' + name, SMALL + wrapped + [
        f'train_dataloader.dataset.source_bank={_bank(workspace)}', 'custom_hooks=[]'])
    assert 'loss_fg' in log and 'loss_bg' in log


def test_deeplab_trains_on_coco_pseudo_masks_and_scores_81_classes(workspace, run_tool):
    root = workspace
    masks = root / 'data/coco/SegmentationClass/train2014'  # stand-in pseudo masks: the converted ground truth
    options = ['train_cfg.max_iters=1', 'train_cfg.val_interval=1', 'param_scheduler.0.end=1',
               'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
               'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
               'val_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
               'test_dataloader.persistent_workers=False',
               f'train_dataloader.dataset.data_prefix.seg_map_path={masks}',
               'train_dataloader.dataset.pipeline.2.scale=(256,64)',
               'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
               'train_dataloader.dataset.pipeline.6.size=(64,64)',
               'val_dataloader.dataset.pipeline.1.scale=(256,64)', 'test_dataloader.dataset.pipeline.1.scale=(256,64)',
               'model.data_preprocessor.size=(64,64)', 'default_hooks.logger.interval=1']
    log = _train(run_tool, root, 'deeplab/deeplabv3plus_r101_d8_4xb4_80k_coco2014_512.py', 'deeplab', options)
    assert 'Iter(train) [1/1]' in log and 'mIoU' in log
    rows = re.findall(r'^\|\s+([a-z][a-z ]*?)\s+\|\s+(?:nan|[\d.]+)\s+\|', log, flags=re.M)
    assert len(rows) == 81 and rows[0] == 'background' and rows[-1] == 'toothbrush'  # IoUMetric's class table


def test_run_pipeline_on_the_coco_format_toy(tmp_path, run_tool):
    import csd_mm  # noqa: F401
    from csd_mm.datasets import convert_coco, make_toy_coco
    data = tmp_path / 'data/toy_coco'
    convert_coco(make_toy_coco(str(data), num_train=25, num_val=3)['ann_files'], str(data), progress=False, log=None)
    work = tmp_path / 'work'
    out = run_tool([REPO / 'tools/run_pipeline.py', '--dataset', 'coco', '--work-dir', work, '--until', 'masks',
                    '--iters', '3', '--csd-variant', 'none', '--workers', '0', '--cfg-options',
                    'train_dataloader.batch_size=4', 'default_hooks.checkpoint.interval=3'], cwd=tmp_path)
    result = json.loads((work / 'results.json').read_text())
    assert [r['method'] for r in result['rows']] == ['resnet', 'resnet + csd']
    assert result['num_seed_and_mask_images'] == 24  # image 24 of 0..24 has no object: not in the split
    assert result['rows'][0]['pair'] == 'person/horse'  # the toy's rider / horse confound, in COCO's names
    masks = sorted(p.stem for p in (work / 'seed0/resnet/csd/pseudo_masks_crf').glob('*.png'))
    assert len(masks) == 24 and masks[0].startswith('COCO_train2014_')
    assert (work / 'seed0/resnet/baseline/source_bank/index.json').is_file()
    assert 'pseudo-mask mIoU' in out
