"""The Lever simulator: Basic and OAuth auth, offset-token pages, time filters, 429s, touches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from hub.sandbox import SIMULATORS, RateLimit
from hub.sandbox.lever import LeverSimulator
from hub.sandbox.vendors import load_all


@pytest.fixture
def lever() -> Iterator[LeverSimulator]:
    with LeverSimulator(count=30, seed=5) as simulator:
        yield simulator


def get(sim: LeverSimulator, path: str, **params: object) -> requests.Response:
    return requests.get(f"{sim.url}/v1{path}", params=params, auth=(sim.api_key, ""), timeout=5)


def test_registered_and_seeded() -> None:
    load_all()
    assert SIMULATORS["lever"] is LeverSimulator
    one, two = LeverSimulator(count=5, seed=9, now=1.8e9), LeverSimulator(count=5, seed=9, now=1.8e9)
    assert [o.as_json() for o in one.opportunities] == [o.as_json() for o in two.opportunities]
    sandbox = LeverSimulator.for_sandbox(port=0, seed=9, size=7)
    assert len(sandbox.opportunities) == 7
    assert [u["id"] for u in sandbox.users] == [u["id"] for u in one.users]


def test_pages_with_limit_and_an_offset_token(lever: LeverSimulator) -> None:
    seen, token, pages = [], None, 0
    while True:
        body = get(lever, "/opportunities", limit=12, **({"offset": token} if token else {})).json()
        seen += [o["id"] for o in body["data"]]
        pages += 1
        if not body["hasNext"]:
            assert "next" not in body
            break
        token = body["next"]
        assert not token.isdigit()  # opaque, as Lever's
    assert pages == 3 and seen == [o.id for o in lever.opportunities]
    opportunity = get(lever, "/opportunities", limit=1).json()["data"][0]
    assert opportunity["emails"] and opportunity["phones"][0]["value"].startswith("+86 ")
    assert isinstance(opportunity["createdAt"], int) and opportunity["updatedAt"] >= opportunity["createdAt"]
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": "garbage"}):
        assert get(lever, "/opportunities", **bad).status_code == 400


def test_updated_at_filters_are_inclusive_epoch_millis(lever: LeverSimulator) -> None:
    stamps = sorted(o.updated_at for o in lever.opportunities)
    low, high = stamps[5], stamps[20]
    body = get(lever, "/opportunities", updated_at_start=low, updated_at_end=high).json()
    assert sorted(o["updatedAt"] for o in body["data"]) == [s for s in stamps if low <= s <= high]
    assert get(lever, "/opportunities", updated_at_start="2024-01-01").status_code == 400


def test_touch_moves_an_opportunity_past_every_other(lever: LeverSimulator) -> None:
    before = max(o.updated_at for o in lever.opportunities)
    target = lever.opportunities[4]
    old_stage = target.stage
    (stamp,) = lever.touch(target.id)
    assert stamp > before and target.stage != old_stage
    body = get(lever, "/opportunities", updated_at_start=before + 1).json()
    assert [o["id"] for o in body["data"]] == [target.id]
    added = lever.add_opportunity()
    assert (
        added.updated_at > stamp and get(lever, f"/opportunities/{added.id}").json()["data"]["id"] == added.id
    )


def test_api_key_and_oauth_with_rotating_refresh_tokens(lever: LeverSimulator) -> None:
    assert requests.get(f"{lever.url}/v1/users", timeout=5).status_code == 401
    refused = requests.get(f"{lever.url}/v1/users", auth=("wrong", ""), timeout=5)
    assert refused.status_code == 401 and refused.json()["code"] == "UnauthorizedError"
    assert get(lever, "/users").status_code == 200

    first = lever.current_refresh_token()
    form = {
        "grant_type": "refresh_token",
        "client_id": lever.client_id,
        "client_secret": lever.client_secret,
        "refresh_token": first,
    }
    granted = requests.post(f"{lever.url}/oauth/token", data=form, timeout=5).json()
    assert granted["refresh_token"] != first and granted["token_type"] == "Bearer"
    bearer = {"Authorization": f"Bearer {granted['access_token']}"}
    assert requests.get(f"{lever.url}/v1/opportunities", headers=bearer, timeout=5).status_code == 200
    reused = requests.post(f"{lever.url}/oauth/token", data=form, timeout=5)
    assert reused.status_code == 403 and reused.json()["error"] == "invalid_grant"  # single use
    wrong_client = {**form, "refresh_token": granted["refresh_token"], "client_secret": "nope"}
    assert requests.post(f"{lever.url}/oauth/token", data=wrong_client, timeout=5).status_code == 401
    lever.expire_tokens()
    assert requests.get(f"{lever.url}/v1/opportunities", headers=bearer, timeout=5).status_code == 401


def test_rate_limit_answers_429_with_retry_after() -> None:
    with LeverSimulator(count=3, rate_limit=RateLimit(5, 10.0)) as lever:
        statuses = [get(lever, "/users").status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        assert int(get(lever, "/users").headers["Retry-After"]) >= 1


def test_outage_after_some_pages(lever: LeverSimulator) -> None:
    lever.outage_after(pages=1)
    assert get(lever, "/opportunities", limit=5).status_code == 200
    assert get(lever, "/opportunities", limit=5).status_code == 503
    assert get(lever, "/users").status_code == 200  # only opportunities are down
    lever.end_outage()
    assert get(lever, "/opportunities", limit=5).status_code == 200
