"""The `bqx` command: one typer app, one module per command."""

from __future__ import annotations

import sys
import traceback

import typer

from bqx.cli.common import STATE, console

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


@app.callback()
def _global(
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


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning bqx errors into one clear message and an exit code."""
    from rich.markup import escape

    from bqx.errors import BqxError

    args = list(sys.argv[1:] if argv is None else argv)
    # --verbose / --quiet are accepted anywhere on the line, not only before the command
    for flag, attr in (("--verbose", "verbose"), ("-v", "verbose"), ("--quiet", "quiet"), ("-q", "quiet")):
        while flag in args[1:]:
            args.remove(flag)
            setattr(STATE, attr, True)
    try:
        app(args=args, standalone_mode=False)
    except BqxError as exc:
        if STATE.verbose:
            traceback.print_exc()
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        console.print("interrupted; rerun the same command to resume")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: typer >= 0.2x raises its own (vendored) click's
        exc.show() if hasattr(exc, "show") else console.print(f"[bold red]error:[/] {escape(exc.format_message())}")
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if STATE.verbose:
            traceback.print_exc()
        console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}\n"
                      "Rerun with --verbose for the traceback, and please report it.")
        sys.exit(1)
    sys.exit(0)
