-- A typical HR master schema (花名册) for SQLite (the demo and tests; production runs PostgreSQL
-- or MariaDB: postgresql.sql, mariadb.sql). Same tables, columns and constraints; see
-- docs/hr_master.md. Timestamps are UTC text. Apply with: sqlite3 hr.db < schemas/hr_master/sqlite.sql

PRAGMA foreign_keys = ON;

CREATE TABLE departments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    code        VARCHAR(64)  NOT NULL,
    name        VARCHAR(200) NOT NULL,
    parent_id   INTEGER      REFERENCES departments (id),
    active      BOOLEAN      NOT NULL DEFAULT 1,
    created_at  DATETIME     NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at  DATETIME     NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    CONSTRAINT departments_code_key UNIQUE (code)
);

CREATE TABLE positions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    code           VARCHAR(64)  NOT NULL,
    title          VARCHAR(200) NOT NULL,
    department_id  INTEGER      REFERENCES departments (id),
    job_level      VARCHAR(32),
    job_family     VARCHAR(64),
    headcount      INTEGER      CHECK (headcount >= 0),
    active         BOOLEAN      NOT NULL DEFAULT 1,
    created_at     DATETIME     NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at     DATETIME     NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    CONSTRAINT positions_code_key UNIQUE (code)
);

CREATE TABLE employees (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    employee_no          VARCHAR(32)  NOT NULL,
    name                 VARCHAR(100) NOT NULL,
    gender               VARCHAR(16),
    id_number            TEXT,
    id_number_bidx       CHAR(32),
    mobile               TEXT,
    mobile_bidx          CHAR(32),
    personal_email       TEXT,
    personal_email_bidx  CHAR(32),
    work_email           VARCHAR(254),
    bank_name            VARCHAR(100),
    bank_account         TEXT,
    bank_account_bidx    CHAR(32),
    salary               TEXT,
    salary_currency      CHAR(3),
    department_id        INTEGER      REFERENCES departments (id),
    position_id          INTEGER      REFERENCES positions (id),
    manager_id           INTEGER      REFERENCES employees (id),
    job_title            VARCHAR(200),
    job_level            VARCHAR(32),
    employee_category    VARCHAR(32),
    hire_date            DATE,
    status               VARCHAR(16)  NOT NULL DEFAULT 'pre_hire'
        CHECK (status IN ('pre_hire', 'active', 'on_leave', 'terminated', 'cancelled')),
    source_ref           VARCHAR(64),
    created_at           DATETIME     NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at           DATETIME     NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    CONSTRAINT employees_employee_no_key UNIQUE (employee_no)
);
CREATE INDEX employees_id_number_bidx_idx ON employees (id_number_bidx);
CREATE INDEX employees_mobile_bidx_idx ON employees (mobile_bidx);
CREATE INDEX employees_updated_idx ON employees (updated_at);

CREATE TABLE contracts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    contract_no       VARCHAR(64)  NOT NULL,
    employee_id       INTEGER      NOT NULL REFERENCES employees (id),
    contract_type     VARCHAR(32)  NOT NULL,
    seq_no            INTEGER      NOT NULL DEFAULT 1,
    start_date        DATE         NOT NULL,
    end_date          DATE,
    term_months       INTEGER      CHECK (term_months >= 0),
    probation_months  INTEGER      CHECK (probation_months >= 0),
    probation_end     DATE,
    status            VARCHAR(16)  NOT NULL DEFAULT 'draft'
        CHECK (status IN ('draft', 'signed', 'active', 'expired', 'terminated', 'cancelled')),
    signed_at         DATETIME,
    document_sha256   CHAR(64),
    econtract_ref     VARCHAR(128),
    created_at        DATETIME     NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_at        DATETIME     NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    CONSTRAINT contracts_contract_no_key UNIQUE (contract_no),
    CONSTRAINT contracts_employee_seq_key UNIQUE (employee_id, seq_no),
    CONSTRAINT contracts_dates_check CHECK (end_date IS NULL OR end_date >= start_date)
);
CREATE INDEX contracts_updated_idx ON contracts (updated_at);
