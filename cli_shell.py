"""How `couponopt` talks: tables and lines on the terminal, strict JSON, errors and exit codes.

Exit codes (the README's table), each with one line on stderr, never a box or a traceback:
0 done; 1 the system refused (a full disk, a permission); 2 bad input (a flag, a file, a
column, a key, an unknown flag or a value of the wrong type); 130 interrupted.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from optimizer.errors import InputError
from optimizer.reporting.table import TableData
from optimizer.reporting.terminal import rich_table

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

# ------------------------------------------------------------------------------ terminal


def show(tables: Sequence[TableData | None], console: Console = out) -> None:
    """Render tables (:func:`optimizer.reporting.rich_table`), skipping absent ones."""
    for data in (t for t in tables if t is not None):
        console.print(rich_table(data))


def say(text: str, console: Console = out, style: str = "") -> None:
    """One line of plain text (escaped: file names and labels are never markup)."""
    console.print(escape(text), style=style, highlight=False, soft_wrap=True)


def emit(payload: dict[str, Any]) -> None:
    """Print ``payload`` as strict JSON (no NaN or Infinity), nothing else."""
    from optimizer.io.strict_json import json_dumps as dumps

    sys.stdout.write(dumps(payload) + "\n")


# -------------------------------------------------------------------------------- errors

#: Library configuration keys and arguments -> the flag that sets them.
FLAGS: dict[str, str] = {
    "budget": "--budget", "budget.amount": "--budget", "budgets": "--vary",
    "whatif.vary": "--vary", "whatif.vary.menu": "--vary", "whatif.vary.segments": "--vary",
    "manual.denomination": "--denomination",
    "targeting.segments": "--segments", "constraints.max_messages": "--max-messages",
    "constraints.max_per_denomination": "--max-per-denomination",
    "constraints.min_roi": "--min-roi", "constraints.overrun_risk": "--overrun-risk",
    "constraints.segment_column": "--segment-column", "constraints.exclude_file": "--exclude",
    "constraints.segment_shares": "--segment-share", "policies": "--policies", "match": "--match",
    "match_on": "--match-on", "objective": "--objective", "solver": "--solver",
    "v2_threshold": "--v2-threshold", "users": "--users", "scores": "--scores",
    "population.users": "--population", "population.seed": "--seed", "segment": "--segments",
    "test_share": "--test-share", "reference": "--reference", "menu": "--menu", "kind": "--kind",
    "crossfit": "--crossfit", "plans": "--plan", "models": "--models", "clip": "--clip",
    "estimators": "--estimators", "bootstrap": "--bootstrap", "outcome_model": "--outcome-model",
    "marginal_return": "--marginal-return", "engine.name": "--engine",
}  # fmt: skip


def _flag_for(key: str | None, ctx: typer.Context | None) -> str | None:
    """The flag of ``key`` (else the key itself is named).

    Always for an argument; for a configuration key (dotted) only when this command line set
    it, since otherwise its value came from the file.
    """
    flag = FLAGS.get(key or "")
    for param in ctx.command.params if flag and ctx else ():
        if flag in param.opts:
            source = ctx.get_parameter_source(param.name)
            given = source is not None and source.name == "COMMANDLINE"
            return flag if given or "." not in (key or "") else None
    return None


def friendly(command: F) -> F:
    """Library input errors as one line on stderr and exit code 2; Ctrl-C as exit 130."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InputError as exc:
            flag = None if exc.source else _flag_for(exc.key, kwargs.get("ctx"))
            say(f"error: {exc.line(flag)}", err, "bold red")
            raise typer.Exit(2) from None
        except OSError as exc:
            where = exc.filename or "couponopt"
            say(f"error: {_one_line(f'{where}: {exc.strerror or exc}')}", err, "bold red")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            say("interrupted: nothing half-written was left", err, "bold red")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class OneLineErrors(TyperGroup):
    """The command group, with click's usage errors printed as one line and exit code 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run the command; click's errors become one line (exit 2), Ctrl-C exit 130."""
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as exc:  # click's errors (typer vendors click)
            code = getattr(exc, "exit_code", 2)
            if type(exc).__name__ != "NoArgsIsHelpError":  # typer printed the help already
                ctx = getattr(exc, "ctx", None)
                where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
                say(f"error: {_one_line(exc.format_message())}{where}", err, "bold red")
        except typer.Abort:
            say("interrupted: nothing half-written was left", err, "bold red")
            code = 130
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)
