"""``system.time``: the current date and time, so the model need not guess what day it is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import ToolError


def system_time(timezone: str | None = None) -> str:
    """The current date and time, with the time zone.

    Args:
        timezone: An IANA time zone such as "Europe/Paris"; leave it out for the computer's own zone.
    """
    if timezone:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            now = datetime.now(ZoneInfo(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ToolError(f"Unknown time zone {timezone!r}: "
                            "use an IANA name such as 'Europe/Paris'.") from None
    else:
        now = datetime.now().astimezone()
    offset = now.strftime("%z")
    return (f"{now.isoformat(timespec='seconds')} ({now.strftime('%A %d %B %Y, %H:%M:%S')} "
            f"{now.tzname()}, UTC{offset[:3]}:{offset[3:]})")


def register(registry: Any) -> None:
    registry.register(system_time, name="system.time")
