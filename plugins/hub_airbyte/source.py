"""Airbyte declarative manifests as hub sources, run in hub's own process.

:class:`ManifestSource` is an airbyte-cdk ``Source`` whose spec is the manifest's and whose
check / discover / read build a fresh ``ConcurrentDeclarativeSource`` for every call (the
CDK's sources are single use), with the same catalog and state given to the constructor and
to ``read``. What the CDK would print to stdout is taken off it (hub_airbyte.containment):
a rotated OAuth config comes out of ``read`` as a CONTROL message, which the engine saves
with ``Project.save_rotated_config``. The ``AirbyteTracedException`` the CDK raises after a
stream failed becomes a hub error, transient (retried from the last checkpoint) when every
failure the CDK reported was transient (429 / 5xx / timeouts exhausted).

:func:`manifest_connector` is how a plugin ships a manifest of its own (trusted: it may
bring a ``components.py``); the ``airbyte_manifest`` connector runs one named in hub.toml.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from queue import Empty
from typing import Any, ClassVar, cast

from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteControlConnectorConfigMessage,
    AirbyteControlMessage,
    AirbyteErrorTraceMessage,
    AirbyteMessage,
    ConfiguredAirbyteCatalog,
    ConnectorSpecification,
    FailureType,
    OrchestratorType,
    Status,
    Type,
)
from airbyte_cdk.sources.source import Source

from hub.airbyte_containment import ConfigCapture, contained, snapshot
from hub.connectors import Category, Connector
from hub.errors import (
    ConfigProblem,
    ConfigurationError,
    FatalSyncError,
    PluginError,
    RetriableSyncError,
    SyncError,
)
from hub.masking import mask_text
from hub.retry import is_transient
from hub_airbyte.manifest import Manifest, ManifestError, load_manifest

log = logging.getLogger("hub.airbyte")


class ManifestSyncError(SyncError):
    """A manifest stream failed for a reason retrying will not fix (a bug, bad data)."""


class ManifestConfigError(FatalSyncError):
    """A manifest stream failed on its configuration (credentials refused, bad parameters)."""


class ManifestTransientError(RetriableSyncError):
    """A manifest stream gave up on 429s, 5xx or timeouts: retry from the last checkpoint."""


def stream_failure(connector: str, errors: list[AirbyteErrorTraceMessage], exc: BaseException) -> SyncError:
    """The hub error for a failed read: what failed, masked, and whether a retry may help."""
    distinct: dict[str, int] = {}  # one reason per partition that failed: say each once, counted
    for error in errors:
        stream = error.stream_descriptor.name if error.stream_descriptor else "source"
        kind = error.failure_type.value if error.failure_type else "error"
        reason = f"stream {stream} ({kind}): {error.message or error.internal_message or ''}".strip()
        distinct[reason] = distinct.get(reason, 0) + 1
    reasons = [f"{r} (x{n})" if n > 1 else r for r, n in list(distinct.items())[:3]]
    if len(distinct) > 3:
        reasons.append(f"and {len(distinct) - 3} other failures")
    detail = "; ".join(reasons) or f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
    message = mask_text(f"{connector}: {detail}")
    kinds = {e.failure_type for e in errors}
    if FailureType.config_error in kinds:
        return ManifestConfigError(message)
    if (errors and kinds == {FailureType.transient_error}) or (not errors and is_transient(exc)):
        return ManifestTransientError(message)
    return ManifestSyncError(message)


def _abandon(source: Any, messages: Iterator[AirbyteMessage]) -> None:
    """The consumer stopped reading early: stop the CDK's workers instead of leaving them blocked.

    The CDK has no cancellation: its workers put records into a bounded queue that nobody
    reads any more. Cancel what has not started and drain the queue until the running
    partitions end, so no worker thread stays blocked (and keeps the process alive).
    """
    close = getattr(messages, "close", None)
    if close is not None:
        close()
    _release_workers(source)


def _release_workers(source: Any) -> None:
    """Shut the CDK's worker pool down, draining its queue until the running partitions end.

    Also after a failed read: the CDK raises before it shuts its pool down, and the idle
    workers would otherwise wait until the source is garbage collected (the exception's
    traceback keeps it alive).
    """
    concurrent = getattr(source, "_concurrent_source", None)
    manager = getattr(concurrent, "_threadpool", None)
    queue = getattr(concurrent, "_queue", None)
    executor = getattr(manager, "_threadpool", None)
    if executor is None or queue is None:
        return
    executor.shutdown(wait=False, cancel_futures=True)
    futures = list(getattr(manager, "_futures", []))

    def drain() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not all(f.done() for f in futures):
            try:
                queue.get(timeout=0.1)
            except Empty:
                continue

    threading.Thread(target=drain, name="hub-airbyte-drain", daemon=True).start()


class ManifestSource(Source):
    """A declarative manifest as an Airbyte source, one fresh CDK source per call.

    Subclasses set :attr:`manifest_path` (see :func:`manifest_connector`); the generic
    :class:`ConfiguredManifestSource` takes the path from the config instead.
    """

    manifest_path: ClassVar[Path | None] = None
    #: a plugin's own manifest: it may bring custom Python components (components.py)
    trusted: ClassVar[bool] = False
    #: config keys that are hub's, not the manifest's (not given to the CDK)
    hub_keys: ClassVar[tuple[str, ...]] = ()
    connector_name: ClassVar[str] = "airbyte_manifest"

    def __init__(self) -> None:
        #: receives the new config when check or discover rotated credentials (OAuth refresh
        #: tokens); ``read`` yields CONTROL messages instead. hub.project sets it.
        self.on_config_update: Callable[[dict[str, Any]], None] | None = None

    # -- the manifest ------------------------------------------------------------------------

    def manifest(self, config: Mapping[str, Any] | None = None) -> Manifest:
        if self.manifest_path is None:
            raise PluginError(f"{type(self).__name__} has no manifest")
        try:
            return load_manifest(self.manifest_path, trusted=self.trusted)
        except ManifestError as exc:
            raise PluginError(f"connector {self.connector_name!r}: {exc}") from exc

    def _cdk_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A private copy for the CDK (it writes rotated tokens into nested dicts)."""
        return snapshot({k: v for k, v in config.items() if k not in self.hub_keys})

    def _as_hub_config(self, cdk_config: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        return {**cdk_config, **{k: config[k] for k in self.hub_keys if k in config}}

    def _control(self, update: Mapping[str, Any], config: Mapping[str, Any]) -> AirbyteMessage:
        return AirbyteMessage(
            type=Type.CONTROL,
            control=AirbyteControlMessage(
                type=OrchestratorType.CONNECTOR_CONFIG,
                emitted_at=time.time() * 1000,
                connectorConfig=AirbyteControlConnectorConfigMessage(
                    config=self._as_hub_config(update, config)
                ),
            ),
        )

    def _hand_over(self, capture: ConfigCapture, config: Mapping[str, Any]) -> None:
        """Config updates of check / discover, which cannot yield them, go to the callback."""
        for update in capture.take():
            if self.on_config_update is None:
                log.warning(
                    "%s rotated its credentials during check or discover, and nothing is there to save "
                    "them: run it through a hub project",
                    self.connector_name,
                )
                continue
            self.on_config_update(self._as_hub_config(update, config))

    # -- the Airbyte protocol ----------------------------------------------------------------

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return self.manifest().spec()

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        try:
            manifest = self.manifest(config)
        except (PluginError, ConfigurationError) as exc:
            return AirbyteConnectionStatus(status=Status.FAILED, message=mask_text(str(exc)))
        cdk_config = self._cdk_config(config)
        capture = ConfigCapture(cdk_config, manifest.written_paths)
        with contained(capture):
            try:
                cdk = manifest.build(config=cdk_config)
                capture.add_baseline(getattr(cdk, "_config", None))
                status = cdk.check(logger, cdk_config)
            except Exception as exc:  # noqa: BLE001 - the Airbyte contract: check reports, never raises
                status = AirbyteConnectionStatus(
                    status=Status.FAILED, message=mask_text(f"{type(exc).__name__}: {exc}")
                )
        self._hand_over(capture, config)
        return status

    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        manifest = self.manifest(config)
        cdk_config = self._cdk_config(config)

        def discover_now() -> AirbyteCatalog:
            capture = ConfigCapture(cdk_config, manifest.written_paths)
            try:
                with contained(capture):
                    cdk = manifest.build(config=cdk_config)
                    capture.add_baseline(getattr(cdk, "_config", None))
                    catalog = cdk.discover(logger, cdk_config)
            finally:
                self._hand_over(capture, config)
            return catalog

        # once per config in a process (every sync discovers), unless the streams are dynamic
        return manifest.discovered(cdk_config, discover_now)

    def read(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Any = None,
    ) -> Iterator[AirbyteMessage]:
        manifest = self.manifest(config)
        cdk_config = self._cdk_config(config)
        states = list(state or [])
        capture = ConfigCapture(cdk_config, manifest.written_paths)
        errors: list[AirbyteErrorTraceMessage] = []
        failure: Exception | None = None
        with contained(capture):
            try:
                source = manifest.build(config=cdk_config, catalog=catalog, state=states)
            except Exception as exc:
                raise stream_failure(self.connector_name, [], exc) from exc
            # the config the CDK works with, after the manifest's config transformations
            capture.add_baseline(getattr(source, "_config", None))
            messages = source.read(logger, cdk_config, catalog, states)
            finished = False
            try:
                for message in messages:
                    for update in capture.take():
                        yield self._control(update, config)
                    if message.type == Type.TRACE and message.trace is not None and message.trace.error:
                        errors.append(message.trace.error)
                    yield message
                finished = True
            except Exception as exc:  # noqa: BLE001 - AirbyteTracedException (a stream failed) or a CDK bug
                failure = exc
                finished = True
                _release_workers(source)
            finally:
                if not finished:  # closed by the consumer (GeneratorExit)
                    _abandon(source, messages)
            for update in capture.take():
                yield self._control(update, config)
        if failure is not None:
            raise stream_failure(self.connector_name, errors, failure) from failure


class ConfiguredManifestSource(ManifestSource):
    """The ``airbyte_manifest`` connector: runs the manifest its config names (YAML only).

    Its spec depends on the config: ``manifest`` (a path relative to hub.toml) plus the
    manifest's own connection specification, which hub.toml is validated against.
    """

    hub_keys = ("manifest",)
    MANIFEST_PROPERTY: ClassVar[dict[str, Any]] = {
        "type": "string",
        "title": "Manifest",
        "description": "Path of the Airbyte declarative manifest (YAML), relative to hub.toml",
        "x-hub-path": True,
    }

    def manifest(self, config: Mapping[str, Any] | None = None) -> Manifest:
        raw = (config or {}).get("manifest")
        if not isinstance(raw, str) or not raw:
            raise ConfigurationError([ConfigProblem("manifest", "required field is missing")])
        try:
            return load_manifest(Path(raw), trusted=False)
        except ManifestError as exc:
            raise ConfigurationError([ConfigProblem("manifest", str(exc))]) from exc

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        """Without a config: only ``manifest``; hub.toml is validated with :meth:`spec_for_config`."""
        return ConnectorSpecification(
            connectionSpecification={
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "required": ["manifest"],
                "properties": {"manifest": self.MANIFEST_PROPERTY},
                "additionalProperties": True,
            }
        )

    @classmethod
    def spec_for_config(cls, config: Mapping[str, Any], base: Path) -> ConnectorSpecification:
        """The spec of the manifest ``config`` names, plus ``manifest`` itself.

        Raises ConfigurationError (paths relative to the config) when there is no usable manifest.
        """
        raw = config.get("manifest")
        if not isinstance(raw, str) or not raw:
            raise ConfigurationError([ConfigProblem("manifest", "required field is missing")])
        path = Path(raw) if Path(raw).is_absolute() else base / raw
        try:
            manifest = load_manifest(path, trusted=False)
        except ManifestError as exc:
            raise ConfigurationError([ConfigProblem("manifest", str(exc))]) from exc
        spec = manifest.connection_specification
        properties = {**(spec.get("properties") or {}), "manifest": cls.MANIFEST_PROPERTY}
        required = ["manifest", *[r for r in spec.get("required") or [] if r != "manifest"]]
        specification = manifest.spec()
        specification.connectionSpecification = {**spec, "properties": properties, "required": required}
        return specification


def _source_class(name: str, manifest: Path, *, trusted: bool) -> type[ManifestSource]:
    """A ManifestSource subclass bound to one manifest (the engine builds sources with no arguments)."""
    camel = "".join(part.capitalize() for part in name.replace("-", "_").split("_") if part)
    attributes = {
        "manifest_path": manifest,
        "trusted": trusted,
        "connector_name": name,
        "__module__": __name__,
        "__doc__": f"The {name!r} connector: the Airbyte declarative manifest {manifest.name}.",
    }
    return cast(type[ManifestSource], type(f"{camel}ManifestSource", (ManifestSource,), attributes))


def manifest_connector(name: str, category: str, manifest: Path, description: str = "") -> Connector:
    """A source connector that runs ``manifest``, for a plugin that ships its own manifest.

    The manifest is the plugin's, so it is trusted: a ``components.py`` beside it (custom
    Python components, as Airbyte's manifest-only connectors have) is loaded. It is parsed and
    checked when first used, not when hub starts.
    """
    manifest = Path(manifest).resolve()
    if not manifest.is_file():
        raise FileNotFoundError(f"connector {name!r}: manifest {manifest} not found")
    return Connector(
        name=name,
        category=cast(Category, category),
        source=_source_class(name, manifest, trusted=True),
        description=description or f"Airbyte declarative manifest {manifest.name}",
    )


def project_manifest_connector(path: Path) -> Connector:
    """The connector of a manifest in a project's plugins folder: YAML only, checked now."""
    manifest = load_manifest(path, trusted=False)
    return Connector(
        name=path.stem,
        category=cast(Category, manifest.category),
        source=_source_class(path.stem, manifest.path, trusted=False),
        description=manifest.description,
    )
