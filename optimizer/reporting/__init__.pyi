"""Public API of :mod:`optimizer.reporting` (loaded lazily; see ``__init__.py``)."""

from .page import (
    Cards as Cards,
)
from .page import (
    Images as Images,
)
from .page import (
    Note as Note,
)
from .page import (
    Section as Section,
)
from .page import (
    figure_png as figure_png,
)
from .page import (
    render_page as render_page,
)
from .report import (
    campaign_report as campaign_report,
)
from .report import (
    log_section as log_section,
)
from .report import (
    plan_sections as plan_sections,
)
from .scale import (
    scale_plan_table as scale_plan_table,
)
from .sections import (
    baselines_section as baselines_section,
)
from .sections import (
    campaign_section as campaign_section,
)
from .sections import (
    frontier_section as frontier_section,
)
from .sections import (
    model_section as model_section,
)
from .sections import (
    plan_section as plan_section,
)
from .table import (
    Column as Column,
)
from .table import (
    TableData as TableData,
)
from .tables import (
    denomination_table as denomination_table,
)
from .tables import (
    drift_table_data as drift_table_data,
)
from .tables import (
    grid_tables as grid_tables,
)
from .tables import (
    inference_table as inference_table,
)
from .tables import (
    knee_sentence as knee_sentence,
)
from .tables import (
    plan_tables as plan_tables,
)
from .tables import (
    plans_table as plans_table,
)
from .tables import (
    quality_table as quality_table,
)
from .tables import (
    schema_table as schema_table,
)
from .tables import (
    scores_table as scores_table,
)
from .tables import (
    segment_table as segment_table,
)
from .tables import (
    training_table as training_table,
)
from .tables import (
    uplift_table as uplift_table,
)
from .terminal import (
    progress_bars as progress_bars,
)
from .terminal import (
    rich_table as rich_table,
)
from .valuation import (
    differences_table as differences_table,
)
from .valuation import (
    estimates_table as estimates_table,
)
from .valuation import (
    expected_table as expected_table,
)
from .valuation import (
    grid_log_table as grid_log_table,
)
from .valuation import (
    offline_tables as offline_tables,
)
