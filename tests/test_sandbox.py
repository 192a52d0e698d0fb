"""The simulator machinery: routing, rate limits, injected faults, tokens, the sandbox CLI."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson
import pytest
import requests

from hub.sandbox import SIMULATORS, Faults, RateLimit, Request, Response, Simulator, route


class Echo(Simulator):
    """A tiny API for the base class's tests."""

    vendor = "test-echo"
    public_paths = ("/token",)

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


@pytest.fixture
def echo() -> Echo:
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
