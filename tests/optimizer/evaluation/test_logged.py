"""Logged rows read from a randomized log: arms, propensities, costs and order values.

Most cases use a two-treatment menu whose second treatment is a message with costs and a value
of its own, so that every source of a row's cost and GMV can be told apart:

* ``5off49``: a coupon (send cost: the campaign's ``sms_cost`` of 0.10);
* ``promo``: a message, send cost 0.25, 1.50 paid per conversion, a conversion worth 30.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError
from optimizer.evaluation import logged_rows, plan_actions
from optimizer.evaluation.logged import LoggedRows
from optimizer.io.menu import Denomination, Menu

MENU = Menu(
    denomination=(
        Denomination(name="5off49", face_value=5, threshold=49),
        Denomination(
            name="promo", kind="message", send_cost=0.25, conversion_cost=1.5, conversion_value=30
        ),
    )
)
ARMS = ("5off49", "promo", "none")


def _error(call) -> InputError:
    """The InputError ``call()`` raises."""
    with pytest.raises(InputError) as caught:
        call()
    return caught.value


def _fields(error: InputError) -> tuple:
    return error.message, error.source, error.column, error.key


def _log(denomination: list[str], propensity: list[float], **columns) -> pd.DataFrame:
    """A randomized log: user ids 1.., nothing converted unless ``columns`` say otherwise."""
    m = len(denomination)
    frame = {
        "user_id": np.arange(1, m + 1),
        "assignment": "randomized",
        "denomination": denomination,
        "converted": np.zeros(m, dtype=int),
        "order_value": np.zeros(m),
        "discount": np.zeros(m),
        "propensity": propensity,
    }
    frame.update(columns)
    return pd.DataFrame(frame)


def test_each_rows_cost_and_gmv_from_its_sources():
    """Costs per arm (send, face value paid, per conversion; nothing for no coupon) and the GMV
    fallbacks in order: the logged order value, the arm's conversion value, the basket, then
    ``order_value``; manual rows are dropped, with their basket entries."""
    nan, inf = float("nan"), float("inf")
    log = pd.DataFrame(
        {
            "user_id": [10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
            "assignment": ["randomized", "manual"] + ["randomized"] * 8,
            "denomination": [
                "5off49", "5off49", "promo", "promo", "none",
                "5off49", "none", "5off49", "promo", "none",
            ],
            "converted": [1, 1, 1, 0, 1, 1, 0, 0, 1, 1],
            "order_value": [60.0, 70.0, nan, nan, nan, inf, 0.0, 0.0, 25.0, nan],
            "discount": [5.0, 5.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 2.0],
            "propensity": [0.4, 0.5, 0.3, 0.35, 0.3, 0.45, 0.6, 0.45, 0.3, 0.2],
        }
    )  # fmt: skip
    basket = np.array([100.0, 101.0, 102.0, 103.0, 45.0, 80.0, 106.0, 107.0, 108.0, nan])
    rows = logged_rows(log, MENU, sms_cost=0.10, order_value=33.0, basket=basket)
    assert rows.arms == ARMS and rows.none == 2 and rows.n_rows == 9
    assert rows.user_id.tolist() == [10, 12, 13, 14, 15, 16, 17, 18, 19]
    assert rows.arm.tolist() == [0, 1, 1, 2, 0, 2, 0, 1, 2]
    assert rows.propensity.tolist() == [0.4, 0.3, 0.35, 0.3, 0.45, 0.6, 0.45, 0.3, 0.2]
    assert rows.converted.tolist() == [1, 1, 0, 1, 1, 0, 0, 1, 1]
    # 60 logged; 30 the promo's value (not the basket 102); 45 the basket (no value for no
    # coupon); 80 the basket (an infinite order value is no value); 25 logged (before the promo's
    # 30); 33 the campaign's order value (no basket either)
    assert rows.gmv.tolist() == [60, 30, 0, 45, 80, 0, 0, 25, 33]
    # 0.10 send + 5 paid; 0.25 send + 1.50 per conversion; 0.25 send alone; no coupon costs
    # nothing, even with a discount on the row
    want = [5.1, 1.75, 0.25, 0.0, 5.1, 0.0, 0.1, 1.75, 0.0]
    assert rows.cost == pytest.approx(want, rel=1e-15, abs=0)
    assert rows.arm_propensity is None


def test_a_log_of_bare_columns_keeps_every_row():
    """No ``assignment``, ``order_value`` or ``discount`` column: every row is randomized, the
    GMV comes from the basket or ``order_value`` and a coupon costs its send only."""
    log = pd.DataFrame(
        {
            "user_id": np.array([7, 5, 6, 8], dtype=np.int32),
            "denomination": ["5off49", "none", "promo", "5off49"],
            "converted": [1, 1, 1, 0],
            "propensity": [0.5, 0.25, 0.25, 0.45],
        }
    )
    rows = logged_rows(log, MENU, sms_cost=0.2, basket=np.array([40.0, np.nan, 50.0, 60.0]),
                       order_value=20.0)  # fmt: skip
    assert rows.user_id.tolist() == [7, 5, 6, 8] and rows.user_id.dtype == np.int64
    assert rows.gmv.tolist() == [40.0, 20.0, 30.0, 0.0]
    assert rows.cost == pytest.approx([0.2, 0.0, 1.75, 0.2], rel=1e-15, abs=0)


def test_columns_of_python_objects_come_out_as_float64():
    """Object columns (as a JSON or Excel reader gives, with ``pd.NA`` for a missing value) and
    integer columns still make float64 arrays, and an ``int16`` arm."""
    log = pd.DataFrame(
        {
            "user_id": [3, 1, 2, 4],
            "denomination": ["5off49", "none", "5off49", "none"],
            "propensity": pd.Series([0.5, 0.5, 0.5, 0.5], dtype=object),
            "converted": [1, 0, 0, 1],
            "order_value": pd.Series([60.0, pd.NA, pd.NA, 40.0], dtype=object),
            "discount": pd.Series([5, 0, 0, 0], dtype=object),
        }
    )
    rows = logged_rows(log, MENU, sms_cost=0.1)
    for name in ("propensity", "converted", "gmv", "cost"):
        assert getattr(rows, name).dtype == np.float64, name
    assert rows.arm.dtype == np.int16 and rows.user_id.dtype == np.int64
    assert rows.gmv.tolist() == [60.0, 0.0, 0.0, 40.0]
    assert rows.cost == pytest.approx([5.1, 0.0, 0.1, 0.0], rel=1e-15, abs=0)
    assert rows.converted.tolist() == [1.0, 0.0, 0.0, 1.0]


def test_converted_rows_without_an_order_value_are_refused():
    """Two converted rows have no order value, basket, arm value or ``order_value``."""
    log = _log(["5off49", "none", "none", "5off49"], [0.5] * 4, converted=[1, 1, 0, 1],
               order_value=[np.nan, np.nan, np.nan, 20.0])  # fmt: skip
    error = _error(lambda: logged_rows(log, MENU, sms_cost=0.1, source="a.csv"))
    assert _fields(error) == (
        "2 converted rows have no order value, basket or conversion_value; set "
        "costs.order_value (money per order)",
        "a.csv",
        None,
        "costs.order_value",
    )


def test_a_design_gives_every_rows_propensity_and_every_arms():
    """A design (P per arm, arms left out at 0) stands in for the ``propensity`` column and
    gives every arm's propensity per row; a ``propensity`` column still wins for the row's own."""
    log = _log(["5off49", "promo", "none", "5off49", "5off49", "promo", "none", "5off49"],
               [0.0] * 8).drop(columns="propensity")  # fmt: skip
    design = {"5off49": 0.5, "promo": 0.25, "none": 0.25}
    rows = logged_rows(log, MENU, sms_cost=0.1, propensity=design)
    assert rows.propensity.tolist() == [0.5, 0.25, 0.25, 0.5, 0.5, 0.25, 0.25, 0.5]
    assert rows.arm_propensity.shape == (8, 3) and rows.arm_propensity.flags.c_contiguous
    assert (rows.arm_propensity == [0.5, 0.25, 0.25]).all()
    two = log[log["denomination"] != "promo"]
    rows = logged_rows(two, MENU, sms_cost=0.1, propensity={"5off49": 0.5, "none": 0.5})
    assert (rows.arm_propensity == [0.5, 0.0, 0.5]).all()
    stated = two.assign(propensity=[0.4, 0.6, 0.5, 0.45, 0.55, 0.5])
    rows = logged_rows(stated, MENU, sms_cost=0.1, propensity={"5off49": 0.5, "none": 0.5})
    assert rows.propensity.tolist() == [0.4, 0.6, 0.5, 0.45, 0.55, 0.5]
    assert (rows.arm_propensity == [0.5, 0.0, 0.5]).all()


def test_a_design_must_name_menu_arms_and_add_up_to_one():
    log = _log(["5off49", "none"], [0.5, 0.5]).drop(columns="propensity")
    strange = {"zeta": 0.1, "alpha": 0.2, "none": 0.7}
    error = _error(lambda: logged_rows(log, MENU, sms_cost=0.1, propensity=strange))
    assert _fields(error) == ("'alpha' is not a treatment of the menu", None, None, "propensity")
    error = _error(
        lambda: logged_rows(log, MENU, sms_cost=0.1, propensity={"5off49": 0.5, "none": 0.6})
    )
    assert _fields(error) == (
        "the arms' propensities add up to 1.1; expected 1", None, None, "propensity",
    )  # fmt: skip
    # a sum off by less than 1e-6 is rounding
    rows = logged_rows(log, MENU, sms_cost=0.1, propensity={"5off49": 0.5, "none": 0.5000004})
    assert rows.propensity.tolist() == [0.5, 0.5000004]


def test_a_per_row_design_is_read_as_float_and_not_checked_against_the_shares():
    """Each row's P of every arm (integers for arms that were certain), the manual rows
    dropped; the arms' shares need not match any row's propensity."""
    log = _log(["5off49", "none", "5off49", "5off49"], [0.0] * 4,
               assignment=["randomized", "manual", "randomized", "randomized"])  # fmt: skip
    certain = [[1, 0, 0], [0, 0, 1], [1, 0, 0], [1, 0, 0]]
    rows = logged_rows(log.drop(columns="propensity"), MENU, sms_cost=0.1, arm_propensity=certain)
    assert rows.propensity.dtype == np.float64 and rows.propensity.tolist() == [1.0, 1.0, 1.0]
    assert rows.arm_propensity.dtype == np.float64
    assert rows.arm_propensity.tolist() == [[1, 0, 0]] * 3
    # 4 of 8 rows got no coupon, each stating P = 0.05: a constant design this far off is
    # refused, a per-row one is not
    log = _log(["5off49", "none"] * 4, [0.9, 0.05] * 4).drop(columns="propensity")
    design = [[0.9, 0.05, 0.05]] * 8
    rows = logged_rows(log, MENU, sms_cost=0.1, arm_propensity=design)
    assert rows.propensity.tolist() == [0.9, 0.05] * 4
    assert rows.arm_propensity.tolist() == design


def test_a_stated_design_may_stray_five_standard_errors_from_the_shares():
    """64 rows stating P = 0.5 for each arm: 52 of them on one arm is exactly 5 standard errors
    (sqrt(0.25 / 64) = 1/16) from a half, and passes; 53 is 5.25, and is refused."""
    passing = _log(["5off49"] * 52 + ["none"] * 12, [0.5] * 64)
    assert logged_rows(passing, MENU, sms_cost=0.1).n_rows == 64
    failing = _log(["5off49"] * 53 + ["none"] * 11, [0.5] * 64)
    error = _error(lambda: logged_rows(failing, MENU, sms_cost=0.1, source="b.csv"))
    assert _fields(error) == (
        "arm '5off49' has 82.8% of the randomized rows but a stated propensity of 50.0% "
        "(5 standard errors apart): the propensities do not describe this log",
        "b.csv",
        "propensity",
        None,
    )


def test_the_design_check_of_certain_single_and_varying_arms():
    """A stated P of 1 on half the rows is refused (its standard error is floored at 1e-6 /
    sqrt(n), not 0); a single row is an arm too; an arm whose rows state different P is
    skipped but the arms after it are checked; P within 1e-12 of each other count as one."""
    certain = _log(["5off49"] * 10 + ["none"] * 10, [1.0] * 10 + [0.5] * 10)
    error = _error(lambda: logged_rows(certain, MENU, sms_cost=0.1))
    z = 0.5 / math.sqrt(1e-12 / 20)
    assert error.message == (
        f"arm '5off49' has 50.0% of the randomized rows but a stated propensity of 100.0% "
        f"({z:.0f} standard errors apart): the propensities do not describe this log"
    )
    single = _log(["5off49"] * 50 + ["none"] * 49 + ["promo"], [0.5] * 99 + [0.9])
    error = _error(lambda: logged_rows(single, MENU, sms_cost=0.1))
    assert error.message.startswith(
        "arm 'promo' has 1.0% of the randomized rows but a stated propensity of 90.0% (30 "
    )
    varying = _log(["5off49", "none"] * 50, [0.9, 0.5, 0.8, 0.5] * 25)
    assert logged_rows(varying, MENU, sms_cost=0.1).n_rows == 100
    after = _log(["5off49", "none"] * 50, [0.9, 0.9, 0.8, 0.9] * 25)
    error = _error(lambda: logged_rows(after, MENU, sms_cost=0.1))
    assert error.message.startswith("arm 'none' has 50.0% of the randomized rows")
    tiny = _log(["5off49", "none"] * 10, [1e-12, 0.5, 2e-12, 0.5] * 5)
    error = _error(lambda: logged_rows(tiny, MENU, sms_cost=0.1))
    assert error.message.startswith(
        "arm '5off49' has 50.0% of the randomized rows but a stated propensity of 0.0% ("
    )


def test_propensities_must_lie_in_zero_to_one():
    """1 is a propensity (the arm was certain); 0, above 1 and missing are not."""
    rows = logged_rows(_log(["5off49"] * 3, [1.0] * 3), MENU, sms_cost=0.1)
    assert rows.propensity.tolist() == [1.0, 1.0, 1.0]
    assert rows.arm_counts() == {"5off49": 3, "promo": 0, "none": 0}
    for bad, count in (([0.5, 1.5, 0.5, 0.5], 1), ([0.5, 0.0, np.nan, 0.5], 2)):
        log = _log(["5off49", "none", "5off49", "none"], bad)
        error = _error(lambda log=log: logged_rows(log, MENU, sms_cost=0.1, source="c.csv"))
        assert (error.source, error.column, error.key) == ("c.csv", "propensity", None)
        assert error.message == (
            f"{count} rows have a propensity outside (0, 1] (first: {bad[1]!r})"
        ), error.message  # plain numbers, not np.float64(...)
    # a missing value in a column of Python objects is a missing propensity too
    log = _log(["5off49", "none"], pd.Series([0.5, pd.NA], dtype=object))
    error = _error(lambda: logged_rows(log, MENU, sms_cost=0.1))
    assert error.message == "1 rows have a propensity outside (0, 1] (first: nan)"
    bare = _log(["none"], [1.0]).drop(columns="propensity")
    error = _error(lambda: logged_rows(bare, MENU, sms_cost=0.1, source="d.csv"))
    assert _fields(error) == (
        "the log has no propensity column and no design was given",
        "d.csv",
        None,
        "propensity",
    )


def test_logs_without_randomized_rows_or_with_unknown_treatments_are_refused():
    manual = _log(["5off49", "none"], [0.5, 0.5], assignment="manual")
    error = _error(lambda: logged_rows(manual, MENU, sms_cost=0.1, source="e.csv"))
    assert _fields(error) == (
        "no randomized rows: offline evaluation needs a randomized log",
        "e.csv",
        None,
        None,
    )
    assert str(_error(lambda: logged_rows(manual, MENU, sms_cost=0.1))).startswith("log: no ")
    unknown = _log(["5off49", "10off99", "none", "bogus"], [0.5] * 4)
    error = _error(lambda: logged_rows(unknown, MENU, sms_cost=0.1, source="f.csv"))
    assert _fields(error) == (
        "treatment '10off99' is not on the menu (5off49, promo, none)", "f.csv", "denomination",
        None,
    )  # fmt: skip


def test_subset_and_arm_counts():
    """A subset by mask or by index keeps every array aligned, the arms unchanged."""
    log = _log(["none", "5off49", "promo", "5off49", "none"], [0.0] * 5).drop(columns="propensity")
    design = {"5off49": 0.4, "promo": 0.2, "none": 0.4}
    rows = logged_rows(log, MENU, sms_cost=0.1, propensity=design)
    assert rows.arm_counts() == {"5off49": 2, "promo": 1, "none": 2}
    mask = np.array([False, True, True, True, False])
    for part in (rows.subset(mask), rows.subset(np.array([1, 2, 3]))):
        assert part.arms == ARMS
        assert part.user_id.tolist() == [2, 3, 4] and part.arm.tolist() == [0, 1, 0]
        assert part.propensity.tolist() == [0.4, 0.2, 0.4]
        assert part.cost == pytest.approx([0.1, 0.25, 0.1], rel=1e-15, abs=0)
        assert part.arm_propensity.tolist() == [[0.4, 0.2, 0.4]] * 3
        assert part.arm_counts() == {"5off49": 2, "promo": 1, "none": 0}
    assert rows.n_rows == 5  # the original is left whole


def test_plan_actions_map_customers_and_refuse_bad_plans():
    """A plan names each customer's arm; unknown treatments are -1, customers it leaves out -2."""
    rows = logged_rows(_log(["5off49", "none", "promo"], [0.3, 0.4, 0.2]), MENU, sms_cost=0.1)
    plan = pd.DataFrame({"user_id": [3, 9, 2], "denomination": ["none", "promo", "ten"]})
    actions = plan_actions(plan, rows)
    assert actions.dtype == np.int16 and actions.tolist() == [-2, -1, 2]
    for column in ("user_id", "denomination"):
        error = _error(lambda column=column: plan_actions(plan.drop(columns=column), rows))
        assert _fields(error) == (f"plan 'plan' has no {column!r} column", None, None, "plans")
    twice = pd.concat([plan, plan.tail(1)])
    error = _error(lambda: plan_actions(twice, rows, name="p"))
    assert _fields(error) == ("plan 'p' lists a customer twice", None, None, "plans")


def test_logged_rows_is_a_plain_container():
    """LoggedRows built by hand: its counts and the none arm's index."""
    rows = LoggedRows(
        arms=("a", "b", "none"), user_id=np.array([1, 2]), arm=np.array([2, 2]),
        propensity=np.array([0.5, 0.5]), converted=np.zeros(2), gmv=np.zeros(2),
        cost=np.zeros(2),
    )  # fmt: skip
    assert rows.none == 2 and rows.n_rows == 2
    assert rows.arm_counts() == {"a": 0, "b": 0, "none": 2}
