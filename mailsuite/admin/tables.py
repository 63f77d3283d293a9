"""Output helpers for admin commands: aligned tables, JSON, sizes, dates."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Sequence
from typing import Any

from mailsuite.admin import exits
from mailsuite.admin.env import AdminEnv, AdminError

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"(\d+)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)


def table(env: AdminEnv, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print ``rows`` under ``headers``, columns padded to the widest cell."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        env.out("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def as_json(env: AdminEnv, data: Any) -> None:
    env.out(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True))


def parse_size(text: str) -> int:
    """``"1024"``, ``"500K"``, ``"10M"``, ``"1G"``, ``"2GiB"`` -> bytes (1K = 1024)."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise AdminError(
            f"invalid size {text!r} (use e.g. 500M, 2G, 0 for unlimited)", exits.USAGE
        )
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def format_size(n: int) -> str:
    """Bytes in the largest unit that divides them, "unlimited" for 0."""
    if n == 0:
        return "unlimited"
    for unit in ("T", "G", "M", "K"):
        if n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]}{unit}"
    return str(n)


def format_count(n: int) -> str:
    return "unlimited" if n == 0 else str(n)


def format_time(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
