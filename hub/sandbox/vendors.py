"""Import every simulator so that :data:`hub.sandbox.SIMULATORS` knows them all."""

from __future__ import annotations

import importlib

#: modules under hub.sandbox holding one vendor simulator each
VENDOR_MODULES: tuple[str, ...] = (
    "lever",
    "greenhouse",
    "hackerrank",
    "assessment_rest",
    "moka",
    "beisen",
    "wecom",
    "dingtalk",
    "feishu",
    "kingdee",
    "successfactors",
    "esign",
    "docusign",
)


def load_all() -> None:
    for module in VENDOR_MODULES:
        importlib.import_module(f"hub.sandbox.{module}")
