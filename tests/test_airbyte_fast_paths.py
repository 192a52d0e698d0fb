"""hub_airbyte's and the Greenhouse manifest's shortcuts return what the CDK's own paths return.

The cursor's ISO timestamp parser against the CDK's ``DatetimeParser``, the Greenhouse JSON
page decoder against the CDK's ``JsonDecoder``, and a discovered catalog kept per config
(copies handed out; manifests with dynamic schemas discovered every time).
"""

from __future__ import annotations

import copy
import json
import logging
import random
from pathlib import Path
from typing import Any

import pytest
import requests
from airbyte_cdk.models import (
    AirbyteStream,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    SyncMode,
)
from airbyte_cdk.sources.declarative.datetime.datetime_parser import DatetimeParser
from airbyte_cdk.sources.declarative.decoders.json_decoder import JsonDecoder
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import ManifestReferenceResolver
from hub_airbyte import Manifest, load_manifest, manifest_connector
from hub_airbyte.manifest import _IsoDatetimeParser, _with_selected_fields
from hub_greenhouse.components import JsonPages

FIXTURES = Path(__file__).parent / "fixtures" / "manifests"
LOG = logging.getLogger("test")


def parsed(parser: DatetimeParser, value: str, form: str) -> tuple[str, Any]:
    try:
        result = parser.parse(value, form)
    except ValueError as exc:
        return "error", type(exc).__name__
    return "value", (result, result.tzinfo, type(result))


@pytest.mark.parametrize("form", ["%Y-%m-%dT%H:%M:%S.%_msZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"])
def test_iso_cursor_parser_matches_the_cdk_parser(form: str) -> None:
    rng = random.Random(form)
    values = [
        "2025-11-26T12:49:16.139Z",
        "2024-1-05T01:02:03.123Z",  # one-digit month: strptime's business
        "2024-01-05t01:02:03.123z",  # lower case: strptime ignores case
        "2024-02-30T01:02:03.123Z",  # no such day
        "２０２４-01-05T01:02:03.123Z",  # full-width digits
        " 2024-01-05T01:02:03.123Z",
        "2024-01-05T01:02:03.Z",
        "2024-01-05T01:02:03.1234567Z",
    ]
    for _ in range(20000):
        fraction = "".join(rng.choice("0123456789") for _ in range(rng.choice([1, 3, 3, 6])))
        values.append(
            f"{rng.randrange(0, 10000):04d}-{rng.randrange(0, 14):02d}-{rng.randrange(0, 33):02d}"
            f"{rng.choice('TT t')}{rng.randrange(0, 26):02d}:{rng.randrange(0, 62):02d}:{rng.randrange(0, 63):02d}"
            f"{'.' + fraction if rng.random() < 0.7 else ''}{rng.choice(['Z', 'Z', 'z', '', '+00:00'])}"
        )
    fast, cdk = _IsoDatetimeParser(), DatetimeParser()
    matched = 0
    for value in values:
        expected = parsed(cdk, value, form)
        assert parsed(fast, value, form) == expected, value
        matched += expected[0] == "value"
    assert matched > 500  # real timestamps among them, not only refusals


def response(body: bytes) -> requests.Response:
    answer = requests.Response()
    answer.status_code = 200
    answer._content = body
    return answer


BODIES = [
    b'[{"id": 1, "name": "\xe5\xbc\xa0\xe4\xb8\x89"}, {"id": 2}]',
    b"[]",
    b'{"id": 3}',
    b"{}",
    b"null",
    b"0",
    b'"text"',
    b"",
    b"not json",
    b'\xef\xbb\xbf[{"id": 4}]',  # a byte-order mark
    NOT_UTF8 := b'[{"id": 5, "bad": "\xff"}]',
    b"[[1, 2], 3]",
]


@pytest.mark.parametrize("body", BODIES)
def test_json_pages_decodes_as_the_cdk_json_decoder(body: bytes) -> None:
    assert list(JsonPages().decode(response(body))) == list(JsonDecoder(parameters={}).decode(response(body)))


def test_discover_is_kept_per_config_for_static_manifests() -> None:
    lever = load_manifest(FIXTURES / "lever.yaml", trusted=False)
    assert lever.static_streams
    source = manifest_connector("lever_cache", "ats", FIXTURES / "lever.yaml").source
    assert source is not None
    config = {
        "base_url": "http://127.0.0.1:9/v1",
        "start_date": "2024-01-01T00:00:00Z",
        "credentials": {"auth_type": "Api Key", "api_key": "k"},
    }
    first = source().discover(LOG, config)
    builds = []
    original_build = type(lever).build

    def counting_build(self: Any, **kwargs: Any) -> Any:
        builds.append(kwargs)
        return original_build(self, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(lever), "build", counting_build)
        second = source().discover(LOG, config)
        assert not builds  # the same config: the catalog discovered before
        assert second == first and second is not first
        second.streams.clear()  # a caller's change stays its own
        assert source().discover(LOG, config) == first
        other = source().discover(LOG, {**config, "base_url": "http://127.0.0.1:10/v1"})
        assert len(builds) == 1 and [s.name for s in other.streams] == [s.name for s in first.streams]

    document = {**lever.document, "x_schemas": {"type": "DynamicSchemaLoader"}}
    assert not Manifest(lever.path, document, False, ()).static_streams  # a schema fetched at discover
    assert not Manifest(lever.path, {**lever.document, "dynamic_streams": []}, False, ()).static_streams


def test_a_slice_hashes_as_the_cdk_hashes_it_once_per_slice() -> None:
    from airbyte_cdk.sources.types import StreamSlice
    from airbyte_cdk.utils.slice_hasher import SliceHasher
    from hub_airbyte import manifest

    slices = [
        StreamSlice(partition={}, cursor_slice={}),
        StreamSlice(partition={"parent_id": 7}, cursor_slice={"start": "2024-01-01T00:00:00.000Z"}),
        StreamSlice(partition={"b": 1, "a": [1, 2]}, cursor_slice={}, extra_fields={"x": 1}),
    ]

    class AsTheCdkHashes:  # hash() folds what __hash__ returns: compare through it
        def __init__(self, stream_slice: StreamSlice) -> None:
            self.stream_slice = stream_slice

        def __hash__(self) -> int:
            return SliceHasher.hash(stream_slice=self.stream_slice._stream_slice)

    for stream_slice in slices:
        expected = hash(AsTheCdkHashes(stream_slice))
        assert manifest._slice_hash(stream_slice) == SliceHasher.hash(stream_slice=stream_slice._stream_slice)
        assert hash(stream_slice) == expected
        assert hash(stream_slice) == expected  # the remembered value
    seen = {slices[1]: "cursor"}
    twin = StreamSlice(partition={"parent_id": 7}, cursor_slice={"start": "2024-01-01T00:00:00.000Z"})
    assert seen[twin] == "cursor"  # equal slices still meet in a dict
    calls = []
    original = SliceHasher.hash

    def counting(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        return original(*args, **kwargs)

    fresh = StreamSlice(partition={"p": 1}, cursor_slice={})
    SliceHasher.hash = counting  # type: ignore[method-assign]
    try:
        for _ in range(5):
            hash(fresh)
    finally:
        SliceHasher.hash = original  # type: ignore[method-assign]
    assert len(calls) == 1


SELECTED = ["id", "名字", "first-name", "class", "_private"]


@pytest.mark.parametrize(
    "body",
    [
        *(body for body in BODIES if body != NOT_UTF8),
        b'[{"id": 1, "\xe5\x90\x8d\xe5\xad\x97": "\xe5\xbc\xa0", "first-name": "A", "class": 2, "other": [1, {"x": 2}]},'
        b' {"_private": null, "skipped": {"deep": [1, 2, {"a": "b"}]}}, {}]',
        b'[{"id": 18446744073709551616, "n": 1.5e300, "s": "\\u00e9\\ud83d\\ude00", "id": 2}]',  # a key twice
        b'[{"id": 1}, 2]',  # not all objects: decoded whole
        b'{"id": 3, "other": 4}',  # one object: decoded whole
    ],
)
def test_json_pages_with_fields_builds_only_those_of_each_record(body: bytes) -> None:
    whole = list(JsonDecoder(parameters={}).decode(response(body)))
    try:
        page = json.loads(body)
    except ValueError:
        page = None
    if isinstance(page, list) and page and all(isinstance(r, dict) for r in page):
        expected = [{k: v for k, v in record.items() if k in SELECTED} for record in whole]
    else:
        expected = whole
    assert list(JsonPages(fields=SELECTED).decode(response(body))) == expected


def _greenhouse_document() -> dict[str, Any]:
    from hub_greenhouse import MANIFEST

    return copy.deepcopy(dict(load_manifest(MANIFEST, trusted=True).document))


def _catalog(**schemas: dict[str, Any]) -> ConfiguredAirbyteCatalog:
    return ConfiguredAirbyteCatalog(
        streams=[
            ConfiguredAirbyteStream(
                stream=AirbyteStream(
                    name=name, json_schema=schema, supported_sync_modes=[SyncMode.incremental]
                ),
                sync_mode=SyncMode.incremental,
                destination_sync_mode=DestinationSyncMode.append_dedup,
            )
            for name, schema in schemas.items()
        ]
    )


def _decoder_fields(document: dict[str, Any]) -> dict[str, Any]:
    return {
        stream["name"]: stream["retriever"]["decoder"].get("fields")
        for group in document["streams"][:1]
        for stream in group["streams"]
    }


def test_a_stream_read_for_some_fields_has_its_decoder_told_them_with_its_key_cursor_and_links() -> None:
    selected = {"type": "object", "properties": {"company": {}, "title": {}}, "additionalProperties": False}
    document = _with_selected_fields(
        _greenhouse_document(),
        _catalog(candidates=selected, applications=selected, attachments=selected, jobs={"type": "object"}),
    )
    assert document is not None
    fields = _decoder_fields(document)
    assert fields["candidates"] == ["company", "id", "title", "updated_at"]  # + key and cursor
    # + what the transformation copying related ids reads
    assert fields["applications"] == ["candidate_id", "company", "id", "jobs", "last_activity_at", "title"]
    assert fields["attachments"] is None  # records expanded from a field: read whole
    assert fields["jobs"] is None  # every field selected (the schema allows others)
    assert fields["offers"] is None  # not read at all
    untouched = _greenhouse_document()
    assert _with_selected_fields(untouched, _catalog(candidates={"type": "object"})) is None
    # a manifest whose decoders cannot select (the CDK's own) runs as written
    lever = copy.deepcopy(dict(load_manifest(FIXTURES / "lever.yaml", trusted=False).document))
    stream_names = [s.get("name") for s in lever["streams"] if isinstance(s, dict)]
    narrowed = _catalog(**{str(name): selected for name in stream_names})
    assert _with_selected_fields(lever, narrowed) is None  # built as written


@pytest.mark.parametrize(
    "change",
    [
        {"retriever": {"record_selector": {"record_filter": {"condition": "{{ record['id'] > 1 }}"}}}},
        {
            "transformations": [
                {"type": "AddFields", "fields": [{"path": ["x"], "value": "{{ record['a'] }}"}]}
            ]
        },
        {"retriever": {"paginator": {"pagination_strategy": {"cursor_value": "{{ last_record['id'] }}"}}}},
        {"incremental_sync": {"cursor_field": "{{ config['cursor'] }}"}},
        {"retriever": {"decoder": {"type": "JsonDecoder"}}},
    ],
)
def test_a_stream_whose_records_something_else_reads_is_read_whole(change: dict[str, Any]) -> None:
    from hub_airbyte.manifest import _declared_streams, _fields_needed

    document = ManifestReferenceResolver().preprocess_manifest(_greenhouse_document())
    stream = next(s for s in _declared_streams(document["streams"]) if s["name"] == "candidates")
    assert _fields_needed(stream, {"company"}) == ["company", "id", "updated_at"]

    def merge(into: dict[str, Any], update: dict[str, Any]) -> None:
        for key, value in update.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict) and "type" not in value:
                merge(into[key], value)
            else:
                into[key] = value

    merge(stream, change)
    assert _fields_needed(stream, {"company"}) is None


def test_json_pages_with_fields_checks_the_text_of_those_fields_only() -> None:
    # Bytes that are not UTF-8 in a field not read are skipped with the field (the CDK, which
    # decodes the page whole, gives up on every record); in a field read, as the CDK does.
    assert list(JsonPages(fields=["id"]).decode(response(NOT_UTF8))) == [{"id": 5}]
    whole = list(JsonDecoder(parameters={}).decode(response(NOT_UTF8)))
    assert list(JsonPages(fields=["id", "bad"]).decode(response(NOT_UTF8))) == whole
