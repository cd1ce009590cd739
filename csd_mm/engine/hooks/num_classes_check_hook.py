"""Refuses a model whose number of classes disagrees with the dataset's class list, before training or testing."""
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import HOOKS

from csd_mm.utils.checkpoint import unwrap_model

__all__ = ['NumClassesCheckHook', 'num_classes_mismatch']


def num_classes_mismatch(model, classes: Sequence[str]) -> Optional[str]:
    """Says how ``model``'s class count disagrees with a dataset's class list (background first), or None.

    A CAM classifier (``model.head``, foreground classes only) must have ``len(classes) - 1`` classes; an mmseg
    segmentor (``decode_head`` / ``auxiliary_head``, background included) ``len(classes)``. Other models are not
    checked.

    Args:
        model: The built model (a DDP / TTA wrapper is unwrapped).
        classes (Sequence[str]): The dataset's ``metainfo['classes']``.

    Returns:
        str | None: ``'model.head.num_classes is 20 but ... 6 classes ...'``, or None when they agree.
    """
    model = unwrap_model(model)
    counts: List[Tuple[str, int, int]] = []
    if hasattr(model, 'decode_head'):
        for key in ('decode_head', 'auxiliary_head'):  # a cascade / several auxiliary heads: a list of heads
            heads = _heads(getattr(model, key, None))
            for i, head in enumerate(heads):
                name = f'model.{key}' if len(heads) == 1 else f'model.{key}[{i}]'
                counts.append((name, getattr(head, 'num_classes', None), len(classes)))
    elif hasattr(model, 'head'):
        counts.append(('model.head', getattr(model.head, 'num_classes', None), len(classes) - 1))
    for name, have, want in counts:
        if isinstance(have, int) and have != want:
            fg = 'foreground ' if name == 'model.head' else ''
            return (f'{name}.num_classes is {have} but the dataset lists {len(classes)} classes with background '
                    f'({want} {fg}classes expected): {list(classes)[:6]}{" ..." if len(classes) > 6 else ""}')
    return None


def _heads(head) -> list:
    """A model's head attribute as a list: none, one head, or the heads of a list / ``nn.ModuleList``."""
    if head is None:
        return []
    return list(head) if isinstance(head, (list, tuple, nn.ModuleList)) else [head]


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Checks, before training, validation and testing, that the model has as many classes as the dataset.

    A config whose ``num_classes`` disagrees with the dataset (e.g. a VOC model on a 5-class dataset) would
    otherwise fail at the first batch with a shape error, or (a segmentor with more classes) train silently.
    Every csd_mm config has it through ``configs/_base_/default_runtime.py`` (``default_hooks.num_classes_check``).

    Raises:
        ValueError: Naming the config key, both numbers and the dataset's classes.
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def _check(runner: Runner, dataloader, phase: str) -> None:
        dataset = getattr(dataloader, 'dataset', None)
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        if not classes:
            return
        problem = num_classes_mismatch(runner.model, classes)
        if problem:
            raise ValueError(f'NumClassesCheckHook ({phase} dataset {type(dataset).__name__}): {problem}')

    def before_train(self, runner: Runner) -> None:
        self._check(runner, runner.train_dataloader, 'train')

    def before_val(self, runner: Runner) -> None:
        self._check(runner, runner.val_dataloader, 'val')

    def before_test(self, runner: Runner) -> None:
        self._check(runner, runner.test_dataloader, 'test')
