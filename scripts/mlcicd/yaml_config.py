"""The `mlcicd.yaml` loader: strict YAML (a key given twice is an error, a YAML bomb is refused), and a
malformed or oversized file is one UsageError that names it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcicd.errors import UsageError

MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_VALUES = 100_000
"""Values a config may hold once its YAML aliases are expanded: a few hundred in practice, and a
"billion laughs" file (nine aliases of nine aliases…) stays 1 KiB on disk but not in a parser."""


def parse_yaml(source: str) -> Any:
    """yaml.safe_load, stricter where a config must be: a key given twice is an error (YAML 1.2
    says so; PyYAML silently keeps the last one), and the document may not expand to more than
    MAX_CONFIG_VALUES values through anchors and aliases. Raises yaml.YAMLError or ValueError."""
    import yaml

    data = yaml.load(source, Loader=_strict_loader())  # a SafeLoader: no arbitrary objects
    count = expanded_size(data, MAX_CONFIG_VALUES)
    if count > MAX_CONFIG_VALUES:
        raise ValueError(
            f"its anchors and aliases expand to more than {MAX_CONFIG_VALUES:,} values (a YAML bomb?); write "
            "the values out instead"
        )
    return data


def expanded_size(value: Any, limit: int) -> int:
    """How many values `value` holds once shared (aliased) lists and mappings are counted every time
    they are used; stops counting past `limit`. Each distinct node is walked once."""
    memo: dict[int, int] = {}

    def size(item: Any) -> int:
        if not isinstance(item, (dict, list)):
            return 1
        if id(item) not in memo:
            children = list(item.items()) if isinstance(item, dict) else item
            total = 1
            for child in children:
                total += size(child[1]) + 1 if isinstance(item, dict) else size(child)
                if total > limit:
                    break
            memo[id(item)] = total
        return memo[id(item)]

    return size(value)


_LOADER: Any = None


def _strict_loader() -> Any:
    global _LOADER
    if _LOADER is None:
        import yaml

        class StrictLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
            def construct_mapping(self, node: Any, deep: bool = False) -> Any:
                first: dict[Any, Any] = {}
                for key_node, _ in node.value:
                    # `<<: *defaults` followed by an override is how merge keys are meant to be used.
                    if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                        if key_node.value in first:
                            raise yaml.constructor.ConstructorError(
                                None,
                                None,
                                f"`{key_node.value}` is given twice (first at line "
                                f"{first[key_node.value].line + 1}); remove one of them",
                                key_node.start_mark,
                            )
                        first[key_node.value] = key_node.start_mark
                return super().construct_mapping(node, deep=deep)

        _LOADER = StrictLoader
    return _LOADER


def load_config_file(path: Path) -> dict[str, Any]:
    """Read `mlcicd.yaml` as a mapping of sections; a malformed file is a UsageError naming it."""
    import yaml

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(
            "config file unreadable",
            f"{path}: {exc.strerror}. Pass an existing file as `config`.",
            file=str(path),
        ) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise UsageError(
            "config file too large",
            f"{path} is {len(raw)} bytes; a config file is at most 1 MiB. Keep data out of it (point to "
            "files instead).",
            file=str(path),
        )
    try:
        data = parse_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError("config file is not UTF-8", f"{path}: save it as UTF-8.", file=str(path)) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise UsageError(
            "config file is not valid YAML", f"{path}{line}: {problem}. Fix the YAML.", file=str(path)
        ) from None
    except ValueError as exc:
        raise UsageError("config file too large", f"{path}: {exc}.", file=str(path)) from None
    except RecursionError:
        raise UsageError(
            "config file nested too deeply",
            f"{path}: lists or mappings nest too deeply to read; flatten them.",
            file=str(path),
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(
            "config file has the wrong shape",
            f"{path}: expected a mapping of stage sections (e.g. `validate-data:`), got "
            f"{type(data).__name__}.",
            file=str(path),
        )
    return data
