"""Public API of :mod:`simulator` (loaded lazily; see ``__init__.py``)."""

from .choices import BudgetMode as BudgetMode
from .choices import Design as Design
from .experiment import (
    Experiment as Experiment,
)
from .experiment import (
    experiment_request as experiment_request,
)
from .experiment import (
    run_experiment as run_experiment,
)
from .experiment import (
    simulate_campaign as simulate_campaign,
)
from .scenario import (
    Scenario as Scenario,
)
from .scenario import (
    load_scenario as load_scenario,
)
from .workflows import (
    ScoredScenario as ScoredScenario,
)
from .workflows import (
    build_report as build_report,
)
from .workflows import (
    run_whatif as run_whatif,
)
from .workflows import (
    score_scenario as score_scenario,
)
from .world import (
    World as World,
)
from .world import (
    WorldSummary as WorldSummary,
)
from .world import (
    build_world as build_world,
)
from .world import (
    write_world as write_world,
)
