"""The ``scim`` connector against a SCIM 2.0 server hub does not ship: scim2-server (python-scim).

scim2-server's in-memory WSGI application (RFC 7643 schemas, User with the enterprise
extension, ETags, PATCH, filters) runs in a thread on 127.0.0.1, and everything goes over real
loopback HTTP. Between the two sits :class:`Gateway`, a test-only front that plays the
network's faults (a reverse proxy answering 503/429, a reply lost after the server did the
write, a write by someone else just before hub's) and records what hub sent.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import requests
from airbyte_cdk.models import (
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    Status,
    SyncMode,
    Type,
)
from hub_scim.actions import ProvisionUser
from hub_scim.client import ScimClient, equals_filter
from hub_scim.errors import ScimAuthError, ScimConflict, ScimError, ScimRateLimited, ScimUnavailable
from hub_scim.source import ScimSource
from hub_scim.users import ENTERPRISE_USER, MultiValue, ScimUser
from scim2_models import ResourceType, ScimProvider, UnauthorizedException
from scim2_server.applications.wsgi import WSGIApplication
from scim2_server.memory import InMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
from scim2_server.testserver.cli import ThreadingWSGIServer
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

from hub.onboarding import ActionContext, ActionFailed, ExternalRef
from hub.onboarding.actions import OutcomeKind
from hub.onboarding.flow import OnboardingFlow
from hub.onboarding.runner import OnboardingRunner
from hub.project import Project
from tests.conftest import run_cli

LOG = logging.getLogger("test_scim")
TOKEN = "scim-test-token-7f3a9c"
BASIC = ("hub-provisioner", "basic-secret-42")
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


# -- the server and its gateway ------------------------------------------------------------------


@dataclass
class Seen:
    """A request as it reached the gateway."""

    method: str
    path: str
    query: dict[str, list[str]]
    if_match: str
    content_type: str
    body: Any


@dataclass
class Fault:
    """What the gateway does to the next ``times`` requests matching ``method`` and ``path``.

    ``status``: answer it without passing it on; ``lose``: pass it on, then answer 502 (the
    server did the write, the reply is lost); ``slow``: pass it on, answer after ``delay``
    (longer than hub's timeout); ``before``: call ``hook`` first (another writer), then pass it on.
    """

    kind: str
    method: str
    path: str
    times: int = 1
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    hook: Callable[[], None] | None = None


class Gateway:
    """A WSGI front for the SCIM server that injects faults and records requests (test-only)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[Seen] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def requests(self, method: str, fragment: str = "") -> list[Seen]:
        return [s for s in self.seen if s.method == method and fragment in s.path]

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.path in path:
                    fault.times -= 1
                    return fault
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = _Body(raw)
        self.seen.append(
            Seen(
                method,
                path,
                parse_qs(environ.get("QUERY_STRING", "")),
                environ.get("HTTP_IF_MATCH", ""),
                environ.get("CONTENT_TYPE", ""),
                json.loads(raw) if raw else None,
            )
        )
        fault = self._take(method, path)
        if fault is None:
            return self.app(environ, start_response)
        if fault.kind == "status":
            headers = [("Content-Type", "application/scim+json")]
            if fault.retry_after is not None:
                headers.append(("Retry-After", fault.retry_after))
            start_response(f"{fault.status} Fault", headers)
            return [json.dumps({"schemas": [ERROR], "status": str(fault.status)}).encode()]
        if fault.kind == "before":
            assert fault.hook is not None
            fault.hook()
            return self.app(environ, start_response)
        captured: list[Any] = []
        body = b"".join(self.app(environ, lambda status, headers, *_: captured.append((status, headers))))
        if fault.kind == "lose":
            start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
            return [b"upstream reply lost"]
        time.sleep(fault.delay)  # "slow": hub has given up waiting by now
        start_response(*captured[0])
        return [body]


class _Body:
    def __init__(self, raw: bytes) -> None:
        self.raw, self.pos = raw, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.raw) if size is None or size < 0 else self.pos + size
        chunk, self.pos = self.raw[self.pos : end], min(end, len(self.raw))
        return chunk


class BasicAuthApplication(WSGIApplication):
    """scim2-server with HTTP Basic instead of bearer tokens (its documented extension point)."""

    def check_auth(self, request: ScimRequest) -> None:
        expected = "Basic " + base64.b64encode(":".join(BASIC).encode()).decode()
        if request.header("Authorization") != expected:
            raise UnauthorizedException


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class ScimServer:
    url: str
    gateway: Gateway
    storage: InMemoryStorage
    server: Any = field(repr=False)

    def admin(self) -> requests.Session:
        """Another SCIM client (an administrator, another system) writing to the same server."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        return session

    def users(self) -> list[dict[str, Any]]:
        """Every user at the server, read directly (not through hub's client)."""
        found = self.admin().get(f"{self.url}/Users", params={"count": 1000}).json()
        return list(found.get("Resources") or [])


def serve(
    *,
    etag: bool = True,
    patch: bool = True,
    basic: bool = False,
    enterprise: bool = True,
    max_results: int = 1000,
) -> ScimServer:
    config = load_default_service_provider_config()
    assert config.etag is not None and config.patch is not None and config.filter is not None
    config.etag.supported = etag
    config.patch.supported = patch
    config.filter.max_results = max_results
    config.authentication_schemes = [BEARER_TOKEN_SCHEME]
    resource_types = list(load_default_resource_types().values())
    if not enterprise:
        resource_types = [
            ResourceType.model_validate({**rt.model_dump(), "schemaExtensions": None})
            for rt in resource_types
        ]
    provider = ScimProvider.from_discovery(load_default_schemas().values(), resource_types, config=config)
    storage = InMemoryStorage()
    app: WSGIApplication = (
        BasicAuthApplication(storage, provider)
        if basic
        else BearerTokenApplication(storage, provider, bearer_tokens=[TOKEN])
    )
    gateway = Gateway(app)
    server = make_server("127.0.0.1", 0, gateway, server_class=ThreadingWSGIServer, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return ScimServer(f"http://127.0.0.1:{server.server_port}/v2", gateway, storage, server)


@pytest.fixture
def scim() -> Iterator[ScimServer]:
    running = serve()
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture
def make_server_() -> Iterator[Callable[..., ScimServer]]:
    started: list[ScimServer] = []

    def make(**options: Any) -> ScimServer:
        started.append(serve(**options))
        return started[-1]

    yield make
    for running in started:
        running.server.shutdown()
        running.server.server_close()


def config_of(server: ScimServer, **extra: Any) -> dict[str, Any]:
    return {"base_url": server.url, "token": TOKEN, "backoff_base_seconds": 0.01, **extra}


def client_of(server: ScimServer, sleeps: list[float] | None = None, **extra: Any) -> ScimClient:
    sleep = sleeps.append if sleeps is not None else (lambda _: None)
    return ScimClient.from_config(config_of(server, **extra), sleep=sleep)


def a_user(number: str = "E1001", email: str = "zhang.san@corp.example", **extra: Any) -> ScimUser:
    fields: dict[str, Any] = {
        "user_name": email,
        "external_id": number,
        "given_name": "San",
        "family_name": "Zhang",
        "formatted_name": "Zhang San",
        "display_name": "Zhang San",
        "title": "Data Engineer",
        "emails": (MultiValue(email, "work", primary=True),),
        "phone_numbers": (MultiValue("+8613912340001", "mobile"),),
        "employee_number": number,
        "department": "R&D",
        "organization": "Example Ltd",
        **extra,
    }
    return ScimUser(**fields)


# -- discovery and authentication --------------------------------------------------------------------


def test_discovery_reads_features_resource_types_and_schemas(scim: ScimServer) -> None:
    found = client_of(scim).discover()
    assert found.provider.etag and found.provider.patch and found.provider.filter
    assert found.provider.max_results == 1000 and "oauthbearertoken" in found.provider.authentication
    assert found.enterprise and found.endpoint("User") == "/Users" and found.endpoint("Group") == "/Groups"
    assert set(found.schemas) == {
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
        ENTERPRISE_USER,
    }
    paths = [s.path for s in scim.gateway.requests("GET")]
    assert paths == ["/v2/ServiceProviderConfig", "/v2/ResourceTypes", "/v2/Schemas"]


def test_wrong_token_is_an_auth_error_that_does_not_quote_it(scim: ScimServer) -> None:
    client = client_of(scim, token="wrong-token-value")
    with pytest.raises(ScimAuthError) as caught:
        client.check()
    assert caught.value.code == "401" and not caught.value.retryable
    assert "wrong-token-value" not in str(caught.value)
    assert "wrong-token-value" not in repr(client.settings)


def test_basic_auth(make_server_: Callable[..., ScimServer]) -> None:
    server = make_server_(basic=True)
    config = {"base_url": server.url, "username": BASIC[0], "password": BASIC[1]}
    client = ScimClient.from_config(config)
    created = client.create_user(a_user())
    assert client.get_user(created.id) is not None
    with pytest.raises(ScimAuthError):
        ScimClient.from_config({**config, "password": "nope"}).get_user(created.id)


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"token": "t", "username": "u", "password": "p"},
        {"username": "u"},
        {"password": "p"},
        {"token": "t", "undo": "purge"},
    ],
)
def test_incomplete_or_ambiguous_credentials_are_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ScimClient.from_config({"base_url": "http://127.0.0.1:1/v2", **config})


# -- users --------------------------------------------------------------------------------------------


def test_create_with_the_enterprise_extension(scim: ScimServer) -> None:
    client = client_of(scim)
    manager = client.create_user(a_user("E0007", "boss@corp.example"))
    created = client.create_user(a_user(manager_id=manager.id))
    (post,) = [s for s in scim.gateway.requests("POST", "/Users") if s.body["externalId"] == "E1001"]
    assert post.content_type == "application/scim+json"
    assert post.body["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER]
    stored = client.get_user(created.id)
    assert stored is not None and stored.version  # W/"1": ETags are on
    body = stored.body
    assert body["userName"] == "zhang.san@corp.example" and body["externalId"] == "E1001"
    assert body["name"] == {"formatted": "Zhang San", "familyName": "Zhang", "givenName": "San"}
    assert body["emails"] == [{"value": "zhang.san@corp.example", "type": "work", "primary": True}]
    assert body["phoneNumbers"] == [{"value": "+8613912340001", "type": "mobile"}]
    assert body["active"] is True and body["title"] == "Data Engineer"
    extension = body[ENTERPRISE_USER]
    assert extension["employeeNumber"] == "E1001" and extension["department"] == "R&D"
    assert extension["organization"] == "Example Ltd" and extension["manager"]["value"] == manager.id


def test_server_without_the_enterprise_extension_gets_the_core_schema_only(
    make_server_: Callable[..., ScimServer],
) -> None:
    server = make_server_(enterprise=False)
    client = client_of(server)
    assert not client.discovery.enterprise
    client.create_user(a_user())
    (post,) = server.gateway.requests("POST", "/Users")
    assert ENTERPRISE_USER not in post.body and post.body["schemas"] == [
        "urn:ietf:params:scim:schemas:core:2.0:User"
    ]
    assert server.users()[0]["userName"] == "zhang.san@corp.example"


def test_lookup_by_filter_escapes_the_value(scim: ScimServer) -> None:
    client = client_of(scim)
    odd = 'o"brien\\dev@corp.example'
    created = client.create_user(a_user("E2001", odd))
    client.create_user(a_user("E2002", "other@corp.example"))
    found = client.find_user("userName", odd)
    assert found is not None and found.id == created.id
    assert equals_filter("userName", odd) == 'userName eq "o\\"brien\\\\dev@corp.example"'
    # a value that would widen an unescaped filter to every user matches nothing
    assert client.find_user("userName", 'x" or userName pr or userName eq "y') is None
    assert client.find_user("externalId", "E2002") is not None
    assert client.find_user("externalId", "e2002") is None  # externalId is case-exact
    sent = [s.query["filter"][0] for s in scim.gateway.requests("GET", "/Users") if "filter" in s.query]
    assert sent[0] == 'userName eq "o\\"brien\\\\dev@corp.example"'


def test_patch_replaces_only_what_changed_with_if_match(scim: ScimServer) -> None:
    client = client_of(scim)
    created = client.create_user(a_user())
    updated = client.update_user(created, a_user(title="Staff Engineer", department="Platform"))
    (patch,) = scim.gateway.requests("PATCH")
    assert patch.if_match == created.version
    assert patch.body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]
    assert patch.body["Operations"] == [
        {"op": "replace", "path": "title", "value": "Staff Engineer"},
        {"op": "replace", "path": f"{ENTERPRISE_USER}:department", "value": "Platform"},
    ]
    assert updated.body["title"] == "Staff Engineer"
    assert updated.body[ENTERPRISE_USER]["department"] == "Platform"
    assert updated.body[ENTERPRISE_USER]["employeeNumber"] == "E1001"  # untouched
    client.update_user(updated, a_user(title="Staff Engineer", department="Platform"))
    assert len(scim.gateway.requests("PATCH")) == 1  # nothing changed: nothing written


def test_a_write_by_someone_else_meanwhile_is_read_again_not_overwritten(scim: ScimServer) -> None:
    client = client_of(scim)
    created = client.create_user(a_user())

    def admin_edits() -> None:
        patch: dict[str, Any] = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "nickName", "value": "sanzi"}],
        }
        answer = scim.admin().patch(f"{scim.url}/Users/{created.id}", json=patch)
        assert answer.status_code in (200, 204)

    scim.gateway.inject(Fault("before", "PATCH", "/Users", hook=admin_edits))
    updated = client.update_user(created, a_user(title="Staff Engineer"))
    first, second = [s for s in scim.gateway.requests("PATCH") if s.if_match]  # hub's, not the admin's
    assert first.if_match == created.version and second.if_match != created.version  # 412, then re-read
    assert updated.body["title"] == "Staff Engineer" and updated.body["nickName"] == "sanzi"


def test_without_etag_support_no_if_match_is_sent(make_server_: Callable[..., ScimServer]) -> None:
    server = make_server_(etag=False)
    client = client_of(server)
    created = client.create_user(a_user())
    client.update_user(created, a_user(title="Lead"))
    assert [s.if_match for s in server.gateway.requests("PATCH")] == [""]


def test_without_patch_support_the_merged_resource_is_put(make_server_: Callable[..., ScimServer]) -> None:
    server = make_server_(patch=False)
    client = client_of(server)
    created = client.create_user(a_user())
    updated = client.update_user(created, a_user(title="Lead", department="Ops"))
    assert not server.gateway.requests("PATCH")
    (put,) = server.gateway.requests("PUT")
    assert put.if_match == created.version and put.body["phoneNumbers"]  # the rest kept
    assert updated.body["title"] == "Lead" and updated.body[ENTERPRISE_USER]["department"] == "Ops"


def test_deactivate_and_delete_are_safe_twice(scim: ScimServer) -> None:
    client = client_of(scim)
    created = client.create_user(a_user())
    assert client.deactivate_user(created.id) and client.deactivate_user(created.id)
    assert len(scim.gateway.requests("PATCH")) == 1  # the second found it inactive already
    stored = client.get_user(created.id)
    assert stored is not None and stored.body["active"] is False
    assert client.delete_user(created.id) and not client.delete_user(created.id)
    assert client.get_user(created.id) is None and not client.deactivate_user(created.id)


def test_uniqueness_409_is_a_typed_conflict_without_personal_data(scim: ScimServer) -> None:
    client = client_of(scim)
    client.create_user(a_user())
    with pytest.raises(ScimConflict) as caught:
        client.create_user(a_user("E9999"))
    assert caught.value.code == "409 uniqueness" and not caught.value.retryable
    message = str(caught.value)
    assert "uniqueness" in message and "zhang.san" not in message and "E9999" not in message


def test_invalid_filter_error_quotes_neither_filter_nor_detail(scim: ScimServer) -> None:
    client = client_of(scim)
    with pytest.raises(ScimError) as caught:
        client._call(
            "find_user",
            "GET",
            "/Users",
            params={"filter": 'userName eq "zhang.san@corp.example'},
            idempotent=True,
        )
    assert caught.value.code == "400 invalidFilter"
    assert "zhang.san" not in str(caught.value) and "column" not in str(caught.value)


def test_server_errors_on_reads_are_retried(scim: ScimServer) -> None:
    sleeps: list[float] = []
    client = client_of(scim, sleeps)
    client.discover()
    scim.gateway.inject(Fault("status", "GET", "/Users", times=2, status=503))
    assert client.find_user("externalId", "E1001") is None
    assert len(scim.gateway.requests("GET", "/Users")) == 3 and len(sleeps) == 2


def test_server_errors_that_persist_are_a_retryable_error(scim: ScimServer) -> None:
    client = client_of(scim, max_attempts=3)
    client.discover()
    scim.gateway.inject(Fault("status", "GET", "/Users", times=9, status=500))
    with pytest.raises(ScimUnavailable) as caught:
        client.find_user("externalId", "E1001")
    assert caught.value.retryable


def test_rate_limit_honours_retry_after(scim: ScimServer) -> None:
    sleeps: list[float] = []
    client = client_of(scim, sleeps)
    client.discover()
    scim.gateway.inject(Fault("status", "GET", "/Users", times=1, status=429, retry_after="2"))
    assert client.find_user("externalId", "E1001") is None
    assert sleeps == [2.0]
    scim.gateway.inject(Fault("status", "GET", "/Users", times=9, status=429, retry_after="7"))
    with pytest.raises(ScimRateLimited) as caught:
        client_of(scim, max_attempts=2).find_user("externalId", "E1001")
    assert caught.value.retry_after == 7.0 and caught.value.retryable


# -- provisioning: exactly one account -----------------------------------------------------------


def test_provisioning_twice_makes_one_user(scim: ScimServer) -> None:
    client = client_of(scim)
    first, created = client.provision_user(a_user())
    again, created_again = client.provision_user(a_user(title="Lead"))
    assert created and not created_again and again.id == first.id
    (user,) = scim.users()
    assert user["title"] == "Lead" and len(scim.gateway.requests("POST")) == 1


@pytest.mark.parametrize("fault", ["lose", "slow"])
def test_a_create_whose_reply_is_lost_is_found_not_repeated(scim: ScimServer, fault: str) -> None:
    client = client_of(scim, timeout_seconds=0.5)
    client.discover()
    scim.gateway.inject(Fault(fault, "POST", "/Users", delay=1.5))
    resource, created = client.provision_user(a_user())
    assert created and resource.id
    assert len(scim.users()) == 1 and len(scim.gateway.requests("POST")) == 1


def test_a_create_that_never_arrived_is_sent_again(scim: ScimServer) -> None:
    client = client_of(scim)
    client.discover()
    scim.gateway.inject(Fault("status", "POST", "/Users", status=502))  # refused before the server
    resource, created = client.provision_user(a_user())
    assert created and len(scim.users()) == 1 and len(scim.gateway.requests("POST")) == 2
    assert scim.users()[0]["id"] == resource.id


def test_a_409_on_create_adopts_the_account_made_meanwhile(scim: ScimServer) -> None:
    client = client_of(scim)
    client.discover()

    def made_by_hand() -> None:  # an administrator creates the account between look-up and create
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "zhang.san@corp.example",
        }
        assert scim.admin().post(f"{scim.url}/Users", json=body).status_code == 201

    scim.gateway.inject(Fault("before", "POST", "/Users", hook=made_by_hand))
    resource, created = client.provision_user(a_user())
    assert not created
    (user,) = scim.users()
    assert user["id"] == resource.id and user["externalId"] == "E1001"  # adopted and completed
    assert user[ENTERPRISE_USER]["employeeNumber"] == "E1001"


def test_a_user_name_held_by_another_external_id_is_not_adopted(scim: ScimServer) -> None:
    client = client_of(scim)
    client.create_user(a_user("E0001"))
    with pytest.raises(ScimConflict) as caught:
        client.provision_user(a_user("E1001"))
    assert caught.value.field == "userName" and "zhang.san" not in str(caught.value)
    assert len(scim.users()) == 1


# -- the onboarding action -------------------------------------------------------------------------

CASE = {
    "name": "Zhang San",
    "family_name": "Zhang",
    "given_name": "San",
    "work_email": "zhang.san@corp.example",
    "phone": "+8613912340001",
    "id_number": "11010519491231002X",
    "employee_number": "E1001",
    "department": "RD",
    "job_title": "Data Engineer",
    "start_date": "2026-12-01",
}
KEY = "5b0c3f51-0000-4000-8000-000000000001"


def context(server: ScimServer, *, case: dict[str, Any] | None = None, **extra: Any) -> ActionContext:
    config = config_of(server, department_names={"RD": "R&D"}, organization="Example Ltd")
    config.update(extra.pop("config", {}))
    fields: dict[str, Any] = {
        "case_id": "case-1",
        "task": "idp_account",
        "action": "scim.provision_user",
        "connector": "idp",
        "idempotency_key": KEY,
        "case": case or CASE,
        "options": {},
        "results": {},
        "attempt": 1,
        "config_loader": lambda: config,
        **extra,
    }
    return ActionContext(**fields)


def test_the_action_is_registered_by_the_plugin() -> None:
    import hub_scim

    assert {a.name for a in hub_scim.hub_register_onboarding_actions()} == {"scim.provision_user"}
    (connector,) = hub_scim.hub_register_connectors()
    assert connector.name == "scim" and connector.category == "oa"


def test_action_finds_performs_and_undoes(scim: ScimServer) -> None:
    action = ProvisionUser()
    ctx = context(scim)
    assert action.find(ctx) is None
    outcome = action.perform(ctx)
    assert outcome.kind == OutcomeKind.DONE and outcome.ref is not None and outcome.ref.kind == "scim_user"
    (user,) = scim.users()
    assert user["id"] == outcome.ref.id and user["externalId"] == "E1001"
    assert (
        user[ENTERPRISE_USER]["department"] == "R&D"
        and user[ENTERPRISE_USER]["organization"] == "Example Ltd"
    )
    assert "phoneNumbers" not in user  # not sent unless send_phone_numbers
    assert "11010519491231002X" not in json.dumps(user)
    # a lost reply: the next attempt finds it, and perform itself would not duplicate it either
    assert action.find(ctx) == outcome.ref
    assert action.recovered(ctx, outcome.ref).ref == outcome.ref
    assert action.perform(ctx).ref == outcome.ref and len(scim.users()) == 1
    action.undo(context(scim, ref=outcome.ref))
    action.undo(context(scim, ref=outcome.ref))  # twice is harmless
    assert scim.users()[0]["active"] is False
    # a case opened again for the same hire reactivates the account
    assert action.recovered(ctx, outcome.ref).ref == outcome.ref and scim.users()[0]["active"] is True


def test_action_without_employee_number_uses_the_idempotency_key(scim: ScimServer) -> None:
    case = {k: v for k, v in CASE.items() if k != "employee_number"}
    outcome = ProvisionUser().perform(context(scim, case=case))
    (user,) = scim.users()
    assert user["externalId"] == KEY and outcome.ref is not None
    assert ProvisionUser().find(context(scim, case=case)) == outcome.ref


def test_action_resolves_the_manager_by_employee_number(scim: ScimServer) -> None:
    boss = client_of(scim).create_user(a_user("E0007", "boss@corp.example"))
    ctx = context(scim, options={"manager_employee_number": "E0007"})
    ProvisionUser().perform(ctx)
    (user,) = [u for u in scim.users() if u["externalId"] == "E1001"]
    assert user[ENTERPRISE_USER]["manager"]["value"] == boss.id
    with pytest.raises(ActionFailed) as caught:  # not provisioned yet: retried later
        ProvisionUser().perform(context(scim, options={"manager_employee_number": "E0404"}))
    assert not caught.value.permanent


def test_action_sends_the_phone_only_when_configured(scim: ScimServer) -> None:
    ProvisionUser().perform(context(scim, config={"send_phone_numbers": True}))
    assert scim.users()[0]["phoneNumbers"] == [{"value": "+8613912340001", "type": "mobile"}]


def test_action_refusals_go_to_an_operator_without_personal_data(scim: ScimServer) -> None:
    client_of(scim).create_user(a_user("E0001"))  # someone else holds the userName
    with pytest.raises(ActionFailed) as caught:
        ProvisionUser().find(context(scim))
    assert caught.value.permanent and "zhang.san" not in caught.value.reason
    case = {k: v for k, v in CASE.items() if k != "work_email"}
    with pytest.raises(ActionFailed, match="no email") as missing:
        ProvisionUser().perform(context(scim, case=case))
    assert missing.value.permanent


def test_action_undo_can_delete(scim: ScimServer) -> None:
    ctx = context(scim, config={"undo": "delete"})
    ref = ProvisionUser().perform(ctx).ref
    assert ref is not None
    ProvisionUser().undo(context(scim, config={"undo": "delete"}, ref=ref))
    ProvisionUser().undo(context(scim, config={"undo": "delete"}, ref=ref))
    assert scim.users() == []


# -- the Airbyte source ------------------------------------------------------------------------------


def read(config: dict[str, Any], stream: str) -> list[dict[str, Any]]:
    source = ScimSource()
    airbyte_stream = next(s for s in source.discover(LOG, config).streams if s.name == stream)
    catalog = ConfiguredAirbyteCatalog(
        streams=[
            ConfiguredAirbyteStream(
                stream=airbyte_stream,
                sync_mode=SyncMode.full_refresh,
                destination_sync_mode=DestinationSyncMode.overwrite,
            )
        ]
    )
    return [
        dict(m.record.data)
        for m in source.read(LOG, config, catalog)
        if m.type == Type.RECORD and m.record is not None
    ]


def test_source_reads_users_and_groups_page_by_page(scim: ScimServer) -> None:
    client = client_of(scim)
    ids = [client.create_user(a_user(f"E{n:04d}", f"user{n}@corp.example")).id for n in range(7)]
    admin = scim.admin()
    for name, members in (("Engineering", ids[:3]), ("Everyone", ids)):
        group: dict[str, Any] = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "members": [{"value": i} for i in members],
        }
        assert admin.post(f"{scim.url}/Groups", json=group).status_code == 201
    config = config_of(scim, page_size=3)
    source = ScimSource()
    assert source.check(LOG, config).status == Status.SUCCEEDED
    streams = {s.name: s for s in source.discover(LOG, config).streams}
    assert set(streams) == {"users", "groups"}
    assert streams["users"].source_defined_primary_key == [["id"]]
    scim.gateway.seen.clear()
    users = read(config, "users")
    assert sorted(u["id"] for u in users) == sorted(ids)
    pages = [s.query for s in scim.gateway.requests("GET", "/Users") if "startIndex" in s.query]
    assert [(q["startIndex"][0], q["count"][0]) for q in pages] == [("1", "3"), ("4", "3"), ("7", "3")]
    first = next(u for u in users if u["external_id"] == "E0000")
    assert first["user_name"] == "user0@corp.example" and first["work_email"] == "user0@corp.example"
    assert first["employee_number"] == "E0000" and first["department"] == "R&D" and first["active"] is True
    assert first["family_name"] == "Zhang" and first["created"]
    groups = {g["display_name"]: g for g in read(config, "groups")}
    assert sorted(groups["Engineering"]["member_ids"]) == sorted(ids[:3])
    assert len(groups["Everyone"]["member_ids"]) == 7


def test_page_size_is_capped_by_the_servers_max_results(make_server_: Callable[..., ScimServer]) -> None:
    server = make_server_(max_results=2)
    client = client_of(server)
    for n in range(5):
        client.create_user(a_user(f"E{n:04d}", f"user{n}@corp.example"))
    pages = list(client.pages("User", page_size=50))
    assert [len(p) for p in pages] == [2, 2, 1]
    assert {s.query["count"][0] for s in server.gateway.requests("GET", "/Users") if "count" in s.query} == {
        "2"
    }


def test_source_check_fails_cleanly_on_a_bad_token(scim: ScimServer) -> None:
    status = ScimSource().check(LOG, config_of(scim, token="wrong-token-value", max_attempts=1))
    assert status.status == Status.FAILED
    assert "401" in (status.message or "") and "wrong-token-value" not in (status.message or "")


# -- hub.toml and the onboarding flow on SQLite --------------------------------------------------------


def project_toml(server: ScimServer, app: ScimServer | None = None) -> str:
    """One SCIM connector (``idp``), and with ``app`` a second one (a SaaS app's SCIM endpoint)
    whose task needs the hire's manager there (``E0007``) before it can provision."""
    second = (
        f"""
        [connectors.app]
        plugin = "scim"
        [connectors.app.config]
        base_url = "{app.url}"
        token = {{ env = "SCIM_TOKEN" }}
        """
        if app is not None
        else ""
    )
    app_task = (
        '{ name = "app_account", action = "scim.provision_user", connector = "app", '
        'options = { manager_employee_number = "E0007" } },'
        if app is not None
        else ""
    )
    return f"""
        [connectors.idp]
        plugin = "scim"
        [connectors.idp.config]
        base_url = "{server.url}"
        token = {{ env = "SCIM_TOKEN" }}
        organization = "Example Ltd"
        department_names = {{ RD = "R&D" }}
        backoff_base_seconds = 0.01
        {second}
        [onboarding]
        claim_ttl = "60s"
        tasks = [
          {{ name = "idp_account", action = "scim.provision_user", connector = "idp" }},
          {app_task}
        ]
        """


def test_hub_connectors_check(scim: ScimServer, write_project: Any) -> None:
    config = write_project(project_toml(scim))
    checked = run_cli(["connectors", "check", "idp"], config, env={"SCIM_TOKEN": TOKEN})
    assert checked.returncode == 0 and "OK" in checked.stdout, checked.stdout + checked.stderr


def onboarding_flow(
    server: ScimServer, write_project: Any, monkeypatch: pytest.MonkeyPatch, app: ScimServer | None = None
) -> OnboardingFlow:
    monkeypatch.setenv("SCIM_TOKEN", TOKEN)
    return OnboardingFlow(Project(write_project(project_toml(server, app))))


def test_onboarding_case_provisions_once_through_the_runner(
    scim: ScimServer, write_project: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hub")
    flow = onboarding_flow(scim, write_project, monkeypatch)
    case_id, _ = flow.open_case(CASE, source="test")
    scim.gateway.inject(Fault("status", "GET", "/Users", times=1, status=503))  # retried inside the attempt
    OnboardingRunner(flow).run_once()
    view = flow.show(case_id)
    assert view.status == "COMPLETED"
    (user,) = scim.users()
    assert user["externalId"] == "E1001" and user["userName"] == "zhang.san@corp.example"
    assert user[ENTERPRISE_USER]["department"] == "R&D" and user["active"] is True
    _, results, _ = flow.load_case(case_id)
    assert results["idp_account"].ref == ExternalRef(user["id"], "scim_user")
    assert len(scim.gateway.requests("GET", "/ServiceProviderConfig")) == 1  # find and perform share it
    OnboardingRunner(flow).run_once()  # nothing due: nothing sent
    assert len(scim.gateway.requests("POST")) == 1
    shown = json.dumps(flow.show(case_id).as_dict(), default=str)
    assert "zhang.san@corp.example" not in shown and "+8613912340001" not in shown
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("hub"))
    assert "zhang.san" not in logged and "13912340001" not in logged


def test_cancelled_case_deactivates_what_it_provisioned(
    scim: ScimServer,
    make_server_: Callable[..., ScimServer],
    write_project: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_server_()
    flow = onboarding_flow(scim, write_project, monkeypatch, app)
    case_id, _ = flow.open_case(CASE, source="test")
    OnboardingRunner(flow).run_once()
    tasks = {t.name: t for t in flow.show(case_id).tasks}
    assert tasks["idp_account"].status == "DONE" and tasks["app_account"].status == "FAILED"
    assert app.users() == []  # waits for the manager's account there
    flow.cancel(case_id, "offer withdrawn")
    assert scim.users()[0]["active"] is False and flow.show(case_id).status == "CANCELLED"
    flow.cancel(case_id, "offer withdrawn")  # again: nothing more to do
    assert len([s for s in scim.gateway.requests("PATCH") if s.body]) == 1


class SimulatedCrash(BaseException):
    """The runner's process dies (a kill): not an Exception, so nothing records the attempt."""


def test_a_crash_between_the_create_and_hubs_commit_leaves_one_user(
    scim: ScimServer, write_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = onboarding_flow(scim, write_project, monkeypatch)
    case_id, _ = flow.open_case(CASE, source="test")
    real_create = ScimClient.create_user

    def create_then_die(self: ScimClient, user: ScimUser) -> Any:
        real_create(self, user)
        raise SimulatedCrash

    monkeypatch.setattr(ScimClient, "create_user", create_then_die)
    t0 = datetime.now(UTC)
    with pytest.raises(SimulatedCrash):
        OnboardingRunner(flow).run_once(now=t0)
    assert [t.status for t in flow.show(case_id).tasks] == ["IN_PROGRESS"]
    monkeypatch.setattr(ScimClient, "create_user", real_create)
    report = OnboardingRunner(flow).run_once(now=t0 + timedelta(seconds=61))  # the claim lapsed
    assert report.claimed == 1
    view = flow.show(case_id)
    assert view.status == "COMPLETED"
    (user,) = scim.users()
    assert len(scim.gateway.requests("POST")) == 1
    _, results, _ = flow.load_case(case_id)
    assert results["idp_account"].ref == ExternalRef(user["id"], "scim_user")
