"""Public API of :mod:`optimizer` (loaded lazily; see ``__init__.py``)."""

from .choices import (
    BASELINES as BASELINES,
)
from .choices import (
    POLICIES as POLICIES,
)
from .choices import (
    MatchOn as MatchOn,
)
from .choices import (
    Objective as Objective,
)
from .choices import (
    Policy as Policy,
)
from .choices import (
    Solver as Solver,
)
from .errors import InputError as InputError
from .evaluation import (
    auuc as auuc,
)
from .evaluation import (
    coverage_knee as coverage_knee,
)
from .evaluation import (
    drift_table as drift_table,
)
from .evaluation import (
    evaluate_scores as evaluate_scores,
)
from .evaluation import (
    psi as psi,
)
from .evaluation import (
    qini_coefficient as qini_coefficient,
)
from .evaluation import (
    uplift_at_k as uplift_at_k,
)
from .io import (
    Denomination as Denomination,
)
from .io import (
    Menu as Menu,
)
from .io import (
    load_criteo as load_criteo,
)
from .io import (
    load_hillstrom as load_hillstrom,
)
from .io import (
    load_log as load_log,
)
from .io import (
    load_menu as load_menu,
)
from .io import (
    load_scores as load_scores,
)
from .io import (
    load_starbucks as load_starbucks,
)
from .io import (
    load_truth as load_truth,
)
from .io import (
    load_user_ids as load_user_ids,
)
from .io import (
    load_users as load_users,
)
from .io import (
    read_table as read_table,
)
from .io import (
    training_rows as training_rows,
)
from .io import (
    write_table as write_table,
)
from .models import (
    Calibrator as Calibrator,
)
from .models import (
    ConversionModels as ConversionModels,
)
from .models import (
    FeatureEncoder as FeatureEncoder,
)
from .models import (
    load_model as load_model,
)
from .models import (
    score_file as score_file,
)
from .planning import (
    CampaignConfig as CampaignConfig,
)
from .planning import (
    Candidates as Candidates,
)
from .planning import (
    GridResult as GridResult,
)
from .planning import (
    Overrides as Overrides,
)
from .planning import (
    Plan as Plan,
)
from .planning import (
    PlanningRequest as PlanningRequest,
)
from .planning import (
    Vary as Vary,
)
from .planning import (
    build_grid as build_grid,
)
from .planning import (
    check_plan as check_plan,
)
from .planning import (
    load_campaign as load_campaign,
)
from .planning import (
    plan_campaign as plan_campaign,
)
from .planning import (
    plan_grid as plan_grid,
)
from .planning import (
    resolve_request as resolve_request,
)
from .planning import (
    select_candidates as select_candidates,
)
from .progress import Progress as Progress
from .progress import Step as Step
from .reporting import (
    TableData as TableData,
)
from .reporting import (
    render_page as render_page,
)
from .solvers import (
    CampaignProblem as CampaignProblem,
)
from .solvers import (
    Constraints as Constraints,
)
from .solvers import (
    SegmentShare as SegmentShare,
)
from .solvers import (
    build_problem as build_problem,
)
from .solvers import (
    solve_dual as solve_dual,
)
from .solvers import (
    solve_milp as solve_milp,
)
