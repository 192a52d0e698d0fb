"""Shared fixtures: isolated projects, and fresh PostgreSQL / MariaDB schemas.

Tests that need a server fail (never skip) when it is down: CI starts the servers.
"""

from __future__ import annotations

import base64
import os
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("HUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_ADMIN_URL = os.environ.get("HUB_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


#: Wycheproof test vectors (C2SP/wycheproof ``testvectors_v1``): a data folder outside the repo.
DEFAULT_WYCHEPROOF_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "testdata" / "wycheproof"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--wycheproof-root",
        default=None,
        help="folder holding the Wycheproof JSON vectors (default: $HUB_WYCHEPROOF_ROOT, else "
        "<repo>/../shared/testdata/wycheproof); the vector tests skip when the default is absent",
    )


@pytest.fixture(scope="session")
def wycheproof_root(pytestconfig: pytest.Config) -> Path:
    """The Wycheproof folder: ``--wycheproof-root``, ``HUB_WYCHEPROOF_ROOT`` or the default.

    Like pyca/cryptography, the vector tests skip when the vectors are not there, but only for
    the default location: a folder named explicitly (option or variable) that does not exist
    is a mistake, and fails.
    """
    option = pytestconfig.getoption("--wycheproof-root")
    env = os.environ.get("HUB_WYCHEPROOF_ROOT")
    if option or env:
        root = Path(option or env or "").expanduser().resolve()
        origin = "--wycheproof-root" if option else "HUB_WYCHEPROOF_ROOT"
        if not root.is_dir():
            pytest.fail(f"{origin} names {root}, which is not a folder", pytrace=False)
        return root
    if not DEFAULT_WYCHEPROOF_ROOT.is_dir():
        pytest.skip(
            f"Wycheproof vectors not found at {DEFAULT_WYCHEPROOF_ROOT}; "
            "pass --wycheproof-root or set HUB_WYCHEPROOF_ROOT"
        )
    return DEFAULT_WYCHEPROOF_ROOT


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed test key and no plugin switches leaking in from the environment."""
    monkeypatch.setenv("HUB_MASTER_KEY", base64.urlsafe_b64encode(b"k" * 32).decode())
    for name in ("HUB_CONFIG", "HUB_DATABASE_URL", "HUB_STRICT_PLUGINS", "HUB_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)


def _server_engine(url: str, what: str) -> sa.Engine:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        pytest.fail(
            f"{what} is not reachable at {url} ({type(exc).__name__}); .ci/run starts it", pytrace=False
        )
    return engine


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema, as a SQLAlchemy URL whose search_path points at it."""
    engine = _server_engine(PG_ADMIN_URL, "PostgreSQL")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh MariaDB database."""
    engine = _server_engine(MARIADB_ADMIN_URL, "MariaDB")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    yield MARIADB_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}?charset=utf8mb4"
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE {name}"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each backend hub supports, one after another."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    return str(request.getfixturevalue("pg_url" if request.param == "postgresql" else "mariadb_url"))


@pytest.fixture
def write_project(tmp_path: Path) -> Callable[..., Path]:
    """Write a hub.toml (body given as TOML text) into a temp project and return its path."""

    def write(body: str, *, name: str = "hub.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(body), encoding="utf-8")
        return path

    return write


def files_to_sql_toml(
    csv_path: Path,
    target_url: str,
    *,
    hub_db: str | None = None,
    primary_key: str = "id",
    columns: dict[str, str] | None = None,
    required: list[str] | None = None,
    chunk_size: int = 20000,
    extra: str = "",
    encrypt_pii: bool = True,
) -> str:
    """hub.toml for a files -> sql pipeline called ``load``.

    ``encrypt_pii=False`` for tests that read personal data back from the destination in clear.
    """
    cols = ", ".join(f'{k} = "{v}"' for k, v in (columns or {}).items())
    req = ", ".join(f'"{r}"' for r in (required or []))
    database = f'database = "{hub_db}"' if hub_db else ""
    return f"""
[hub]
{database}
chunk_size = {chunk_size}

[connectors.src]
plugin = "files"
[connectors.src.config]
path = "{csv_path}"
stream = "people"
primary_key = ["{primary_key}"]
columns = {{ {cols} }}
required = [{req}]

[connectors.dst]
plugin = "sql"
{"" if encrypt_pii else "encrypt_pii = false"}
[connectors.dst.config]
url = "{target_url}"

[pipelines.load]
source = "src"
streams = ["people"]
destinations = ["dst"]
{extra}
"""


def run_cli(args: list[str], config: Path, **kwargs: Any) -> Any:
    """Run ``hub`` in a subprocess, as a user would, and return the CompletedProcess."""
    import subprocess
    import sys

    env = {**os.environ, "HUB_CONFIG": str(config), "COLUMNS": "200", **kwargs.pop("env", {})}
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        **kwargs,
    )


def process_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (Linux; one that exited and nobody reaped is not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status
