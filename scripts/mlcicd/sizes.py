"""Sizes such as `500MB` or `1.5 GiB`, for the model-size limit."""

from __future__ import annotations

import re
from decimal import Decimal, localcontext

SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*")
_SIZE_HELP = (
    "a non-negative number with an optional unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, "
    "TiB (powers of 1024), e.g. 500MB, 1.5GB, 800KiB or 1024"
)


def parse_size(text: str | int) -> int:
    """Bytes in a size such as '500MB', '1.5 GiB' or '1024' (units are case-insensitive).

    KB/MB/GB/TB are decimal and KiB/MiB/GiB/TiB binary, as on disk labels and in `ls -h --si`
    versus `ls -h`; 'kb' is taken to mean KB, not kilobits. Arithmetic is exact (Decimal), and a
    fractional byte count is rounded to the nearest byte.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise ValueError(f"invalid size {text!r}: expected {_SIZE_HELP}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid size {text!r}: expected {_SIZE_HELP}")
        return text
    match = _SIZE.fullmatch(text)
    if match is None or match.group(2).lower() not in SIZE_UNITS:
        raise ValueError(f"invalid size {text!r}: expected {_SIZE_HELP}")
    number, unit = match.group(1), SIZE_UNITS[match.group(2).lower()]
    with localcontext() as context:
        context.prec = len(number) + 20  # enough digits that the product is exact
        # Decimal, not int(): no digit limit, so thousands of digits are a size, not a crash
        return int((Decimal(number) * unit).to_integral_value())
