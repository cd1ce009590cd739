"""Writes class activation maps (CAMs) to disk, after training and during ``tools/test.py``."""
import copy
import os.path as osp
from typing import Optional, Tuple

import numpy as np
import torch
from mmengine.dataset import DefaultSampler
from mmengine.dist import all_gather_object, all_reduce, barrier, broadcast, get_dist_info
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop, Runner
from mmengine.utils import ProgressBar
from mmseg.registry import HOOKS

from csd_mm.utils.cam_io import (CAMFileWriter, cam_path, check_cam_record, holds_cam_files, read_cam_record,
                                 record_new_cam_folder, record_rewritten_cam_folder)
from csd_mm.utils.checkpoint import unwrap_model, weights_fingerprint
from csd_mm.utils.fileio import StaleOutputError, remove_stale_temp_files
from csd_mm.utils.paths import resolve_inside
from csd_mm.utils.rank_errors import DeferredRankError

__all__ = ['CAMGenerationHook']


@HOOKS.register_module()
class CAMGenerationHook(Hook):
    """Generates one CAM file per image with the trained classifier.

    Two roles, both writing the format of :mod:`csd_mm.utils.cam_io` (``<img_id>.npz``, atomic writes):

    * ``after_train``: when ``dataloader`` is given, runs the model in ``predict`` mode over that dataset
      (typically every training image, which the source bank of CSD and the pseudo masks need). Images whose
      file already exists are skipped, so a rerun (or a crashed run resumed) only does the missing ones.
      Distributed: the images are split over the ranks with a non-padding sampler, so each image is computed
      and written exactly once, by every rank with rank 0's batch-norm statistics (those of the checkpoint;
      mmengine's DDP wrapper does not broadcast buffers, so each rank's running statistics drift apart).
    * ``after_test_iter``: when ``save_in_test`` is True, writes the CAMs that the test loop computed (the
      predictions that :class:`~csd_mm.evaluation.SeedMetric` scores), so ``tools/test.py`` leaves them on disk.

    Both roles first compare the model's :func:`~csd_mm.utils.checkpoint.weights_fingerprint` with the record
    of the weights that wrote ``out_dir`` (``.cams_of.json``, :func:`~csd_mm.utils.cam_io.check_cam_record`):
    a new or empty folder gets this model's record (rank 0, before the barrier after which every rank reads
    it); a folder of the same weights is resumed (a training resumed at its last iteration has them); a folder
    of other weights is an error on every rank, naming both fingerprints (delete it or choose another
    ``out_dir`` / ``--cam-dir``), never a silent reuse. ``tools/test.py`` rewrites every CAM of a folder with
    its record, and refuses another checkpoint's folder too rather than leave a folder of two models. A folder
    written before these records existed is used as before, with a warning; a test run that finishes, having
    rewritten every CAM file of such a folder, then records its weights there (rank 0, once every rank's
    writer has closed; a run that dies midway records nothing). A training that still has steps
    to run while ``out_dir`` (or the source bank) holds the outputs of recorded weights is refused before its
    first step, not after its last: its steps make new weights, which could not use them.
    The refusals raise :class:`~csd_mm.utils.fileio.StaleOutputError`, which the tools print as one line.

    A CAM file that cannot be written on one rank of a distributed run does not leave the other ranks waiting
    for it in a collective: that rank writes nothing more but stays in step (it finishes the test loop, whose
    metric gathers every rank's results; it skips its other images of the pass after training), then every rank
    learns at the hook's final collectives which ranks failed: those raise their error (naming the file), the
    others a ``RuntimeError`` naming them and the folder (:class:`~csd_mm.utils.rank_errors.DeferredRankError`;
    a single process raises at once).

    Args:
        out_dir (str): Output folder, relative to the runner's ``work_dir`` and inside it (an absolute path or
            one that climbs out with ``..`` is refused before anything runs, unless ``out_dir_from_cli``).
            Defaults to 'cams'.
        dataloader (dict, optional): Dataloader config for the pass after training. Its sampler is replaced by
            a non-shuffling, non-padding ``DefaultSampler``. Defaults to None (no pass after training).
        save_in_test (bool): Write the CAMs computed by the test loop. Defaults to True.
        skip_existing (bool): Skip images whose CAM file exists. Defaults to True.
        source_bank (dict, optional): When given, the pass after training also writes CSD's source bank
            (stage 0, :func:`~csd_mm.datasets.source_bank.build_source_bank`) from the CAMs of the
            single-label images of ``dataloader``'s dataset: ``dict(out_dir='source_bank', tau_fg=0.30,
            tau_bg=0.05)``; ``out_dir`` relative to ``work_dir``. With ``pseudo_mask_dir`` (a folder of
            ``<img_id>.png`` pseudo masks, relative to ``work_dir`` unless absolute) the bank is built from
            those masks instead of the CAMs (docs/method.md section 1, "Alternative prior"). The bank records
            these settings; a finished bank in ``out_dir`` made with other ones is an error (raised before
            training starts), not reused: delete it or choose another ``out_dir``. Its ``out_dir`` must lie
            inside ``work_dir`` too. Defaults to None.
        out_dir_from_cli (bool): ``out_dir`` is a folder the user named on the command line
            (``tools/test.py --cam-dir``), so it may lie anywhere. Defaults to False.
    """

    priority = 'LOW'

    def __init__(self,
                 out_dir: str = 'cams',
                 dataloader: Optional[dict] = None,
                 save_in_test: bool = True,
                 skip_existing: bool = True,
                 source_bank: Optional[dict] = None,
                 out_dir_from_cli: bool = False) -> None:
        self.out_dir = out_dir
        self.out_dir_from_cli = out_dir_from_cli
        self.source_bank = source_bank
        self.dataloader_cfg = dataloader
        self.save_in_test = save_in_test
        self.skip_existing = skip_existing
        self._test_writer: Optional[CAMFileWriter] = None
        self._test_errors: Optional[DeferredRankError] = None
        # the test run's weights and written ids, kept only for a CAM folder without a record (None otherwise)
        self._unrecorded_test: Optional[dict] = None
        self._start_iter: Optional[int] = None

    @staticmethod
    def _resolve(runner: Runner, path: str) -> str:
        return path if osp.isabs(path) else osp.join(runner.work_dir, path)

    def _resolve_out_dir(self, runner: Runner) -> str:
        if self.out_dir_from_cli:
            return self._resolve(runner, self.out_dir)
        return resolve_inside(runner.work_dir, self.out_dir, 'CAMGenerationHook out_dir')

    def before_run(self, runner: Runner) -> None:
        # config values must not send the outputs outside the work dir: refuse them before anything runs
        self._resolve_out_dir(runner)
        if self.source_bank is not None:
            self._source_bank_args(runner)

    def before_test(self, runner: Runner) -> None:
        # a killed tools/test.py leaves temporary files; its rerun writes every CAM again (the metric needs them)
        self._unrecorded_test = None
        if self.save_in_test:
            out_dir = self._resolve_out_dir(runner)
            fingerprint = weights_fingerprint(runner.model)
            if get_dist_info()[0] == 0:
                remove_stale_temp_files(out_dir)
                record_new_cam_folder(out_dir, fingerprint, self._checkpoint(runner))
            barrier()
            # another checkpoint's folder is refused, not rewritten; None: CAM files written before records
            # existed (a new folder has rank 0's record by now), which this run may record once it rewrote them
            if check_cam_record(out_dir, fingerprint) is None:
                self._unrecorded_test = dict(fingerprint=fingerprint, ids=set())
            self._test_writer = CAMFileWriter(out_dir)
            self._test_errors = DeferredRankError(f'writing the CAM files to {out_dir}')

    def after_test_iter(self, runner: Runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.save_in_test and outputs:
            # a failed write stops this rank's writes, not its test loop: the metric gathers every rank's
            # results after the loop, and the others would wait for this rank there (raised in after_test_epoch)
            self._test_errors.call(self._submit_test_outputs, outputs)

    def _submit_test_outputs(self, outputs) -> None:
        try:
            self._test_writer.submit(outputs)
        except BaseException:
            # no more batches for it: its queued files are finished before the error is raised (or kept)
            self._test_writer.abort()
            raise
        if self._unrecorded_test is not None:
            self._unrecorded_test['ids'].update(sample.metainfo['img_id'] for sample in outputs)

    def after_test_epoch(self, runner: Runner, metrics=None) -> None:
        if not self.save_in_test:
            return
        out_dir = self._resolve_out_dir(runner)
        writer, self._test_writer = self._test_writer, None
        errors, self._test_errors = self._test_errors, None
        written = self._close(writer, errors)
        counts = self._count_per_rank(written)
        # every rank takes part in the collectives (the metric's, these), then the failed ones raise their error
        errors.raise_if_any_failed()
        runner.logger.info(f'CAM files written per rank: {counts} ({sum(counts)} in all) to {out_dir}')
        if self._unrecorded_test is not None:
            # the collectives above returned, so every rank's writer has closed: each file named here is finished
            written_ids = set().union(*all_gather_object(self._unrecorded_test['ids']))
            if get_dist_info()[0] == 0:
                record_rewritten_cam_folder(out_dir, written_ids, self._unrecorded_test['fingerprint'],
                                            self._checkpoint(runner))
            self._unrecorded_test = None

    @staticmethod
    def _close(writer: CAMFileWriter, errors: DeferredRankError) -> int:
        """Closes ``writer`` (also after a failed write: its thread ends); returns the files it wrote, 0 when a
        write failed (an error of the close is kept in ``errors`` unless one is kept already)."""
        try:
            written = writer.close()
        except Exception as e:
            errors.keep(e)
        return 0 if errors.failed else written

    @staticmethod
    def _count_per_rank(done: int) -> list:
        """How many files each rank wrote (every rank takes part; a list of ``world_size`` ints)."""
        rank, world_size = get_dist_info()
        counts = torch.zeros(world_size, dtype=torch.int64)
        counts[rank] = done
        all_reduce(counts)
        return counts.tolist()

    def after_train(self, runner: Runner) -> None:
        if self.dataloader_cfg is None:
            return
        dataset = self._build_dataset(self.dataloader_cfg)
        self.generate(runner, dict(self.dataloader_cfg, dataset=dataset))
        if self.source_bank is not None:
            self.write_source_bank(runner, dataset)

    @staticmethod
    def _build_dataset(dataloader_cfg: dict):
        from mmseg.registry import DATASETS
        dataset = dataloader_cfg['dataset']
        if isinstance(dataset, dict):
            dataset = DATASETS.build(copy.deepcopy(dataset))
        dataset.full_init()
        return dataset

    def _source_bank_args(self, runner: Runner) -> Tuple[str, dict]:
        """The bank folder and the keyword arguments of ``build_source_bank`` (prior folder, thresholds)."""
        cfg = dict(self.source_bank)
        out_dir = resolve_inside(runner.work_dir, cfg.pop('out_dir', 'source_bank'),
                                 'CAMGenerationHook source_bank.out_dir')
        pseudo_mask_dir = cfg.pop('pseudo_mask_dir', None)
        if pseudo_mask_dir is not None:
            cfg.update(pseudo_mask_dir=self._resolve(runner, pseudo_mask_dir))
        else:
            cfg.update(cam_dir=self._resolve_out_dir(runner))
        return out_dir, cfg

    def check_source_bank(self, runner: Runner) -> None:
        """Refuses, on every rank, a finished bank in ``out_dir`` built with other settings than this hook's.

        Raises:
            ValueError: From :func:`~csd_mm.datasets.source_bank.check_source_bank_settings` (names the bank
                folder, the stored and the asked settings, and how to proceed).
        """
        from csd_mm.datasets.source_bank import check_source_bank_settings, source_bank_settings
        out_dir, kwargs = self._source_bank_args(runner)
        asked = {k: v for k, v in kwargs.items() if k in ('cam_dir', 'pseudo_mask_dir', 'tau_fg', 'tau_bg')}
        check_source_bank_settings(out_dir, source_bank_settings(**asked))

    def _checkpoint(self, runner: Runner) -> Optional[str]:
        """The checkpoint holding the model's weights, when known (for the CAM folder's record): the one the
        runner loaded or resumed from, unless training steps ran since (then the weights are newer)."""
        if self._start_iter is not None and runner.iter != self._start_iter:
            return None
        return getattr(runner, '_load_from', None)

    def before_train(self, runner: Runner) -> None:
        self._start_iter = runner.iter  # after loading / resuming: the iteration of the loaded weights
        # fail before training, not after it, when the bank this run would write exists with other settings
        if self.source_bank is not None and self.dataloader_cfg is not None:
            self.check_source_bank(runner)
        if self.dataloader_cfg is not None and self._steps_to_run(runner):
            self.refuse_outputs_of_recorded_weights(runner)

    @staticmethod
    def _steps_to_run(runner: Runner) -> bool:
        """Whether the train loop will run a step: by epochs for an epoch-based loop (a finished run resumed on
        fewer GPUs has a longer loader, so iter < max_iters there although no epoch is left), else by iterations."""
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            return runner.epoch < runner.max_epochs
        return runner.iter < runner.max_iters

    def refuse_outputs_of_recorded_weights(self, runner: Runner) -> None:
        """Refuses, before the first training step, a CAM folder or source bank that records weights.

        Training steps make new weights, so the CAM pass after them would refuse such a folder (and the bank
        built from its CAMs), after all the training time. (The one exception, a rerun that reproduces the
        recorded weights bit for bit, is refused too: its outputs are already there.) A training resumed at its
        last iteration runs no step and keeps both, so a crashed CAM pass resumes.

        Raises:
            StaleOutputError: Naming the folders, the weights they record and what to delete.
        """
        from csd_mm.datasets.source_bank import recorded_cam_fingerprint
        stale = []
        out_dir = self._resolve_out_dir(runner)
        record = read_cam_record(out_dir)
        if record is not None and holds_cam_files(out_dir):  # a record alone is rewritten by the next writer
            stale.append((out_dir, f'the CAMs of weights {record["fingerprint"]}'))
        bank_dir, bank_kwargs = self._source_bank_args(runner) if self.source_bank is not None else (None, {})
        if 'cam_dir' in bank_kwargs:  # a bank of the CAM prior (one of pseudo masks depends on no weights)
            fingerprint = recorded_cam_fingerprint(bank_dir)
            if fingerprint is not None:
                stale.append((bank_dir, f'a source bank built from the CAMs of weights {fingerprint}'))
        if stale:
            held = '; '.join(f'{folder} holds {what}' for folder, what in stale)
            folders = ' and '.join(folder for folder, _ in stale)
            raise StaleOutputError(
                f'{held}. This training runs iterations {runner.iter} to {runner.max_iters}, so it will end with '
                'other weights, whose CAM pass would refuse them after training. Delete '
                f'{folders} (or set other out_dirs of the CAMGenerationHook) before training.')

    def write_source_bank(self, runner: Runner, dataset) -> None:
        """Stage 0 of CSD: the source bank of the single-label images (rank 0 writes).

        The prior is the CAMs this hook wrote, or the pseudo masks of ``source_bank['pseudo_mask_dir']``. A
        finished bank in ``out_dir`` is reused only when built with the same settings; otherwise every rank
        raises (:meth:`check_source_bank`).
        """
        from csd_mm.datasets.source_bank import build_source_bank
        self.check_source_bank(runner)
        out_dir, kwargs = self._source_bank_args(runner)
        rank, _ = get_dist_info()
        if rank == 0:
            infos = [dataset.get_data_info(i) for i in range(len(dataset))]
            index = build_source_bank(out_dir, [d['img_id'] for d in infos],
                                      np.stack([d['gt_label'] for d in infos]), **kwargs)
            runner.logger.info(f'source bank: {len(index["entries"])} single-label images in {out_dir}')
        barrier()

    @staticmethod
    def _use_buffers_of_rank_0(model: torch.nn.Module) -> None:
        """Gives every rank rank 0's buffers (batch-norm statistics), so all ranks hold the checkpoint's weights.

        mmengine wraps the model with ``broadcast_buffers=False``, so during training every rank updates the
        running statistics from its own batches only and they drift apart, while the checkpoint holds rank 0's.
        (The parameters are equal on every rank: DDP averages the gradients.) mmengine's ``SyncBuffersHook``
        would average them, which matches no checkpoint.
        """
        if get_dist_info()[1] > 1:
            for buffer in unwrap_model(model).buffers():
                broadcast(buffer, src=0)

    def generate(self, runner: Runner, dataloader_cfg: dict) -> int:
        """Runs the CAM pass over a dataset; returns how many images this rank computed."""
        out_dir = self._resolve_out_dir(runner)
        dataset = self._build_dataset(dataloader_cfg)
        cfg = {k: copy.deepcopy(v) for k, v in dataloader_cfg.items() if k != 'dataset'}
        self._use_buffers_of_rank_0(runner.model)
        fingerprint = weights_fingerprint(runner.model)
        barrier()  # every rank lists the finished files before any rank writes new ones
        if get_dist_info()[0] == 0:
            remove_stale_temp_files(out_dir)  # a killed run's temporary files (live writers' are kept)
            record_new_cam_folder(out_dir, fingerprint, self._checkpoint(runner), runner.iter)
        todo = list(range(len(dataset)))
        if self.skip_existing:
            todo = [i for i in todo
                    if not osp.exists(cam_path(out_dir, dataset.get_data_info(i)['img_id']))]
        barrier()
        # after the barrier, so every rank reads rank 0's record of a new folder; every rank raises alike
        check_cam_record(out_dir, fingerprint)
        runner.logger.info(f'CAM generation: {len(todo)} of {len(dataset)} images to write to {out_dir}')
        if not todo:
            return 0
        dataset = dataset.get_subset(todo)
        cfg.update(dataset=dataset, sampler=dict(type=DefaultSampler, shuffle=False, round_up=False))
        cfg.setdefault('batch_size', 1)
        cfg.setdefault('num_workers', 0)
        loader = runner.build_dataloader(cfg, seed=runner.seed)
        rank, _ = get_dist_info()
        progress = ProgressBar(len(loader)) if rank == 0 else None
        model = runner.model
        model.eval()
        # files are written on a background thread while the next images go through the network
        errors = DeferredRankError(f'writing the CAM files to {out_dir}')
        with torch.no_grad(), CAMFileWriter(out_dir) as writer:
            for data_batch in loader:
                errors.call(writer.submit, model.test_step(data_batch))
                if errors.failed:
                    break  # no collective in this loop, so a failed rank skips its other images
                if progress is not None:
                    progress.update()
            done = self._close(writer, errors)  # (the with's close then finds nothing left to do)
        counts = self._count_per_rank(done)
        # the other ranks wait in the collectives above until a failed rank got there too, then all raise
        errors.raise_if_any_failed()
        runner.logger.info(f'CAM generation: written per rank {counts}')
        if sum(counts) != len(todo):  # the non-padding sampler gives each image to exactly one rank
            raise RuntimeError(f'CAM generation wrote {sum(counts)} files for {len(todo)} images to {out_dir}')
        return done
