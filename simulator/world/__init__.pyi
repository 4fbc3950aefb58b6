"""Public API of :mod:`simulator.world` (loaded lazily; see ``__init__.py``)."""

from .generation import (
    OUTPUT_TABLES as OUTPUT_TABLES,
)
from .generation import (
    WORLD_FILES as WORLD_FILES,
)
from .generation import (
    World as World,
)
from .generation import (
    WorldChunk as WorldChunk,
)
from .generation import (
    WorldSummary as WorldSummary,
)
from .generation import (
    build_world as build_world,
)
from .generation import (
    iter_world as iter_world,
)
from .generation import (
    world_campaign as world_campaign,
)
from .generation import (
    write_world as write_world,
)
from .history import (
    MANUAL_CAMPAIGN as MANUAL_CAMPAIGN,
)
from .history import (
    RANDOMIZED_CAMPAIGN as RANDOMIZED_CAMPAIGN,
)
from .history import (
    campaign_log as campaign_log,
)
from .population import (
    BLOCK_USERS as BLOCK_USERS,
)
from .population import (
    UserBlock as UserBlock,
)
from .population import (
    WorldParams as WorldParams,
)
from .population import (
    generate_users as generate_users,
)
from .response import (
    ResponseParams as ResponseParams,
)
from .response import (
    Truth as Truth,
)
from .response import (
    coupon_rates as coupon_rates,
)
from .response import (
    true_response as true_response,
)
