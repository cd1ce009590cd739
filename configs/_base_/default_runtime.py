# Runtime shared by every csd_mm config (Python-style MMEngine config: classes as `type`, no scope).
from mmengine.hooks import (CheckpointHook, DistSamplerSeedHook, IterTimerHook, LoggerHook,
                            ParamSchedulerHook)
from mmengine.runner import LogProcessor
from mmengine.visualization import LocalVisBackend, Visualizer

from csd_mm.engine.hooks import FiniteLossHook, NumClassesCheckHook

default_scope = None
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # csd_mm.compat.setup_cpu_distributed switches this to gloo on CPU-only machines
    dist_cfg=dict(backend='nccl'),
)
default_hooks = dict(
    timer=dict(type=IterTimerHook),
    logger=dict(type=LoggerHook, interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type=ParamSchedulerHook),
    checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=1000, max_keep_ckpts=2, save_last=True),
    sampler_seed=dict(type=DistSamplerSeedHook),
    # bad input: a non-finite loss stops training (naming iteration and loss); a model / dataset class count
    # mismatch is refused before training or testing (docs/troubleshooting.md)
    finite_loss=dict(type=FiniteLossHook),
    num_classes_check=dict(type=NumClassesCheckHook),
)
vis_backends = [dict(type=LocalVisBackend)]
visualizer = dict(type=Visualizer, vis_backends=vis_backends, name='visualizer')
log_processor = dict(type=LogProcessor, window_size=50, by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
