"""Fixtures shared by the tool tests: run a tool the way a user does (its command line, in a subprocess or in
this process) and stand-in CAM files for the refinement tools."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, List, Sequence, Tuple

import numpy as np
import pytest


def _run_subprocess(args: Sequence, cwd, timeout: int = 600) -> str:
    """Runs ``python <args>`` in ``cwd`` (one torch thread: the suite shares 2 cores); returns stdout + stderr
    and fails the test with the output's tail when the tool fails."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable] + [str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}')
    return proc.stdout + proc.stderr


@pytest.fixture(scope='session')
def run_tool() -> Callable[..., str]:
    """``run_tool([tool.py, *args], cwd, timeout=600) -> output``: a tool in a subprocess."""
    return _run_subprocess


@pytest.fixture
def run_tool_inprocess(monkeypatch, capsys) -> Callable[[Sequence], str]:
    """``run_tool_inprocess([tool.py, *args]) -> output``: a tool's ``main()`` in this process (faster; the
    command line is set as ``sys.argv``)."""

    def run(args: Sequence) -> str:
        path = Path(args[0])
        spec = importlib.util.spec_from_file_location(path.stem, path)
        tool = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tool)
        capsys.readouterr()
        monkeypatch.setattr(sys, 'argv', [str(a) for a in args])
        tool.main()
        out = capsys.readouterr()
        return out.out + out.err

    return run


@pytest.fixture(scope='session')
def write_stand_in_cams() -> Callable[[Path, Path], List[str]]:
    """``write_stand_in_cams(data_root, cam_dir) -> ids``: CAM files of every train_aug image that roughly cover
    the ground-truth objects (0.8 inside plus noise up to 0.2), stand-ins for a CAM network's output."""

    def write(root: Path, cam_dir: Path) -> List[str]:
        import csd_mm  # noqa: F401
        from csd_mm.utils.cam_io import cam_path, save_cam
        from csd_mm.utils.fileio import read_png
        ids = (root / 'ImageSets/Segmentation/train_aug.txt').read_text().split()
        rng = np.random.default_rng(0)
        for img_id in ids:
            gt = read_png(str(root / 'SegmentationClassAug' / f'{img_id}.png'))
            keys = np.array(sorted(v - 1 for v in np.unique(gt) if 0 < v < 255), dtype=np.int64)
            cam = np.stack([(gt == k + 1) * 0.8 for k in keys]).astype(np.float32) if keys.size else \
                np.zeros((0, ) + gt.shape, np.float32)
            cam = np.clip(cam + rng.random(cam.shape).astype(np.float32) * 0.2, 0, 1)
            save_cam(cam_path(str(cam_dir), img_id), cam, keys)
        return ids

    return write


@pytest.fixture
def toy_voc_with_stand_in_cams(tmp_path, monkeypatch, write_stand_in_cams) -> Tuple[Path, Path, List[str]]:
    """The test's ``tmp_path`` made the working folder (the toy configs read data/toy_voc from it), holding a small
    toy dataset (6 train_aug images, 1 val, seed 5) and stand-in CAM files of its train_aug images in cams/: the
    training data of the toy refiner networks. Returns (data root, CAM folder, train_aug ids)."""
    import csd_mm  # noqa: F401
    from csd_mm.datasets import make_toy_voc
    monkeypatch.chdir(tmp_path)
    root = tmp_path / 'data/toy_voc'
    make_toy_voc(str(root), num_train=6, num_val=1, seed=5)
    cam_dir = tmp_path / 'cams'
    return root, cam_dir, write_stand_in_cams(root, cam_dir)
