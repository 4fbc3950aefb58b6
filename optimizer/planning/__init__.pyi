"""Public API of :mod:`optimizer.planning` (loaded lazily; see ``__init__.py``)."""

from .campaign import (
    plan_campaign as plan_campaign,
)
from .candidates import (
    Candidates as Candidates,
)
from .candidates import (
    campaign_problem as campaign_problem,
)
from .candidates import (
    redemption_matrix as redemption_matrix,
)
from .candidates import (
    select_candidates as select_candidates,
)
from .config import (
    DEFAULT_MENU as DEFAULT_MENU,
)
from .config import (
    Budget as Budget,
)
from .config import (
    BudgetRange as BudgetRange,
)
from .config import (
    CampaignConfig as CampaignConfig,
)
from .config import (
    Costs as Costs,
)
from .config import (
    Manual as Manual,
)
from .config import (
    PlanConstraints as PlanConstraints,
)
from .config import (
    SegmentBounds as SegmentBounds,
)
from .config import (
    Targeting as Targeting,
)
from .config import (
    Vary as Vary,
)
from .config import (
    WhatIfSettings as WhatIfSettings,
)
from .config import (
    load_campaign as load_campaign,
)
from .decision_focused import (
    decision_focused_models as decision_focused_models,
)
from .out_of_core import (
    OutOfCorePlan as OutOfCorePlan,
)
from .out_of_core import (
    plan_budget_out_of_core as plan_budget_out_of_core,
)
from .plan import (
    ROI_DEFINITION as ROI_DEFINITION,
)
from .plan import (
    Plan as Plan,
)
from .plan import (
    PlanError as PlanError,
)
from .plan import (
    check_plan as check_plan,
)
from .plots import (
    GRID_FIGURES as GRID_FIGURES,
)
from .plots import (
    grid_figures as grid_figures,
)
from .policies import (
    ARTICLE_V2_THRESHOLD as ARTICLE_V2_THRESHOLD,
)
from .policies import (
    BASELINES as BASELINES,
)
from .policies import (
    POLICIES as POLICIES,
)
from .policies import (
    SOLVERS as SOLVERS,
)
from .policies import (
    Policy as Policy,
)
from .policies import (
    PolicySettings as PolicySettings,
)
from .policies import (
    Solver as Solver,
)
from .policies import (
    make_plan as make_plan,
)
from .request import (
    MatchOn as MatchOn,
)
from .request import (
    Overrides as Overrides,
)
from .request import (
    PlanningRequest as PlanningRequest,
)
from .request import (
    resolve_request as resolve_request,
)
from .selection import (
    OBJECTIVE_METRIC as OBJECTIVE_METRIC,
)
from .selection import (
    ArchitectureChoice as ArchitectureChoice,
)
from .selection import (
    compare_architectures as compare_architectures,
)
from .starter import (
    Inference as Inference,
)
from .starter import (
    campaign_toml as campaign_toml,
)
from .starter import (
    infer_campaign as infer_campaign,
)
from .sweep import (
    sweep_budgets as sweep_budgets,
)
from .sweep import (
    sweep_frame as sweep_frame,
)
from .valuation import (
    LOG_FIGURES as LOG_FIGURES,
)
from .valuation import (
    CampaignLog as CampaignLog,
)
from .valuation import (
    LogValuer as LogValuer,
)
from .valuation import (
    campaign_log_of as campaign_log_of,
)
from .valuation import (
    crossfit_plans as crossfit_plans,
)
from .valuation import (
    default_differences as default_differences,
)
from .valuation import (
    expected_and_estimated as expected_and_estimated,
)
from .valuation import (
    grid_values as grid_values,
)
from .valuation import (
    plan_with_models as plan_with_models,
)
from .valuation import (
    read_plan as read_plan,
)
from .valuation import (
    value_plans as value_plans,
)
from .whatif import (
    AXES as AXES,
)
from .whatif import (
    MAX_GRID_POINTS as MAX_GRID_POINTS,
)
from .whatif import (
    Context as Context,
)
from .whatif import (
    Grid as Grid,
)
from .whatif import (
    GridResult as GridResult,
)
from .whatif import (
    build_grid as build_grid,
)
from .whatif import (
    marginal_value as marginal_value,
)
from .whatif import (
    plan_grid as plan_grid,
)
from .whatif import (
    profit_peaks as profit_peaks,
)
