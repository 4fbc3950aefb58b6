"""Public API of :mod:`optimizer.evaluation` (loaded lazily; see ``__init__.py``)."""

from .drift import (
    PSI_WARNING as PSI_WARNING,
)
from .drift import (
    drift_table as drift_table,
)
from .drift import (
    drifted as drifted,
)
from .logged import (
    LoggedRows as LoggedRows,
)
from .logged import (
    logged_rows as logged_rows,
)
from .logged import (
    plan_actions as plan_actions,
)
from .metrics import (
    auc as auc,
)
from .metrics import (
    auuc as auuc,
)
from .metrics import (
    classification_quality as classification_quality,
)
from .metrics import (
    coverage_curve as coverage_curve,
)
from .metrics import (
    coverage_knee as coverage_knee,
)
from .metrics import (
    expected_calibration_error as expected_calibration_error,
)
from .metrics import (
    log_loss as log_loss,
)
from .metrics import (
    perfect_qini_curve as perfect_qini_curve,
)
from .metrics import (
    perfect_uplift_curve as perfect_uplift_curve,
)
from .metrics import (
    psi as psi,
)
from .metrics import (
    qini_coefficient as qini_coefficient,
)
from .metrics import (
    qini_curve as qini_curve,
)
from .metrics import (
    true_uplift_at_k as true_uplift_at_k,
)
from .metrics import (
    uplift_at_k as uplift_at_k,
)
from .metrics import (
    uplift_calibration as uplift_calibration,
)
from .metrics import (
    uplift_curve as uplift_curve,
)
from .offline import (
    ESTIMATORS as ESTIMATORS,
)
from .offline import (
    METRICS as METRICS,
)
from .offline import (
    OFFLINE_DEFINITION as OFFLINE_DEFINITION,
)
from .offline import (
    OfflineValues as OfflineValues,
)
from .offline import (
    policy_values as policy_values,
)
from .outcome_models import (
    OUTCOME_MODELS as OUTCOME_MODELS,
)
from .outcome_models import (
    OutcomePredictions as OutcomePredictions,
)
from .outcome_models import (
    cross_fit_outcomes as cross_fit_outcomes,
)
from .outcome_models import (
    fold_of as fold_of,
)
from .plots import (
    EVALUATION_FIGURES as EVALUATION_FIGURES,
)
from .plots import (
    evaluation_figures as evaluation_figures,
)
from .quality import (
    UPLIFT_TOP_SHARE as UPLIFT_TOP_SHARE,
)
from .quality import (
    Evaluation as Evaluation,
)
from .quality import (
    evaluate_scores as evaluate_scores,
)
