"""The stages. Each module declares its options at import time and imports heavy libraries
(pandas, pyarrow, mlflow, torch) only inside its run function, so `--help` stays fast."""

from __future__ import annotations

from mlcicd.config import Option, Stage


def all_stages() -> dict[str, Stage]:
    from mlcicd.stages import canary_shift, check_gates, monitor, pr_report, promote, train_gpu, validate_data

    commands = [
        validate_data.STAGE,
        validate_data.PROFILE,
        train_gpu.STAGE,
        check_gates.STAGE,
        promote.STAGE,
        promote.HISTORY,
        canary_shift.STAGE,
        monitor.STAGE,
        pr_report.STAGE,
    ]
    return {stage.name: stage for stage in commands}


def config_sections() -> dict[str, tuple[Option, ...]]:
    return {name: stage.options for name, stage in all_stages().items() if stage.has_config_section}
