"""docs/extending.md's config for a user's own VOC-format dataset (configs/custom/resnet50_cam_1xb16_5e_myvoc_512.py)
on a generated dataset with other classes (apple, pear, plum; labels in Annotations XML): the datasets it builds
carry those classes and labels, and tools/train.py trains it and writes the CAMs and the source bank of those
classes. Real configs, real Runner."""
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

import csd_mm  # noqa: F401  (mmcv-lite fallbacks before mmseg; registers every part)

REPO = Path(__file__).resolve().parents[2]
CFG = REPO / 'configs/custom/resnet50_cam_1xb16_5e_myvoc_512.py'
CLASSES = ('apple', 'pear', 'plum')
COLOURS = ((40, 40, 220), (60, 200, 80), (150, 40, 120))  # BGR
# class indices (0-based) of each image: single-label ones (the source domain) and multi-label ones
TRAIN = [[0], [1], [2], [0, 1], [1, 2], [0, 2]]
VAL = [[0], [1, 2], [0, 2]]


def make_my_voc(root: Path, size: int = 64) -> None:
    """A VOC-format dataset as a user has it: JPEGImages, Annotations XML, SegmentationClass, split files."""
    from csd_mm.utils.fileio import write_png
    rng = np.random.default_rng(0)
    for sub in ('JPEGImages', 'Annotations', 'SegmentationClass', 'ImageSets/Segmentation'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for split, scenes in (('train', TRAIN), ('val', VAL)):
        ids = []
        for n, scene in enumerate(scenes):
            img_id = f'{split}_{n:03d}'
            img = rng.integers(90, 140, (size, size, 3)).astype(np.uint8)
            mask = np.zeros((size, size), np.uint8)
            objects = []
            for k, cls in enumerate(scene):
                y0, x0 = 6 + 28 * k, 6 + 28 * ((n + k) % 2)
                img[y0:y0 + 24, x0:x0 + 24] = COLOURS[cls]
                mask[y0:y0 + 24, x0:x0 + 24] = cls + 1
                objects.append(f'<object><name>{CLASSES[cls]}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>'
                               f'<xmax>{x0 + 23}</xmax><ymax>{y0 + 23}</ymax></bndbox></object>')
            cv2.imwrite(str(root / 'JPEGImages' / f'{img_id}.jpg'), img)
            write_png(str(root / 'SegmentationClass' / f'{img_id}.png'), mask)
            (root / 'Annotations' / f'{img_id}.xml').write_text(
                f'<annotation><filename>{img_id}.jpg</filename>{"".join(objects)}</annotation>\n')
            ids.append(img_id)
        (root / f'ImageSets/Segmentation/{split}.txt').write_text('\n'.join(ids) + '\n')


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A cwd with data/my_voc, the config's data_root."""
    root = tmp_path_factory.mktemp('my_voc')
    make_my_voc(root / 'data/my_voc')
    return root


def _label(*classes):
    vec = np.zeros(len(CLASSES), np.float32)
    vec[list(classes)] = 1
    return vec


def test_the_docs_show_the_config_file():
    doc = (REPO / 'docs/extending.md').read_text()
    assert CFG.read_text().strip() in doc


def test_the_config_builds_datasets_and_a_model_of_its_classes(workspace):
    from mmengine.config import Config
    from mmseg.registry import DATASETS, MODELS
    cfg = Config.fromfile(str(CFG))
    data_root = str(workspace / 'data/my_voc')
    for name, scenes in (('train_dataloader', TRAIN), ('test_dataloader', VAL), ('cam_dataloader', TRAIN)):
        cfg[name].dataset.data_root = data_root
        dataset = DATASETS.build(cfg[name].dataset)
        assert dataset.metainfo['classes'] == ('background', ) + CLASSES
        assert len(dataset) == len(scenes)
        for i, scene in enumerate(scenes):
            np.testing.assert_array_equal(dataset.get_data_info(i)['gt_label'], _label(*scene))
    assert cfg.custom_hooks[0].dataloader.dataset.metainfo['classes'] == ('background', ) + CLASSES
    model = MODELS.build(cfg.model)
    assert model.num_classes == len(CLASSES)


@pytest.mark.slow
def test_tools_train_trains_it_and_writes_cams_of_its_classes(workspace, run_tool):
    """3 iterations of batch 2 (one epoch) at 64x64 instead of 512x512 crops; everything else as configured."""
    work = workspace / 'work_dirs/my_voc'
    log = run_tool([REPO / 'tools/train.py', CFG, '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=1',
                    'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
                    'train_dataloader.persistent_workers=False', 'train_dataloader.dataset.pipeline.1.scale=(64,64)',
                    'train_dataloader.dataset.pipeline.3.crop_size=(64,64)', 'custom_hooks.0.dataloader.num_workers=0',
                    'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=3'], cwd=workspace)
    assert re.search(r'Iter\(train\) \[3/3\].*loss_cls: [0-9.]+', log) and (work / 'iter_3.pth').is_file()
    from csd_mm.utils.cam_io import load_cam
    for n, scene in enumerate(TRAIN):
        cam, keys = load_cam(str(work / 'cams' / f'train_{n:03d}.npz'))
        assert keys.tolist() == sorted(scene) and cam.shape == (len(scene), 64, 64)
    index = json.loads((work / 'source_bank/index.json').read_text())
    assert sorted((e['img_id'], e['class']) for e in index['entries']) == \
        [(f'train_{n:03d}', s[0]) for n, s in enumerate(TRAIN) if len(s) == 1]
