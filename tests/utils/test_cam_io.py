"""Tests of csd_mm.utils.cam_io (the CAM file format)."""
import json
import os
import zipfile

import numpy as np
import pytest
import torch

from csd_mm.utils.cam_io import (CAM_RECORD_FILE, CAMFileWriter, cam_path, check_cam_folder, check_cam_record,
                                 is_complete, load_cam, load_cam_keys, missing_ids, read_cam_record,
                                 record_new_cam_folder, record_rewritten_cam_folder, save_cam)
from csd_mm.utils.fileio import atomic_write


def test_roundtrip_float16_int64(tmp_path):
    cam = np.random.default_rng(0).random((2, 5, 7)).astype(np.float32)
    keys = np.array([3, 14])
    path = save_cam(str(tmp_path / 'a.npz'), cam, keys)
    assert path == str(tmp_path / 'a.npz')
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == ['cam', 'keys']
        assert z['cam'].dtype == np.float16 and z['keys'].dtype == np.int64
    got_cam, got_keys = load_cam(path)
    assert got_cam.dtype == np.float32 and got_cam.shape == (2, 5, 7)
    assert got_keys.dtype == np.int64 and got_keys.tolist() == [3, 14]
    np.testing.assert_array_equal(got_cam, cam.astype(np.float16).astype(np.float32))
    assert np.abs(got_cam - cam).max() < 1e-3


def test_suffix_appended_no_temp_left_and_tensors(tmp_path):
    cam = torch.rand(1, 3, 4, requires_grad=True)
    path = save_cam(str(tmp_path / 'sub' / 'img1'), cam, torch.tensor([7]))
    assert path == str(tmp_path / 'sub' / 'img1.npz') == cam_path(str(tmp_path / 'sub'), 'img1')
    assert os.listdir(tmp_path / 'sub') == ['img1.npz']
    assert load_cam(path)[1].tolist() == [7]


def test_empty_cam(tmp_path):
    path = save_cam(str(tmp_path / 'e.npz'), np.zeros((0, 4, 6), np.float32), [])
    cam, keys = load_cam(path)
    assert cam.shape == (0, 4, 6) and keys.shape == (0,) and keys.dtype == np.int64


def test_overwrite_is_atomic_replace(tmp_path):
    path = str(tmp_path / 'x.npz')
    save_cam(path, np.zeros((1, 2, 2)), [0])
    save_cam(path, np.ones((2, 2, 2)), [0, 5])
    assert load_cam(path)[1].tolist() == [0, 5]
    assert os.listdir(tmp_path) == ['x.npz']


@pytest.mark.parametrize('cam, keys, match', [
    (np.zeros((2, 2)), [0], 'shape'),
    (np.zeros((2, 2, 2)), [0], '2 class maps but keys has 1'),
    (np.zeros((2, 2, 2)), [3, 1], 'ascending'),
    (np.zeros((1, 2, 2)), [-1], 'non-negative'),
    (np.full((1, 2, 2), np.nan), [0], 'NaN or inf'),
    (np.full((1, 2, 2), 1e6), [0], 'float16'),
    (np.zeros((1, 2, 2)), [0.5], 'integers'),
])
def test_save_rejects_bad_input(tmp_path, cam, keys, match):
    with pytest.raises(ValueError, match=match):
        save_cam(str(tmp_path / 'bad.npz'), cam, keys)
    assert os.listdir(tmp_path) == []


def test_load_errors_name_the_file(tmp_path):
    missing = str(tmp_path / 'nope.npz')
    with pytest.raises(FileNotFoundError, match='nope.npz'):
        load_cam(missing)
    corrupt = tmp_path / 'corrupt.npz'
    corrupt.write_bytes(b'not a zip at all')
    with pytest.raises(ValueError, match='corrupt.npz'):
        load_cam(str(corrupt))
    truncated = tmp_path / 'trunc.npz'
    save_cam(str(truncated), np.ones((1, 8, 8)), [2])
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(ValueError, match='trunc.npz'):
        load_cam(str(truncated))
    pickled = tmp_path / 'pickled.npz'
    np.savez(pickled, cam=np.array([{'a': 1}], dtype=object), keys=np.zeros(1, np.int64))
    with pytest.raises(ValueError, match='pickled.npz'):
        load_cam(str(pickled))
    nokeys = tmp_path / 'nokeys.npz'
    np.savez(nokeys, cam=np.zeros((1, 2, 2), np.float16))
    with pytest.raises(ValueError, match=r"nokeys.npz.*missing entries \['keys'\]"):
        load_cam(str(nokeys))
    single = tmp_path / 'single.npz'
    with open(single, 'wb') as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ValueError, match='single.npz.*not a .npz archive'):
        load_cam(str(single))


@pytest.mark.parametrize('cam, keys, match', [
    (np.zeros((2, 3), np.float16), np.zeros(2, np.int64), 'shape'),
    (np.zeros((2, 3, 3), np.float16), np.zeros(3, np.int64), 'keys has 3'),
    (np.array([[[np.inf]]], np.float16), np.zeros(1, np.int64), 'NaN or inf'),
])
def test_load_rejects_invalid_content(tmp_path, cam, keys, match):
    path = tmp_path / 'c.npz'
    np.savez(path, cam=cam, keys=keys)
    with pytest.raises(ValueError, match=f'c.npz.*{match}'):
        load_cam(str(path))
    assert zipfile.is_zipfile(path)


def test_missing_ids_and_is_complete(tmp_path):
    ids = ['a', 'b', 'c']
    assert missing_ids(str(tmp_path), ids) == ids and not is_complete(str(tmp_path), ids)
    save_cam(cam_path(str(tmp_path), 'b'), np.zeros((0, 1, 1)), [])
    (tmp_path / '.c.npz.tmp').write_bytes(b'partial')  # a leftover temp file is not a finished CAM
    assert missing_ids(str(tmp_path), ids) == ['a', 'c']
    for i in ('a', 'c'):
        save_cam(cam_path(str(tmp_path), i), np.zeros((0, 1, 1)), [])
    assert is_complete(str(tmp_path), ids) and missing_ids(str(tmp_path), ids) == []
    assert is_complete(str(tmp_path), [])


def test_atomic_write_failure_leaves_nothing(tmp_path):
    path = str(tmp_path / 'out.npz')
    save_cam(path, np.zeros((1, 2, 2)), [4])

    def broken(f):
        f.write(b'half')
        raise RuntimeError('disk full')

    with pytest.raises(RuntimeError, match='disk full'):
        atomic_write(path, broken)
    assert os.listdir(tmp_path) == ['out.npz']
    assert load_cam(path)[1].tolist() == [4]  # the old file is untouched


def _cams(tmp_path, keys_by_id):
    cam_dir = str(tmp_path / 'cams')
    for img_id, keys in keys_by_id.items():
        save_cam(cam_path(cam_dir, img_id), np.ones((len(keys), 2, 3), np.float32), np.array(keys, np.int64))
    return cam_dir


def test_load_cam_keys_reads_the_keys_only(tmp_path):
    cam_dir = _cams(tmp_path, dict(a=[1, 4]))
    assert load_cam_keys(cam_path(cam_dir, 'a')).tolist() == [1, 4]
    np.savez(str(tmp_path / 'nokeys.npz'), cam=np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r'nokeys\.npz cannot be read as a CAM archive: missing entry keys'):
        load_cam_keys(str(tmp_path / 'nokeys.npz'))
    np.savez(str(tmp_path / 'pickled.npz'), keys=np.array([{'a': 1}], dtype=object))
    with pytest.raises(ValueError, match=r'pickled\.npz cannot be read'):
        load_cam_keys(str(tmp_path / 'pickled.npz'))


def test_check_cam_folder_accepts_the_dataset_own_cams(tmp_path):
    cam_dir = _cams(tmp_path, dict(a=[0], b=[1, 4]))
    labels = dict(a=np.array([1, 0, 0, 0, 0]), b=np.array([0, 1, 0, 0, 1]))
    check_cam_folder(cam_dir, ['a', 'b'], num_fg_classes=5, labels=labels)


def test_check_cam_folder_refuses_cams_of_another_dataset(tmp_path):
    cam_dir = _cams(tmp_path, dict(a=[0], b=[11, 14]))
    with pytest.raises(FileNotFoundError, match=r'1 of 2 images have no CAM file in .*cams.*zz\.npz'):
        check_cam_folder(cam_dir, ['a', 'zz'])
    with pytest.raises(ValueError, match=r'b\.npz has class ids \[11, 14\] but the dataset has 5 foreground '
                                         r'classes \(ids 0\.\.4\): CAMs of another dataset\?'):
        check_cam_folder(cam_dir, ['a', 'b'], num_fg_classes=5)
    labels = dict(a=np.array([0, 1] + [0] * 13), b=np.zeros(15))
    with pytest.raises(ValueError, match=r"a\.npz has class ids \[0\] but by cls\.npy 'a' has the classes \[1\]"):
        check_cam_folder(cam_dir, ['a', 'b'], num_fg_classes=15, labels=labels, label_file='cls.npy')
    with pytest.raises(ValueError, match=r"image id '\.\./a' from CAM folder .* is not a plain file name"):
        check_cam_folder(cam_dir, ['../a'])
    with pytest.raises(FileNotFoundError, match='CAM folder .*nope does not exist'):
        check_cam_folder(str(tmp_path / 'nope'), ['a'])



def test_malicious_cam_file_runs_no_code(tmp_path, touch_marker):
    marker = tmp_path / 'marker'
    path = str(tmp_path / 'evil.npz')
    np.savez(path, cam=np.array([touch_marker(marker)], dtype=object), keys=np.array([touch_marker(marker)]))
    with pytest.raises(ValueError, match=r'CAM file .*evil\.npz cannot be read as a CAM archive'):
        load_cam(path)
    with pytest.raises(ValueError, match=r'CAM file .*evil\.npz cannot be read as a CAM archive'):
        load_cam_keys(path)
    with pytest.raises(ValueError, match=r'evil\.npz cannot be read'):
        check_cam_folder(str(tmp_path), ['evil'])
    assert not marker.exists()


class _Sample:
    """What the writer reads of a model output: ``metainfo['img_id']``, ``cam`` and ``cam_keys``."""

    def __init__(self, img_id, cam, keys):
        self.metainfo, self.cam, self.cam_keys = dict(img_id=img_id), cam, keys


def test_cam_file_writer_writes_what_save_cam_writes(tmp_path):
    torch.manual_seed(0)
    batches = [[_Sample(f'img_{b}_{i}', torch.rand(2, 5, 7, dtype=torch.float64), torch.tensor([1, 4]))
                for i in range(3)] for b in range(5)]
    with CAMFileWriter(str(tmp_path / 'thread'), max_pending=1) as writer:
        os.makedirs(writer.out_dir)
        for batch in batches:
            writer.submit(batch)
    assert writer.written == 15
    os.makedirs(tmp_path / 'direct')
    for sample in sum(batches, []):
        save_cam(cam_path(str(tmp_path / 'direct'), sample.metainfo['img_id']), sample.cam.float(),
                 sample.cam_keys)
    for sample in sum(batches, []):
        name = sample.metainfo['img_id'] + '.npz'
        a, b = load_cam(str(tmp_path / 'thread' / name)), load_cam(str(tmp_path / 'direct' / name))
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert sorted(os.listdir(tmp_path / 'thread')) == sorted(os.listdir(tmp_path / 'direct'))


def test_cam_file_writer_raises_a_failed_write_naming_the_file(tmp_path):
    bad = _Sample('img_nan', torch.full((1, 2, 2), float('nan')), torch.tensor([0]))
    writer = CAMFileWriter(str(tmp_path))
    # raised by submit when the thread has already failed, otherwise by close
    with pytest.raises(ValueError, match=r'img_nan\.npz: cam contains NaN'):
        writer.submit([_Sample('img_ok', torch.ones(1, 2, 2), torch.tensor([0])), bad])
        writer.close()
    assert writer.close() == 0  # nothing left pending
    assert os.listdir(tmp_path) == ['img_ok.npz']
    with pytest.raises(ValueError, match='max_pending must be at least 1'):
        CAMFileWriter(str(tmp_path), max_pending=0)


class _GatedCam:
    """A NaN map whose copy off the 'device' waits for ``gate``: the write fails only once the test lets it."""

    def __init__(self, gate):
        self.gate = gate

    def detach(self):
        return self

    def cpu(self):
        self.gate.wait(timeout=30)
        return torch.full((1, 2, 2), float('nan'))


def test_cam_file_writer_lets_the_body_error_through(tmp_path):
    import threading
    gate = threading.Event()
    with pytest.raises(KeyError, match='from the loop'):
        with CAMFileWriter(str(tmp_path)) as writer:
            writer.submit([_Sample('img_nan', _GatedCam(gate), torch.tensor([0]))])
            gate.set()  # the queued write fails now, after submit returned
            raise KeyError('from the loop')
    assert os.listdir(tmp_path) == []


def test_cam_file_writer_abort_finishes_the_queued_files_without_raising(tmp_path):
    import threading
    gate = threading.Event()
    writer = CAMFileWriter(str(tmp_path))
    writer.submit([_Sample('img_nan', _GatedCam(gate), torch.tensor([0]))])  # fails once the gate opens
    writer.submit([_Sample('img_ok', torch.ones(1, 2, 2), torch.tensor([0]))])
    gate.set()
    writer.abort()  # the caller's own error is the one to raise: the failed write's is not
    assert os.listdir(tmp_path) == ['img_ok.npz']  # queued behind the failed one, still written
    with pytest.raises(RuntimeError, match='after shutdown'):
        writer.submit([_Sample('img_late', torch.ones(1, 2, 2), torch.tensor([0]))])


def test_a_new_or_empty_cam_folder_records_its_weights(tmp_path):
    cam_dir = str(tmp_path / 'new' / 'cams')
    assert read_cam_record(cam_dir) is None
    assert record_new_cam_folder(cam_dir, 'aaaa000000000001', checkpoint='w/iter_4.pth', iteration=4)
    with open(os.path.join(cam_dir, CAM_RECORD_FILE)) as f:
        assert json.load(f) == dict(fingerprint='aaaa000000000001', checkpoint='w/iter_4.pth', iteration=4)
    assert check_cam_record(cam_dir, 'aaaa000000000001')['iteration'] == 4
    # still empty (e.g. a run killed before its first file): the next weights take it over
    assert record_new_cam_folder(cam_dir, 'bbbb000000000002')
    assert read_cam_record(cam_dir) == dict(fingerprint='bbbb000000000002', checkpoint=None, iteration=None)
    # with CAM files, the record stays (a temporary file of a killed writer is no CAM file)
    open(os.path.join(cam_dir, '.a.npz~host~1~r.tmp'), 'wb').close()
    assert record_new_cam_folder(cam_dir, 'cccc000000000003')
    save_cam(cam_path(cam_dir, 'a'), np.zeros((1, 2, 2)), [0])
    assert not record_new_cam_folder(cam_dir, 'dddd000000000004')
    assert read_cam_record(cam_dir)['fingerprint'] == 'cccc000000000003'


def test_a_cam_folder_of_other_weights_is_refused(tmp_path):
    cam_dir = str(tmp_path / 'cams')
    record_new_cam_folder(cam_dir, 'aaaa000000000001', checkpoint='w/iter_4.pth', iteration=4)
    save_cam(cam_path(cam_dir, 'a'), np.zeros((1, 2, 2)), [0])
    with pytest.raises(ValueError) as refused:
        check_cam_record(cam_dir, 'bbbb000000000002')
    assert str(refused.value) == (
        f'CAM folder {cam_dir} holds the CAMs of other weights: written by weights aaaa000000000001 (checkpoint '
        "w/iter_4.pth, iteration 4), while this model's weights are bbbb000000000002. Writing there would mix two "
        "models' CAMs (and keep the other's files as if finished). Delete "
        f"{cam_dir}, or write to another folder (the CAMGenerationHook's out_dir, or tools/test.py --cam-dir).")


def test_a_cam_folder_without_record_is_used_with_a_warning(tmp_path, logged_warnings):
    cam_dir = str(tmp_path / 'cams')
    assert check_cam_record(cam_dir, 'aaaa000000000001') is None  # no folder yet: nothing to say
    assert logged_warnings == []
    save_cam(cam_path(cam_dir, 'a'), np.zeros((1, 2, 2)), [0])  # written by an older version
    assert check_cam_record(cam_dir, 'aaaa000000000001') is None
    assert len(logged_warnings) == 1 and logged_warnings[0].startswith(
        f'CAM folder {cam_dir} has no .cams_of.json (written before CAM folders recorded their weights)')


def test_a_folder_without_record_is_recorded_only_when_the_run_rewrote_all_of_it(tmp_path, logged_warnings):
    cam_dir = str(tmp_path / 'cams')
    for img_id in ('a', 'b', 'c'):  # written by an older version; a temporary file of a killed writer besides
        save_cam(cam_path(cam_dir, img_id), np.zeros((1, 2, 2)), [0])
    open(os.path.join(cam_dir, '.a.npz~host~1~r.tmp'), 'wb').close()
    # a run that wrote a and b only (another split, or one that did not reach c): c may be another model's
    assert not record_rewritten_cam_folder(cam_dir, ['a', 'b'], 'aaaa000000000001', checkpoint='w/iter_4.pth')
    assert read_cam_record(cam_dir) is None
    assert len(logged_warnings) == 1 and logged_warnings[0].startswith(
        f'CAM folder {cam_dir} stays without .cams_of.json: this run wrote 2 CAM files there, but not 1 '
        f"others, which may be another model's: {cam_path(cam_dir, 'c')}. Delete {cam_dir}")
    # every file rewritten (ids of files it wrote elsewhere do not matter): recorded
    assert record_rewritten_cam_folder(cam_dir, ['c', 'b', 'a', 'd'], 'aaaa000000000001', checkpoint='w/iter_4.pth')
    assert read_cam_record(cam_dir) == dict(fingerprint='aaaa000000000001', checkpoint='w/iter_4.pth',
                                            iteration=None)
    # a folder that has a record keeps it
    assert not record_rewritten_cam_folder(cam_dir, ['a', 'b', 'c'], 'bbbb000000000002')
    assert read_cam_record(cam_dir)['fingerprint'] == 'aaaa000000000001'


@pytest.mark.parametrize('text', ['{"fingerprint": 3}', '[1]', '{not json'])
def test_an_unreadable_cam_record_names_the_file(tmp_path, text):
    (tmp_path / CAM_RECORD_FILE).write_text(text)
    with pytest.raises(ValueError, match=f'{tmp_path / CAM_RECORD_FILE}: unreadable record of the weights that '
                       f'wrote the CAM files of {tmp_path} .*delete {tmp_path} to write its CAMs again'):
        read_cam_record(str(tmp_path))
