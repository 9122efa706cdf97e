"""DDL of the tables nudge itself writes in the warehouse (schemas ``raw`` and ``nudge``).

dbt reads these as sources; the loader, the journey engine and the senders write them. They are
created idempotently before every run so that dbt sources always resolve, even in an empty
workspace. Analysts query them directly: column names are part of the product.
"""

from __future__ import annotations

import duckdb

RAW_TABLES = """
create schema if not exists raw;
create table if not exists raw.events (
    message_id varchar not null,
    type varchar not null,
    user_id varchar,
    anonymous_id varchar,
    previous_id varchar,
    group_id varchar,
    event varchar,
    name varchar,
    timestamp timestamp,
    received_at timestamp,
    properties json,
    traits json,
    context json,
    landing_file varchar,
    loaded_at timestamp
);
create table if not exists raw.loaded_files (
    file_name varchar primary key,
    rows bigint not null,
    loaded_at timestamp not null
);
"""

ENGINE_TABLES = """
create schema if not exists nudge;
create table if not exists nudge.runs (
    run_id varchar primary key,
    as_of timestamp not null,
    started_at timestamp not null,
    finished_at timestamp,
    status varchar not null
);
create table if not exists nudge.journey_entries (
    entry_id varchar primary key,
    journey varchar not null,
    user_id varchar not null,
    trigger_key varchar,
    started_at timestamp not null,
    status varchar not null,          -- active | completed | exited
    current_step varchar,
    step_reached_at timestamp,
    next_wake_at timestamp,
    exit_reason varchar,
    converted_at timestamp,
    ended_at timestamp,
    holdout boolean not null default false,
    journey_version varchar
);
create table if not exists nudge.journey_transitions (
    run_id varchar not null,
    as_of timestamp not null,
    entry_id varchar not null,
    journey varchar not null,
    user_id varchar not null,
    from_step varchar,
    to_step varchar,
    action varchar not null,
    detail varchar
);
create table if not exists nudge.journey_trigger_events (
    journey varchar not null,
    message_id varchar not null,
    primary key (journey, message_id)
);
create table if not exists nudge.outbox (
    idempotency_key varchar primary key,
    delivery_id varchar not null,
    run_id varchar not null,
    as_of timestamp not null,
    entry_id varchar not null,
    journey varchar not null,
    step varchar not null,
    user_id varchar not null,
    channel varchar not null,
    template varchar not null,
    topic varchar,
    transactional boolean not null default false,
    holdout boolean not null default false,
    event_properties json,
    created_at timestamp not null
);
"""


# The delivery ledger, one row per message (senders.ledger writes it): (column, DuckDB type,
# constraint), in table order. The table's DDL and the senders' row frames derive from this list.
# Retries of transient failures: a failed row with permanent = false is tried again by a later
# dispatch once as_of >= next_attempt_at; attempts counts the dispatches that handed it over.
DELIVERY_LEDGER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("idempotency_key", "varchar", "primary key"),
    ("delivery_id", "varchar", "not null"),
    ("run_id", "varchar", ""),
    ("as_of", "timestamp", ""),
    ("user_id", "varchar", "not null"),
    ("journey", "varchar", ""),
    ("step", "varchar", ""),
    ("channel", "varchar", "not null"),
    ("template", "varchar", ""),
    ("topic", "varchar", ""),
    ("provider", "varchar", ""),
    ("address", "varchar", ""),
    ("status", "varchar", "not null"),
    ("reason", "varchar", ""),
    ("provider_message_id", "varchar", ""),
    ("queued_at", "timestamp", ""),
    ("attempted_at", "timestamp", ""),
    ("completed_at", "timestamp", ""),
    ("permanent", "boolean", "default false"),
    ("attempts", "integer", "default 0"),
    ("next_attempt_at", "timestamp", ""),
    ("journey_version", "varchar", ""),
    # provider facts about a send as JSON text (SMS segments and encoding, push devices, ...)
    ("details", "varchar", ""),
)


def _delivery_ledger_ddl() -> str:
    """The ledger created with every column; a warehouse made by an older version gains the
    columns added since (those without a ``not null`` or key constraint) with their defaults."""
    columns = ",\n    ".join(
        " ".join(part for part in column if part) for column in DELIVERY_LEDGER_COLUMNS
    )
    added = "".join(
        f"alter table nudge.delivery_ledger add column if not exists {name} {kind}"
        f"{' ' + constraint if constraint else ''};\n"
        for name, kind, constraint in DELIVERY_LEDGER_COLUMNS
        if "not null" not in constraint and "primary key" not in constraint
    )
    return f"create table if not exists nudge.delivery_ledger (\n    {columns}\n);\n{added}"


DELIVERY_TABLES = (
    _delivery_ledger_ddl()
    + """
create table if not exists nudge.run_counts (
    run_id varchar not null,
    as_of timestamp not null,
    journey varchar not null,
    step varchar not null,
    channel varchar not null,
    planned bigint not null,      -- outbox rows the dispatch decided (held ones included)
    attempted bigint not null,    -- handed to a provider
    succeeded bigint not null,    -- sent
    failed bigint not null,       -- failed (render error, provider failure, no provider)
    skipped bigint not null,      -- skipped, dropped or undeliverable by a policy
    primary key (run_id, journey, step, channel)
);
-- what providers reported after they took a message (senders.feedback), one row per report
create table if not exists nudge.delivery_feedback (
    message_id varchar primary key,   -- the landed event's message id
    delivery_id varchar not null,
    user_id varchar not null,
    channel varchar not null,
    status varchar not null,          -- delivered, bounced, spammed, opened, clicked
    provider varchar,
    address varchar,
    reason varchar,
    suppress_address boolean not null,
    occurred_at timestamp,
    applied_at timestamp not null
);
-- addresses that must never be sent to again (hard bounce, complaint, number that does not exist)
create table if not exists nudge.suppressed_addresses (
    channel varchar not null,
    address varchar not null,         -- lower case
    reason varchar not null,
    suppressed_at timestamp not null,
    primary key (channel, address)
);
"""
)


JOURNEY_TABLES = """
-- seq orders transitions: each run numbers its rows after the previous maximum, in a fixed order
alter table nudge.journey_transitions add column if not exists seq bigint;
-- the journey version (hash of its definition) that planned each message
alter table nudge.outbox add column if not exists journey_version varchar;
-- the last value of the trigger attribute each journey saw per user (attribute_changed)
create table if not exists nudge.journey_attribute_state (
    journey varchar not null,
    user_id varchar not null,
    value json,
    seen_at timestamp not null,
    primary key (journey, user_id)
);
-- the steps of every journey version the engine has run: (step, next step) in program order,
-- so that people at a step removed by an edit move to the next step that survives it
create table if not exists nudge.journey_versions (
    journey varchar not null,
    version varchar not null,
    steps json not null,              -- [[step id, next step id or null], ...]
    first_run_as_of timestamp not null,
    last_run_as_of timestamp not null,
    primary key (journey, version)
);
-- pause and resume (nudge journeys pause|resume NAME); no row means running
create table if not exists nudge.journey_controls (
    journey varchar primary key,
    paused boolean not null,
    changed_at timestamp not null
);
"""

# manual segments (nudge.core.segments.manual): one row per upload file, and the ids it lists
MANUAL_SEGMENT_TABLES = """
create schema if not exists raw;
create table if not exists raw.manual_segment_uploads (
    landing_file varchar primary key,   -- manual_segments/<segment>/<file>.parquet
    segment varchar not null,
    uploaded_at timestamp not null,     -- the list is the segment's members from then on
    members bigint not null,
    loaded_at timestamp not null
);
create table if not exists raw.manual_segment_members (
    landing_file varchar not null,
    segment varchar not null,
    user_id varchar not null,
    uploaded_at timestamp not null
);
"""


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``raw`` and ``nudge`` schemas and tables if they do not exist yet."""
    if hasattr(con, "ensure_tables"):  # a PostgresConnection: the same tables, transpiled
        con.ensure_tables()
        return
    con.execute(RAW_TABLES)
    con.execute(ENGINE_TABLES)
    con.execute(DELIVERY_TABLES)
    con.execute(JOURNEY_TABLES)
    con.execute(MANUAL_SEGMENT_TABLES)
