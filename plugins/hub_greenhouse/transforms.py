"""Mapping transforms for Greenhouse's vocabulary, which no generic transform can express.

``greenhouse_ratings`` turns a scorecard's ``attributes`` (``[{name, type, note, rating}]``,
rating one of ``definitely_not|no|mixed|yes|strong_yes``) into canonical :class:`Rating`
objects: competency = the attribute's name, score 1..5 (``definitely_not`` = 1 ...
``strong_yes`` = 5), max_score 5, comment = the note. Unrated attributes (``no_decision``) keep
a null score; an unknown rating rejects the record (the vendor changed its scale).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from hub.transforms import Transform, TransformError, per_row

#: Greenhouse's five-step scale, worst first
SCALE: dict[str, int] = {"definitely_not": 1, "no": 2, "mixed": 3, "yes": 4, "strong_yes": 5}
#: what Greenhouse writes for an attribute the interviewer did not rate
UNRATED = frozenset({"no_decision", ""})


def _ratings(value: Any, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    attributes = orjson.loads(value) if isinstance(value, str | bytes) else value
    if not isinstance(attributes, list):
        raise TransformError("greenhouse_ratings: attributes must be a list")
    ratings = []
    for attribute in attributes:
        if not isinstance(attribute, Mapping) or not attribute.get("name"):
            raise TransformError("greenhouse_ratings: an attribute has no name")
        raw = str(attribute.get("rating") or "").strip().lower()
        if raw not in SCALE and raw not in UNRATED:
            raise TransformError(f"greenhouse_ratings: unknown rating {raw[:20]!r}")
        ratings.append(
            {
                "competency": str(attribute["name"]),
                "score": SCALE.get(raw),
                "max_score": len(SCALE),
                "comment": attribute.get("note") or None,
            }
        )
    return ratings


TRANSFORMS: list[Transform] = [
    Transform(
        "greenhouse_ratings",
        per_row(_ratings),
        "Greenhouse scorecard attributes -> [{competency, score 1..5, max_score 5, comment}] "
        "(definitely_not=1, no=2, mixed=3, yes=4, strong_yes=5; no_decision: no score)",
    )
]
