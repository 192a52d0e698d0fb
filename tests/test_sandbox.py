"""The simulator machinery: routing, rate limits, injected faults, tokens, the sandbox CLI."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import orjson
import pytest
import requests

from hub.sandbox import SIMULATORS, Faults, RateLimit, Request, Response, Simulator, route


class Echo(Simulator):
    """A tiny API for the base class's tests."""

    vendor = "test-echo"
    public_paths = ("/token",)
    #: items made through ``POST /items``
    created = 0

    def authenticate(self, request: Request) -> Response | None:
        if not self.token_valid(self.bearer(request)):
            return Response(401, {"message": "invalid token"})
        return None

    @route("POST", "/token")
    def token(self, request: Request) -> Response:
        token, ttl = self.issue_token()
        return Response(200, {"access_token": token, "expires_in": ttl})

    @route("GET", "/items/{item_id}")
    def item(self, request: Request) -> Response:
        return Response(200, {"id": request.params["item_id"], "q": request.arg("q")})

    @route("POST", "/items")
    def create(self, request: Request) -> Response:
        with self._lock:
            self.created += 1
            return Response(201, {"id": str(self.created)})


@pytest.fixture
def echo() -> Iterator[Echo]:
    with Echo() as simulator:
        yield simulator


def _token(sim: Simulator) -> dict[str, str]:
    token = requests.post(sim.url + "/token", timeout=5).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_routes_path_params_query_and_marks_itself_a_simulator(echo: Echo) -> None:
    answer = requests.get(echo.url + "/items/42?q=x", headers=_token(echo), timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"id": "42", "q": "x"}
    assert answer.headers["X-Hub-Simulator"] == "test-echo"
    assert requests.get(echo.url + "/nothing", headers=_token(echo), timeout=5).status_code == 404
    assert requests.post(echo.url + "/items/1", headers=_token(echo), timeout=5).status_code == 405
    assert echo.requests[-1][2] == 405


def test_tokens_expire_on_demand(echo: Echo) -> None:
    headers = _token(echo)
    assert requests.get(echo.url + "/items/1", headers=headers, timeout=5).status_code == 200
    echo.expire_tokens()
    assert requests.get(echo.url + "/items/1", headers=headers, timeout=5).status_code == 401
    assert requests.get(echo.url + "/items/1", headers=_token(echo), timeout=5).status_code == 200


def test_rate_limit_answers_429_with_retry_after(echo: Echo) -> None:
    headers = _token(echo)
    echo.rate_limit = RateLimit(requests=2, window=30)
    codes = [requests.get(echo.url + "/items/1", headers=headers, timeout=5) for _ in range(3)]
    assert [c.status_code for c in codes] == [200, 200, 429]
    assert 1 <= int(codes[-1].headers["Retry-After"]) <= 30


def test_injected_faults_come_first_then_service_resumes(echo: Echo) -> None:
    headers = _token(echo)
    echo.faults = Faults(throttle=2, retry_after=3, errors=1, error_status=502)
    codes = [requests.get(echo.url + "/items/1", headers=headers, timeout=5) for _ in range(4)]
    assert [c.status_code for c in codes] == [429, 429, 502, 200]
    assert codes[0].headers["Retry-After"] == "3"


def test_error_rate_is_repeatable() -> None:
    def statuses() -> list[int]:
        with Echo(faults=Faults(error_rate=0.1, only="/items")) as sim:
            headers = _token(sim)
            return [
                requests.get(sim.url + "/items/1", headers=headers, timeout=5).status_code for _ in range(50)
            ]

    first = statuses()
    assert first == statuses()
    assert 2 <= first.count(503) <= 8


def test_simulator_registry_and_sandbox_cli_lists_vendors() -> None:
    assert SIMULATORS["test-echo"] is Echo
    listed = subprocess.run(
        [sys.executable, "-m", "hub", "sandbox", "list"], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr


def test_sandbox_start_serves_until_stopped() -> None:
    from hub.sandbox.vendors import VENDOR_MODULES, load_all

    load_all()
    if not VENDOR_MODULES:
        pytest.fail("no vendor simulator is registered in hub.sandbox.vendors")
    vendor = sorted(v for v in SIMULATORS if not v.startswith("test-"))[0]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "sandbox", "start", vendor, "--size", "5", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        details = orjson.loads(line)
        assert details["vendor"] == vendor
        deadline = time.monotonic() + 10
        while True:
            try:
                answer = requests.get(details["url"] + "/", timeout=5)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert answer.headers["X-Hub-Simulator"] == vendor
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _create(sim: Simulator, headers: dict[str, str]) -> int | None:
    """POST one item: the answer's status, or None when the connection closed unanswered."""
    try:
        return requests.post(sim.url + "/items", headers=headers, timeout=5).status_code
    except requests.Timeout:
        raise AssertionError("a dropped answer must close the connection, not hang") from None
    except requests.ConnectionError:
        return None


def test_lost_reply_drop_processes_the_request_then_closes_the_connection_at_once(echo: Echo) -> None:
    echo.faults = Faults(lost_reply_rate=1.0)
    headers = _token(echo)  # the token endpoint is public: never faulted
    started = time.monotonic()
    assert [_create(echo, headers) for _ in range(3)] == [None, None, None]
    assert time.monotonic() - started < 2  # no sleeping: the client learns at once
    assert echo.created == 3  # the vendor acted on every one
    assert [status for method, _, status in echo.requests if method == "POST"] == [200, 0, 0, 0]
    echo.faults = Faults()
    assert _create(echo, headers) == 201 and echo.created == 4  # the service resumes


def test_lost_reply_status_mode_answers_5xx_after_processing(echo: Echo) -> None:
    headers = _token(echo)
    echo.faults = Faults(lost_reply_rate=1.0, lost_reply_mode="status", error_status=502, only="/items")
    assert _create(echo, headers) == 502
    assert echo.created == 1
    assert requests.get(echo.url + "/items/1", headers=headers, timeout=5).status_code == 502


def test_lost_reply_rate_is_repeatable_and_respects_only() -> None:
    def outcomes() -> tuple[list[int | None], int]:
        with Echo(faults=Faults(lost_reply_rate=0.1, only="/items")) as sim:
            headers = _token(sim)
            for _ in range(5):  # outside ``only``: never lost, and not counted in the pattern
                assert requests.get(sim.url + "/other", headers=headers, timeout=5).status_code == 404
            return [_create(sim, headers) for _ in range(50)], sim.created

    first, created = outcomes()
    assert first == outcomes()[0]
    assert 3 <= first.count(None) <= 7
    assert set(first) == {None, 201}
    assert created == 50  # dropped or not, every request was processed


def test_flaky_splits_its_rate_between_refused_and_lost_requests() -> None:
    faults = Faults.flaky(0.1)
    assert (faults.error_rate, faults.lost_reply_rate, faults.lost_reply_mode) == (0.05, 0.05, "drop")
    with Echo(faults=faults) as sim:
        headers = _token(sim)
        results = [_create(sim, headers) for _ in range(200)]
    refused, dropped = results.count(503), results.count(None)
    assert 7 <= refused <= 13 and 7 <= dropped <= 13  # about 5% each: the two shares add up
    assert refused + dropped + results.count(201) == 200
    assert sim.created == 200 - refused  # a refused request was never processed; a dropped one was


def test_fault_shares_are_checked() -> None:
    with pytest.raises(ValueError, match="lost_reply_mode"):
        Faults(lost_reply_mode="hang")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lost_reply_rate"):
        Faults(lost_reply_rate=1.5)
    with pytest.raises(ValueError):
        Faults.flaky(-0.1)


def test_drop_and_lose_replies_take_the_next_successful_answers(echo: Echo) -> None:
    headers = _token(echo)
    echo.drop_replies("/items", method="POST")
    echo.lose_replies("/items", times=2, status=504)
    assert requests.get(echo.url + "/nothing", headers=headers, timeout=5).status_code == 404  # not a success
    assert _create(echo, headers) is None  # dropped
    assert _create(echo, headers) == 504
    assert requests.get(echo.url + "/items/7", headers=headers, timeout=5).status_code == 504
    assert _create(echo, headers) == 201
    assert echo.created == 3
    echo.drop_replies("/items", exact=True)  # only the whole path: /items/7 is answered
    assert requests.get(echo.url + "/items/7", headers=headers, timeout=5).status_code == 200
    assert _create(echo, headers) is None and echo.created == 4
