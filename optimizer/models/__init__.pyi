"""Public API of :mod:`optimizer.models` (loaded lazily; see ``__init__.py``)."""

from .boosted import (
    LEARNERS as LEARNERS,
)
from .boosted import (
    BoostedConversionModel as BoostedConversionModel,
)
from .calibration import (
    CALIBRATIONS as CALIBRATIONS,
)
from .calibration import (
    Calibrator as Calibrator,
)
from .conversion import (
    ARCHITECTURES as ARCHITECTURES,
)
from .conversion import (
    BOOSTED as BOOSTED,
)
from .conversion import (
    FEATURES as FEATURES,
)
from .conversion import (
    ConversionModels as ConversionModels,
)
from .conversion import (
    load_model as load_model,
)
from .coupon import (
    HEADS as HEADS,
)
from .coupon import (
    CouponConversionModel as CouponConversionModel,
)
from .coupon import (
    enforce_menu_monotonicity as enforce_menu_monotonicity,
)
from .decision_focused import (
    AllocationTerms as AllocationTerms,
)
from .decision_focused import (
    fine_tune_allocation as fine_tune_allocation,
)
from .features import (
    FeatureEncoder as FeatureEncoder,
)
from .mapped import (
    data_of as data_of,
)
from .mapped import (
    evaluation_rows as evaluation_rows,
)
from .mapped import (
    iter_customers as iter_customers,
)
from .mapped import (
    read_customers as read_customers,
)
from .mapped import (
    train_on_data as train_on_data,
)
from .natural import (
    NaturalConversionModel as NaturalConversionModel,
)
from .redemption import (
    REDEMPTION_MODELS as REDEMPTION_MODELS,
)
from .redemption import (
    RedemptionModel as RedemptionModel,
)
from .scoring import (
    ScoreRun as ScoreRun,
)
from .scoring import (
    auto_chunk_rows as auto_chunk_rows,
)
from .scoring import (
    score_file as score_file,
)
from .shared_trunk import (
    SharedTrunkModel as SharedTrunkModel,
)
