import csd_mm.models as models
from csd_mm.models import backbones, classifiers, data_preprocessors, heads, losses


def test_public_classes_are_re_exported():
    """``csd_mm.models`` re-exports its subpackages' public names, like the other subpackages."""
    for sub in (backbones, classifiers, data_preprocessors, heads, losses):
        for name in sub.__all__:
            assert name in models.__all__ and getattr(models, name) is getattr(sub, name)
    assert all(hasattr(models, name) for name in models.__all__)
