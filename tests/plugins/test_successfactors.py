"""The ``successfactors`` connector against its simulator, over loopback HTTP.

The SAML bearer assertion (canonical XML, signed with the OAuth client's key) verified by the
simulator and refused when tampered with, signed by another key, expired or replayed; the token
cached, refetched after expiry; 429 backed off by ``Retry-After``; 5xx retried; upserts answered
HTTP 200 with per-row statuses, every row checked and a refused row's message masked; an upsert
whose answer is lost sent again without a second record; ``$filter`` queries with ``__next``
paging; the ``successfactors.hire`` action (find, perform, undo = terminate) exactly once, alone
and after ``sql.upsert_employee`` in the real onboarding flow on SQLite; the Airbyte source
full refresh and incremental.
"""

from __future__ import annotations

import base64
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from airbyte_cdk.models import Status, SyncMode
from cryptography.hazmat.primitives.asymmetric import rsa
from hub_successfactors.actions import EMPLOYMENT_KIND, Hire
from hub_successfactors.client import (
    SuccessFactorsClient,
    UpsertEntry,
    odata_date,
    parse_odata_date,
)
from hub_successfactors.errors import (
    SuccessFactorsAuthError,
    SuccessFactorsError,
    SuccessFactorsRateLimited,
    SuccessFactorsRowRefused,
)
from hub_successfactors.saml import GRANT_TYPE, AssertionRequest, signed_assertion
from hub_successfactors.source import SuccessFactorsSource

from hub.onboarding import ActionContext, ActionFailed, ExternalRef, TaskResult
from hub.onboarding.actions import OutcomeKind
from hub.onboarding.flow import OnboardingFlow
from hub.onboarding.runner import OnboardingRunner
from hub.project import Project
from hub.sandbox import Faults
from hub.sandbox.successfactors import SuccessFactorsSimulator
from tests.ats_helpers import read_stream
from tests.conftest import run_cli

T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
CASE: dict[str, Any] = {
    "name": "欧阳娜娜",
    "email": "nana.ouyang@example.com",
    "id_number": "11010519491231002X",
    "phone": "+8613912345678",
    "bank_account": "6222020200112233445",
    "salary": "38765.43",
    "start_date": "2030-04-01",
    "job_title": "后端工程师",
    "department": "RD",
    "employee_no": "H2030001",
}
#: what SuccessFactors must never receive or echo back in hub's messages
NOT_FOR_SF = ["11010519491231002X", "13912345678", "6222020200112233445", "38765.43"]


@pytest.fixture
def sim() -> Iterator[SuccessFactorsSimulator]:
    with SuccessFactorsSimulator(count=8, seed=3) as simulator:
        yield simulator


def config_of(sim: SuccessFactorsSimulator, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": sim.url,
        "company_id": sim.company_id,
        "client_id": sim.client_id,
        "user_id": "sfadmin",
        "private_key": sim.private_key_pem,
        "backoff_base_seconds": 0.01,
        "hire": {"company": "CN01", "job_code": "JC01", "department_map": {"RD": "D001", "DATA": "D002"}},
        **extra,
    }


def client_of(
    sim: SuccessFactorsSimulator, sleeps: list[float] | None = None, **extra: Any
) -> SuccessFactorsClient:
    record = sleeps if sleeps is not None else []
    return SuccessFactorsClient.from_config(config_of(sim, **extra), sleep=record.append)


def statuses(sim: SuccessFactorsSimulator, fragment: str) -> list[int]:
    return [status for _, path, status in sim.requests if fragment in path]


def token_request(sim: SuccessFactorsSimulator, assertion: bytes, **form: str) -> requests.Response:
    data = {
        "client_id": sim.client_id,
        "company_id": sim.company_id,
        "grant_type": GRANT_TYPE,
        "assertion": base64.b64encode(assertion).decode(),
        **form,
    }
    return requests.post(sim.url + "/oauth/token", data=data, timeout=10)


def assertion_for(sim: SuccessFactorsSimulator, **overrides: Any) -> AssertionRequest:
    fields: dict[str, Any] = {
        "client_id": sim.client_id,
        "user_id": "sfadmin",
        "recipient": sim.url + "/oauth/token",
    }
    return AssertionRequest(**{**fields, **overrides})


# -- the SAML bearer assertion -----------------------------------------------------------------


def test_the_assertion_is_canonical_xml_and_the_simulator_accepts_it(sim: SuccessFactorsSimulator) -> None:
    xml = signed_assertion(sim.private_key, assertion_for(sim)).decode()
    assert ET.canonicalize(xml) == xml  # what hub digests and signs is what a C14N verifier computes
    root = ET.fromstring(xml)
    saml = "{urn:oasis:names:tc:SAML:2.0:assertion}"
    assert root.findtext(f"{saml}Subject/{saml}NameID") == "sfadmin"
    assert (
        root.findtext(f"{saml}Conditions/{saml}AudienceRestriction/{saml}Audience")
        == "www.successfactors.com"
    )
    answer = token_request(sim, xml.encode())
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 86400 and body["access_token"]


@pytest.mark.parametrize(
    "tamper",
    ["changed_user", "other_key", "expired", "replayed", "wrong_audience", "wrong_api_key", "dtd"],
)
def test_a_bad_assertion_is_refused(sim: SuccessFactorsSimulator, tamper: str) -> None:
    sim.api_users.add("intruder")
    key: rsa.RSAPrivateKey = sim.private_key
    request = assertion_for(sim)
    now = datetime.now(UTC)
    if tamper == "other_key":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif tamper == "expired":
        now -= timedelta(hours=1)
    elif tamper == "wrong_audience":
        request = assertion_for(sim, audience="www.example.com")
    elif tamper == "wrong_api_key":
        request = assertion_for(sim, client_id="another-client")
    xml = signed_assertion(key, request, now=now)
    if tamper == "changed_user":  # a valid signature, then the subject edited
        xml = xml.replace(b">sfadmin<", b">intruder<")
    elif tamper == "dtd":
        xml = b'<!DOCTYPE x [<!ENTITY e "sfadmin">]>' + xml
    elif tamper == "replayed":
        assert token_request(sim, xml).status_code == 200
    answer = token_request(sim, xml)
    assert answer.status_code in (400, 401) and answer.json()["errorMessage"], answer.text
    if tamper == "changed_user":
        assert "digest" in answer.json()["errorMessage"]


def test_wrong_key_in_the_config_is_an_auth_error_that_quotes_no_key(sim: SuccessFactorsSimulator) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    from hub.sandbox.successfactors import private_key_pem

    pem = private_key_pem(other)
    client = client_of(sim, private_key=pem)
    with pytest.raises(SuccessFactorsAuthError) as caught:
        client.query("PerPerson")
    assert caught.value.code == 401 and "signature" in str(caught.value)
    assert pem.splitlines()[1] not in str(caught.value)


# -- tokens, throttling, server errors ---------------------------------------------------------


def test_the_token_is_fetched_once_and_cached(sim: SuccessFactorsSimulator) -> None:
    client = client_of(sim)
    client.query("PerPerson")
    client.query("EmpJob")
    assert client.token_fetches == 1 and sim.tokens_issued == 1


def test_an_expired_token_is_refetched_once_and_the_call_retried(sim: SuccessFactorsSimulator) -> None:
    client = client_of(sim)
    client.query("PerPerson")
    sim.expire_tokens()
    assert len(client.query("EmpEmployment")) == 8
    assert client.token_fetches == 2
    assert statuses(sim, "/odata/v2/EmpEmployment") == [401, 200]


def test_the_token_is_renewed_before_it_expires() -> None:
    now = [1_900_000_000.0]
    with SuccessFactorsSimulator(count=2, clock=lambda: now[0]) as sim:  # one clock for both sides
        config = config_of(sim, token_margin_seconds=300)
        client = SuccessFactorsClient.from_config(config, clock=lambda: now[0])
        client.query("PerPerson")
        now[0] += 86400 - 299  # inside the margin: a new token before the server refuses the old one
        client.query("PerPerson")
        assert client.token_fetches == 2 and statuses(sim, "/oauth/token") == [200, 200]
        assert statuses(sim, "/odata/v2/PerPerson") == [200, 200]


def test_429_waits_what_retry_after_says(sim: SuccessFactorsSimulator) -> None:
    sleeps: list[float] = []
    client = client_of(sim, sleeps)
    client.query("PerPerson")
    sim.faults = Faults(throttle=2, retry_after=7, only="/odata/v2/EmpJob")
    assert len(client.query("EmpJob")) == 8
    assert sleeps == [7.0, 7.0] and statuses(sim, "/odata/v2/EmpJob") == [429, 429, 200]


def test_429_that_persists_is_a_typed_error_with_the_wait(sim: SuccessFactorsSimulator) -> None:
    client = client_of(sim, max_attempts=3)
    client.query("PerPerson")
    sim.faults = Faults(throttle=10, retry_after=300, only="/odata/v2/EmpJob")
    with pytest.raises(SuccessFactorsRateLimited) as caught:
        client.query("EmpJob")
    assert caught.value.retryable and caught.value.retry_after == 300 and caught.value.code == 429


def test_server_errors_are_retried(sim: SuccessFactorsSimulator) -> None:
    sleeps: list[float] = []
    client = client_of(sim, sleeps)
    client.query("PerPerson")
    sim.faults = Faults(errors=2, error_status=503, only="/odata/v2/PerPerson")
    assert len(client.query("PerPerson")) == 8
    assert statuses(sim, "/odata/v2/PerPerson")[-3:] == [503, 503, 200] and len(sleeps) == 2


# -- queries -----------------------------------------------------------------------------------


def test_filter_queries_follow_next_pages(sim: SuccessFactorsSimulator) -> None:
    client = client_of(sim, page_size=3)
    pages = list(client.pages("EmpJob", select=["userId", "startDate", "jobTitle"]))
    assert [len(p) for p in pages] == [3, 3, 2]
    assert sorted(r["userId"] for p in pages for r in p) == [f"E{i:05d}" for i in range(1, 9)]
    assert set(pages[0][0]) == {"__metadata", "userId", "startDate", "jobTitle"}
    assert sum("%24skiptoken" in path for _, path, _ in sim.requests) == 2
    found = client.query("EmpEmployment", filter="userId eq 'E00004' and personIdExternal eq 'E00004'")
    assert len(found) == 1 and parse_odata_date(found[0]["startDate"]) == datetime(2024, 1, 29, tzinfo=UTC)
    cutoff = "lastModifiedDateTime ge datetime'2024-01-01T05:00:00'"
    assert len(client.query("PerPerson", filter=cutoff)) == 4  # modified at 05:00 .. 08:00
    with pytest.raises(SuccessFactorsError) as caught:
        client.query("PerPerson", filter="userId startswith 'E'")
    assert caught.value.code == 400


def test_next_links_to_another_host_are_not_followed(sim: SuccessFactorsSimulator) -> None:
    client = client_of(sim)
    with pytest.raises(SuccessFactorsError, match="another host"):
        client._same_host("EmpJob", "https://evil.example.com/odata/v2/EmpJob?$skiptoken=x")
    assert client._same_host("EmpJob", f"{sim.url}/odata/v2/EmpJob?$skiptoken=x").startswith(sim.url)


def test_dates_round_trip() -> None:
    assert odata_date(datetime(2024, 1, 1, tzinfo=UTC).date()) == "/Date(1704067200000)/"
    assert parse_odata_date("/Date(1704067200000+0800)/") == datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_odata_date("2024-01-01") is None


# -- upserts -----------------------------------------------------------------------------------


def test_every_row_of_an_upsert_is_checked(sim: SuccessFactorsSimulator) -> None:
    client = client_of(sim)
    entries = [
        UpsertEntry("PerPerson", {"personIdExternal": "H1"}),
        UpsertEntry("EmpEmployment", {"personIdExternal": "H1", "userId": "H1"}),  # startDate missing
    ]
    with pytest.raises(SuccessFactorsRowRefused) as caught:
        client.upsert(entries)
    error = caught.value
    assert (error.entity, error.index, error.code, error.retryable) == ("EmpEmployment", 1, 400, False)
    assert "startDate" in error.reason and "with the index 1" in error.reason
    assert statuses(sim, "/odata/v2/upsert") == [200]  # always HTTP 200: only the rows tell
    assert sim.created["PerPerson"] == 1 and sim.created["EmpEmployment"] == 0  # rows are on their own


def test_a_refused_row_is_reported_without_the_values_it_quotes(sim: SuccessFactorsSimulator) -> None:
    client = client_of(sim)
    client.upsert([UpsertEntry("PerPerson", {"personIdExternal": "H1"})])
    address = "nana.ouyang at example"
    with pytest.raises(SuccessFactorsRowRefused) as caught:
        client.upsert(
            [UpsertEntry("PerEmail", {"personIdExternal": "H1", "emailType": "B", "emailAddress": address})]
        )
    assert "Invalid email address" in str(caught.value) and address not in str(caught.value)


def test_an_upsert_whose_answer_is_lost_is_sent_again_without_a_second_record(
    sim: SuccessFactorsSimulator,
) -> None:
    client = client_of(sim)
    sim.lose_replies("/odata/v2/upsert")  # SuccessFactors writes the person, the answer never arrives
    (row,) = client.upsert([UpsertEntry("PerPerson", {"personIdExternal": "H1"})])
    assert statuses(sim, "/odata/v2/upsert") == [502, 200]
    assert row.edit_status == "UPDATED"  # the resend updated what the first call wrote
    assert sim.created["PerPerson"] == 1 and len(sim.find("PerPerson", personIdExternal="H1")) == 1


# -- successfactors.hire -----------------------------------------------------------------------


def context(sim: SuccessFactorsSimulator, case: dict[str, Any] | None = None, **extra: Any) -> ActionContext:
    fields: dict[str, Any] = {
        "case_id": "case-1",
        "task": "hire_in_sf",
        "action": "successfactors.hire",
        "connector": "sf",
        "idempotency_key": "5b0c3f51-0000-4000-8000-0000000000a1",
        "case": CASE if case is None else case,
        "options": {},
        "results": {},
        "attempt": 1,
        "config_loader": lambda: config_of(sim),
        **extra,
    }
    return ActionContext(**fields)


def test_the_action_is_registered_by_the_plugin() -> None:
    import hub_successfactors

    assert {a.name for a in hub_successfactors.hub_register_onboarding_actions()} == {"successfactors.hire"}


def test_hire_finds_performs_and_undoes_exactly_once(sim: SuccessFactorsSimulator) -> None:
    action = Hire()
    ctx = context(sim)
    assert action.find(ctx) is None
    outcome = action.perform(ctx)
    assert outcome.kind == OutcomeKind.DONE and outcome.ref == ExternalRef("H2030001", EMPLOYMENT_KIND)
    assert outcome.data == {
        "successfactors_user_id": "H2030001",
        "person_id_external": "H2030001",
        "employee_no": "H2030001",
    }
    (job,) = sim.find("EmpJob", userId="H2030001")
    assert (job["department"], job["company"], job["jobCode"], job["eventReason"], job["seqNumber"]) == (
        "D001",
        "CN01",
        "JC01",
        "HIRNEW",
        1,
    )
    assert parse_odata_date(job["startDate"]) == datetime(2030, 4, 1, tzinfo=UTC)
    (personal,) = sim.find("PerPersonal", personIdExternal="H2030001")
    assert (personal["lastName"], personal["firstName"]) == ("欧阳", "娜娜")
    assert sim.find("PerEmail", personIdExternal="H2030001")[0]["emailAddress"] == CASE["email"]
    stored = str(sim.store)
    assert not any(value in stored for value in NOT_FOR_SF)  # only what the entities need went out

    found = action.find(ctx)  # a lost answer: the employment is found, and the hire upserted again
    assert found == outcome.ref
    assert action.recovered(ctx, found).kind == OutcomeKind.DONE
    assert dict(sim.created) == {
        "PerPerson": 1,
        "EmpEmployment": 1,
        "EmpJob": 1,
        "PerPersonal": 1,
        "PerEmail": 1,
    }

    undo = context(sim, ref=outcome.ref)
    action.undo(undo)
    action.undo(undo)  # twice is harmless: the termination is keyed by its end date
    (termination,) = sim.find("EmpEmploymentTermination", userId="H2030001")
    assert termination["eventReason"] == "TERNOSHOW" and termination["endDate"] == job["startDate"]
    assert sim.find("EmpEmployment", userId="H2030001")[0]["endDate"] == job["startDate"]


def test_a_hire_whose_answer_is_lost_exists_once(sim: SuccessFactorsSimulator) -> None:
    sim.lose_replies("/odata/v2/upsert")
    assert Hire().perform(context(sim)).kind == OutcomeKind.DONE
    assert statuses(sim, "/odata/v2/upsert") == [502, 200]
    assert all(count == 1 for count in sim.created.values()) and len(sim.created) == 5


def test_a_hire_stopped_by_a_refused_row_is_completed_by_the_retry(sim: SuccessFactorsSimulator) -> None:
    sim.required["EmpJob"] += ("location",)  # this instance's data model wants a location
    with pytest.raises(ActionFailed) as caught:
        Hire().perform(context(sim))
    assert caught.value.permanent and "EmpJob" in caught.value.reason and "location" in caught.value.reason
    assert sim.created["PerPerson"] == 1 and sim.created["EmpJob"] == 0  # written up to the refused row
    # the operator fixes the configuration and retries: find sees the employment, the upsert completes it
    fixed = {**config_of(sim), "hire": {**config_of(sim)["hire"], "location": "SH01"}}
    ctx = context(sim, config_loader=lambda: fixed)
    found = Hire().find(ctx)
    assert found is not None and Hire().recovered(ctx, found).kind == OutcomeKind.DONE
    assert dict(sim.created) == {
        "PerPerson": 1,
        "EmpEmployment": 1,
        "EmpJob": 1,
        "PerPersonal": 1,
        "PerEmail": 1,
    }


def test_a_refused_hire_reports_no_personal_data(sim: SuccessFactorsSimulator) -> None:
    case = {**CASE, "email": "nana.ouyang at example"}
    with pytest.raises(ActionFailed) as caught:
        Hire().perform(context(sim, case))
    assert caught.value.permanent and "PerEmail" in caught.value.reason
    assert "nana.ouyang" not in caught.value.reason and "欧阳" not in caught.value.reason
    with pytest.raises(ActionFailed, match="no SuccessFactors code"):
        Hire().perform(context(sim, {**CASE, "department": "LEGAL"}))


def test_the_user_id_comes_from_an_earlier_task_or_the_idempotency_key(sim: SuccessFactorsSimulator) -> None:
    case = {k: v for k, v in CASE.items() if k != "employee_no"}
    earlier = {"create_hr_record": TaskResult(ExternalRef("H4821930075"), {"employee_no": "H4821930075"})}
    assert Hire().perform(context(sim, case, results=earlier)).ref == ExternalRef(
        "H4821930075", EMPLOYMENT_KIND
    )
    alone = Hire().perform(context(sim, case, idempotency_key="5b0c3f51-0000-4000-8000-0000000000b2"))
    assert (
        alone.ref is not None and alone.ref.id == "hub" + "5b0c3f51000040008000"
    )  # 20 hex digits of the key


# -- through hub's onboarding flow, after the HR master record ---------------------------------


def apply_hr_master(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    text = re.sub(
        r"--[^\n]*", "", (Path(__file__).resolve().parents[2] / "schemas/hr_master/sqlite.sql").read_text()
    )
    with engine.begin() as conn:
        for statement in (s.strip() for s in text.split(";")):
            if statement:
                conn.exec_driver_sql(statement)
        conn.exec_driver_sql("INSERT INTO departments (code, name) VALUES ('RD', '研发中心')")
    return engine


def onboarding_project(
    sim: SuccessFactorsSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Project:
    hr = f"sqlite:///{tmp_path / 'hr.db'}"
    apply_hr_master(hr).dispose()
    (tmp_path / "hub.toml").write_text(
        f"""
[hub]
database = "sqlite:///{tmp_path / "hub.db"}"

[connectors.hr_master]
plugin = "sql"
[connectors.hr_master.config]
url = "{hr}"

[connectors.sf]
plugin = "successfactors"
[connectors.sf.config]
base_url = "{sim.url}"
company_id = "{sim.company_id}"
client_id = "{sim.client_id}"
user_id = "sfadmin"
private_key = {{ env = "SF_PRIVATE_KEY" }}
backoff_base_seconds = 0.01
[connectors.sf.config.hire]
company = "CN01"
job_code = "JC01"
department_map = {{ RD = "D001" }}

[onboarding]
schedule = false
claim_ttl = "60s"
tasks = [
  {{ name = "create_hr_record", action = "sql.upsert_employee", connector = "hr_master" }},
  {{ name = "hire_in_sf", action = "successfactors.hire", connector = "sf" }},
  # a later step an operator must look at (a refused option): the case stays open to cancel
  {{ name = "later_step", action = "sql.upsert_employee", connector = "hr_master", options = {{ status = "bogus" }} }},
]
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("SF_PRIVATE_KEY", sim.private_key_pem)
    return Project(tmp_path / "hub.toml")


def test_a_case_hires_in_the_hr_master_then_successfactors_and_cancel_undoes_both(
    sim: SuccessFactorsSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = OnboardingFlow(onboarding_project(sim, tmp_path, monkeypatch))
    case = {k: v for k, v in CASE.items() if k not in ("employee_no", "department")}
    case.update({"department": "RD", "contract_type": "OPEN_ENDED", "probation_months": 6})
    case_id, _ = flow.open_case(case, source="test", now=T0)
    sim.lose_replies("/odata/v2/upsert")  # the hire's first answer is lost on the way back
    OnboardingRunner(flow).run_once(now=T0)
    tasks = {t.name: t.status for t in flow.show(case_id).tasks}
    assert tasks == {"create_hr_record": "DONE", "hire_in_sf": "DONE", "later_step": "NEEDS_OPERATOR"}
    hr = sa.create_engine(f"sqlite:///{tmp_path / 'hr.db'}")
    with hr.connect() as conn:
        (employee_no,) = conn.execute(sa.text("SELECT employee_no FROM employees")).one()
    assert sim.find("EmpEmployment", userId=employee_no)  # the HR master's number is the userId
    assert all(count == 1 for count in sim.created.values()) and len(sim.created) == 5

    flow.cancel(case_id, "no show")
    assert sim.find("EmpEmploymentTermination", userId=employee_no)
    with hr.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM employees")).scalar_one() == "cancelled"
    assert flow.show(case_id).status == "CANCELLED"
    shown = str(flow.show(case_id).as_dict())
    assert not any(value in shown for value in NOT_FOR_SF)
    hr.dispose()
    flow.db.dispose()


class SimulatedCrash(BaseException):
    """The runner dies after SuccessFactors wrote the hire, before hub recorded it."""


def test_a_runner_that_dies_after_the_hire_does_not_hire_twice(
    sim: SuccessFactorsSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = OnboardingFlow(onboarding_project(sim, tmp_path, monkeypatch))
    case_id, _ = flow.open_case({**CASE, "contract_type": "OPEN_ENDED"}, source="test", now=T0)
    real = Hire.perform

    def crash_after_the_hire(self: Hire, ctx: ActionContext) -> Any:
        real(self, ctx)
        raise SimulatedCrash

    monkeypatch.setattr(Hire, "perform", crash_after_the_hire)
    with pytest.raises(SimulatedCrash):
        OnboardingRunner(flow).run_once(now=T0)
    monkeypatch.setattr(Hire, "perform", real)  # the next runner is healthy
    report = OnboardingRunner(flow).run_once(now=T0 + timedelta(seconds=61))  # the claim lapsed
    assert report.recovered == 1
    assert {t.name: t.status for t in flow.show(case_id).tasks}["hire_in_sf"] == "DONE"
    assert all(count == 1 for count in sim.created.values()) and len(sim.created) == 5
    flow.db.dispose()


def test_hub_connectors_check(
    sim: SuccessFactorsSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = onboarding_project(sim, tmp_path, monkeypatch)
    checked = run_cli(
        ["connectors", "check", "sf"], project.path, env={"SF_PRIVATE_KEY": sim.private_key_pem}
    )
    assert checked.returncode == 0 and "OK" in checked.stdout, checked.stdout + checked.stderr
    assert "PRIVATE KEY" not in checked.stdout + checked.stderr


# -- the Airbyte source ------------------------------------------------------------------------


def test_source_check_discover_and_read_with_paging(sim: SuccessFactorsSimulator) -> None:
    config = config_of(sim, page_size=3)
    source = SuccessFactorsSource()
    assert source.check(None, config).status == Status.SUCCEEDED  # type: ignore[arg-type]
    streams = {s.name: s for s in source.discover(None, config).streams}  # type: ignore[arg-type]
    assert set(streams) == {"PerPerson", "EmpEmployment", "EmpJob"}
    assert streams["EmpJob"].source_defined_primary_key == [["seqNumber"], ["startDate"], ["userId"]]
    jobs = read_stream(SuccessFactorsSource(), config, "EmpJob", SyncMode.full_refresh).records
    assert len(jobs) == 8 and jobs[0]["startDate"] == "2024-01-08" and "__metadata" not in jobs[0]
    assert jobs[0]["lastModifiedDateTime"] == "2024-01-01T01:00:00.000Z"


def test_source_reads_incrementally_by_last_modified(sim: SuccessFactorsSimulator) -> None:
    config = config_of(sim)
    first = read_stream(SuccessFactorsSource(), config, "PerPerson")
    assert len(first.records) == 8 and first.states and "lastModifiedDateTime" in first.states[-1]
    Hire().perform(context(sim))  # a new person, modified now
    time.sleep(0.01)  # a record of the very millisecond a read ends at is read by the next one
    second = read_stream(SuccessFactorsSource(), config, "PerPerson", state=first.states[-1])
    assert [r["personIdExternal"] for r in second.records] == ["H2030001"]
    assert second.states[-1]["lastModifiedDateTime"] > first.states[-1]["lastModifiedDateTime"]
    third = read_stream(SuccessFactorsSource(), config, "PerPerson", state=second.states[-1])
    assert [r["personIdExternal"] for r in third.records] == ["H2030001"]  # within the look-back: again


def test_source_check_fails_cleanly_on_a_bad_key(sim: SuccessFactorsSimulator) -> None:
    status = SuccessFactorsSource().check(None, config_of(sim, private_key="not a key"))  # type: ignore[arg-type]
    assert status.status == Status.FAILED and "private key" in (status.message or "")
