"""Public API of :mod:`optimizer.solvers` (loaded lazily; see ``__init__.py``)."""

from .budget import (
    BudgetSolution as BudgetSolution,
)
from .budget import (
    solve_budget as solve_budget,
)
from .constraints import (
    Constraints as Constraints,
)
from .constraints import (
    LinearRow as LinearRow,
)
from .constraints import (
    SegmentShare as SegmentShare,
)
from .constraints import (
    fill_plan as fill_plan,
)
from .constraints import (
    linear_rows as linear_rows,
)
from .constraints import (
    repair_plan as repair_plan,
)
from .constraints import (
    violations as violations,
)
from .dual import (
    DualSolution as DualSolution,
)
from .dual import (
    solve_dual as solve_dual,
)
from .dual import (
    solve_dual_rows as solve_dual_rows,
)
from .hull import (
    HullSegments as HullSegments,
)
from .hull import (
    HullSolution as HullSolution,
)
from .hull import (
    budget_for_return as budget_for_return,
)
from .hull import (
    frontier as frontier,
)
from .hull import (
    hull_segments as hull_segments,
)
from .hull import (
    solve_hull as solve_hull,
)
from .instances import (
    random_constraints as random_constraints,
)
from .instances import (
    random_instance as random_instance,
)
from .instances import (
    random_problem as random_problem,
)
from .milp import (
    MilpSolution as MilpSolution,
)
from .milp import (
    solve_milp as solve_milp,
)
from .problem import (
    OBJECTIVES as OBJECTIVES,
)
from .problem import (
    CampaignProblem as CampaignProblem,
)
from .problem import (
    Objective as Objective,
)
from .problem import (
    build_problem as build_problem,
)
from .problem import (
    concat_problems as concat_problems,
)
from .streamed_dual import (
    StreamedDual as StreamedDual,
)
from .streamed_dual import (
    solve_dual_streamed as solve_dual_streamed,
)
from .streaming import (
    Chunk as Chunk,
)
from .streaming import (
    StreamedBudget as StreamedBudget,
)
from .streaming import (
    solve_budget_streamed as solve_budget_streamed,
)
