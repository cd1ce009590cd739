"""The grid helpers: which images a grid shows, the class names and palette it draws with."""
import json

import numpy as np
import pytest

import csd_mm  # noqa: F401
from csd_mm.visualization import class_meta, multi_label_ids


def test_first_multi_label_ids_in_split_order():
    labels = {'a': np.array([1, 0, 0]), 'b': np.array([1, 1, 0]), 'c': np.array([0, 0, 0]),
              'd': np.array([1, 1, 1]), 'e': np.array([0, 1, 1])}
    assert multi_label_ids(['a', 'b', 'c', 'd', 'e'], labels, 2) == ['b', 'd']
    assert multi_label_ids(['e', 'd', 'a'], labels, 5) == ['e', 'd']
    with pytest.raises(KeyError, match='image x has no image-level label'):
        multi_label_ids(['x'], labels, 1)


def test_class_meta_from_meta_json_else_voc(tmp_path):
    names, palette = class_meta()
    assert names[0] == 'background' and len(names) == 21 and palette.shape == (21, 3)
    (tmp_path / 'meta.json').write_text(json.dumps(dict(classes=['background', 'horse'],
                                                        palette=[[0, 0, 0], [150, 90, 50]])))
    names, palette = class_meta(str(tmp_path))
    assert names == ['background', 'horse'] and palette.tolist() == [[0, 0, 0], [150, 90, 50]]
    assert class_meta(str(tmp_path), ['bg', 'h'])[0] == ['bg', 'h']
    # more classes than meta.json's colours (e.g. the COCO toy: 81 names, the toy's palette): its colours
    # first, then VOC's colour map
    assert class_meta(str(tmp_path), ['bg', 'h', 'r'])[1].tolist() == [[0, 0, 0], [150, 90, 50], [0, 128, 0]]


def test_voc_colormap_by_hand_and_beyond_voc():
    from csd_mm.visualization import voc_colormap
    cmap = voc_colormap(81)
    # label 1 = bit 0 -> R's top bit; 2 -> G's; 3 -> R and G; 8 = bit 3 -> R's second bit; 80 = 0b1010000
    assert cmap[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert cmap[8].tolist() == [64, 0, 0]
    assert cmap[80].tolist() == [32, 64, 0]  # 80 = bits 4 (G's second bit) and 6 (R's third bit)
    from mmseg.datasets import PascalVOCDataset
    assert cmap[:21].tolist() == [list(c) for c in PascalVOCDataset.METAINFO['palette']]


def test_class_meta_of_more_classes_than_voc_without_meta(tmp_path):
    from csd_mm.visualization import class_meta
    names, palette = class_meta(str(tmp_path), ['background'] + [f'c{i}' for i in range(80)])  # COCO's 81
    assert len(names) == 81 and palette.shape == (81, 3) and len({tuple(c) for c in palette}) == 81
