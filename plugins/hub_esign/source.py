"""e签宝 sign flows as an Airbyte source: ``sign_flows`` (full refresh over ``lookback_days``).

Each record is one flow this app started through the API (``sign-flow-list`` only lists
those), with its title, status and times: enough to see which contracts are still out for
signature. Signers' accounts (mobiles) are not read. ``check`` signs one harmless call, which
proves the app id and secret.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from airbyte_cdk.models import ConnectorSpecification
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.sources.streams import Stream

from hub.vendor_http import VendorError
from hub_esign.client import DEFAULT_BASE_URL, FLOW_STATUS, EsignClient
from hub_esign.econtract import JSON_SCHEMA, RecordStream, epoch_ms

POSITION = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "page": {"type": "integer", "minimum": 1},
        "x": {"type": "number"},
        "y": {"type": "number"},
    },
}

SPEC: dict[str, Any] = {
    "$schema": JSON_SCHEMA,
    "title": "e签宝 (eSign) Open API v3",
    "type": "object",
    "required": ["app_id", "app_secret"],
    "additionalProperties": False,
    "properties": {
        "base_url": {
            "type": "string",
            "default": DEFAULT_BASE_URL,
            "description": "https://openapi.esign.cn (production), https://smlopenapi.esign.cn (sandbox), or a simulator's URL.",
        },
        "app_id": {"type": "string", "minLength": 1, "description": "The app id (X-Tsign-Open-App-Id)."},
        "app_secret": {
            "type": "string",
            "airbyte_secret": True,
            "description": "The app secret that signs every call.",
        },
        "employer": {
            "type": "string",
            "description": "The employing legal entity, when the case names none.",
        },
        "notify_url": {
            "type": "string",
            "description": "Where e签宝 posts sign-flow events: hub serve's https://<host>/webhooks/<connector>.",
        },
        "flow_title": {
            "type": "string",
            "default": "劳动合同",
            "description": "The sign flow's title (hub adds its mark).",
        },
        "notice_types": {
            "type": "string",
            "default": "1",
            "description": "e签宝 notifies the employee: 1 SMS, 2 e-mail (comma separated), empty: not at all.",
        },
        "expire_days": {"type": "integer", "minimum": 1, "maximum": 90, "default": 30},
        "employer_auto_sign": {
            "type": "boolean",
            "default": True,
            "description": "The app's own organisation seals automatically after the employee signs.",
        },
        "send_id_number": {
            "type": "boolean",
            "default": False,
            "description": "Also send the ID number (e签宝 then checks it against the account's real name).",
        },
        "sign_fields": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"employee": POSITION, "employer": POSITION},
            "description": "Where the signatures go (page and coordinates).",
        },
        "redirect_url": {
            "type": "string",
            "description": "Where the signing page sends the employee afterwards.",
        },
        "lookback_days": {
            "type": "integer",
            "minimum": 1,
            "maximum": 365,
            "default": 90,
            "description": "How far back a flow started by an earlier attempt is looked for (and the source reads).",
        },
        "file_poll_attempts": {"type": "integer", "minimum": 1, "default": 10},
        "file_poll_interval_seconds": {"type": "number", "minimum": 0, "default": 1},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "default": 10},
        "max_attempts": {"type": "integer", "minimum": 1, "default": 5},
        "backoff_base_seconds": {"type": "number", "minimum": 0, "default": 0.5},
    },
}


class SignFlows(RecordStream):
    primary_key = "signFlowId"
    properties = {
        "signFlowId": {"type": "string"},
        "signFlowTitle": {"type": ["string", "null"]},
        "signFlowStatus": {"type": ["integer", "null"]},
        "status": {"type": ["string", "null"], "description": "SIGNING, DONE, REVOKED, EXPIRED, REFUSED"},
        "signFlowStartTime": {"type": ["integer", "null"], "description": "ms since the epoch"},
        "signFlowEndTime": {"type": ["integer", "null"]},
    }

    def records(self) -> Iterable[Mapping[str, Any]]:
        client: EsignClient = self.client
        now = epoch_ms(client._clock)
        days = min(client.settings.lookback_days, 365)
        for flow in client.list_flows(start_ms=now - days * 86_400_000, end_ms=now):
            status = flow.get("signFlowStatus")
            yield {
                "signFlowId": str(flow.get("signFlowId") or ""),
                "signFlowTitle": flow.get("signFlowTitle"),
                "signFlowStatus": status,
                "status": FLOW_STATUS.get(status) if isinstance(status, int) else None,
                "signFlowStartTime": flow.get("signFlowStartTime"),
                "signFlowEndTime": flow.get("signFlowEndTime"),
            }


class EsignSource(AbstractSource):
    """e签宝's sign flows as an Airbyte source (and the connector's configuration spec)."""

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecification(connectionSpecification=dict(SPEC), supportsIncremental=False)

    def check_connection(self, logger: logging.Logger, config: Mapping[str, Any]) -> tuple[bool, Any]:
        try:
            EsignClient.from_config({**config, "max_attempts": 2}).check()
        except (KeyError, TypeError, ValueError) as exc:
            return False, f"invalid configuration: {type(exc).__name__}"
        except VendorError as exc:
            return False, str(exc)
        return True, None

    def streams(self, config: Mapping[str, Any]) -> list[Stream]:
        return [SignFlows(EsignClient.from_config(config), config)]
