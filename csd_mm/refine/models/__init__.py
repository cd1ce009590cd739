"""Networks of the refinement stage (``nn.Module`` objects in mmseg's ``MODELS``): PSA's AffinityNet and IRN's
BoundaryNet."""
from .affinity_net import AffinityNet
from .boundary_net import BoundaryNet

__all__ = ['AffinityNet', 'BoundaryNet']
