"""What the Greenhouse manifest cannot say in YAML, or not at a bearable cost per record.

* :class:`AttachmentContent`: Greenhouse lists a candidate's files as signed, expiring URLs
  (S3 presigned, no API auth). The ``attachments`` stream expands them from the candidates
  pages in YAML; this transformation then downloads each file while its URL is fresh and puts
  the content on the record (text as text, anything else base64), with its size and SHA-256.
  The record then carries a resume: hub seals it before any destination sees it (the
  canonical mapping puts it in the encrypted ``custom_fields``; a raw stream must declare
  ``pii = { content = "text" }``).
* :class:`LinkHeaderPagination`: the next page is the ``Link: <...>; rel="next"`` URL.
  ``CursorPagination`` says the same in YAML but decodes every page's JSON body a second time
  to offer it to its template (a quarter of the connector's CPU time on 500-record pages).
* :class:`CopyFields`: related records' ids under the names the canonical mappings keep them
  by (``candidate_remote_id`` ...). ``AddFields`` does it in YAML with a Jinja template per
  field and record, about 40 µs each; this is a dictionary lookup.
* :class:`JsonPages`: the CDK's JSON decoder, minus a copy of every page (it decodes the body
  to text before parsing it; orjson reads the bytes). Told the fields a sync selects, it
  builds only those of each record (a candidate's embedded applications are most of its
  bytes): a third of orjson's time on a page of candidates.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import InitVar, dataclass
from typing import Any

import msgspec
import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.decoders.json_decoder import JsonDecoder
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import (
    PaginationStrategy,
)
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.types import Config, Record, StreamSlice, StreamState
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

#: statuses worth another try (with the server's Retry-After when it sends one)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_local = threading.local()


def _session() -> requests.Session:
    """One session per worker thread (requests sessions are not thread-safe)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


@dataclass
class AttachmentContent(RecordTransformation):
    """Download the file at ``record[url_field]`` into ``content`` (+ type, size, SHA-256).

    Files larger than ``max_bytes`` are not kept (``content`` stays null, ``size`` is set);
    a file that keeps failing fails the stream without naming the URL (it is signed).
    """

    parameters: InitVar[dict[str, Any]]
    config: Config | None = None
    url_field: str = "url"
    max_bytes: int = 20 * 1024 * 1024
    attempts: int = 4
    timeout: float = 60.0

    def __post_init__(self, parameters: dict[str, Any]) -> None:
        self.max_bytes = int(self.max_bytes)
        self.attempts = int(self.attempts)
        self.timeout = float(self.timeout)

    def transform(
        self,
        record: dict[str, Any],
        config: Config | None = None,
        stream_state: StreamState | None = None,
        stream_slice: StreamSlice | None = None,
    ) -> None:
        url = record.get(self.url_field)
        if not url:
            return
        response = self._fetch(str(url))
        body = response.content
        media_type = response.headers.get("Content-Type", "application/octet-stream")
        record["size"] = len(body)
        record["sha256"] = hashlib.sha256(body).hexdigest()
        record["content_type"] = media_type.split(";")[0].strip()
        if len(body) > self.max_bytes:
            record["content"], record["content_encoding"] = None, None
        elif media_type.startswith("text/"):
            record["content"] = body.decode(response.encoding or "utf-8", errors="replace")
            record["content_encoding"] = "text"
        else:
            record["content"] = base64.b64encode(body).decode("ascii")
            record["content_encoding"] = "base64"

    def _fetch(self, url: str) -> requests.Response:
        status: int | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                response = _session().get(url, timeout=self.timeout)
            except requests.RequestException as exc:
                status, wait = None, 2.0**attempt
                problem = type(exc).__name__
            else:
                if response.status_code == 200:
                    return response
                status, problem = response.status_code, f"HTTP {response.status_code}"
                if status not in RETRY_STATUSES:
                    break
                retry_after = response.headers.get("Retry-After", "")
                wait = float(retry_after) if retry_after.isdigit() else 2.0**attempt
            if attempt < self.attempts:
                time.sleep(min(wait, 300.0))
        raise AirbyteTracedException(
            message="A Greenhouse attachment could not be downloaded.",
            internal_message=f"attachment download failed: {problem}",
            failure_type=FailureType.transient_error
            if status is None or status in RETRY_STATUSES
            else FailureType.system_error,
        )


@dataclass
class LinkHeaderPagination(PaginationStrategy):
    """The next page is the RFC-5988 ``Link`` header's ``rel="next"`` URL; none: the last page.

    The body is never decoded here (the record selector decodes it once). Use it with
    ``page_token_option: {type: RequestPath}``.
    """

    parameters: InitVar[dict[str, Any]]
    config: Config | None = None

    def __post_init__(self, parameters: dict[str, Any]) -> None:
        return

    @property
    def initial_token(self) -> Any | None:
        return None

    def next_page_token(
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Record | None,
        last_page_token_value: Any | None,
        page_size_override: int | None = None,
        stream_slice: StreamSlice | None = None,
    ) -> Any | None:
        following = response.links.get("next", {}).get("url")
        return following or None

    def get_page_size(self) -> int | None:
        return None


@dataclass
class CopyFields(RecordTransformation):
    """Set ``record[target]`` to the text of the value at a dotted path (``jobs.0.id``).

    A missing path (or a null value) sets null. ``fields`` maps target -> path.
    """

    parameters: InitVar[dict[str, Any]]
    fields: dict[str, str]
    config: Config | None = None

    @classmethod
    def fields_read(cls, definition: Mapping[str, Any]) -> set[str]:
        """The record fields this transformation reads, as its manifest definition says.

        hub reads them from the page when a sync selects only some fields (JsonPages).
        """
        return {str(path).split(".")[0] for path in (definition.get("fields") or {}).values()}

    def __post_init__(self, parameters: dict[str, Any]) -> None:
        self._paths = [
            (str(target), [int(p) if p.isdigit() else p for p in str(path).split(".")])
            for target, path in self.fields.items()
        ]

    def transform(
        self,
        record: dict[str, Any],
        config: Config | None = None,
        stream_state: StreamState | None = None,
        stream_slice: StreamSlice | None = None,
    ) -> None:
        for target, path in self._paths:
            value: Any = record
            for part in path:
                try:
                    value = value[part]
                except (KeyError, IndexError, TypeError):
                    value = None
                    break
            record[target] = None if value is None else str(value)


class JsonPages(JsonDecoder):
    """:class:`JsonDecoder` reading a page's bytes with orjson as they are.

    The CDK's JSON parser decodes every body to text and parses the text, which orjson then
    encodes back to UTF-8 (non-ASCII names and answers): one page copied twice for nothing.
    A list of records or an object is yielded as the CDK yields it; anything else (an empty
    list, null, a body orjson refuses) goes through the CDK's decoder and its fallbacks.

    With ``fields`` (hub sets them from the fields a sync selects, see
    ``hub_airbyte.manifest``), a page that is a list of objects is decoded by msgspec into
    records holding only those keys: the others are skipped, not built. A record lacking one
    lacks it here too. Any other page is decoded whole.
    """

    #: hub may give this decoder the fields a sync needs (``fields``)
    selects_fields = True
    fields: list[str] | None

    def __init__(
        self, parameters: Mapping[str, Any] | None = None, fields: list[str] | None = None, **_: Any
    ) -> None:
        super().__init__(parameters or {})
        self.fields = [str(name) for name in fields] if fields else None
        self._selected = (_selected_records_decoder(tuple(self.fields)), self.fields) if self.fields else None

    def decode(self, response: requests.Response) -> Iterator[Any]:  # type: ignore[override]
        if not self.is_stream_response():
            if self._selected is not None:
                decoder, fields = self._selected
                try:
                    records = decoder.decode(response.content)
                except (msgspec.MsgspecError, ValueError):
                    pass  # not a list of objects (or not JSON): decoded whole below
                else:
                    if records:
                        yield from _as_dicts(records, fields)
                        return
            try:
                body = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                body = None
            if isinstance(body, list) and body:
                yield from body
                return
            if isinstance(body, dict):
                yield body
                return
        yield from super().decode(response)


@functools.lru_cache(maxsize=64)
def _selected_records_decoder(fields: tuple[str, ...]) -> msgspec.json.Decoder[list[Any]]:
    """A decoder of a JSON list of objects into structs of ``fields`` (unknown keys skipped).

    Attributes are ``f0``, ``f1``... renamed to the keys, so any key works (not only Python
    identifiers); a key absent from a record stays UNSET.
    """
    record = msgspec.defstruct(
        "SelectedFields",
        [(f"f{i}", Any, msgspec.UNSET) for i in range(len(fields))],
        rename={f"f{i}": name for i, name in enumerate(fields)},
    )
    return msgspec.json.Decoder(list[record])  # type: ignore[valid-type]


def _as_dicts(records: list[Any], fields: list[str]) -> Iterator[dict[str, Any]]:
    for record in records:
        values = msgspec.structs.astuple(record)
        if msgspec.UNSET in values:
            yield {
                name: value for name, value in zip(fields, values, strict=True) if value is not msgspec.UNSET
            }
        else:
            yield dict(zip(fields, values, strict=True))
