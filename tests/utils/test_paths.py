"""csd_mm.utils.paths: ids and config values that would put outputs outside the named folder are refused."""
import os.path as osp

import pytest

from csd_mm.utils.paths import check_image_id, resolve_inside


@pytest.mark.parametrize('img_id', ['2007_000032', 'a.b', 'COCO_train2014_000000000009', '..a'])
def test_plain_ids_pass(img_id):
    assert check_image_id(img_id) == img_id


@pytest.mark.parametrize('img_id', ['', '.', '..', '../x', 'a/b', '/etc/x', 'a\\b', 'a\0b'])
def test_ids_with_path_parts_are_refused(img_id):
    with pytest.raises(ValueError, match=r'from train\.txt is not a plain file name'):
        check_image_id(img_id, 'train.txt')


def test_resolve_inside(tmp_path):
    base = str(tmp_path / 'work')
    assert resolve_inside(base, 'cams', 'out_dir') == osp.join(base, 'cams')
    assert resolve_inside(base, 'a/../cams', 'out_dir') == osp.join(base, 'cams')
    with pytest.raises(ValueError, match=r"CAMGenerationHook out_dir='\.\./\.\./x' leaves the work dir"):
        resolve_inside(base, '../../x', 'CAMGenerationHook out_dir')
    with pytest.raises(ValueError, match=r"out_dir='/tmp/x' is an absolute path"):
        resolve_inside(base, '/tmp/x', 'out_dir')
    with pytest.raises(ValueError, match='leaves the work dir'):  # a sibling sharing the prefix is outside
        resolve_inside(base, '../work2', 'out_dir')
