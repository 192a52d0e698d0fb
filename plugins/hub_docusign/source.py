"""DocuSign envelopes as an Airbyte source: ``envelopes`` (changed within ``lookback_days``).

Each record is an envelope's status and times (Envelopes:listStatusChanges); recipients are
not read. ``check`` fetches a token, finds the account's API base and lists one envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from airbyte_cdk.models import ConnectorSpecification
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.sources.streams import Stream
from hub_esign.econtract import JSON_SCHEMA, RecordStream

from hub.vendor_http import VendorError
from hub_docusign.client import DEFAULT_CUSTOM_FIELD, DEFAULT_OAUTH_URL, DocuSignClient

SPEC: dict[str, Any] = {
    "$schema": JSON_SCHEMA,
    "title": "DocuSign eSignature REST v2.1",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "oauth_base_url": {
            "type": "string",
            "default": DEFAULT_OAUTH_URL,
            "description": "https://account-d.docusign.com (developer), https://account.docusign.com (production), or a simulator's URL.",
        },
        "integration_key": {"type": "string", "description": "The app's integration key (JWT iss)."},
        "user_id": {
            "type": "string",
            "description": "The impersonated user's GUID (JWT sub); consent granted.",
        },
        "private_key": {
            "type": "string",
            "airbyte_secret": True,
            "description": "The integration key's RSA private key (PEM).",
        },
        "access_token": {
            "type": "string",
            "airbyte_secret": True,
            "description": "Instead of the JWT grant: a token (cannot be renewed by hub).",
        },
        "account_id": {
            "type": "string",
            "description": "The account id; the user's default account when empty.",
        },
        "base_uri": {
            "type": "string",
            "description": "e.g. https://demo.docusign.net; from /oauth/userinfo when empty.",
        },
        "employer": {
            "type": "string",
            "description": "The employing legal entity, when the case names none.",
        },
        "template_id": {
            "type": "string",
            "description": "Send from this template (else hub renders the contract).",
        },
        "template_role": {
            "type": "string",
            "default": "Employee",
            "description": "The template's role for the employee.",
        },
        "template_tabs": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Template text tab label -> contract field (monthly_salary, start_date, duties, job_title, ...).",
        },
        "email_subject": {"type": "string", "default": "请签署劳动合同"},
        "sign_anchor": {
            "type": "string",
            "default": "乙方（签字）",
            "description": "Anchor text of the signature tab.",
        },
        "custom_field": {
            "type": "string",
            "default": DEFAULT_CUSTOM_FIELD,
            "description": "The envelope custom field holding hub's idempotency key.",
        },
        "connect_url": {
            "type": "string",
            "description": "Envelope-level Connect: hub serve's https://<host>/webhooks/<connector> (else account-level Connect).",
        },
        "lookback_days": {"type": "integer", "minimum": 1, "default": 30},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 10},
        "max_attempts": {"type": "integer", "minimum": 1, "default": 5},
        "backoff_base_seconds": {"type": "number", "minimum": 0, "default": 0.5},
        "token_margin_seconds": {"type": "number", "minimum": 0, "default": 300},
    },
}

ENVELOPE_FIELDS = (
    "envelopeId",
    "status",
    "emailSubject",
    "createdDateTime",
    "sentDateTime",
    "completedDateTime",
    "voidedDateTime",
    "declinedDateTime",
    "statusChangedDateTime",
)


class Envelopes(RecordStream):
    primary_key = "envelopeId"
    properties = {name: {"type": ["string", "null"]} for name in ENVELOPE_FIELDS}

    def records(self) -> Iterable[Mapping[str, Any]]:
        client: DocuSignClient = self.client
        since = datetime.fromtimestamp(client._clock(), UTC) - timedelta(days=client.settings.lookback_days)
        for envelope in client.list_envelopes(since):
            yield {name: envelope.get(name) for name in ENVELOPE_FIELDS}


class DocuSignSource(AbstractSource):
    """DocuSign envelopes as an Airbyte source (and the connector's configuration spec)."""

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(connectionSpecification=dict(SPEC), supportsIncremental=False)

    def check_connection(self, logger: logging.Logger, config: Mapping[str, Any]) -> tuple[bool, Any]:
        try:
            DocuSignClient.from_config({**config, "max_attempts": 2}).check()
        except (KeyError, TypeError, ValueError) as exc:
            return (
                False,
                f"invalid configuration: {exc if isinstance(exc, ValueError) else type(exc).__name__}",
            )
        except VendorError as exc:
            return False, str(exc)
        return True, None

    def streams(self, config: Mapping[str, Any]) -> list[Stream]:
        return [Envelopes(DocuSignClient.from_config(config), config)]
