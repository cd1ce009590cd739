"""Tests of csd_mm/refine/pseudo_masks.py: export of pseudo-mask PNGs and the mask mIoU."""
import numpy as np
import pytest

import csd_mm  # noqa: F401
from csd_mm.evaluation.functional.seed_sweep import seed_from_cam
from csd_mm.refine import DenseCRFRefiner, SeedRefiner
from csd_mm.refine.pseudo_masks import export_pseudo_masks, mask_miou
from csd_mm.utils.cam_io import cam_path, load_cam, save_cam
from csd_mm.utils.fileio import read_png, write_png

IDS = ['a', 'b', 'c']


def _write_inputs(tmp_path, size=(24, 32)):
    rng = np.random.default_rng(0)
    cam_dir, img_dir = tmp_path / 'cams', tmp_path / 'imgs'
    img_dir.mkdir()
    h, w = size
    for i, img_id in enumerate(IDS):
        img = np.full((h, w, 3), 40, np.uint8)
        img[4:16, 6 + i:20 + i] = 200
        write_png(str(img_dir / f'{img_id}.png'), img)
        keys = np.sort(rng.choice(20, size=i, replace=False))
        cam = np.zeros((i, h, w), np.float32)
        for k in range(i):
            cam[k, 4:16, 6 + i + 3 * k:14 + i + 3 * k] = 0.5 + 0.2 * k
        cam += rng.random(cam.shape).astype(np.float32) * 0.1
        save_cam(cam_path(str(cam_dir), img_id), cam, keys)
    return str(cam_dir), str(img_dir)


def test_export_writes_valid_pngs_and_skips_existing(tmp_path):
    cam_dir, img_dir = _write_inputs(tmp_path)
    out = tmp_path / 'masks'
    sentinel = np.full((24, 32), 7, np.uint8)
    write_png(str(out / 'b.png'), sentinel)  # already there: must be kept
    counts = export_pseudo_masks(cam_dir, img_dir, IDS, str(out), dict(type=SeedRefiner, bg_threshold=0.3),
                                 progress=False, img_suffix='.png')
    assert counts == dict(written=2, skipped=1)
    np.testing.assert_array_equal(read_png(str(out / 'b.png')), sentinel)
    for img_id in ('a', 'c'):
        mask = read_png(str(out / f'{img_id}.png'))
        assert mask.dtype == np.uint8 and mask.shape == (24, 32)
        cam, keys = load_cam(cam_path(cam_dir, img_id))
        np.testing.assert_array_equal(mask, seed_from_cam(cam, keys, 0.3))
    assert not [p for p in out.iterdir() if p.name.startswith('.')]  # no temporary files left
    # a rerun writes nothing
    again = export_pseudo_masks(cam_dir, img_dir, IDS, str(out), SeedRefiner(0.3), progress=False,
                                img_suffix='.png')
    assert again == dict(written=0, skipped=3)


def test_export_crf_confident_with_workers(tmp_path):
    cam_dir, img_dir = _write_inputs(tmp_path)
    out = tmp_path / 'conf'
    counts = export_pseudo_masks(cam_dir, img_dir, IDS, str(out),
                                 dict(type=DenseCRFRefiner, confident=True, n_iters=3), num_workers=2,
                                 progress=False, img_suffix='.png')
    assert counts == dict(written=3, skipped=0)
    values = set()
    for img_id in IDS:
        mask = read_png(str(out / f'{img_id}.png'))
        _, keys = load_cam(cam_path(cam_dir, img_id))
        assert set(np.unique(mask).tolist()) <= {0, 255} | set((keys + 1).tolist())
        values |= set(np.unique(mask).tolist())
    assert values <= set(range(21)) | {255}
    assert 255 in values


def test_export_reports_bad_inputs(tmp_path):
    cam_dir, img_dir = _write_inputs(tmp_path)
    save_cam(cam_path(cam_dir, 'a'), np.zeros((0, 10, 10), np.float32), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match=r'a\.npz.*size'):
        export_pseudo_masks(cam_dir, img_dir, ['a'], str(tmp_path / 'o'), SeedRefiner(), progress=False,
                            img_suffix='.png')
    with pytest.raises(FileNotFoundError, match='zz'):
        export_pseudo_masks(cam_dir, img_dir, ['zz'], str(tmp_path / 'o'), SeedRefiner(), progress=False)
    with pytest.raises(TypeError, match='refiner'):
        export_pseudo_masks(cam_dir, img_dir, ['a'], str(tmp_path / 'o'), 3, progress=False, img_suffix='.png')


def test_mask_miou_hand_count(tmp_path):
    pred_dir, gt_dir = tmp_path / 'pred', tmp_path / 'gt'
    write_png(str(gt_dir / 'a.png'), np.array([[0, 0, 1], [1, 2, 255]], np.uint8))
    write_png(str(pred_dir / 'a.png'), np.array([[0, 1, 1], [1, 2, 2]], np.uint8))
    write_png(str(gt_dir / 'b.png'), np.array([[2, 2], [0, 0]], np.uint8))
    write_png(str(pred_dir / 'b.png'), np.array([[2, 0], [0, 255]], np.uint8))
    res = mask_miou(str(pred_dir), str(gt_dir), ['a', 'b'], num_classes=3)
    # intersections 2, 2, 2; unions (pred + gt - inter): 3+4-2, 3+2-2, 2+3-2
    np.testing.assert_allclose(res['area_intersect'], [2, 2, 2])
    np.testing.assert_allclose(res['area_union'], [5, 3, 3])
    np.testing.assert_allclose(res['IoU'], [2 / 5, 2 / 3, 2 / 3])
    assert res['mIoU'] == pytest.approx((2 / 5 + 4 / 3) / 3)
    assert res['aAcc'] == pytest.approx(6 / 9)
    write_png(str(pred_dir / 'c.png'), np.zeros((2, 2), np.uint8))
    write_png(str(gt_dir / 'c.png'), np.zeros((3, 2), np.uint8))
    with pytest.raises(ValueError, match='c.png'):
        mask_miou(str(pred_dir), str(gt_dir), ['c'], num_classes=3)


def test_cams_of_another_dataset_are_refused_before_anything_is_written(tmp_path):
    cam_dir, img_dir = _write_inputs(tmp_path)  # class ids drawn from 0..19 (VOC-sized)
    out = tmp_path / 'o'
    with pytest.raises(ValueError, match=r'b\.npz has class ids \[17\] but the dataset has 5 foreground '
                                         r'classes'):
        export_pseudo_masks(cam_dir, img_dir, IDS, str(out), SeedRefiner(), progress=False, img_suffix='.png',
                            num_fg_classes=5)
    assert not out.exists()
    with pytest.raises(FileNotFoundError, match=r'3 of 3 images to refine are missing in .*imgs .*a\.jpg'):
        export_pseudo_masks(cam_dir, img_dir, IDS, str(out), SeedRefiner(), progress=False)
    assert not out.exists()


@pytest.mark.parametrize('img_id', ['../a', 'sub/a', '..'])
def test_ids_that_would_write_outside_the_output_folder_are_refused(tmp_path, img_id):
    cam_dir, img_dir = _write_inputs(tmp_path)
    with pytest.raises(ValueError, match='is not a plain file name'):
        export_pseudo_masks(cam_dir, img_dir, ['a', img_id], str(tmp_path / 'out' / 'o'), SeedRefiner(),
                            progress=False, img_suffix='.png')
    assert not (tmp_path / 'out').exists()


def test_corrupt_image_is_named(tmp_path):
    cam_dir, img_dir = _write_inputs(tmp_path)
    with open(f'{img_dir}/b.png', 'rb') as f:
        data = f.read()
    with open(f'{img_dir}/b.png', 'wb') as f:
        f.write(data[:40])  # truncated
    with open(f'{img_dir}/c.png', 'wb'):
        pass  # empty: cv2 alone raises an anonymous error
    for img_id in ('b', 'c'):
        with pytest.raises(ValueError, match=rf'image .*imgs/{img_id}\.png cannot be decoded'):
            export_pseudo_masks(cam_dir, img_dir, [img_id], str(tmp_path / 'o'), SeedRefiner(), progress=False,
                                img_suffix='.png')
        assert not (tmp_path / 'o' / f'{img_id}.png').exists()
