-- A typical HR master schema (花名册) for MariaDB 10.5+ / MySQL 8: departments, positions,
-- employees, contracts.
--
-- hub's onboarding action sql.upsert_employee writes employees and contracts (one transaction,
-- keyed by employee_no and contract_no), and sql.mark_contract_signed marks the contract signed
-- (document_sha256, econtract_ref) and the employee active; mappings/hr_master_*.yaml read all
-- four tables into hub's canonical OrgUnit, Job, Employee and EmploymentContract. See
-- docs/hr_master.md.
--
-- Personal columns (id_number, mobile, personal_email, bank_account, salary) are TEXT: with the
-- sql connector's encrypt_pii = true (the default) they hold hub1. ciphertexts, and the
-- <column>_bidx columns hold 32-hex-digit blind indexes for exact-match lookup. All timestamps
-- are UTC. Apply with: mariadb --database=hr < schemas/hr_master/mariadb.sql

CREATE TABLE departments (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    code        VARCHAR(64)  NOT NULL,
    name        VARCHAR(200) NOT NULL,
    parent_id   BIGINT       NULL,
    active      BOOLEAN      NOT NULL DEFAULT TRUE,
    created_at  DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
    updated_at  DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
    CONSTRAINT departments_code_key UNIQUE (code),
    CONSTRAINT departments_parent_fk FOREIGN KEY (parent_id) REFERENCES departments (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE positions (
    id             BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    code           VARCHAR(64)  NOT NULL,
    title          VARCHAR(200) NOT NULL,
    department_id  BIGINT       NULL,
    job_level      VARCHAR(32),
    job_family     VARCHAR(64),
    headcount      INT          CHECK (headcount >= 0),
    active         BOOLEAN      NOT NULL DEFAULT TRUE,
    created_at     DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
    updated_at     DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
    CONSTRAINT positions_code_key UNIQUE (code),
    CONSTRAINT positions_department_fk FOREIGN KEY (department_id) REFERENCES departments (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE employees (
    id                   BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    employee_no          VARCHAR(32)  NOT NULL,               -- 工号
    name                 VARCHAR(100) NOT NULL,
    gender               VARCHAR(16),
    id_number            TEXT,                                -- 身份证号 (sealed)
    id_number_bidx       CHAR(32),
    mobile               TEXT,                                -- E.164 (sealed)
    mobile_bidx          CHAR(32),
    personal_email       TEXT,                                -- (sealed)
    personal_email_bidx  CHAR(32),
    work_email           VARCHAR(254),
    bank_name            VARCHAR(100),                        -- 开户行
    bank_account         TEXT,                                -- 工资卡号 (sealed)
    bank_account_bidx    CHAR(32),
    salary               TEXT,                                -- monthly base pay (sealed)
    salary_currency      CHAR(3),
    department_id        BIGINT       NULL,
    position_id          BIGINT       NULL,
    manager_id           BIGINT       NULL,
    job_title            VARCHAR(200),
    job_level            VARCHAR(32),
    employee_category    VARCHAR(32),                         -- FULL_TIME, INTERN, DISPATCHED, ...
    hire_date            DATE,                                -- 入职日期 (first working day)
    status               VARCHAR(16)  NOT NULL DEFAULT 'pre_hire',
    source_ref           VARCHAR(64),                         -- hub onboarding case that created the row
    created_at           DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
    updated_at           DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
    CONSTRAINT employees_employee_no_key UNIQUE (employee_no),
    CONSTRAINT employees_status_check
        CHECK (status IN ('pre_hire', 'active', 'on_leave', 'terminated', 'cancelled')),
    CONSTRAINT employees_department_fk FOREIGN KEY (department_id) REFERENCES departments (id),
    CONSTRAINT employees_position_fk FOREIGN KEY (position_id) REFERENCES positions (id),
    CONSTRAINT employees_manager_fk FOREIGN KEY (manager_id) REFERENCES employees (id),
    INDEX employees_id_number_bidx_idx (id_number_bidx),
    INDEX employees_mobile_bidx_idx (mobile_bidx),
    INDEX employees_updated_idx (updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE contracts (
    id                BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    contract_no       VARCHAR(64)  NOT NULL,                  -- 合同编号
    employee_id       BIGINT       NOT NULL,
    contract_type     VARCHAR(32)  NOT NULL,                  -- FIXED_TERM, OPEN_ENDED, TASK_BASED, ...
    seq_no            INT          NOT NULL DEFAULT 1,        -- 1 = first contract with the employer
    start_date        DATE         NOT NULL,
    end_date          DATE,                                   -- empty for open-ended contracts
    term_months       INT          CHECK (term_months >= 0),
    probation_months  INT          CHECK (probation_months >= 0),
    probation_end     DATE,
    status            VARCHAR(16)  NOT NULL DEFAULT 'draft',
    signed_at         DATETIME(6),
    document_sha256   CHAR(64),                               -- SHA-256 of the signed file
    econtract_ref     VARCHAR(128),                           -- the e-contract vendor's sign flow / envelope id
    created_at        DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
    updated_at        DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
    CONSTRAINT contracts_contract_no_key UNIQUE (contract_no),
    CONSTRAINT contracts_employee_seq_key UNIQUE (employee_id, seq_no),
    CONSTRAINT contracts_dates_check CHECK (end_date IS NULL OR end_date >= start_date),
    CONSTRAINT contracts_status_check
        CHECK (status IN ('draft', 'signed', 'active', 'expired', 'terminated', 'cancelled')),
    CONSTRAINT contracts_employee_fk FOREIGN KEY (employee_id) REFERENCES employees (id),
    INDEX contracts_updated_idx (updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
