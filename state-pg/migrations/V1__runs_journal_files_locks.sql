-- runsheet state schema, version 1: runs, their files, journals and environment locks.
CREATE TABLE runsheet_runs (
    id          text PRIMARY KEY,
    playbook    text NOT NULL,
    environment text,
    state       text NOT NULL,
    started_at  text NOT NULL,
    record      text NOT NULL
);
CREATE INDEX runsheet_runs_playbook ON runsheet_runs (playbook);

CREATE TABLE runsheet_run_files (
    run_id  text NOT NULL REFERENCES runsheet_runs (id) ON DELETE CASCADE,
    name    text NOT NULL,
    content bytea NOT NULL,
    PRIMARY KEY (run_id, name)
);

-- One row per journal record; `line` is the record verbatim, `hash` its SHA-256
-- and `prev` the hash of the record before it (the same chain as journal.jsonl).
CREATE TABLE runsheet_journal (
    run_id      text NOT NULL REFERENCES runsheet_runs (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    kind        text NOT NULL,
    prev        text NOT NULL,
    hash        text NOT NULL,
    line        text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX runsheet_journal_kind ON runsheet_journal (kind);

-- An environment lock: its owner while held (run_id not null) and the owner's heartbeat.
CREATE TABLE runsheet_locks (
    environment text PRIMARY KEY,
    run_id      text,
    pid         integer,
    host        text,
    os_user     text,
    since       text,
    pipeline    text,
    heartbeat   timestamptz
);
