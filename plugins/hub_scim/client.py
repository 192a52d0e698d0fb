"""A SCIM 2.0 client (RFC 7643 / RFC 7644) for provisioning Users into an identity provider.

One client speaks to one SCIM service provider (``base_url`` is the service root, e.g.
``https://idp.example.com/scim/v2``), authenticated with a static bearer token or HTTP Basic
(both secret references in hub.toml). It reads the server's discovery documents once
(``/ServiceProviderConfig``, ``/ResourceTypes``, ``/Schemas``) and adapts:

- the enterprise extension is sent only when the User resource type lists it;
- ``If-Match`` with the resource's version is sent on writes when ``etag.supported``; a 412
  (the account changed meanwhile) re-reads it and applies hub's changes again;
- PATCH (``PatchOp`` replace) when ``patch.supported``, else ``PUT`` of the merged resource;
- page sizes are capped at ``filter.maxResults``.

Looking a user up builds ``filter=externalId eq "..."`` with the value written as a JSON string
(RFC 7644 §3.4.2.2: ``compValue`` follows RFC 7159), so quotes and backslashes in a value
cannot change the filter. Errors (RFC 7644 §3.12) become the typed errors of
:mod:`hub_scim.errors`, which never quote the server's ``detail``.

Verified, not assumed: the filter grammar and ``compValue`` rule (RFC 7644 §3.4.2.2, quoted in
several SCIM filter parsers), pagination by 1-based ``startIndex``/``count`` with
``totalResults`` (§3.4.2.4), the error envelope and ``scimType`` table (§3.12, errata 7898),
ETags in ``ETag`` and ``meta.version`` (§3.14, §3.4.1 example), PATCH answered 200 with the
resource or 204 (§3.5.2); and each behaviour against scim2-server 0.8.3 in the tests.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self
from urllib.parse import quote

import requests

from hub.vendor_http import Answer, HttpSettings, VendorClient
from hub_scim.errors import (
    KINDS,
    STATUSES,
    ScimConflict,
    ScimError,
    ScimNotFound,
    ScimOutcomeUnknown,
    ScimPreconditionFailed,
    code_of,
)
from hub_scim.users import (
    ENTERPRISE_USER,
    PATCH_OP,
    ScimUser,
    changed_attributes,
    merged,
    replace_operations,
)

SCIM_JSON = "application/scim+json"
#: static credentials never expire; the token cache keeps them for this long
STATIC_CREDENTIAL_LIFETIME = 10 * 365 * 86400.0
#: how often a write is tried again on a resource that keeps changing (HTTP 412)
PRECONDITION_ROUNDS = 3
DEFAULT_PAGE_SIZE = 100
UNDO_MODES = ("deactivate", "delete")


@dataclass(frozen=True, kw_only=True)
class ScimSettings(HttpSettings):
    """The connector configuration, with defaults filled in (secrets already resolved)."""

    base_url: str
    token: str = ""
    username: str = ""
    password: str = ""
    page_size: int = DEFAULT_PAGE_SIZE
    #: how a hire's userName is made: ``{email}``, ``{employee_number}``, ``{key}``
    user_name_template: str = "{email}"
    #: how a hire's externalId is made; ``{key}`` (the task's idempotency key) when empty
    external_id_template: str = "{employee_number}"
    #: adopt an account found by userName that has no externalId (made by hand)
    adopt_by_user_name: bool = True
    send_phone_numbers: bool = False
    organization: str = ""
    department_names: Mapping[str, str] = field(default_factory=dict)
    #: what ``hub onboarding cancel`` does to a provisioned user
    undo: str = "deactivate"

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> ScimSettings:
        token = str(config.get("token") or "")
        username, password = str(config.get("username") or ""), str(config.get("password") or "")
        basic = bool(username or password)
        if bool(token) == basic or (basic and not (username and password)):
            raise ValueError("the scim connector needs either token, or username and password")
        undo = str(config.get("undo") or "deactivate")
        if undo not in UNDO_MODES:
            raise ValueError(f"undo must be one of {', '.join(UNDO_MODES)}")
        return cls(
            base_url=str(config["base_url"]).rstrip("/"),
            token=token,
            username=username,
            password=password,
            page_size=int(config.get("page_size") or DEFAULT_PAGE_SIZE),
            user_name_template=str(config.get("user_name_template") or "{email}"),
            external_id_template=str(config.get("external_id_template") or "{employee_number}"),
            adopt_by_user_name=bool(config.get("adopt_by_user_name", True)),
            send_phone_numbers=bool(config.get("send_phone_numbers", False)),
            organization=str(config.get("organization") or ""),
            department_names={str(k): str(v) for k, v in (config.get("department_names") or {}).items()},
            undo=undo,
            **HttpSettings.options(config),
        )

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value (never logged)."""
        if self.token:
            return f"Bearer {self.token}"
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def __repr__(self) -> str:
        return f"ScimSettings(base_url={self.base_url!r}, auth={'bearer' if self.token else 'basic'})"


@dataclass(frozen=True)
class ServiceProvider:
    """What ``/ServiceProviderConfig`` says the server supports (RFC 7643 §5)."""

    patch: bool = True
    filter: bool = True
    #: ``filter.maxResults``: the most resources one page holds
    max_results: int | None = None
    etag: bool = False
    sort: bool = False
    bulk: bool = False
    #: ``authenticationSchemes[].type`` (``oauthbearertoken``, ``httpbasic``)
    authentication: tuple[str, ...] = ()

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ServiceProvider:
        def supported(name: str, default: bool) -> bool:
            feature = body.get(name)
            return bool(feature.get("supported", default)) if isinstance(feature, Mapping) else default

        filter_feature = body.get("filter") if isinstance(body.get("filter"), Mapping) else {}
        max_results = filter_feature.get("maxResults") if isinstance(filter_feature, Mapping) else None
        schemes = body.get("authenticationSchemes") or []
        return cls(
            patch=supported("patch", True),
            filter=supported("filter", True),
            max_results=int(max_results) if isinstance(max_results, int) and max_results > 0 else None,
            etag=supported("etag", False),
            sort=supported("sort", False),
            bulk=supported("bulk", False),
            authentication=tuple(str(s.get("type") or "") for s in schemes if isinstance(s, Mapping)),
        )


@dataclass(frozen=True)
class ResourceType:
    """One entry of ``/ResourceTypes`` (RFC 7643 §6)."""

    name: str
    endpoint: str
    schema: str
    extensions: tuple[str, ...] = ()


#: what a server without ``/ResourceTypes`` is assumed to serve
DEFAULT_RESOURCE_TYPES = {
    "User": ResourceType("User", "/Users", "urn:ietf:params:scim:schemas:core:2.0:User", (ENTERPRISE_USER,)),
    "Group": ResourceType("Group", "/Groups", "urn:ietf:params:scim:schemas:core:2.0:Group"),
}


@dataclass(frozen=True)
class Discovery:
    """The server's discovery documents, as the client uses them."""

    provider: ServiceProvider
    resource_types: Mapping[str, ResourceType]
    #: schema ids of ``/Schemas`` (empty when the server does not serve it)
    schemas: tuple[str, ...]

    @property
    def enterprise(self) -> bool:
        """Whether Users take the enterprise extension here."""
        user = self.resource_types.get("User")
        return user is not None and ENTERPRISE_USER in user.extensions

    def endpoint(self, resource_type: str) -> str:
        found = self.resource_types.get(resource_type) or DEFAULT_RESOURCE_TYPES[resource_type]
        return "/" + found.endpoint.strip("/")


@dataclass(frozen=True)
class Reply:
    """A successful answer: status, body (``{}`` for 204) and ``ETag`` header."""

    status: int
    body: dict[str, Any]
    etag: str = ""


@dataclass(frozen=True)
class ScimResource:
    """A resource at the server: its ``id``, version (ETag) and body (personal data: not shown)."""

    id: str
    version: str
    body: Mapping[str, Any]

    def __repr__(self) -> str:
        return f"ScimResource(id={self.id!r}, version={self.version!r})"

    @classmethod
    def of(cls, body: Mapping[str, Any], etag: str = "") -> ScimResource:
        meta = body.get("meta") if isinstance(body.get("meta"), Mapping) else {}
        version = str((meta or {}).get("version") or etag or "")
        return cls(str(body.get("id") or ""), version, dict(body))


class ScimClient(VendorClient[ScimSettings]):
    """Users and Groups at one SCIM 2.0 service provider."""

    errors = KINDS
    #: 429 is read by :meth:`_answer`, so that ``Retry-After`` is honoured
    retry_http_429: ClassVar[bool] = False

    def __init__(self, settings: ScimSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._discovery: Discovery | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **kwargs: Any) -> Self:
        return cls(ScimSettings.parse(config), **kwargs)

    # -- transport ----------------------------------------------------------------------------

    def _fetch_token(self, credential: str) -> tuple[str, float]:
        return self.settings.authorization, STATIC_CREDENTIAL_LIFETIME

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool,
        if_match: str = "",
    ) -> Reply:
        """One SCIM request, retried as :class:`~hub.vendor_http.VendorClient` does; typed errors."""
        url = self.settings.base_url + path
        headers = {"Accept": f"{SCIM_JSON}, application/json"}
        if body is not None:
            headers["Content-Type"] = SCIM_JSON
        if if_match:
            headers["If-Match"] = if_match
        replies: list[Reply] = []

        def attempt(authorization: str) -> Answer:
            response = self._exchange(
                operation,
                method,
                url,
                params=params,
                json=body,
                headers={**headers, "Authorization": authorization},
                idempotent=idempotent,
            )
            answer = self._answer(operation, response)
            if answer.ok:
                replies.append(Reply(response.status_code, answer.data, response.headers.get("ETag") or ""))
            return answer

        self._authorized(operation, attempt, idempotent=idempotent)
        return replies[-1]

    def _answer(self, operation: str, response: requests.Response) -> Answer:
        status = response.status_code
        if 200 <= status < 300:
            data = self._json(operation, response) if response.content.strip() else {}
            return Answer(data, ok=True)
        scim_type: object = None
        try:
            error = response.json()
            if isinstance(error, Mapping):
                scim_type = error.get("scimType")
        except ValueError:
            pass
        if status == 412:
            raise ScimPreconditionFailed(operation, code_of(status), STATUSES[412])
        return Answer(
            {},
            code=code_of(status, scim_type),
            throttled=status == 429,
            retry_after=_retry_after(response),
        )

    # -- discovery ----------------------------------------------------------------------------

    @property
    def discovery(self) -> Discovery:
        """The server's discovery documents, read on first use."""
        if self._discovery is None:
            self._discovery = self.discover()
        return self._discovery

    def discover(self) -> Discovery:
        """Read ``/ServiceProviderConfig``, ``/ResourceTypes`` and ``/Schemas``.

        A server without ``/ResourceTypes`` or ``/Schemas`` (404) is assumed to serve Users
        (with the enterprise extension) and Groups at the usual endpoints.
        """
        provider = ServiceProvider.of(
            self._call("service_provider_config", "GET", "/ServiceProviderConfig", idempotent=True).body
        )
        try:
            listed = self._call("resource_types", "GET", "/ResourceTypes", idempotent=True).body
            resource_types: Mapping[str, ResourceType] = {
                rt.name: rt for rt in (_resource_type(r) for r in _resources(listed)) if rt is not None
            }
        except ScimNotFound:
            resource_types = DEFAULT_RESOURCE_TYPES
        try:
            schemas = tuple(
                str(s.get("id"))
                for s in _resources(self._call("schemas", "GET", "/Schemas", idempotent=True).body)
                if s.get("id")
            )
        except ScimNotFound:
            schemas = ()
        return Discovery(provider, resource_types, schemas)

    def check(self) -> Discovery:
        """Discovery, then one authenticated read (``/ServiceProviderConfig`` may need no credentials)."""
        found = self.discovery
        self._call("check", "GET", found.endpoint("User"), params={"count": 1}, idempotent=True)
        return found

    # -- users --------------------------------------------------------------------------------

    def _user_path(self, user_id: str) -> str:
        if not user_id:
            raise ScimNotFound("get_user", None, "no user id")
        return f"{self.discovery.endpoint('User')}/{quote(user_id, safe='')}"

    def get_user(self, user_id: str) -> ScimResource | None:
        """The user, or ``None`` when the server has no such id."""
        try:
            reply = self._call("get_user", "GET", self._user_path(user_id), idempotent=True)
        except ScimNotFound:
            return None
        return ScimResource.of(reply.body, reply.etag)

    def find_user(self, attribute: str, value: str) -> ScimResource | None:
        """The one user whose ``attribute`` equals ``value`` (``externalId``, ``userName``).

        Two matches is a conflict an operator resolves: hub cannot tell which is the hire's.
        """
        reply = self._call(
            "find_user",
            "GET",
            self.discovery.endpoint("User"),
            params={"filter": equals_filter(attribute, value), "count": 2},
            idempotent=True,
        )
        found = [r for r in _resources(reply.body) if r.get("id")]
        if len(found) > 1:
            raise ScimConflict(
                "find_user", "409", f"more than one user has this {attribute}", field=attribute
            )
        return ScimResource.of(found[0]) if found else None

    def create_user(self, user: ScimUser) -> ScimResource:
        """``POST /Users`` as it is (no look-up first: see :meth:`provision_user`)."""
        reply = self._call(
            "create_user",
            "POST",
            self.discovery.endpoint("User"),
            body=user.resource(enterprise=self.discovery.enterprise),
            idempotent=False,
        )
        return ScimResource.of(reply.body, reply.etag)

    def patch_user(
        self, user_id: str, operations: Sequence[Mapping[str, Any]], *, version: str = ""
    ) -> ScimResource | None:
        """``PATCH /Users/{id}`` with ``operations``; the resource, or ``None`` on a 204.

        Only ``replace`` and ``remove`` are resent after a lost answer: an ``add`` to a
        multi-valued attribute could add twice.
        """
        idempotent = all(op.get("op") in ("replace", "remove") for op in operations)
        reply = self._call(
            "patch_user",
            "PATCH",
            self._user_path(user_id),
            body={"schemas": [PATCH_OP], "Operations": [dict(op) for op in operations]},
            idempotent=idempotent,
            if_match=version if self.discovery.provider.etag else "",
        )
        return ScimResource.of(reply.body, reply.etag) if reply.body else None

    def replace_user(
        self, user_id: str, body: Mapping[str, Any], *, version: str = ""
    ) -> ScimResource | None:
        """``PUT /Users/{id}``: the whole resource (servers without PATCH)."""
        reply = self._call(
            "replace_user",
            "PUT",
            self._user_path(user_id),
            body=dict(body),
            idempotent=True,
            if_match=version if self.discovery.provider.etag else "",
        )
        return ScimResource.of(reply.body, reply.etag) if reply.body else None

    def apply(self, current: ScimResource, wanted: Mapping[str, Any]) -> ScimResource:
        """Bring ``current`` to the ``wanted`` attributes (by PATCH path); nothing sent if it is.

        With ETags, the write carries ``If-Match``: if the account changed since it was read
        (412), it is read again and hub's changes applied to the new version, a few times.
        """
        for _ in range(PRECONDITION_ROUNDS):
            changes = changed_attributes(current.body, wanted)
            if not changes:
                return current
            try:
                if self.discovery.provider.patch:
                    written = self.patch_user(
                        current.id, replace_operations(changes), version=current.version
                    )
                else:
                    written = self.replace_user(
                        current.id, merged(current.body, changes), version=current.version
                    )
            except ScimPreconditionFailed:
                fresh = self.get_user(current.id)
                if fresh is None:
                    raise ScimNotFound("update_user", "404", STATUSES[404]) from None
                current = fresh
                continue
            if written is not None:
                return written
            return self.get_user(current.id) or current
        raise ScimPreconditionFailed(
            "update_user", "412", f"the user changed under {PRECONDITION_ROUNDS} writes in a row"
        )

    def update_user(self, current: ScimResource, user: ScimUser) -> ScimResource:
        """Set ``user``'s attributes on the account (active again too)."""
        return self.apply(current, user.attributes(enterprise=self.discovery.enterprise))

    def deactivate_user(self, user_id: str) -> bool:
        """``active: false`` by PATCH; ``False`` when there is no such user. Twice is harmless."""
        current = self.get_user(user_id)
        if current is None:
            return False
        self.apply(current, {"active": False})
        return True

    def delete_user(self, user_id: str) -> bool:
        """``DELETE /Users/{id}``; ``False`` when it was already gone."""
        try:
            self._call("delete_user", "DELETE", self._user_path(user_id), idempotent=True)
        except ScimNotFound:
            return False
        return True

    def find_existing(self, user: ScimUser) -> ScimResource | None:
        """The account that is ``user``'s: by externalId, else by userName if it is free to adopt.

        An account with the userName but another externalId belongs to someone else (or to
        another hub case): that is a conflict for an operator, never adopted.
        """
        if user.external_id:
            found = self.find_user("externalId", user.external_id)
            if found is not None:
                return found
        if not self.settings.adopt_by_user_name:
            return None
        found = self.find_user("userName", user.user_name)
        if found is None:
            return None
        theirs = str(found.body.get("externalId") or "")
        if theirs and theirs != user.external_id:
            raise ScimConflict(
                "find_user",
                "409 uniqueness",
                "the userName belongs to an account with another externalId",
                field="userName",
            )
        return found

    def provision_user(self, user: ScimUser) -> tuple[ScimResource, bool]:
        """Create the user, or update the account it already has: (resource, created), never two.

        - an account found by :meth:`find_existing` is updated;
        - a create whose answer was lost is looked up, and sent again only if nothing arrived;
        - a create refused with 409 ``uniqueness`` (a concurrent attempt, or an account hub's
          look-up could not see) is looked up again and adopted.
        """
        existing = self.find_existing(user)
        if existing is not None:
            return self.update_user(existing, user), False
        try:
            return self._create_or_adopt(user)
        except ScimOutcomeUnknown:
            found = self.find_existing(user)
            if found is not None:
                return self.update_user(found, user), True
            return self._create_or_adopt(user)

    def _create_or_adopt(self, user: ScimUser) -> tuple[ScimResource, bool]:
        try:
            return self.create_user(user), True
        except ScimConflict:
            found = self.find_existing(user)
            if found is None:
                raise  # unique on an attribute hub does not look up by (an e-mail, at some servers)
            return self.update_user(found, user), False

    # -- lists --------------------------------------------------------------------------------

    def pages(self, resource_type: str, *, page_size: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every resource of a type, page by page (``startIndex``/``count``, RFC 7644 §3.4.2.4).

        Pages advance by the number of resources the server returned (it may return fewer
        than asked); a page with nothing new ends the walk, so a server that ignores
        ``startIndex`` cannot make it loop.
        """
        size = page_size or self.settings.page_size
        cap = self.discovery.provider.max_results
        if cap is not None:
            size = min(size, cap)
        endpoint = self.discovery.endpoint(resource_type)
        operation = f"list_{resource_type.lower()}s"
        seen: set[str] = set()
        start = 1
        while True:
            reply = self._call(
                operation, "GET", endpoint, params={"startIndex": start, "count": size}, idempotent=True
            )
            resources = _resources(reply.body)
            fresh = [r for r in resources if str(r.get("id") or "") not in seen]
            seen.update(str(r.get("id") or "") for r in fresh)
            if fresh:
                yield fresh
            start += len(resources)
            total = reply.body.get("totalResults")
            if not fresh or (isinstance(total, int) and start > total):
                return


def equals_filter(attribute: str, value: str) -> str:
    """``attribute eq "value"`` with the value as a JSON string (RFC 7644 §3.4.2.2).

    ``json.dumps`` escapes ``"``, ``\\`` and control characters, so the value stays one
    ``compValue`` whatever it holds: ``a" or userName pr or "`` matches nothing.
    """
    return f"{attribute} eq {json.dumps(value, ensure_ascii=False)}"


def _resources(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``Resources`` of a ListResponse (some servers spell it ``resources``)."""
    found = body.get("Resources", body.get("resources"))
    return [dict(r) for r in found if isinstance(r, Mapping)] if isinstance(found, list) else []


def _resource_type(entry: Mapping[str, Any]) -> ResourceType | None:
    name, endpoint = entry.get("name"), entry.get("endpoint")
    if not isinstance(name, str) or not isinstance(endpoint, str):
        return None
    extensions = tuple(
        str(e.get("schema")) for e in entry.get("schemaExtensions") or [] if isinstance(e, Mapping)
    )
    return ResourceType(name, endpoint, str(entry.get("schema") or ""), extensions)


def _retry_after(response: requests.Response) -> float | None:
    header = response.headers.get("Retry-After")
    try:
        return max(float(header), 0.0) if header else None
    except ValueError:
        return None


__all__ = [
    "Discovery",
    "ScimClient",
    "ScimError",
    "ScimResource",
    "ScimSettings",
    "ServiceProvider",
    "equals_filter",
]
