# The CSD base on MS COCO 2014: the twin of voc12_csd.py (its header lists the readings and ablations, which
# apply unchanged). Nothing in CSD's wrapper depends on the dataset: the views' pipelines, crop included, come from
# the wrapped baseline dataset, and the source bank from the baseline's run. COCO-only changes would go here.
from mmengine.config import read_base

with read_base():
    from .voc12_csd import *  # noqa: F401,F403
