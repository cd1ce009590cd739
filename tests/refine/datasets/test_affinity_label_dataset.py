"""Tests of csd_mm/refine/datasets/affinity_label_dataset.py: confident labels built lazily from CAMs, cached, and
fed through a stock mmseg pipeline into a tiny AffinityNet."""
import os

import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile
from mmengine.dataset import pseudo_collate
from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs
from mmseg.registry import DATASETS, MODELS

import csd_mm  # noqa: F401
from csd_mm.refine.datasets import AffinityLabelDataset
from csd_mm.refine.datasets.label_record import RECORD_FILE
from csd_mm.refine.functional import confident_regions
from csd_mm.utils.cam_io import cam_path, save_cam
from csd_mm.utils.fileio import read_png, write_png

IDS = ['x0', 'x1']


def _make_data(tmp_path, size=32):
    root = tmp_path / 'voc'
    (root / 'ImageSets').mkdir(parents=True)
    (root / 'ImageSets' / 'train.txt').write_text('\n'.join(IDS) + '\n')
    cam_dir = tmp_path / 'cams'
    for i, img_id in enumerate(IDS):
        img = np.full((size, size, 3), 30, np.uint8)
        img[8:24, 8 + i:24 + i] = 220
        write_png(str(root / 'JPEGImages' / f'{img_id}.png'), img)
        cam = np.zeros((1, size, size), np.float32)
        cam[0, 8:24, 8 + i:24 + i] = 0.9
        cam[0, 4:28, 4 + i:28 + i] += 0.1
        save_cam(cam_path(str(cam_dir), img_id), cam, np.array([2 + i]))
    return root, cam_dir


def _cfg(root, cam_dir, **kwargs):
    cfg = dict(type=AffinityLabelDataset, cam_dir=str(cam_dir), data_root=str(root),
               ann_file='ImageSets/train.txt', data_prefix=dict(img_path='JPEGImages'), img_suffix='.png',
               crf_cfg=dict(n_iters=3),
               pipeline=[dict(type=LoadImageFromFile), dict(type=LoadAnnotations), dict(type=PackSegInputs)])
    cfg.update(kwargs)
    return cfg


def test_labels_built_lazily_and_cached(tmp_path):
    root, cam_dir = _make_data(tmp_path)
    ds = DATASETS.build(_cfg(root, cam_dir))
    assert len(ds) == 2
    label_dir = f'{cam_dir}_conf_la4_ha32'
    assert ds.label_dir == label_dir
    assert not [f for f in os.listdir(label_dir) if f.endswith('.png')]  # no label computed at construction
    assert os.listdir(label_dir) == [RECORD_FILE]  # but the settings recorded
    sample = ds[1]
    label_path = os.path.join(label_dir, 'x1.png')
    assert os.path.isfile(label_path) and not os.path.exists(os.path.join(label_dir, 'x0.png'))
    label = read_png(label_path)
    img = np.full((32, 32, 3), 30, np.uint8)
    img[8:24, 9:25] = 220
    cam = np.zeros((1, 32, 32), np.float32)
    cam[0, 8:24, 9:25] = 0.9
    cam[0, 4:28, 5:29] += 0.1
    expected = confident_regions(img, cam.astype(np.float16).astype(np.float32), np.array([3]), 4, 32,
                                 n_iters=3)
    np.testing.assert_array_equal(label, expected)
    assert set(np.unique(label).tolist()) <= {0, 4, 255}
    assert sample['inputs'].shape == (3, 32, 32)
    np.testing.assert_array_equal(sample['data_samples'].gt_sem_seg.data[0].numpy(), label)
    # a cached file is read, not recomputed
    write_png(label_path, np.full((32, 32), 255, np.uint8))
    assert (ds[1]['data_samples'].gt_sem_seg.data == 255).all()


def test_batch_trains_tiny_affinity_net(tmp_path, tiny_aff_cfg):
    root, cam_dir = _make_data(tmp_path)
    ds = DATASETS.build(_cfg(root, cam_dir, label_dir=str(tmp_path / 'conf')))
    torch.manual_seed(0)
    model = MODELS.build(tiny_aff_cfg())
    data = model.data_preprocessor(pseudo_collate([ds[0], ds[1]]), True)
    loss = model(**data, mode='loss')['loss_aff']
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()


def test_missing_files_and_bad_alphas(tmp_path):
    root, cam_dir = _make_data(tmp_path)
    (root / 'ImageSets' / 'train.txt').write_text('x0\nnope\n')
    with pytest.raises(FileNotFoundError, match='nope'):
        DATASETS.build(_cfg(root, cam_dir))
    with pytest.raises(ValueError, match='low_alpha'):
        DATASETS.build(_cfg(root, cam_dir, low_alpha=32, high_alpha=4))
    with pytest.raises(FileNotFoundError, match='CAM folder'):
        DATASETS.build(_cfg(root, tmp_path / 'absent'))


def test_cams_of_another_dataset_and_corrupt_images_are_named(tmp_path):
    root, cam_dir = _make_data(tmp_path)  # class ids 2 and 3
    toy_classes = ('background', 'a', 'b', 'c')  # 3 foreground classes: id 3 does not exist
    with pytest.raises(ValueError, match=r'x1\.npz has class ids \[3\] but the dataset has 3 foreground classes'):
        DATASETS.build(_cfg(root, cam_dir, metainfo=dict(classes=toy_classes)))
    (root / 'JPEGImages' / 'x0.png').write_bytes(b'')
    ds = DATASETS.build(_cfg(root, cam_dir))
    with pytest.raises(ValueError, match=r'image .*JPEGImages/x0\.png cannot be decoded'):
        ds[0]


def test_cached_labels_reused_only_with_the_same_crf_cfg_and_cams(tmp_path):
    root, cam_dir = _make_data(tmp_path)
    label_dir = f'{cam_dir}_conf_la4_ha32'
    DATASETS.build(_cfg(root, cam_dir, crf_cfg=dict(n_iters=3, bi_xy_std=8)))[0]  # label of x0 cached
    label_path = os.path.join(label_dir, 'x0.png')
    write_png(label_path, np.full((32, 32), 255, np.uint8))  # marks the cached file
    # same settings (the dict in another order): the cached label is reused
    again = DATASETS.build(_cfg(root, cam_dir, crf_cfg=dict(bi_xy_std=8, n_iters=3)))
    assert (again[0]['data_samples'].gt_sem_seg.data == 255).all()
    # other CRF kernels: refused, naming the folder and the difference
    with pytest.raises(ValueError, match=rf'labels in {label_dir} were made with other settings: '
                       r'crf_cfg\.bi_xy_std: 8 \(labels\) vs 80 \(asked\)\. Delete'):
        DATASETS.build(_cfg(root, cam_dir, crf_cfg=dict(n_iters=3)))
    # regenerated CAMs in the same folder: refused as well (the label of x0 exists; x1's is not made yet)
    cam, keys = np.zeros((1, 32, 32), np.float32), np.array([2])
    save_cam(cam_path(str(cam_dir), 'x0'), cam, keys)
    os.utime(cam_path(str(cam_dir), 'x0'), ns=(1, 1))  # a different mtime even on a coarse-clock filesystem
    with pytest.raises(ValueError, match=r"1 CAM files in .*cams changed .*\['x0\.npz'\]"):
        DATASETS.build(_cfg(root, cam_dir, crf_cfg=dict(n_iters=3, bi_xy_std=8)))
    # after deleting the folder as the message says, the labels are recomputed from the new CAMs
    for name in os.listdir(label_dir):
        os.remove(os.path.join(label_dir, name))
    fresh = DATASETS.build(_cfg(root, cam_dir, crf_cfg=dict(n_iters=3, bi_xy_std=8)))
    assert not (fresh[0]['data_samples'].gt_sem_seg.data == 255).all()


def test_misspelt_crf_kernel_is_refused_at_construction(tmp_path):
    root, cam_dir = _make_data(tmp_path)
    with pytest.raises(ValueError, match=r"AffinityLabelDataset: crf_cfg has keys \['bi_xy'\]"):
        DATASETS.build(_cfg(root, cam_dir, crf_cfg=dict(bi_xy=8)))


def test_irn_recipe_makes_irns_confident_labels_and_refuses_psa_caches(tmp_path):
    from csd_mm.refine.functional import irn_confident_regions
    root, cam_dir = _make_data(tmp_path)
    ds = DATASETS.build(_cfg(root, cam_dir, confident_labels='irn', crf_cfg=dict(n_iters=3, bi_xy_std=8)))
    label_dir = f'{cam_dir}_irn_conf_fg0.3_bg0.05'
    assert ds.label_dir == label_dir
    sample = ds[0]
    label = read_png(os.path.join(label_dir, 'x0.png'))
    img = np.full((32, 32, 3), 30, np.uint8)
    img[8:24, 8:24] = 220
    cam = np.zeros((1, 32, 32), np.float32)
    cam[0, 8:24, 8:24] = 0.9
    cam[0, 4:28, 4:28] += 0.1
    expected = irn_confident_regions(img, cam.astype(np.float16).astype(np.float32), np.array([2]), 0.30, 0.05,
                                     n_iters=3, bi_xy_std=8)
    np.testing.assert_array_equal(label, expected)
    assert (label == 3).any() and (label == 0).any()  # the object and the background are confident
    np.testing.assert_array_equal(sample['data_samples'].gt_sem_seg.data[0].numpy(), label)
    # PSA labels cached in that folder: refused, naming the recipes
    psa_dir = str(tmp_path / 'psa_labels')
    DATASETS.build(_cfg(root, cam_dir, label_dir=psa_dir))[0]
    with pytest.raises(ValueError, match=rf"labels in {psa_dir} were made with other settings: .*"
                       r"recipe: 'psa' \(labels\) vs 'irn' \(asked\)"):
        DATASETS.build(_cfg(root, cam_dir, label_dir=psa_dir, confident_labels='irn'))
    # other thresholds: refused as well
    with pytest.raises(ValueError, match=r'conf_fg: 0\.3 \(labels\) vs 0\.4 \(asked\)'):
        DATASETS.build(_cfg(root, cam_dir, confident_labels='irn', conf_fg=0.4, label_dir=label_dir,
                            crf_cfg=dict(n_iters=3, bi_xy_std=8)))


def test_bad_recipe_thresholds_and_crf_keys_are_refused(tmp_path):
    root, cam_dir = _make_data(tmp_path)
    with pytest.raises(ValueError, match="confident_labels must be 'psa' or 'irn', got 'crf'"):
        DATASETS.build(_cfg(root, cam_dir, confident_labels='crf'))
    with pytest.raises(ValueError, match=r'conf_bg \(0\.3\) must be smaller than conf_fg \(0\.05\)'):
        DATASETS.build(_cfg(root, cam_dir, confident_labels='irn', conf_fg=0.05, conf_bg=0.3))
    with pytest.raises(ValueError, match=r"crf_cfg has keys \['gt_prob'\] that dense_crf "):
        DATASETS.build(_cfg(root, cam_dir, crf_cfg=dict(gt_prob=0.7)))  # a label-CRF key for PSA's CRF
