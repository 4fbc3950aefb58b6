"""Public API of :mod:`simulator.workflows` (loaded lazily; see ``__init__.py``)."""

from .model_cache import (
    MODEL_CACHE_VERSION as MODEL_CACHE_VERSION,
)
from .model_cache import (
    ScoredScenario as ScoredScenario,
)
from .model_cache import (
    cache_dir as cache_dir,
)
from .model_cache import (
    score_scenario as score_scenario,
)
from .report import (
    build_report as build_report,
)
from .valuation import (
    architecture_values as architecture_values,
)
from .valuation import (
    log_values as log_values,
)
from .valuation import (
    plans_and_log as plans_and_log,
)
from .valuation import (
    world_log as world_log,
)
from .whatif import (
    grid_stages as grid_stages,
)
from .whatif import (
    run_whatif as run_whatif,
)
