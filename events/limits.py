"""Size limits for incoming events.

Limits keep one hostile producer from exhausting a worker's memory or a lead's
screen; each error names the limit that was passed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Upper bounds applied before and after parsing an envelope."""

    max_payload_bytes: int = 256 * 1024
    max_text_chars: int = 20_000
    max_list_items: int = 100
    max_id_chars: int = 200
