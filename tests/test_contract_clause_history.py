"""The clause history: every clause-set version hub used, with its rules, in hub's own database.

Rules changed in hub.toml between two renders give two versions, and ``hub contracts history``
names the changed term; the same rules again give none; threads recording one new version at
once leave one row (on SQLite, PostgreSQL and MariaDB); ``hub config check``, ``hub contracts
version`` and the e-contract action record too; a value in the rules that looks like personal
data is stored masked.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from hub.cli import app
from hub.contracts.clauses import contracts_config
from hub.contracts.documents import DocumentGenerator
from hub.contracts.history import (
    ClauseHistory,
    ClauseVersion,
    Outcome,
    SeenVersions,
    describe_changes,
    recordable_rules,
    recorded_by,
    recording_as,
)
from hub.store import Database
from hub.store.models import ContractClauseVersion

ID_NUMBER = "11010519491231002X"
TERMS: dict[str, Any] = {
    "employer": "示例科技有限公司",
    "employee_name": "张三",
    "employee_id_number": ID_NUMBER,
    "job_title": "高级工程师",
    "start_date": "2025-03-01",
    "term_months": 36,
    "probation_months": 3,
    "monthly_salary": "30000",
    "attributes": {"core_data_access": True, "job_level": 8},
}


def project_toml(database: str, months: int | str, extra: str = "") -> str:
    return f"""
[hub]
database = "{database}"

[contracts]
[[contracts.clauses]]
name = "confidentiality"
when = {{ core_data_access = true }}
post_employment_months = {months}
{extra}
"""


def invoke(config: Path, *args: str) -> Any:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result


def render(config: Path, terms_file: Path, out_dir: Path) -> str:
    """``hub contracts render``: the clause-set version the contract carries."""
    result = invoke(config, "contracts", "render", str(terms_file), "--out", str(out_dir), "--json")
    return str(orjson.loads(result.stdout)["clause_set_version"])


# -- through the CLI ------------------------------------------------------------------------------


def test_rules_changed_between_two_renders_give_two_versions_and_the_diff_names_the_term(
    tmp_path: Path, any_db_url: str
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(project_toml(any_db_url, 24), encoding="utf-8")
    terms_file = tmp_path / "terms.json"
    terms_file.write_bytes(orjson.dumps(TERMS))
    first = render(config, terms_file, tmp_path / "out")
    assert render(config, terms_file, tmp_path / "out") == first  # the same rules: no new version
    config.write_text(project_toml(any_db_url, 36), encoding="utf-8")
    second = render(config, terms_file, tmp_path / "out")
    assert second != first

    listed = orjson.loads(invoke(config, "contracts", "history", "--json").stdout)["versions"]
    assert [v["version"] for v in listed] == [second, first]  # newest first
    newest, oldest = listed
    assert newest["previous_version"] == first and oldest["previous_version"] is None
    assert newest["changes"] == ["confidentiality.post_employment_months: 24 -> 36"]
    assert newest["recorded_by"] == oldest["recorded_by"] == "hub contracts render"
    assert oldest["first_seen_at"] <= newest["first_seen_at"]

    text = invoke(config, "contracts", "history").stdout
    assert f"replaced {first}:" in text and "confidentiality.post_employment_months: 24 -> 36" in text

    # the contract archived with the first version traces back to the exact rules
    shown = orjson.loads(invoke(config, "contracts", "history", first, "--json").stdout)
    assert shown["rules"]["clauses"] == [
        {"name": "confidentiality", "when": {"core_data_access": True}, "post_employment_months": 24}
    ]
    assert shown["rules_intact"] is True  # the stored rules hash to the digest the version was made of
    assert shown["rules_sha256"] == contracts_config({"clauses": shown["rules"]["clauses"]}).rules_digest()
    assert "clauses/confidentiality.html.j2" in shown["templates"]
    assert f"clause set {first}" in invoke(config, "contracts", "history", first[:10]).stdout
    missing = CliRunner().invoke(
        app, ["--config", str(config), "contracts", "history", "cs-0000000000000000"]
    )
    assert missing.exit_code == 1 and "no clause-set version cs-0000000000000000" in missing.output

    db = Database(any_db_url)
    try:
        with db.session() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(ContractClauseVersion)) == 2
    finally:
        db.dispose()


def test_config_check_and_contracts_version_record_the_rules(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'hub.db'}"
    config = tmp_path / "hub.toml"
    config.write_text(project_toml(database, '"until_public"'), encoding="utf-8")
    checked = invoke(config, "config", "check").stdout
    version = orjson.loads(invoke(config, "contracts", "version", "--json").stdout)["id"]
    assert f"clause set {version} (new: recorded in the clause history)" in checked
    [row] = orjson.loads(invoke(config, "contracts", "history", "--json").stdout)["versions"]
    assert row["version"] == version and row["recorded_by"] == "hub config check"
    assert "a new clause set" not in invoke(config, "contracts", "version").stdout  # already recorded

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "hub.toml").write_text('[hub]\ndatabase = "sqlite:///hub.db"\n', encoding="utf-8")
    assert "clause set" not in invoke(bare / "hub.toml", "config", "check").stdout  # no [contracts]
    assert "no clause-set version recorded yet" in invoke(bare / "hub.toml", "contracts", "history").stdout
    assert orjson.loads(invoke(bare / "hub.toml", "contracts", "history", "--json").stdout) == {
        "versions": []
    }


# -- recording ------------------------------------------------------------------------------------


def version_of(months: int) -> tuple[Any, Any]:
    config = contracts_config(
        {
            "clauses": [
                {
                    "name": "confidentiality",
                    "when": {"core_data_access": True},
                    "post_employment_months": months,
                }
            ]
        }
    )
    return DocumentGenerator(config).clause_set_version(), config


def test_the_same_rules_twice_give_one_version_and_move_last_seen_on(any_db_url: str) -> None:
    db = Database(any_db_url)
    version, config = version_of(24)
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    try:
        one_process = ClauseHistory(db, recorded_by="hub contracts render", seen=SeenVersions())
        assert one_process.record(version, config, now=t0) == "recorded"
        assert one_process.record(version, config, now=t0 + timedelta(hours=1)) == "cached"
        another = ClauseHistory(db, recorded_by="scheduler", seen=SeenVersions())
        assert another.record(version, config, now=t0 + timedelta(days=2)) == "seen"
        assert another.record(version, config, now=t0 + timedelta(days=1)) == "cached"
        [row] = ClauseHistory(db).versions()
        assert row.version == version.id and row.recorded_by == "hub contracts render"
        assert row.first_seen_at == t0 and row.last_seen_at == t0 + timedelta(days=2)
        # an older time never moves last_seen_at back, even from a fresh process
        assert ClauseHistory(db, seen=SeenVersions()).record(version, config, now=t0) == "seen"
        assert ClauseHistory(db).get(version.id).last_seen_at == t0 + timedelta(days=2)  # type: ignore[union-attr]
    finally:
        db.dispose()


def test_a_process_looks_a_version_up_again_after_the_refresh_interval(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    version, config = version_of(24)
    history = ClauseHistory(db, seen=SeenVersions(refresh_seconds=0.0))
    assert history.record(version, config) == "recorded"
    assert history.record(version, config) == "seen"  # not "cached": the interval has passed
    db.dispose()


class LookupsFirst(ClauseHistory):
    """A process whose lookup waits for every other process's: all of them find the version
    missing and insert it, the race two processes starting at once can run into."""

    def __init__(self, db: Database, lookups_done: threading.Barrier) -> None:
        super().__init__(db, recorded_by="scheduler", seen=SeenVersions())
        self.lookups_done: threading.Barrier | None = lookups_done

    def _touch(self, version: str, now: datetime) -> bool:
        found = super()._touch(version, now)
        if self.lookups_done is not None:
            self.lookups_done.wait()
            self.lookups_done = None
        return found


@pytest.mark.parametrize("history_of", [LookupsFirst, None], ids=["lookups-first", "free-running"])
def test_threads_recording_one_new_version_at_once_leave_one_row(
    any_db_url: str, history_of: type[LookupsFirst] | None
) -> None:
    db = Database(any_db_url)
    version, config = version_of(36)
    threads_count = 8
    start, lookups_done = threading.Barrier(threads_count), threading.Barrier(threads_count)
    outcomes: list[Outcome] = []
    failures: list[BaseException] = []

    def record() -> None:
        history = (  # a process each: no shared cache
            history_of(db, lookups_done)
            if history_of is not None
            else ClauseHistory(db, recorded_by="scheduler", seen=SeenVersions())
        )
        start.wait()
        try:
            outcomes.append(history.record(version, config))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=record) for _ in range(threads_count)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not failures, failures
        assert sorted(outcomes) == ["recorded"] + ["seen"] * (threads_count - 1)
        with db.session() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(ContractClauseVersion)) == 1
    finally:
        db.dispose()


def test_the_previous_version_is_the_one_last_in_use(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    (v24, c24), (v36, c36), (v12, c12) = version_of(24), version_of(36), version_of(12)
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    history = ClauseHistory(db, recorded_by="hub contracts render", seen=SeenVersions())
    history.record(v24, c24, now=t0)
    history.record(v36, c36, now=t0 + timedelta(days=1))
    ClauseHistory(db, seen=SeenVersions()).record(v24, c24, now=t0 + timedelta(days=2))  # back to 24
    history.record(v12, c12, now=t0 + timedelta(days=3))
    by_id = {v.version: v for v in history.versions()}
    assert [v.version for v in history.versions()] == [v12.id, v36.id, v24.id]
    assert by_id[v12.id].previous_version == v24.id and by_id[v36.id].previous_version == v24.id
    assert describe_changes(by_id[v24.id], by_id[v12.id]) == [
        "confidentiality.post_employment_months: 24 -> 12"
    ]
    db.dispose()


def test_who_records(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def in_a_thread() -> None:  # where the scheduler's jobs run: no command context
        seen.append(recorded_by())

    monkeypatch.setattr("sys.argv", ["/usr/local/bin/hub", "-c", "hub.toml", "scheduler", "start"])
    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    monkeypatch.setattr("sys.argv", ["/srv/hub/.venv/bin/hub", "--config", "x.toml", "onboarding", "run"])
    in_a_thread()
    monkeypatch.setattr("sys.argv", ["/usr/bin/python3", "script.py", "contracts"])
    in_a_thread()
    with recording_as("nightly import"):
        in_a_thread()
    assert seen == ["scheduler", "hub onboarding", "hub", "nightly import"]


# -- the e-contract action ------------------------------------------------------------------------


def test_sending_a_contract_through_esign_records_its_version(tmp_path: Path) -> None:
    from hub_esign.actions import SendContract

    from hub.onboarding import ActionContext
    from hub.project import Project
    from hub.sandbox.esign import EsignSimulator

    config = tmp_path / "hub.toml"
    config.write_text(project_toml(f"sqlite:///{tmp_path / 'hub.db'}", 24), encoding="utf-8")
    project = Project(config)
    with EsignSimulator(signing_delay=3600) as sim:
        settings = {
            "base_url": sim.url,
            "app_id": sim.app_id,
            "app_secret": sim.app_secret,
            "employer": "示例科技有限公司",
            "backoff_base_seconds": 0.01,
            "file_poll_interval_seconds": 0,
        }
        ctx = ActionContext(
            case_id="case-1",
            task="send_contract",
            action="esign.send_contract",
            connector="esign",
            idempotency_key="5b0c3f51-0000-4000-8000-00000000e511",
            case={
                "name": "测试员工",
                "id_number": ID_NUMBER,
                "phone": "+8613912340001",
                "job_title": "后端工程师",
                "start_date": "2026-12-01",
                "contract_type": "FIXED_TERM",
                "contract_term_months": 36,
                "probation_months": 3,
                "salary": {
                    "amount": {"amount": "20000", "currency": "CNY"},
                    "pay_period": {"value": "MONTH"},
                },
            },
            options={"attributes": {"core_data_access": True}},
            results={},
            attempt=1,
            config_loader=lambda: settings,
            project=project,
        )
        with recording_as("scheduler"):
            outcome = SendContract().perform(ctx)
    sent = outcome.data["clause_set_version"]
    recorded = ClauseHistory(project.db).get(sent)
    assert recorded is not None and recorded.recorded_by == "scheduler"
    assert recorded.rules["clauses"][0]["post_employment_months"] == 24


# -- what is stored, what is shown ----------------------------------------------------------------


def test_values_that_look_like_personal_data_are_stored_masked(tmp_path: Path) -> None:
    config = contracts_config(
        {
            "clauses": [
                {
                    "name": "confidentiality",
                    "when": {
                        "any": [
                            {"id_number": ID_NUMBER},
                            {"employee_name": "张三"},
                            {"job_level": {"gte": 7}},
                        ]
                    },
                    "post_employment_months": 24,
                },
                {"name": "hotline", "title": "联系方式", "text": "有疑问请致电 13812345678"},
            ]
        }
    )
    rules, masked = recordable_rules(config)
    assert masked == [
        "contracts.clauses[0].when.any[0].id_number",
        "contracts.clauses[0].when.any[1].employee_name",
        "contracts.clauses[1].text",
    ]
    assert rules["clauses"][0]["when"]["any"][2] == {"job_level": {"gte": 7}}  # policy kept as written
    assert rules["clauses"][0]["post_employment_months"] == 24

    db = Database(f"sqlite:///{tmp_path / 'hub.db'}")
    version = DocumentGenerator(config).clause_set_version()
    ClauseHistory(db, seen=SeenVersions()).record(version, config)
    stored = ClauseHistory(db).get(version.id)
    assert stored is not None and stored.masked == tuple(masked) and not stored.rules_intact
    db.dispose()
    raw = (tmp_path / "hub.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("hub.db-wal"))
    for value in (ID_NUMBER, "13812345678", "张三"):
        assert value.encode() not in raw


def stored(rules: dict[str, Any], templates: dict[str, str] | None = None) -> ClauseVersion:
    config = contracts_config(rules)
    recordable, masked = recordable_rules(config)
    now = datetime(2026, 1, 5, tzinfo=UTC)
    return ClauseVersion(
        version="cs-x",
        rules_sha256=config.rules_digest(),
        rules=recordable,
        templates=templates or {"labour_contract.html.j2": "a"},
        masked=tuple(masked),
        first_seen_at=now,
        last_seen_at=now,
        recorded_by="hub",
        previous_version=None,
    )


def test_the_diff_reads_like_the_rules() -> None:
    confidentiality = {
        "name": "confidentiality",
        "when": {"core_data_access": True},
        "post_employment_months": 24,
    }
    non_compete = {
        "name": "non_compete",
        "when": {"job_level": {"gte": 7}},
        "term_months": 12,
        "compensation_ratio": 0.3,
    }
    service = {"name": "service_period", "when": {"training_funded": True}, "months": 36}
    before = stored(
        {"clauses": [confidentiality, non_compete, service]},
        {"labour_contract.html.j2": "a", "clauses/old.html.j2": "b"},
    )
    after = stored(
        {
            "clauses": [
                {
                    **{k: v for k, v in non_compete.items() if k != "compensation_ratio"},
                    "when": {"job_level": {"gte": 8}},
                    "monthly_compensation": 6000,
                },
                {
                    **confidentiality,
                    "when": {"any": [{"core_data_access": True}, {"classified_project": True}]},
                },
                {"name": "ip", "title": "知识产权归属", "text": "职务作品归甲方所有。"},
            ],
            "non_compete_min_ratio": 0.4,
            "minimum_monthly_wage": 2690,
        },
        {"labour_contract.html.j2": "c", "clauses/ip.html.j2": "d"},
    )
    assert describe_changes(before, after) == [
        'added clause ip (title = "知识产权归属"; text = "职务作品归甲方所有。")',
        "removed clause service_period",
        "non_compete.when: job_level >= 7 -> job_level >= 8",
        "non_compete.compensation_ratio: 0.3 -> (unset)",
        "non_compete.monthly_compensation: (unset) -> 6000",
        "confidentiality.when: core_data_access = true -> core_data_access = true or classified_project = true",
        "clause order: confidentiality, non_compete -> non_compete, confidentiality",
        "minimum_monthly_wage: (unset) -> 2690",
        "non_compete_min_ratio: 0.3 -> 0.4",
        "template clauses/ip.html.j2 added",
        "template clauses/old.html.j2 removed",
        "template labour_contract.html.j2 changed",
    ]
    assert describe_changes(None, after) == []
    assert describe_changes(before, before) == []
