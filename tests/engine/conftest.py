"""A tiny VOC-layout toy, a tiny CAM network and 2 gloo ranks for the real-Runner tests of the engine (hooks,
loops)."""
import multiprocessing
import socket
import time
from typing import Callable, Dict, List, Sequence, Tuple

import pytest
import torch
from mmcv.transforms import LoadImageFromFile
from mmpretrain.models import ResNet

from csd_mm.datasets import ImageLevelDataset, make_toy_voc
from csd_mm.datasets.transforms import PackCAMInputs
from csd_mm.models.classifiers import CAMClassifier
from csd_mm.models.heads import CAMHead


@pytest.fixture(scope='module')
def tiny_toy_voc(tmp_path_factory) -> Tuple[str, Sequence[str]]:
    """``(data_root, classes)`` of an 8-image, 32x32 toy dataset."""
    root = str(tmp_path_factory.mktemp('toy'))
    summary = make_toy_voc(root, num_train=8, num_val=2, size=32, seed=5)
    return root, summary['classes']


@pytest.fixture
def tiny_cam_parts() -> Callable[..., Tuple[Dict, Dict]]:
    """``parts(root, classes, loss_weight=1.0)`` -> the model and training dataset configs of a tiny CAM run."""

    def parts(root: str, classes: Sequence[str], loss_weight: float = 1.0) -> Tuple[Dict, Dict]:
        dataset = dict(type=ImageLevelDataset, data_root=root, ann_file='ImageSets/Segmentation/train_aug.txt',
                       label_file='cls_labels.npy', metainfo=dict(classes=tuple(classes)),
                       pipeline=[dict(type=LoadImageFromFile), dict(type=PackCAMInputs)])
        model = dict(type=CAMClassifier,
                     backbone=dict(type=ResNet, depth=18, stem_channels=8, base_channels=4, out_indices=(3, )),
                     head=dict(type=CAMHead, in_channels=32, num_classes=len(classes) - 1, loss_weight=loss_weight))
        return model, dataset

    return parts


def _one_thread(target: Callable, *args) -> None:
    """Runs ``target(*args)`` in a forked rank with one torch thread.

    The test process has run torch's OpenMP pool before forking; a forked child that enters a parallel region
    of that pool can hang (it did in CI, both ranks past 120 s, under a full suite on a loaded machine), which
    is why torch's own DataLoader workers set one thread too.
    """
    torch.set_num_threads(1)
    target(*args)


@pytest.fixture
def run_two_gloo_ranks() -> Callable[..., List[int]]:
    """``run(target, *args, timeout=120) -> hung ranks``: runs ``target(rank, port, *args)`` in 2 forked processes
    (fork: a test module is not importable by name in a new interpreter), ``port`` a free one for their
    ``init_process_group``, and waits for both at most ``timeout`` s in all; the ranks still running then are
    killed and returned (an empty list when both ended)."""

    def run(target: Callable, *args, timeout: float = 120) -> List[int]:
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        ctx = multiprocessing.get_context('fork')
        procs = [ctx.Process(target=_one_thread, args=(target, rank, port) + args) for rank in (0, 1)]
        for p in procs:
            p.start()
        deadline = time.monotonic() + timeout
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
        hung = [rank for rank, p in enumerate(procs) if p.is_alive()]
        for rank in hung:
            procs[rank].kill()
            procs[rank].join()
        return hung

    return run
