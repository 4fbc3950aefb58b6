"""Public API of :mod:`simulator.experiment` (loaded lazily; see ``__init__.py``)."""

from .ab import (
    HOLDOUT as HOLDOUT,
)
from .ab import (
    METRICS as METRICS,
)
from .ab import (
    POINT_METRICS as POINT_METRICS,
)
from .ab import (
    Experiment as Experiment,
)
from .ab import (
    PointJob as PointJob,
)
from .ab import (
    experiment_request as experiment_request,
)
from .ab import (
    interval as interval,
)
from .ab import (
    run_experiment as run_experiment,
)
from .ab import (
    simulate_point as simulate_point,
)
from .engine import (
    ON_BUDGET_SPENT as ON_BUDGET_SPENT,
)
from .engine import (
    TRAITS as TRAITS,
)
from .engine import (
    EngineSettings as EngineSettings,
)
from .engine import (
    Outcome as Outcome,
)
from .engine import (
    simulate_campaign as simulate_campaign,
)
from .engine import (
    traits_of as traits_of,
)
from .reference import (
    simulate_per_user as simulate_per_user,
)
