"""What the OA connectors (WeCom, DingTalk, Feishu) share: vendor-neutral onboarding machinery.

Each OA plugin keeps its vendor's endpoints, envelopes, error codes and crypto; these modules
hold what is the same for all of them:

- :mod:`hub.oa.client`: the hire in hub's terms, settings every OA connector has, and the
  account logic above the transport (a stable id derived from the hire, adopting a member made
  by hand, create-or-update that never makes two accounts, submitting an approval once);
- :mod:`hub.oa.actions`: the ``<plugin>.create_user`` / ``start_approval`` / ``send_welcome``
  onboarding actions, with the vendor's details left to small hooks;
- :mod:`hub.oa.source`: the address book as an Airbyte source (``departments``, ``users``);
- :mod:`hub.oa.webhook`: the WXBizMsgCrypt callback verifier WeCom and DingTalk share.

The HTTP side (tokens, retries, typed errors) is in :mod:`hub.vendor_http`.
"""
