"""The conversion models: P(buy | no coupon) and P(buy | coupon d) per user, in PyTorch.

:class:`ConversionModels` trains both questions on a randomized campaign log and scores users
(the scores table of the data contract); underneath are scikit-learn-style estimators (the
article's natural and coupon models, or one shared-trunk network), a feature encoder, a
calibrator and the training loop. :func:`score_file` scores a table of any size in chunks.
"""

import lazy_loader

# The public API is listed in __init__.pyi; each name loads its module on first use.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
