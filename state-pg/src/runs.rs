//! Run records and run files in `runsheet_runs` and `runsheet_run_files`.

use std::sync::Arc;

use runsheet_engine::run::journal::hash_line;
use runsheet_engine::run::state::{RunRecord, StateError};
use serde_json::Value;
use tokio_postgres::Client;

use crate::{PgError, PgStore, db};

fn to_text(record: &RunRecord) -> Result<String, PgError> {
    serde_json::to_string(record).map_err(|e| PgError::Query(format!("run record: {e}")))
}

fn parse(place: &str, id: &str, text: &str) -> Result<RunRecord, StateError> {
    serde_json::from_str(text).map_err(|e| StateError::Backend {
        place: place.to_owned(),
        message: format!("the record of run {id} is damaged: {e}"),
    })
}

/// Runs `work` between BEGIN and COMMIT (ROLLBACK when it fails).
pub(crate) async fn transaction<T, F, Fut>(client: Arc<Client>, work: F) -> Result<T, PgError>
where
    F: FnOnce(Arc<Client>) -> Fut,
    Fut: std::future::Future<Output = Result<T, PgError>>,
{
    client.batch_execute("BEGIN").await.map_err(db)?;
    match work(Arc::clone(&client)).await {
        Ok(value) => {
            client.batch_execute("COMMIT").await.map_err(db)?;
            Ok(value)
        }
        Err(error) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(error)
        }
    }
}

/// Adds a run with its files and journal lines, all or nothing.
pub(crate) fn insert(
    store: &PgStore,
    record: &RunRecord,
    files: Vec<(String, Vec<u8>)>,
    journal: Vec<Vec<u8>>,
) -> Result<(), StateError> {
    let inner = store.inner();
    let text = to_text(record).map_err(|e| inner.state_error(&e))?;
    let record = record.clone();
    let id = record.id.clone();
    let mut rows = Vec::with_capacity(journal.len());
    for line in journal {
        let fields: serde_json::Map<String, Value> =
            serde_json::from_slice(&line).unwrap_or_default();
        let seq = fields.get("seq").and_then(Value::as_i64).unwrap_or(0);
        let kind = fields
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let prev = fields
            .get("prev")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let hash = hash_line(&line);
        let line = String::from_utf8(line).map_err(|_| StateError::Backend {
            place: store.inner().config.place.clone(),
            message: format!("run {id}: a journal record is not UTF-8"),
        })?;
        rows.push((seq, kind, prev, hash, line));
    }
    let result = inner.worker.call(move |client| {
        transaction(client, move |client| async move {
            let inserted = client
                .execute(
                    "INSERT INTO runsheet_runs (id, playbook, environment, state, started_at, record)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                    &[&record.id, &record.playbook, &record.environment, &record.state, &record.started_at, &text],
                )
                .await
                .map_err(db)?;
            if inserted == 0 {
                return Err(PgError::Query(format!("a run `{}` is already in this database", record.id)));
            }
            for (name, content) in &files {
                client
                    .execute(
                        "INSERT INTO runsheet_run_files (run_id, name, content) VALUES ($1, $2, $3)",
                        &[&record.id, name, content],
                    )
                    .await
                    .map_err(db)?;
            }
            for (seq, kind, prev, hash, line) in &rows {
                client
                    .execute(
                        "INSERT INTO runsheet_journal (run_id, seq, kind, prev, hash, line) VALUES ($1, $2, $3, $4, $5, $6)",
                        &[&record.id, seq, kind, prev, hash, line],
                    )
                    .await
                    .map_err(db)?;
            }
            Ok(())
        })
    });
    result.map_err(|e| inner.state_error(&e))
}

pub(crate) fn discard(store: &PgStore, run: &str) -> Result<(), StateError> {
    let inner = store.inner();
    let run = run.to_owned();
    inner
        .worker
        .call(move |client| async move {
            client
                .execute("DELETE FROM runsheet_runs WHERE id = $1", &[&run])
                .await
                .map_err(db)
        })
        .map(|_| ())
        .map_err(|e| inner.state_error(&e))
}

pub(crate) fn save(store: &PgStore, record: &RunRecord) -> Result<(), StateError> {
    let inner = store.inner();
    let text = to_text(record).map_err(|e| inner.state_error(&e))?;
    let (id, state) = (record.id.clone(), record.state.clone());
    let updated = inner
        .worker
        .call(move |client| async move {
            client
                .execute(
                    "UPDATE runsheet_runs SET state = $2, record = $3 WHERE id = $1",
                    &[&id, &state, &text],
                )
                .await
                .map_err(db)
        })
        .map_err(|e| inner.state_error(&e))?;
    if updated == 0 {
        return Err(StateError::UnknownRun {
            run: record.id.clone(),
            place: inner.config.place.clone(),
        });
    }
    Ok(())
}

pub(crate) fn load(store: &PgStore, run: &str) -> Result<RunRecord, StateError> {
    let inner = store.inner();
    let id = run.to_owned();
    let text = inner
        .worker
        .call(move |client| async move {
            let row = client
                .query_opt("SELECT record FROM runsheet_runs WHERE id = $1", &[&id])
                .await
                .map_err(db)?;
            row.map(|r| r.try_get::<_, String>(0))
                .transpose()
                .map_err(db)
        })
        .map_err(|e| inner.state_error(&e))?;
    match text {
        Some(text) => parse(&inner.config.place, run, &text),
        None => Err(StateError::UnknownRun {
            run: run.to_owned(),
            place: inner.config.place.clone(),
        }),
    }
}

pub(crate) fn list(store: &PgStore) -> Result<Vec<RunRecord>, StateError> {
    let inner = store.inner();
    let rows = inner
        .worker
        .call(|client| async move {
            let rows = client
                .query(
                    "SELECT id, record FROM runsheet_runs ORDER BY started_at DESC, id DESC",
                    &[],
                )
                .await
                .map_err(db)?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get::<_, String>(0).map_err(db)?,
                        r.try_get::<_, String>(1).map_err(db)?,
                    ))
                })
                .collect::<Result<Vec<_>, PgError>>()
        })
        .map_err(|e| inner.state_error(&e))?;
    // A damaged record is skipped, as in the state directory.
    Ok(rows
        .iter()
        .filter_map(|(id, text)| parse(&inner.config.place, id, text).ok())
        .collect())
}

pub(crate) fn file(store: &PgStore, run: &str, name: &str) -> Result<Option<Vec<u8>>, StateError> {
    let inner = store.inner();
    let (run, name) = (run.to_owned(), name.to_owned());
    inner
        .worker
        .call(move |client| async move {
            let row = client
                .query_opt(
                    "SELECT content FROM runsheet_run_files WHERE run_id = $1 AND name = $2",
                    &[&run, &name],
                )
                .await
                .map_err(db)?;
            row.map(|r| r.try_get::<_, Vec<u8>>(0))
                .transpose()
                .map_err(db)
        })
        .map_err(|e| inner.state_error(&e))
}

pub(crate) fn put_file(
    store: &PgStore,
    run: &str,
    name: &str,
    bytes: &[u8],
) -> Result<(), StateError> {
    let inner = store.inner();
    let (run, name, bytes) = (run.to_owned(), name.to_owned(), bytes.to_vec());
    inner
        .worker
        .call(move |client| async move {
            client
                .execute(
                    "INSERT INTO runsheet_run_files (run_id, name, content) VALUES ($1, $2, $3)
                     ON CONFLICT (run_id, name) DO UPDATE SET content = EXCLUDED.content",
                    &[&run, &name, &bytes],
                )
                .await
                .map_err(db)
        })
        .map(|_| ())
        .map_err(|e| inner.state_error(&e))
}

pub(crate) fn files(store: &PgStore, run: &str) -> Result<Vec<(String, Vec<u8>)>, StateError> {
    load(store, run)?;
    let inner = store.inner();
    let run = run.to_owned();
    inner
        .worker
        .call(move |client| async move {
            let rows = client
                .query(
                    "SELECT name, content FROM runsheet_run_files WHERE run_id = $1 ORDER BY name",
                    &[&run],
                )
                .await
                .map_err(db)?;
            rows.iter()
                .map(|r| Ok((r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?)))
                .collect::<Result<Vec<_>, PgError>>()
        })
        .map_err(|e| inner.state_error(&e))
}
