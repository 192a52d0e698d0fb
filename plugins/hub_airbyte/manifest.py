"""Airbyte declarative (low-code) manifests as hub loads them: parsed, checked, cached.

A manifest is a YAML document with ``type: DeclarativeSource``. hub reads two optional
hints from it: ``metadata.hub_category`` (the connector's category, ``generic`` by default)
and the top-level ``description``. Manifests shipped by a hub plugin are *trusted*: they may
bring custom Python components in a ``components.py`` beside them. That file is imported
under a name of its own and the manifest's ``class_name`` references to
``source_declarative_manifest.components`` / ``components`` are pointed at it, so no
environment variable (``AIRBYTE_ENABLE_UNSAFE_CODE``) and no process-wide ``components``
module is needed, and two plugins' components never collide. Manifests from a project's
plugins folder or named in hub.toml are YAML only: any ``class_name`` is refused.
"""

from __future__ import annotations

import copy
import datetime
import functools
import hashlib
import importlib.util
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from airbyte_cdk.models import AirbyteCatalog, ConfiguredAirbyteCatalog, ConnectorSpecification
from airbyte_cdk.sources.declarative import concurrent_declarative_source as _cds
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource
from airbyte_cdk.sources.declarative.datetime.datetime_parser import DatetimeParser
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import ManifestReferenceResolver
from airbyte_cdk.sources.streams.concurrent.state_converters.datetime_stream_state_converter import (
    CustomFormatConcurrentStreamStateConverter,
)
from airbyte_cdk.sources.types import StreamSlice

from hub.airbyte_containment import ConfigCapture, contained
from hub.connectors import CATEGORIES
from hub.errors import HubError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: the module names Airbyte's manifest-only connectors use for their components.py
_COMPONENT_PREFIXES = ("source_declarative_manifest.components.", "components.")
#: config paths the CDK's OAuth ``refresh_token_updater`` writes unless told otherwise
_UPDATER_DEFAULTS = {
    "refresh_token_config_path": ("credentials", "refresh_token"),
    "access_token_config_path": ("credentials", "access_token"),
    "token_expiry_date_config_path": ("credentials", "token_expiry_date"),
}


class ManifestError(HubError):
    """A manifest cannot be used: unreadable, bad YAML, invalid, or asking for untrusted code."""


def _walk(node: Any) -> Iterator[Mapping[str, Any]]:
    """Every mapping inside a parsed YAML document."""
    if isinstance(node, Mapping):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def read_document(path: Path) -> dict[str, Any] | None:
    """The parsed manifest, or None when ``path`` is YAML but not a declarative manifest."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path.name}: cannot read it ({type(exc).__name__})") from exc
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (C or Python)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ManifestError(f"{path.name}{where}: not valid YAML ({problem})") from exc
    if not isinstance(document, dict) or document.get("type") != "DeclarativeSource":
        return None
    return document


def _written_paths(document: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
    """Config paths the manifest's OAuth authenticators write back (rotated tokens)."""
    paths: set[tuple[str, ...]] = set()
    for node in _walk(document):
        updater = node.get("refresh_token_updater")
        if not isinstance(updater, Mapping):
            continue
        for key, default in _UPDATER_DEFAULTS.items():
            value = updater.get(key)
            path = tuple(str(p) for p in value) if isinstance(value, list) and value else default
            paths.add(path)
    return tuple(sorted(paths))


def _custom_classes(document: Any) -> list[str]:
    return sorted({str(node["class_name"]) for node in _walk(document) if "class_name" in node})


def _with_components(document: dict[str, Any], path: Path) -> dict[str, Any]:
    """Import the manifest's components.py under its own name and point class_name at it."""
    components = path.parent / "components.py"
    if not components.is_file():
        return document
    digest = hashlib.sha256(str(components.resolve()).encode()).hexdigest()[:12]
    module_name = f"hub_airbyte_components_{digest}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, components)
        if spec is None or spec.loader is None:
            raise ManifestError(f"{components}: cannot import it")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(module_name, None)
            raise ManifestError(f"{components}: import failed: {type(exc).__name__}: {exc}") from exc

    def point(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: point(v) for k, v in node.items()}
            name = out.get("class_name")
            if isinstance(name, str):
                for prefix in _COMPONENT_PREFIXES:
                    if name.startswith(prefix):
                        out["class_name"] = f"{module_name}.{name[len(prefix) :]}"
            return out
        if isinstance(node, list):
            return [point(v) for v in node]
        return node

    result: dict[str, Any] = point(document)
    return result


#: schema loaders whose schemas are in the manifest or the package (no request at discover)
_STATIC_SCHEMA_LOADERS = frozenset({"InlineSchemaLoader", "JsonFileSchemaLoader"})
#: ISO 8601 UTC with a fraction (``2024-05-01T08:30:00.123Z``): what most APIs' cursors hold
_ISO_UTC_FRACTION = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{1,6}Z")
_ISO_UTC_FRACTION_FORMATS = frozenset({"%Y-%m-%dT%H:%M:%S.%_msZ", "%Y-%m-%dT%H:%M:%S.%fZ"})


class _IsoDatetimeParser(DatetimeParser):
    """The CDK's parser, with ``datetime.fromisoformat`` for ISO UTC timestamps.

    A concurrent cursor parses the cursor value of every record it reads (``observe``), with
    ``datetime.strptime``: a fifth of the CPU a stream's records cost. For the formats in
    :data:`_ISO_UTC_FRACTION_FORMATS` and values in their plain form (two-digit fields, upper
    case ``T`` and ``Z``, checked by :data:`_ISO_UTC_FRACTION`, since ``fromisoformat`` takes
    more forms than ``strptime`` does) the C parser reads it; anything else, including
    values out of range, goes through ``DatetimeParser.parse`` as before.
    """

    def parse(self, date: str | int, format: str) -> datetime.datetime:
        if format in _ISO_UTC_FRACTION_FORMATS and type(date) is str and _ISO_UTC_FRACTION.fullmatch(date):
            try:
                return datetime.datetime.fromisoformat(date)
            except ValueError:
                pass
        return super().parse(date, format)


#: the CDK's own loader of its component schema (a 3,000-line YAML file, parsed per source)
_load_component_schema = _cds.get_declarative_component_schema


@functools.cache
def _component_schema() -> dict[str, Any]:
    """The CDK's declarative component schema, parsed once per process.

    The CDK parses it again for every source it builds (half of building one); it only reads
    it (to validate manifests). Put in place of the CDK's loader when this module is imported.
    """
    return _load_component_schema()


_cds.get_declarative_component_schema = _component_schema

#: the CDK's hash of a slice: its JSON, sorted, through SHA-256, computed on every call
_slice_hash = StreamSlice.__hash__


def _remembered_slice_hash(stream_slice: StreamSlice) -> int:
    """The CDK's hash of ``stream_slice``, computed once per slice.

    A concurrent cursor looks up the slice of every record it reads twice (``observe``), and
    the CDK hashes a slice by serialising it to JSON each time: a sixth of the CPU a record
    costs in the reading thread. A slice cannot change (``StreamSlice`` refuses item
    assignment, and its dict is built once, in ``__init__``), so its hash cannot either. Put in
    place of the CDK's when this module is imported.
    """
    try:
        return stream_slice.__dict__["_hub_hash"]
    except KeyError:
        value = stream_slice.__dict__["_hub_hash"] = _slice_hash(stream_slice)
        return value


StreamSlice.__hash__ = _remembered_slice_hash  # type: ignore[method-assign,assignment]


class _HubDeclarativeSource(ConcurrentDeclarativeSource):
    """The CDK's declarative source: a manifest validated once, cursors parsing ISO times faster.

    ``checked`` (a :class:`Manifest`'s own dict) remembers that the manifest's resolved form
    passed validation: the CDK resolves and validates it again for every source it builds,
    and the same document always resolves to the same manifest.
    """

    def __init__(self, *args: Any, checked: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._hub_checked = checked
        super().__init__(*args, **kwargs)

    def _validate_source(self) -> None:
        checked = self._hub_checked
        if checked is not None and checked.get("valid"):
            return
        super()._validate_source()
        if checked is not None:
            checked["valid"] = True

    def _create_streams(self, *args: Any, **kwargs: Any) -> Any:
        streams = super()._create_streams(*args, **kwargs)
        for stream in streams:
            converter = getattr(getattr(stream, "cursor", None), "_connector_state_converter", None)
            if (
                type(converter) is CustomFormatConcurrentStreamStateConverter
                and type(getattr(converter, "_parser", None)) is DatetimeParser
            ):
                converter._parser = _IsoDatetimeParser()
        return streams


def _selected(catalog: ConfiguredAirbyteCatalog) -> dict[str, set[str]]:
    """Per stream, the fields a sync selected: a configured schema allowing no others."""
    return {
        configured.stream.name: set(schema.get("properties") or {})
        for configured in catalog.streams
        if isinstance(schema := configured.stream.json_schema, Mapping)
        and schema.get("additionalProperties") is False
    }


def _with_selected_fields(
    document: Mapping[str, Any], catalog: ConfiguredAirbyteCatalog
) -> dict[str, Any] | None:
    """A copy of ``document`` with the decoder of each stream read for some fields told them.

    Field selection as Airbyte's protocol has it (the configured stream's schema lists the
    selected fields): a decoder that can skip the rest of each record while parsing (its class
    has ``selects_fields``) gets ``fields``: the selected ones, the stream's key and cursor, and
    what its transformations read. A stream whose records something else reads (a record
    filter or expander, a template on ``record``, a transformation that does not say what it
    reads) is read whole. None when no decoder is told anything: the manifest runs as written.
    """
    selected = _selected(catalog)
    if not selected:
        return None
    resolved: dict[str, Any] = ManifestReferenceResolver().preprocess_manifest(copy.deepcopy(dict(document)))
    told = False
    for stream in _declared_streams(resolved.get("streams")):
        name = stream.get("name") or _parameters(stream).get("name")
        if name not in selected:
            continue
        fields = _fields_needed(stream, selected[name])
        if fields is not None:
            stream["retriever"]["decoder"]["fields"] = fields
            told = True
    return resolved if told else None


def _declared_streams(streams: Any) -> Iterator[dict[str, Any]]:
    """The streams of a manifest's ``streams`` list, those of ``ConditionalStreams`` included."""
    for stream in streams if isinstance(streams, list) else []:
        if isinstance(stream, dict) and stream.get("type") == "ConditionalStreams":
            yield from _declared_streams(stream.get("streams"))
        elif isinstance(stream, dict):
            yield stream


def _parameters(component: Mapping[str, Any]) -> Mapping[str, Any]:
    parameters = component.get("$parameters")
    return parameters if isinstance(parameters, Mapping) else {}


#: a template that is only a parameter (``{{ parameters.cursor_field }}``)
_PARAMETER_ONLY = re.compile(r"\{\{\s*parameters(?:\.(\w+)|\[['\"](\w+)['\"]\])\s*\}\}")


def _field_name(value: Any, *components: Mapping[str, Any]) -> str | None:
    """A field name as a manifest gives it: plain, or a parameter of the components given."""
    text = str(value)
    if "{{" not in text:
        return text
    match = _PARAMETER_ONLY.fullmatch(text.strip())
    if match is None:
        return None
    name = match.group(1) or match.group(2)
    for component in components:
        if name in _parameters(component):
            return str(_parameters(component)[name])
    return None


def _component_class(definition: Any) -> Any:
    """The class of a custom component, if its module is loaded (components.py of a manifest)."""
    class_name = definition.get("class_name") if isinstance(definition, Mapping) else None
    if not isinstance(class_name, str):
        return None
    module, _, name = class_name.rpartition(".")
    return getattr(sys.modules.get(module), name, None)


#: cursors that read one record field, their ``cursor_field``
_ONE_FIELD_CURSORS = frozenset({"DatetimeBasedCursor", "IncrementingCountCursor"})


def _fields_needed(stream: Mapping[str, Any], selected: set[str]) -> list[str] | None:
    """The fields of ``stream``'s records a sync selecting ``selected`` needs; None: all."""
    retriever = stream.get("retriever")
    if not isinstance(retriever, Mapping) or retriever.get("type") != "SimpleRetriever":
        return None
    decoder = retriever.get("decoder")
    if not isinstance(decoder, Mapping) or decoder.get("type") != "CustomDecoder":
        return None
    if not getattr(_component_class(decoder), "selects_fields", False):
        return None
    selector = retriever.get("record_selector")
    if not isinstance(selector, Mapping) or selector.get("record_filter"):
        return None
    extractor = selector.get("extractor")
    if not isinstance(extractor, Mapping) or extractor.get("record_expander"):
        return None
    needed = set(selected)
    key = stream.get("primary_key") or []
    for part in [key] if isinstance(key, str) else key:
        needed.add(str(part if isinstance(part, str) else part[0]))
    cursor = stream.get("incremental_sync")
    if cursor:
        if not isinstance(cursor, Mapping) or cursor.get("type") not in _ONE_FIELD_CURSORS:
            return None
        cursor_field = _field_name(cursor.get("cursor_field"), cursor, stream)
        if cursor_field is None:
            return None
        needed.add(cursor_field)
    for transformation in stream.get("transformations") or []:
        fields_read = getattr(_component_class(transformation), "fields_read", None)
        if fields_read is None:
            return None
        needed |= set(fields_read(transformation))
    rest = {k: v for k, v in stream.items() if k != "transformations"}
    rest["retriever"] = {k: v for k, v in retriever.items() if k != "decoder"}
    if any("{{" in text and "record" in text for text in _strings(rest)):
        return None  # a template reading records (a paginator's last_record...)
    return sorted(needed)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


@dataclass(frozen=True)
class Manifest:
    """A checked declarative manifest, ready to build CDK sources from."""

    path: Path
    document: Mapping[str, Any]
    trusted: bool
    #: config paths the CDK rewrites when it rotates OAuth tokens (see hub_airbyte.containment)
    written_paths: tuple[tuple[str, ...], ...]
    #: what this process learnt about the manifest: validated, discovered catalogs (per config)
    _known: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def connection_specification(self) -> dict[str, Any]:
        spec = self.document["spec"]
        return dict(spec.get("connection_specification") or spec.get("connectionSpecification"))

    @property
    def category(self) -> str:
        metadata = self.document.get("metadata")
        value = metadata.get("hub_category", "generic") if isinstance(metadata, Mapping) else "generic"
        return str(value)

    @property
    def description(self) -> str:
        value = self.document.get("description")
        return (
            str(value).strip().splitlines()[0] if value else f"Airbyte declarative manifest {self.path.name}"
        )

    def spec(self) -> ConnectorSpecification:
        spec = self.document["spec"]
        return ConnectorSpecification(
            connectionSpecification=self.connection_specification,
            documentationUrl=spec.get("documentation_url"),
            supportsIncremental=any("incremental_sync" in s for s in _walk(self.document.get("streams"))),
        )

    def build(
        self,
        *,
        config: Mapping[str, Any] | None,
        catalog: ConfiguredAirbyteCatalog | None = None,
        state: list[Any] | None = None,
    ) -> ConcurrentDeclarativeSource:
        """A fresh CDK source: one per call, the CDK's are single use."""
        document = _with_selected_fields(self.document, catalog) if catalog is not None else None
        if document is None:
            document = copy.deepcopy(dict(self.document))  # the CDK resolves $refs in place
        return _HubDeclarativeSource(
            catalog=catalog,
            config=config,
            state=state,
            source_config=document,
            custom_components_trusted=self.trusted,
            checked=self._known,
        )

    @property
    def static_streams(self) -> bool:
        """Its catalog follows from the manifest and the config alone (no dynamic streams or schemas)."""
        if "dynamic_streams" in self.document:
            return False
        loaders = {
            str(node.get("type"))
            for node in _walk(self.document)
            if str(node.get("type", "")).endswith("SchemaLoader")
        }
        return loaders <= _STATIC_SCHEMA_LOADERS

    def discovered(self, config: Mapping[str, Any], discover: Callable[[], AirbyteCatalog]) -> AirbyteCatalog:
        """``discover()``'s catalog, kept per config for manifests with :attr:`static_streams`.

        Discovering builds a source and all its streams (tenths of a second); hub does it at
        the start of every sync. A copy is returned each time (callers may change it).
        """
        if not self.static_streams:
            return discover()
        key = (
            "catalog:"
            + hashlib.sha256(orjson.dumps(dict(config), default=str, option=orjson.OPT_SORT_KEYS)).hexdigest()
        )
        with _cache_lock:
            catalog = self._known.get(key)
        if catalog is None:
            catalog = discover()
            with _cache_lock:
                self._known[key] = copy.deepcopy(catalog)
            return catalog
        return copy.deepcopy(catalog)


def _check(document: dict[str, Any], path: Path, trusted: bool) -> Manifest:
    spec = document.get("spec")
    connection = (
        (spec.get("connection_specification") or spec.get("connectionSpecification"))
        if isinstance(spec, Mapping)
        else None
    )
    if not isinstance(connection, Mapping):
        raise ManifestError(
            f"{path.name}: has no spec.connection_specification (hub validates config with it)"
        )
    if trusted:
        document = _with_components(document, path)
    else:
        classes = _custom_classes(document)
        if classes:
            raise ManifestError(
                f"{path.name}: custom Python components ({', '.join(classes)}) run only in manifests "
                "shipped by a hub plugin; a project or hub.toml manifest must be YAML only"
            )
    manifest = Manifest(path=path, document=document, trusted=trusted, written_paths=_written_paths(document))
    if manifest.category not in CATEGORIES:
        raise ManifestError(
            f"{path.name}: metadata.hub_category {manifest.category!r} is not one of {', '.join(CATEGORIES)}"
        )
    try:
        with contained(ConfigCapture({}, ())):
            manifest.build(config=None)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ManifestError(
            f"{path.name}: not a valid declarative manifest: {type(exc).__name__}: {detail[:300]}"
        ) from exc
    return manifest


_cache: dict[tuple[Path, bool], tuple[tuple[int, int], Manifest]] = {}
_cache_lock = threading.Lock()


def load_manifest(path: Path, *, trusted: bool) -> Manifest:
    """The manifest at ``path``, checked (once per version of the file)."""
    path = path.resolve()
    try:
        stat = path.stat()
    except OSError as exc:
        raise ManifestError(f"{path}: manifest not found") from exc
    version = (stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        cached = _cache.get((path, trusted))
    if cached is not None and cached[0] == version:
        return cached[1]
    document = read_document(path)
    if document is None:
        raise ManifestError(f"{path.name}: not an Airbyte declarative manifest (type: DeclarativeSource)")
    manifest = _check(document, path, trusted)
    with _cache_lock:
        _cache[(path, trusted)] = (version, manifest)
    return manifest
