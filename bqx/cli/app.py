"""The `bqx` command: one typer app, one module per command."""

from __future__ import annotations

import sys
import traceback

import typer

from bqx.cli.common import STATE, console, out

app = typer.Typer(
    name="bqx",
    help=(
        "bqx turns one-minute bars of the 28 major FX pairs into a validated, ML-ready feature set.\n\n"
        "Start with `bqx run` (the whole pipeline on the built-in sample market), then `bqx status`, "
        "`bqx validate` and `bqx export --to DIR`."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from bqx import __version__

        out.print(f"bqx {__version__}", markup=False)
        raise typer.Exit(0)


@app.callback()
def _global(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the bqx version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks and debug detail (any command)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only results and errors (any command)."),
) -> None:
    STATE.verbose = STATE.verbose or verbose
    STATE.quiet = STATE.quiet or quiet


def _register() -> None:
    from bqx.cli import cmd_config, cmd_features, cmd_ingest, cmd_plan, cmd_run, cmd_sample, cmd_status

    for module in (cmd_run, cmd_plan, cmd_status, cmd_features, cmd_sample, cmd_ingest):
        module.register(app)
    app.add_typer(cmd_config.app, name="config")
    __import__("bqx.cli.cmd_live", fromlist=["register"]).register(app)
    __import__("bqx.cli.cmd_verify", fromlist=["register"]).register(app)
    __import__("bqx.cli.cmd_signal", fromlist=["register"]).register(app)
    for optional in ("bqx.cli.cmd_validate", "bqx.cli.cmd_export", "bqx.cli.cmd_report"):
        try:
            mod = __import__(optional, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != optional:
                raise
            continue
        mod.register(app)


_register()


def _flags_without_type() -> None:
    """Show boolean flags as flags: typer 0.29 prints `--json <bool>`, which invites `--json true`."""
    from typer.core import TyperOption

    plain = TyperOption.display_type_rich
    if getattr(plain, "_bqx_flags", False):
        return

    def display_type_rich(self, ctx):  # type: ignore[no-untyped-def]
        return None if self.is_flag else plain(self, ctx)

    display_type_rich._bqx_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_without_type()

_VALUES = ("true", "false", "yes", "no", "on", "off", "1", "0")


def _flag_hint(args: list[str], message: str) -> str:
    """The hint for `--json true`: a flag takes no value."""
    if "unexpected extra argument" not in message:
        return ""
    flags = _flags_of(args)
    for before, value in zip(args, args[1:]):
        if before in flags and value.lower() in _VALUES:
            return f"{before} is a flag and takes no value: write `{before}` alone (or leave it out for false)."
    return ""


def _flags_of(args: list[str]) -> set[str]:
    """The boolean flags of the command that `args` name (its options declared `is_flag`)."""
    command = typer.main.get_command(app)
    for word in args:
        sub = getattr(command, "commands", {}).get(word) if not word.startswith("-") else None
        if sub is None:
            break
        command = sub
    return {opt for p in getattr(command, "params", []) if getattr(p, "is_flag", False) for opt in p.opts}


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning bqx errors into one clear message and an exit code.

    Exit codes: 0 success, 1 a task or check failed, 2 usage, configuration or input error,
    130 interrupted by SIGINT (Ctrl-C), 143 by SIGTERM; both print "interrupted; rerun to resume".
    """
    import click
    from rich.markup import escape

    from bqx.cli import signals
    from bqx.cli.diagnose import ordinary
    from bqx.errors import BqxError

    args = list(sys.argv[1:] if argv is None else argv)
    # --verbose / --quiet are accepted anywhere on the line, not only before the command
    for flag, attr in (("--verbose", "verbose"), ("-v", "verbose"), ("--quiet", "quiet"), ("-q", "quiet")):
        while flag in args[1:]:
            args.remove(flag)
            setattr(STATE, attr, True)
    signals.install()
    try:
        code = app(args=args, standalone_mode=False)  # returns the code of a typer.Exit raised by a command
    except BqxError as exc:
        _fail(exc, exc.exit_code)
    except (typer.Abort, click.exceptions.Abort, KeyboardInterrupt) as exc:
        _interrupted(signals.interrupted_code(exc) or 130)
    except (typer.Exit, click.exceptions.Exit) as exc:
        sys.exit(exc.exit_code)
    except (typer.TyperException, click.exceptions.ClickException) as exc:  # usage errors (exit 2)
        exc.show() if hasattr(exc, "show") else console.print(f"[bold red]error:[/] {escape(exc.format_message())}")
        hint = _flag_hint(args, exc.format_message())
        if hint:
            console.print(hint, markup=False)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        known = ordinary(exc)
        if known is not None:
            _fail(exc, known.exit_code, str(known))
        if STATE.verbose:
            traceback.print_exc()
        console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}\n"
                      "Rerun with --verbose for the traceback, and please report it.")
        sys.exit(1)
    if signals.interrupted_code() is not None:  # typer turned the KeyboardInterrupt into the code 130
        _interrupted(signals.interrupted_code())
    sys.exit(code if isinstance(code, int) else 0)


def _interrupted(code: int) -> None:
    console.print("interrupted; rerun to resume")
    sys.exit(code)


def _fail(exc: BaseException, code: int, message: str | None = None) -> None:
    from rich.markup import escape

    if STATE.verbose:
        traceback.print_exception(exc)
    console.print(f"[bold red]error:[/] {escape(message or str(exc))}")
    sys.exit(code)
