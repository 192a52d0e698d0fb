"""hub_airbyte's and the Greenhouse manifest's shortcuts return what the CDK's own paths return.

The cursor's ISO timestamp parser against the CDK's ``DatetimeParser``, the Greenhouse JSON
page decoder against the CDK's ``JsonDecoder``, and a discovered catalog kept per config
(copies handed out; manifests with dynamic schemas discovered every time).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import pytest
import requests
from airbyte_cdk.sources.declarative.datetime.datetime_parser import DatetimeParser
from airbyte_cdk.sources.declarative.decoders.json_decoder import JsonDecoder
from hub_airbyte import Manifest, load_manifest, manifest_connector
from hub_airbyte.manifest import _IsoDatetimeParser
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
    b'[{"id": 5, "bad": "\xff"}]',  # not UTF-8
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
