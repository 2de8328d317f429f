"""`mlcicd <stage>`: one subcommand per stage. `scripts/<stage>.py` runs the same thing."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence

from mlcicd import __version__, github
from mlcicd.errors import INTERNAL_ERROR, USAGE_ERROR, UsageError


def build_parser() -> argparse.ArgumentParser:
    from mlcicd.inputs import config_option, describe
    from mlcicd.stages import all_stages

    parser = argparse.ArgumentParser(
        prog="mlcicd",
        description="CI/CD stages for ML models. Each stage reads its options from flags, "
        "INPUT_<NAME> environment variables (action inputs) and the stage's section of mlcicd.yaml.",
        epilog="Exit codes: 0 passed, 1 a check failed, 2 bad input/config, 3 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"mlcicd {__version__}")
    sub = parser.add_subparsers(dest="_stage", metavar="<stage>")
    # Not a stage: mlcicd.local_run parses its own arguments (see main).
    sub.add_parser(
        "local",
        help="run your repository's workflow on this machine through act, against this toolkit",
        add_help=False,
    )
    for stage in all_stages().values():
        cmd = sub.add_parser(stage.name, help=stage.summary, description=stage.summary)
        if stage.has_config_section:
            cmd.add_argument(
                "--config",
                default=None,
                metavar="VALUE",
                help=describe(config_option(stage.name)).replace("%", "%%"),
            )
        if stage.positional:
            cmd.add_argument(
                "_positional",
                nargs="?",
                default=None,
                metavar=stage.positional.upper().replace("-", "_"),
                help=f"same as --{stage.positional}",
            )
        for option in stage.options:
            cmd.add_argument(
                f"--{option.name}",
                *(f"--{a}" for a in option.aliases),
                dest=option.name,
                default=None,
                metavar="VALUE",
                help=describe(option).replace(
                    "%", "%%"
                ),  # the action.yml description; argparse formats help with %
            )
    return parser


def _is_tracking_error(exc: Exception) -> bool:
    """An MLflow or HTTP error (auth, a server that is not MLflow): the user's setup, not our bug.
    Looked up in sys.modules so that a stage that never imported mlflow does not pay for it here."""
    mlflow_exceptions, requests = sys.modules.get("mlflow.exceptions"), sys.modules.get("requests")
    types = tuple(
        t
        for t in (
            getattr(mlflow_exceptions, "MlflowException", None),
            getattr(requests, "RequestException", None),
        )
        if t
    )
    return bool(types) and isinstance(exc, types)


DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["local"]:
        from mlcicd import local_run

        return local_run.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args._stage:
        parser.print_help()
        return USAGE_ERROR
    from mlcicd.config import resolve
    from mlcicd.stages import all_stages, config_sections

    # A cancelled job's SIGTERM unwinds like Ctrl-C, so every `finally` (servers, runs, locks) runs.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    stage = all_stages()[args._stage]
    flags = vars(args)
    if stage.positional and flags.get("_positional") is not None:
        if flags.get(stage.positional) is not None:
            parser.error(f"give {stage.positional} once: as an argument or as --{stage.positional}")
        flags[stage.positional] = flags["_positional"]
    try:
        if stage.has_config_section:
            values = resolve(stage.name, stage.options, config_sections(), flags, os.environ)
        else:
            values = resolve(stage.name, stage.options, None, flags, {})
        return stage.run(values)
    except UsageError as exc:
        github.error(exc.message, title=f"{stage.name}: {exc.title}", file=exc.file)
        return USAGE_ERROR
    except KeyboardInterrupt as exc:
        # A stage that cleaned up says what it did (e.g. canary-shift: traffic back on stable).
        said = str(exc.args[0]) if exc.args and not str(exc.args[0]).startswith("signal ") else ""
        github.error(f"interrupted: {said}" if said else "interrupted", title=f"{stage.name}: cancelled")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one annotation, no bare traceback
        if _is_tracking_error(exc):
            from mlcicd.tracking import mlflow_error

            usage = mlflow_error(exc, "MLflow request failed")
            github.error(usage.message, title=f"{stage.name}: {usage.title}")
            return USAGE_ERROR
        if isinstance(exc, OSError) and exc.strerror and (exc.filename or exc.errno in DISK_ERRORS):
            # A full disk, a quota, a read-only mount, a file that vanished: the runner's state, not a bug.
            where = (
                f"{exc.filename}: "
                if exc.filename
                else "writing a report, $GITHUB_OUTPUT or $GITHUB_STEP_SUMMARY: "
            )
            github.error(
                f"{where}{exc.strerror}. Free space on that disk or make the path writable, then rerun.",
                title=f"{stage.name}: cannot write {os.path.basename(str(exc.filename or '')) or 'a file'}",
                file=str(exc.filename) if exc.filename else None,
            )
            return USAGE_ERROR
        if os.environ.get("RUNNER_DEBUG") == "1" or os.environ.get("MLCICD_DEBUG"):
            traceback.print_exc()
        github.error(
            f"{type(exc).__name__}: {exc}. This is a bug in ml-cicd {__version__}; rerun with MLCICD_DEBUG=1 "
            "(or enable debug logging) and report the traceback.",
            title=f"{stage.name}: internal error",
        )
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
