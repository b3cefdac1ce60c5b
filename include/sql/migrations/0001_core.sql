-- 0001_core: the warehouse tables. The same DDL runs on SQLite and PostgreSQL.
-- Conventions: every timestamp is UTC in TIMESTAMP without time zone; identifiers are
-- text (sr_id = group:vin:run_key, run_id = group:run_key); booleans are 0/1 on SQLite.

-- One row per applied dealer-group run (the run ledger). Written in the run's transaction.
CREATE TABLE IF NOT EXISTS etl_runs (
    run_id              VARCHAR(200) NOT NULL PRIMARY KEY,
    dealer_group        VARCHAR(64)  NOT NULL,
    logical_time        TIMESTAMP    NOT NULL,
    airflow_run_id      VARCHAR(250),
    status              VARCHAR(16)  NOT NULL CHECK (status IN ('success', 'partial')),
    started_at          TIMESTAMP,
    load_started_at     TIMESTAMP    NOT NULL,
    loaded_at           TIMESTAMP    NOT NULL,
    run_seconds         DOUBLE PRECISION,
    load_seconds        DOUBLE PRECISION NOT NULL,
    dealers_ok          INTEGER      NOT NULL DEFAULT 0,
    dealers_failed      INTEGER      NOT NULL DEFAULT 0,
    vehicles_seen       INTEGER      NOT NULL DEFAULT 0,
    sr_created          INTEGER      NOT NULL DEFAULT 0,
    sr_updated          INTEGER      NOT NULL DEFAULT 0,
    sr_anchor_reset     INTEGER      NOT NULL DEFAULT 0,
    sr_auto_closed      INTEGER      NOT NULL DEFAULT 0,
    vehicles_unchanged  INTEGER      NOT NULL DEFAULT 0,
    vehicles_ignored    INTEGER      NOT NULL DEFAULT 0,
    quarantined         INTEGER      NOT NULL DEFAULT 0,
    counts_json         TEXT         NOT NULL DEFAULT '{}',
    CONSTRAINT uq_etl_runs_group_time UNIQUE (dealer_group, logical_time)
);

-- Per run, dealer and dataset: did the extract + validation succeed, and how many rows.
CREATE TABLE IF NOT EXISTS etl_run_dealers (
    run_id        VARCHAR(200) NOT NULL REFERENCES etl_runs (run_id),
    dealer_group  VARCHAR(64)  NOT NULL,
    logical_time  TIMESTAMP    NOT NULL,
    dealer_id     VARCHAR(64)  NOT NULL,
    dataset       VARCHAR(32)  NOT NULL CHECK (dataset IN ('vehicles', 'parts', 'repair_orders')),
    status        VARCHAR(16)  NOT NULL CHECK (status IN ('ok', 'failed', 'skipped')),
    rows          INTEGER      NOT NULL DEFAULT 0,
    good          INTEGER      NOT NULL DEFAULT 0,
    quarantined   INTEGER      NOT NULL DEFAULT 0,
    error         TEXT,
    PRIMARY KEY (run_id, dealer_id, dataset)
);
CREATE INDEX IF NOT EXISTS ix_etl_run_dealers_dealer
    ON etl_run_dealers (dealer_group, dealer_id, dataset, logical_time);

-- Current state of every service request.
CREATE TABLE IF NOT EXISTS service_requests (
    sr_id           VARCHAR(200) NOT NULL PRIMARY KEY,
    dealer_group    VARCHAR(64)  NOT NULL,
    dealer_id       VARCHAR(64)  NOT NULL,
    vin             VARCHAR(17)  NOT NULL,
    stock_number    VARCHAR(64),
    client          VARCHAR(200),
    vehicle_type    VARCHAR(100),
    sr_type         VARCHAR(100),
    status          VARCHAR(16)  NOT NULL CHECK (status IN ('active', 'closed')),
    created_at      TIMESTAMP    NOT NULL,
    closed_at       TIMESTAMP,
    close_reason    VARCHAR(64),
    anchor_at       TIMESTAMP    NOT NULL,
    absent_since    TIMESTAMP,
    last_seen_at    TIMESTAMP,
    created_run_id  VARCHAR(200),
    last_run_id     VARCHAR(200),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
-- One active service request per VIN per dealer group, ever.
CREATE UNIQUE INDEX IF NOT EXISTS ux_service_requests_one_active
    ON service_requests (dealer_group, vin) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS ix_service_requests_dealer_status
    ON service_requests (dealer_group, dealer_id, status);
CREATE INDEX IF NOT EXISTS ix_service_requests_created
    ON service_requests (dealer_group, created_at);
CREATE INDEX IF NOT EXISTS ix_service_requests_vin
    ON service_requests (vin);

-- Append-only history of what each run did (created, updated, anchor_reset, went_absent,
-- auto_closed, ignored ...). event_no orders the events of one run.
CREATE TABLE IF NOT EXISTS service_request_events (
    run_id            VARCHAR(200) NOT NULL REFERENCES etl_runs (run_id),
    event_no          INTEGER      NOT NULL,
    dealer_group      VARCHAR(64)  NOT NULL,
    event_at          TIMESTAMP    NOT NULL,
    sr_id             VARCHAR(200) REFERENCES service_requests (sr_id),
    dealer_id         VARCHAR(64)  NOT NULL,
    vin               VARCHAR(17)  NOT NULL,
    kind              VARCHAR(32)  NOT NULL,
    reason            VARCHAR(64),
    old_stock_number  VARCHAR(64),
    new_stock_number  VARCHAR(64),
    old_client        VARCHAR(200),
    new_client        VARCHAR(200),
    old_anchor_at     TIMESTAMP,
    PRIMARY KEY (run_id, event_no)
);
CREATE INDEX IF NOT EXISTS ix_sr_events_sr ON service_request_events (sr_id);
CREATE INDEX IF NOT EXISTS ix_sr_events_kind ON service_request_events (dealer_group, kind, event_at);
CREATE INDEX IF NOT EXISTS ix_sr_events_vin ON service_request_events (dealer_group, vin);

-- Children of a service request (written by downstream systems); their stock number and
-- client follow the service request's (cascaded by the load).
CREATE TABLE IF NOT EXISTS inspections (
    inspection_id  VARCHAR(200) NOT NULL PRIMARY KEY,
    sr_id          VARCHAR(200) NOT NULL REFERENCES service_requests (sr_id),
    dealer_group   VARCHAR(64)  NOT NULL,
    stock_number   VARCHAR(64),
    client         VARCHAR(200),
    status         VARCHAR(32)  NOT NULL DEFAULT 'open',
    created_at     TIMESTAMP    NOT NULL,
    completed_at   TIMESTAMP
);
CREATE INDEX IF NOT EXISTS ix_inspections_sr ON inspections (sr_id);

CREATE TABLE IF NOT EXISTS work_orders (
    work_order_id  VARCHAR(200) NOT NULL PRIMARY KEY,
    sr_id          VARCHAR(200) NOT NULL REFERENCES service_requests (sr_id),
    dealer_group   VARCHAR(64)  NOT NULL,
    stock_number   VARCHAR(64),
    client         VARCHAR(200),
    status         VARCHAR(32)  NOT NULL DEFAULT 'open',
    created_at     TIMESTAMP    NOT NULL,
    completed_at   TIMESTAMP
);
CREATE INDEX IF NOT EXISTS ix_work_orders_sr ON work_orders (sr_id);

-- What each run saw: every validated vehicle of every extracted dealer, with its outcome.
CREATE TABLE IF NOT EXISTS feed_vehicles (
    run_id              VARCHAR(200) NOT NULL REFERENCES etl_runs (run_id),
    dealer_group        VARCHAR(64)  NOT NULL,
    logical_time        TIMESTAMP    NOT NULL,
    dealer_id           VARCHAR(64)  NOT NULL,
    vin                 VARCHAR(17)  NOT NULL,
    company_number      VARCHAR(32),
    stock_number        VARCHAR(64),
    system_code         VARCHAR(32),
    vehicle_status      VARCHAR(32),
    model_year          INTEGER,
    make                VARCHAR(64),
    model               VARCHAR(100),
    model_code          VARCHAR(64),
    body_style          VARCHAR(100),
    color               VARCHAR(64),
    trim_level          VARCHAR(100),
    odometer            BIGINT,
    date_in_inventory   DATE,
    date_in_service     DATE,
    date_delivered      DATE,
    date_modified       DATE,
    list_price          DOUBLE PRECISION,
    vehicle_cost        DOUBLE PRECISION,
    certified_used_car  BOOLEAN,
    outcome             VARCHAR(16)  NOT NULL,
    reason              VARCHAR(64),
    sr_id               VARCHAR(200),
    PRIMARY KEY (run_id, dealer_id, vin)
);
CREATE INDEX IF NOT EXISTS ix_feed_vehicles_dealer_vin
    ON feed_vehicles (dealer_group, dealer_id, vin, logical_time);
CREATE INDEX IF NOT EXISTS ix_feed_vehicles_sr ON feed_vehicles (sr_id);

-- Rows that failed validation, with the rules they broke (never used downstream).
CREATE TABLE IF NOT EXISTS quarantine (
    run_id        VARCHAR(200) NOT NULL REFERENCES etl_runs (run_id),
    dealer_group  VARCHAR(64)  NOT NULL,
    dealer_id     VARCHAR(64)  NOT NULL,
    dataset       VARCHAR(32)  NOT NULL,
    row_number    BIGINT       NOT NULL,
    rules         TEXT         NOT NULL,
    row_json      TEXT         NOT NULL,
    PRIMARY KEY (run_id, dealer_id, dataset, row_number)
);
CREATE INDEX IF NOT EXISTS ix_quarantine_dealer ON quarantine (dealer_group, dealer_id, dataset);

-- Raw optional datasets, one row per validated row per run (columns vary by DMS: the
-- full row is kept as JSON next to its key).
CREATE TABLE IF NOT EXISTS parts_inventory (
    run_id        VARCHAR(200) NOT NULL REFERENCES etl_runs (run_id),
    dealer_group  VARCHAR(64)  NOT NULL,
    logical_time  TIMESTAMP    NOT NULL,
    dealer_id     VARCHAR(64)  NOT NULL,
    row_number    INTEGER      NOT NULL,
    part_number   VARCHAR(100),
    row_json      TEXT         NOT NULL,
    PRIMARY KEY (run_id, dealer_id, row_number)
);
CREATE INDEX IF NOT EXISTS ix_parts_inventory_part ON parts_inventory (dealer_group, dealer_id, part_number);

CREATE TABLE IF NOT EXISTS repair_orders (
    run_id        VARCHAR(200) NOT NULL REFERENCES etl_runs (run_id),
    dealer_group  VARCHAR(64)  NOT NULL,
    logical_time  TIMESTAMP    NOT NULL,
    dealer_id     VARCHAR(64)  NOT NULL,
    row_number    INTEGER      NOT NULL,
    ro_number     VARCHAR(100),
    row_json      TEXT         NOT NULL,
    PRIMARY KEY (run_id, dealer_id, row_number)
);
CREATE INDEX IF NOT EXISTS ix_repair_orders_ro ON repair_orders (dealer_group, dealer_id, ro_number);
