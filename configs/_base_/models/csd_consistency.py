# CSD's dual consistency loss with the paper's defaults (Yang et al., BMVC 2023, Eq. 3-6; docs/method.md):
# the CSD configs put it on their CAM head as `model.head.consistency_loss`.
from csd_mm.models.losses import CSDConsistencyLoss

csd_consistency_loss = dict(
    type=CSDConsistencyLoss,
    lambda_fg=0.01,  # lambda_1 (Eq. 6)
    lambda_bg=0.1,  # lambda_2
    bg_score=0.0,  # the dummy background score M' (Eq. 4)
    bg_mode='class',  # 'saliency': the 2-way [M', sum_c M] reading of the paper's sigma
    fg_ratio=1.0,  # a score-map position counts when this share of its pixels is in the mask
    reduction='mean',  # 'sum': the paper's literal form
    warmup_iters=0)
