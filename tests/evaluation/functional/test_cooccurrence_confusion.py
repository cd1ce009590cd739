"""Tests of csd_mm/evaluation/functional/cooccurrence_confusion.py on hand-computed arrays and tiny folders."""
import json
import math

import numpy as np
import pytest
import torch
from mmseg.evaluation import IoUMetric

from csd_mm.evaluation.functional.cooccurrence_confusion import (
    accumulate_confusions, confusion_iou, confusion_matrix, confusion_shares, cooccurrence_confusion_of_dir,
    detect_prediction_kind, dump_cooccurrence_confusion, empty_confusions, format_cooccurrence_confusion,
    summarize_cooccurrence_confusion, top_cooccurring_pairs)
from csd_mm.utils.cam_io import cam_path, save_cam
from csd_mm.utils.fileio import write_png

# C = 4 foreground classes; pair counts: (0,1) 2, (1,2) 2, (0,2) 1, (2,3) 1, (0,3) 0, (1,3) 0
LABELS = np.array([[1, 1, 0, 0],
                   [1, 1, 1, 0],
                   [0, 0, 1, 1],
                   [1, 0, 0, 0],
                   [0, 1, 1, 0]], np.float32)

# N = 3 classes (C = 2): pixels (gt, pred) = (0,0) (1,2) (1,1) / (2,255) (255,1: not counted) (2,0)
GT = np.array([[0, 1, 1], [2, 255, 2]], np.uint8)
PRED = np.array([[0, 2, 1], [255, 1, 0]], np.uint8)
CONF = np.array([[1, 0, 0, 0],
                 [0, 1, 1, 0],
                 [1, 0, 0, 1]])  # last column: predicted 255 (unlabelled)


def test_top_cooccurring_pairs_by_hand():
    assert top_cooccurring_pairs(LABELS, 3) == [(0, 1, 2), (1, 2, 2), (0, 2, 1)]  # ties by (a, b)
    assert top_cooccurring_pairs(LABELS, 1) == [(0, 1, 2)]
    # pairs that never co-occur are not reported
    assert top_cooccurring_pairs(LABELS, 10) == [(0, 1, 2), (1, 2, 2), (0, 2, 1), (2, 3, 1)]
    assert top_cooccurring_pairs(np.eye(3), 2) == []
    with pytest.raises(ValueError, match='top_k'):
        top_cooccurring_pairs(LABELS, 0)


def test_confusion_matrix_by_hand():
    conf = confusion_matrix(GT, PRED, 3)
    assert conf.dtype == np.int64 and conf.shape == (3, 4)
    np.testing.assert_array_equal(conf, CONF)
    with pytest.raises(ValueError, match=r'prediction has values \[3\] outside 0..2'):
        confusion_matrix(GT, np.full_like(PRED, 3), 3)
    with pytest.raises(ValueError, match=r'ground truth has values \[7\]'):
        confusion_matrix(np.full_like(GT, 7), PRED, 3)
    with pytest.raises(ValueError, match='shape'):
        confusion_matrix(GT, PRED[:, :2], 3)


def test_shares_and_iou_by_hand():
    # foreground classes a = 0, b = 1 are rows 1 and 2: 1 of the 2 pixels of a is predicted b; 0 of 2 of b as a
    assert confusion_shares(CONF, 0, 1) == (50.0, 0.0)
    assert confusion_shares(CONF, 1, 0) == (0.0, 50.0)
    a_b, b_a = confusion_shares(np.zeros((3, 4)), 0, 1)
    assert math.isnan(a_b) and math.isnan(b_a)  # no ground-truth pixel
    # IoU: bg 1 / (1 + 2 - 1); class 1: 1 / (2 + 1 - 1); class 2: 0 / (2 + 1 - 0) (its 255 pixel is a miss)
    np.testing.assert_allclose(confusion_iou(CONF), [50.0, 50.0, 0.0])
    iou = confusion_iou(np.array([[2, 0, 0], [0, 0, 0]]))
    assert iou[0] == 100.0 and math.isnan(iou[1])  # absent from gt and prediction
    with pytest.raises(ValueError, match=r'\[N, N \+ 1\]'):
        confusion_iou(np.zeros((3, 3)))


def test_iou_equals_mmseg_intersect_and_union():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 5, size=(20, 30)).astype(np.uint8)
    pred = rng.integers(0, 5, size=(20, 30)).astype(np.uint8)
    gt[rng.random(gt.shape) < 0.1] = 255
    pred[rng.random(pred.shape) < 0.1] = 255  # mmseg counts a 255 prediction as a miss
    inter, union, _, _ = IoUMetric.intersect_and_union(torch.from_numpy(pred.astype(np.int64)),
                                                       torch.from_numpy(gt.astype(np.int64)), 5, 255)
    np.testing.assert_allclose(confusion_iou(confusion_matrix(gt, pred, 5)), 100 * (inter / union).numpy())


def test_accumulate_by_label_groups():
    conf = np.arange(12).reshape(3, 4)
    pairs = [(0, 1)]
    totals = empty_confusions(3, 1)
    accumulate_confusions(totals, conf, np.array([1, 0]), pairs)       # single-label
    accumulate_confusions(totals, 2 * conf, np.array([1, 1]), pairs)   # multi-label, holds the pair
    accumulate_confusions(totals, 5 * conf, np.array([0, 0]), pairs)   # no class: no group
    np.testing.assert_array_equal(totals['single'], conf)
    np.testing.assert_array_equal(totals['multi'], 2 * conf)
    np.testing.assert_array_equal(totals['pairs'][0], 2 * conf)
    assert (int(totals['single_images']), int(totals['multi_images']), totals['pair_images'].tolist()) == \
        (1, 1, [1])
    # a multi-label image without the pair counts for multi only
    totals = accumulate_confusions(empty_confusions(4, 1), np.ones((4, 5), np.int64), np.array([1, 0, 1]),
                                   [(0, 1)])
    assert totals['pairs'].sum() == 0 and totals['multi'].sum() == 20


def test_summary_by_hand():
    totals = empty_confusions(3, 1)
    accumulate_confusions(totals, CONF, np.array([1, 1]), [(0, 1)])
    single = np.array([[3, 1, 0, 0], [0, 4, 0, 0], [0, 0, 0, 0]])
    accumulate_confusions(totals, single, np.array([1, 0]), [(0, 1)])
    out = summarize_cooccurrence_confusion(totals, [(0, 1, 1)], ['bg', 'horse', 'rider'])
    assert out['pairs'] == [dict(a='horse', b='rider', a_index=0, b_index=1, images=1, a_to_b=50.0, b_to_a=0.0)]
    assert out['per_class_iou']['multi'] == {'bg': 50.0, 'horse': 50.0, 'rider': 0.0}
    # single: bg 3 / (4 + 3 - 3) = 75; horse 4 / (4 + 5 - 4) = 80; rider absent: NaN, left out of the mean
    single_iou = out['per_class_iou']['single']
    assert single_iou['bg'] == 75.0 and single_iou['horse'] == 80.0 and math.isnan(single_iou['rider'])
    assert out['miou']['single'] == pytest.approx(77.5) and out['miou']['multi'] == pytest.approx(100 / 3)
    assert (out['num_single'], out['num_multi']) == (1, 1)


def _folder(tmp_path):
    """Two 2 x 3 images of C = 2 classes: 'x' holds both classes, 'y' class 0 only."""
    gt_dir, cam_dir, png_dir = tmp_path / 'gt', tmp_path / 'cams', tmp_path / 'png'
    for d in (gt_dir, png_dir):
        d.mkdir()
    write_png(str(gt_dir / 'x.png'), GT)
    write_png(str(gt_dir / 'y.png'), np.array([[0, 1, 1], [1, 1, 0]], np.uint8))
    write_png(str(png_dir / 'x.png'), PRED)
    write_png(str(png_dir / 'y.png'), np.array([[0, 1, 1], [1, 0, 0]], np.uint8))
    # CAMs whose seeds at t = 0.5 are PRED (255 -> background) and the png of y
    cam_x = np.zeros((2, 2, 3), np.float32)
    cam_x[0][[0, 1], [2, 1]] = 0.9   # class 0 -> value 1 at (0, 2), (1, 1)
    cam_x[1][0, 1] = 0.9             # class 1 -> value 2 at (0, 1)
    save_cam(cam_path(str(cam_dir), 'x'), cam_x, [0, 1])
    save_cam(cam_path(str(cam_dir), 'y'), (np.array([[0, 1, 1], [1, 0, 0]]) * 0.8)[None].astype(np.float32), [0])
    labels = {'x': np.array([1, 1], np.float32), 'y': np.array([1, 0], np.float32)}
    return gt_dir, cam_dir, png_dir, labels


def test_folder_of_masks_and_of_cams(tmp_path):
    gt_dir, cam_dir, png_dir, labels = _folder(tmp_path)
    names = ['background', 'horse', 'rider']
    out = cooccurrence_confusion_of_dir(str(png_dir), str(gt_dir), ['x', 'y'], labels, class_names=names)
    assert out['input'] == 'mask' and out['threshold'] is None and out['num_images'] == 2
    assert out['pairs'] == [dict(a='horse', b='rider', a_index=0, b_index=1, images=1, a_to_b=50.0,
                                 b_to_a=0.0)]
    np.testing.assert_array_equal(out['confusion']['pairs'][0], CONF)
    # y: bg 2 of 2, horse 3 of 4 (one as bg): bg IoU 2 / (2 + 3 - 2), horse 3 / (4 + 3 - 3)
    assert out['per_class_iou']['single']['background'] == pytest.approx(200 / 3)
    assert out['per_class_iou']['single']['horse'] == 75.0
    assert out['per_class_iou']['multi'] == {'background': 50.0, 'horse': 50.0, 'rider': 0.0}

    cam = cooccurrence_confusion_of_dir(str(cam_dir), str(gt_dir), ['x', 'y'], np.stack([labels['x'],
                                        labels['y']]), threshold=0.5, top_k=3)
    assert cam['input'] == 'cam' and cam['threshold'] == 0.5 and cam['classes'] == ['0', '1', '2']
    # the CAM seeds of x are PRED with its 255 as background: rider's (1, 0) pixel becomes a bg miss
    np.testing.assert_array_equal(cam['confusion']['pairs'][0], [[1, 0, 0, 0], [0, 1, 1, 0], [2, 0, 0, 0]])
    assert (cam['pairs'][0]['a_to_b'], cam['pairs'][0]['b_to_a']) == (50.0, 0.0)
    np.testing.assert_array_equal(list(cam['per_class_iou']['single'].values()),
                                  list(out['per_class_iou']['single'].values()))  # rider absent: NaN in both

    text = format_cooccurrence_confusion(out)
    assert 'horse / rider' in text and '50.00' in text and 'IoU single-label' in text
    assert '66.67' in text and 'n/a' in text  # rider has no pixel in the single-label image
    dump_cooccurrence_confusion(str(tmp_path / 'r.json'), cam)
    data = json.loads((tmp_path / 'r.json').read_text())
    assert data['pairs'][0]['a_to_b'] == 50.0 and data['confusion']['single'][1] == [1, 3, 0, 0]
    assert data['per_class_iou']['single']['2'] is None  # NaN as null


def test_folder_errors_name_the_files(tmp_path):
    gt_dir, cam_dir, png_dir, labels = _folder(tmp_path)
    ids = ['x', 'y']
    with pytest.raises(ValueError, match='threshold'):
        cooccurrence_confusion_of_dir(str(cam_dir), str(gt_dir), ids, labels)
    with pytest.raises(ValueError, match='CAM files only'):
        cooccurrence_confusion_of_dir(str(png_dir), str(gt_dir), ids, labels, threshold=0.5)
    with pytest.raises(ValueError, match='2 class names given but the labels have 2 foreground classes'):
        cooccurrence_confusion_of_dir(str(png_dir), str(gt_dir), ids, labels, class_names=['a', 'b'])
    with pytest.raises(ValueError, match=r'no image-level label for 1 ids.*: z'):
        cooccurrence_confusion_of_dir(str(png_dir), str(gt_dir), ids + ['z'], labels)
    with pytest.raises(FileNotFoundError, match=r'1 of 3 ids of the split have no mask in .*png: .*z\.png'):
        cooccurrence_confusion_of_dir(str(png_dir), str(gt_dir), ids + ['z'], dict(labels, z=labels['y']))
    with pytest.raises(FileNotFoundError, match='holds no CAM file'):
        detect_prediction_kind(str(gt_dir), ['q'])
    with pytest.raises(FileNotFoundError, match='does not exist'):
        detect_prediction_kind(str(tmp_path / 'nowhere'), ids)
    write_png(str(cam_dir / 'x.png'), PRED)
    with pytest.raises(ValueError, match='both CAM files'):
        detect_prediction_kind(str(cam_dir), ids)
    # another dataset's files: CAM keys / mask values beyond the labels' classes
    save_cam(cam_path(str(png_dir / 'c'), 'x'), np.zeros((1, 2, 3), np.float32), [5])
    with pytest.raises(ValueError, match=r'c/x\.npz has class ids \[5\] but the dataset has 2 foreground'):
        cooccurrence_confusion_of_dir(str(png_dir / 'c'), str(gt_dir), ['x'], labels, threshold=0.5)
    write_png(str(png_dir / 'y.png'), np.full((2, 3), 4, np.uint8))
    with pytest.raises(ValueError, match=r'png/y\.png holds values \[4\] outside 0..2'):
        cooccurrence_confusion_of_dir(str(png_dir), str(gt_dir), ids, labels)
    # ground truth missing or of another size
    write_png(str(png_dir / 'y.png'), np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match=r'gt/y\.png has size \(2, 3\) but .*png/y\.png has size \(3, 3\)'):
        cooccurrence_confusion_of_dir(str(png_dir), str(gt_dir), ids, labels)
    (gt_dir / 'x.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'1 of 2 ids of the split have no ground truth .*gt/x\.png'):
        cooccurrence_confusion_of_dir(str(png_dir), str(gt_dir), ids, labels)
