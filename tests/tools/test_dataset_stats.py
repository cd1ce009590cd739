"""Tests for tools/analysis/dataset_stats.py (run as a user would, on the real VOC labels)."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
VOC12 = REPO / 'voc12'  # the project's tracked copy of the VOC labels
SCRIPT = REPO / 'tools' / 'analysis' / 'dataset_stats.py'


def _module():
    spec = importlib.util.spec_from_file_location('dataset_stats', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_cli_on_real_voc_train_aug():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(VOC12 / 'cls_labels.npz'), str(VOC12 / 'train_aug.txt')],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert 'source domain S (|y| = 1): 6,249' in out
    assert 'target domain T (|y| >= 2): 4,333' in out
    assert '2: 3,104, 3: 969, 4: 210, 5: 46, 6: 4' in out
    rows = {}  # the first row of a class is its per-class count row (matrix rows follow)
    for line in out.splitlines():
        if line.startswith(('person ', 'diningtable ')):
            rows.setdefault(line.split()[0], line.split()[1:])
    assert rows['diningtable'][:3] == ['613', '21', '592']  # total / single / multi
    assert rows['person'][:3] == ['4,155', '958', '3,197']
    assert 'co-occurrence counts N' in out and 'probabilities' not in out


@pytest.mark.slow
def test_cli_reports_missing_split_id(tmp_path):
    split = tmp_path / 'split.txt'
    split.write_text('2007_000032\nnot_an_image\n')
    proc = subprocess.run([sys.executable, str(SCRIPT), str(VOC12 / 'cls_labels.npz'), str(split)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 1
    assert 'cls_labels.npz' in proc.stderr and 'not_an_image' in proc.stderr


def test_main_train_probs_and_custom_classes(tmp_path, capsys):
    module = _module()
    assert module.main([str(VOC12 / 'cls_labels.npz'), str(VOC12 / 'train.txt'), '--probs', '--no-self']) == 0
    out = capsys.readouterr().out
    assert 'S (|y| = 1): 933' in out and 'T (|y| >= 2): 531' in out
    assert 'diagonal = 0' in out and 'P = N / row sum' in out
    horse_row = [line for line in out.splitlines() if line.startswith('horse ')][-1].split()
    assert horse_row[1 + 14] == '0.74'  # P[horse, person] on train (0.81 on train_aug)
    labels = tmp_path / 'labels.npy'
    np.save(labels, np.array({'a': np.array([1, 0], np.float32), 'b': np.array([1, 1], np.float32)}),
            allow_pickle=True)
    split = tmp_path / 'split.txt'
    split.write_text('a\nb\n')
    assert module.main([str(labels), str(split), '--classes', 'cat', 'dog']) == 0
    out = capsys.readouterr().out
    assert 'S (|y| = 1): 1' in out and 'T (|y| >= 2): 1' in out
    cat_row = [line.split() for line in out.splitlines() if line.startswith('cat ')][0]
    assert cat_row[:4] == ['cat', '2', '1', '1']
    assert module.main([str(labels), str(split), '--classes', 'cat']) == 1
    assert 'has 2 classes' in capsys.readouterr().err


def test_main_on_coco_labels_names_classes_lists_top_pairs_and_skips_the_80x80_matrix(tmp_path, capsys):
    from csd_mm.datasets import save_cls_labels
    vectors = {}
    for i, classes in enumerate([(0, 17), (0, 17), (0, 2), (0, ), (2, ), (17, 40)]):  # person, horse, car, wine glass
        vec = np.zeros(80, np.float32)
        vec[list(classes)] = 1
        vectors[f'COCO_train2014_{i:012d}'] = vec
    save_cls_labels(str(tmp_path / 'cls_labels.npz'), vectors)
    (tmp_path / 'split.txt').write_text('\n'.join(vectors) + '\n')
    module = _module()
    assert module.main([str(tmp_path / 'cls_labels.npz'), str(tmp_path / 'split.txt'), '--top-pairs', '3']) == 0
    out = capsys.readouterr().out
    assert 'single-label images: 2 (33.3 %), multi-label images: 4 (66.7 %)' in out
    pairs = out.split('top 3 co-occurring pairs (images with both):\n')[1].splitlines()[:3]
    assert pairs == ['  person + horse: 2', '  person + car: 1', '  horse + wine glass: 1']
    assert 'without a single-label image (COR cannot paste them): 2 (horse, wine glass)' in out
    assert 'classes absent from the split: 76' in out
    assert 'co-occurrence counts N' not in out  # 80 x 80: only with --matrix
    assert module.main([str(tmp_path / 'cls_labels.npz'), str(tmp_path / 'split.txt'), '--matrix']) == 0
    assert 'co-occurrence counts N' in capsys.readouterr().out
