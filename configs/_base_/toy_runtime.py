# default_runtime.py for the CPU-sized toy trainings of a few hundred iterations (configs/toy/): a log line every
# 25 iterations and a checkpoint every 100 (the last 2 kept).
from mmengine.config import read_base
from mmengine.hooks import CheckpointHook, LoggerHook

with read_base():
    from .default_runtime import *  # noqa: F401,F403

default_hooks.update(
    logger=dict(type=LoggerHook, interval=25, log_metric_by_epoch=False),
    checkpoint=dict(type=CheckpointHook, by_epoch=False, interval=100, max_keep_ckpts=2, save_last=True))
