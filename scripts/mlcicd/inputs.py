"""Each input's text, rendered once.

An `Option`'s help, default and example are the words of three places that must agree: the input's
`description` in the action.yml, its `--name` help in `mlcicd <stage> --help`, and its row in the
Inputs table of the action's docs page. All three come from `describe` (the docs split it into the
Default, Description and Example cells), and `make generate` (mlcicd.generate) writes the first
and the last. No I/O and no stage imports here: cli.py and the generator both use it.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlcicd.config import Option, text

NONE = "none"


def sentence(help_text: str) -> str:
    """The help as one sentence: whitespace collapsed, first letter upper case, a full stop at the end."""
    words = " ".join(help_text.split())
    if not words:
        return ""
    words = words[0].upper() + words[1:]
    return words if words.endswith((".", "!", "?")) else words + "."


def code(value: str) -> str:
    """`value` as a markdown code span, with a longer fence when the value holds a backtick."""
    fence = "``" if "`" in value else "`"
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def default_text(option: Option) -> str:
    """The default as the docs' Default cell shows it: `shown_default` verbatim, else the typed value
    written as a user writes it (`true`, `200`, `1,32`), else `none`."""
    if option.shown_default:
        return option.shown_default
    value = option.default
    if value is None or value == "" or (isinstance(value, (list, tuple, dict)) and not value):
        return NONE
    if isinstance(value, bool):
        return code("true" if value else "false")
    if isinstance(value, float) and value.is_integer():
        return code(str(int(value)))
    if isinstance(value, (list, tuple)):
        return code(",".join(str(item) for item in value))
    return code(str(value))


def example_text(option: Option) -> str:
    return code(option.example) if option.example else ""


def describe(option: Option) -> str:
    """The one rendering of an input: `<help as a sentence> Default: <default>. Example: <example>.`
    The default is left out when there is none; the example when the option has none."""
    parts = [sentence(option.help)]
    default = default_text(option)
    if default != NONE:
        parts.append(f"Default: {default}" + ("" if default.endswith(".") else "."))
    if option.example:
        parts.append(f"Example: {example_text(option)}.")
    return " ".join(part for part in parts if part)


def config_option(stage: str) -> Option:
    """The `config` input and `--config` flag of a stage with a config section (config.resolve reads it)."""
    section = f"its `{stage}:` section sets defaults for the other inputs"
    return Option(
        "config",
        text,
        "",
        f"the ml-cicd config file; {section}. A `config` that does not exist is an error",
        "ml/mlcicd.yaml",
        is_path=True,
        shown_default="`mlcicd.yaml` when it exists in the working directory",
    )


def stage_inputs(stage: str, options: Sequence[Option], has_config_section: bool) -> tuple[Option, ...]:
    """A stage's inputs in the order the action and its docs list them: the options, then `config`."""
    return (*options, config_option(stage)) if has_config_section else tuple(options)
