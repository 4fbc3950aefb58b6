"""Public API of :mod:`optimizer.io` (loaded lazily; see ``__init__.py``)."""

from .atomic import (
    MANIFEST as MANIFEST,
)
from .atomic import (
    atomic_directory as atomic_directory,
)
from .atomic import (
    atomic_path as atomic_path,
)
from .atomic import (
    check_replaceable as check_replaceable,
)
from .atomic import (
    clean_leftovers as clean_leftovers,
)
from .atomic import (
    manifest_files as manifest_files,
)
from .atomic import (
    verify_manifest as verify_manifest,
)
from .atomic import (
    write_manifest as write_manifest,
)
from .campaign_log import (
    select_log_rows as select_log_rows,
)
from .campaign_log import (
    training_rows as training_rows,
)
from .campaign_log import (
    user_split as user_split,
)
from .contract import (
    FEATURE_FAMILIES as FEATURE_FAMILIES,
)
from .contract import (
    USERS as USERS,
)
from .contract import (
    ColumnSpec as ColumnSpec,
)
from .contract import (
    TableSchema as TableSchema,
)
from .contract import (
    coupon_column as coupon_column,
)
from .contract import (
    log_schema as log_schema,
)
from .contract import (
    redeem_column as redeem_column,
)
from .contract import (
    scores_schema as scores_schema,
)
from .contract import (
    truth_schema as truth_schema,
)
from .datasets import (
    UpliftDataset as UpliftDataset,
)
from .datasets import (
    data_dir as data_dir,
)
from .datasets import (
    load_criteo as load_criteo,
)
from .datasets import (
    load_hillstrom as load_hillstrom,
)
from .datasets import (
    load_starbucks as load_starbucks,
)
from .figures import (
    figure_files as figure_files,
)
from .figures import (
    plain_text as plain_text,
)
from .figures import (
    plain_text_figures as plain_text_figures,
)
from .figures import (
    write_figures as write_figures,
)
from .mapping import (
    DataConfig as DataConfig,
)
from .mapping import (
    FeatureSpec as FeatureSpec,
)
from .mapping import (
    LogMap as LogMap,
)
from .mapping import (
    MappedUsers as MappedUsers,
)
from .mapping import (
    PropensityMap as PropensityMap,
)
from .mapping import (
    RandomizedRows as RandomizedRows,
)
from .mapping import (
    UsersMap as UsersMap,
)
from .mapping import (
    check_data as check_data,
)
from .mapping import (
    check_features as check_features,
)
from .mapping import (
    contract_data as contract_data,
)
from .mapping import (
    data_path as data_path,
)
from .mapping import (
    design_propensities as design_propensities,
)
from .mapping import (
    iter_users_mapped as iter_users_mapped,
)
from .mapping import (
    load_log_mapped as load_log_mapped,
)
from .mapping import (
    load_users_mapped as load_users_mapped,
)
from .menu import (
    DEFAULT_MENU as DEFAULT_MENU,
)
from .menu import (
    MONEY_MAX as MONEY_MAX,
)
from .menu import (
    NO_COUPON as NO_COUPON,
)
from .menu import (
    Denomination as Denomination,
)
from .menu import (
    Menu as Menu,
)
from .menu import (
    load_menu as load_menu,
)
from .menu import (
    menu_beside as menu_beside,
)
from .menu import (
    save_menu as save_menu,
)
from .strict_json import (
    json_dumps as json_dumps,
)
from .tables import (
    FILE_KINDS as FILE_KINDS,
)
from .tables import (
    check_writable as check_writable,
)
from .tables import (
    count_rows as count_rows,
)
from .tables import (
    guess_kind as guess_kind,
)
from .tables import (
    iter_table as iter_table,
)
from .tables import (
    iter_users as iter_users,
)
from .tables import (
    load_log as load_log,
)
from .tables import (
    load_scores as load_scores,
)
from .tables import (
    load_table as load_table,
)
from .tables import (
    load_truth as load_truth,
)
from .tables import (
    load_user_ids as load_user_ids,
)
from .tables import (
    load_users as load_users,
)
from .tables import (
    read_table as read_table,
)
from .tables import (
    table_columns as table_columns,
)
from .tables import (
    validate_frame as validate_frame,
)
from .tables import (
    write_table as write_table,
)
from .tomlfile import (
    read_toml as read_toml,
)
from .tomlfile import (
    write_toml as write_toml,
)
