//! Journals in `runsheet_journal`: one committed row per record, holding the
//! record's bytes, their hash and the previous record's hash.

use std::collections::BTreeMap;
use std::sync::Arc;

use runsheet_engine::run::journal::{
    Contents, JournalError, JournalWriter, Record, Verifier, encode, hash_line,
};
use runsheet_engine::run::window::History;
use serde_json::{Map, Value};

use crate::{Inner, PgError, PgStore, db};

/// The rows of a run's journal: (stored hash, line), in order.
fn rows(store: &PgStore, run: &str) -> Result<Vec<(String, String)>, JournalError> {
    let inner = store.inner();
    let id = run.to_owned();
    inner
        .worker
        .call(move |client| async move {
            let rows = client
                .query(
                    "SELECT hash, line FROM runsheet_journal WHERE run_id = $1 ORDER BY seq",
                    &[&id],
                )
                .await
                .map_err(db)?;
            rows.iter()
                .map(|r| Ok((r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?)))
                .collect::<Result<Vec<_>, PgError>>()
        })
        .map_err(|e| inner.journal_error(run, &e))
}

/// Reads a run's journal and checks its chain and each row's stored hash.
pub(crate) fn read(store: &PgStore, run: &str) -> Result<Contents, JournalError> {
    let mut verifier = Verifier::default();
    for (hash, line) in rows(store, run)? {
        if hash_line(line.as_bytes()) != hash {
            verifier.break_at_next(
                "it was changed after it was written (its stored hash does not match its text)"
                    .into(),
            );
            break;
        }
        if !verifier.push(line.as_bytes()) {
            break;
        }
    }
    Ok(verifier.finish())
}

pub(crate) fn lines(store: &PgStore, run: &str) -> Result<Vec<Vec<u8>>, JournalError> {
    Ok(rows(store, run)?
        .into_iter()
        .map(|(_, line)| line.into_bytes())
        .collect())
}

pub(crate) fn open(
    store: &PgStore,
    run: &str,
) -> Result<(Box<dyn JournalWriter>, Contents), JournalError> {
    let contents = read(store, run)?;
    let seq = contents
        .records
        .last()
        .and_then(|r| r.fields.get("seq"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let writer = PgJournal {
        inner: Arc::clone(store.inner()),
        run: run.to_owned(),
        seq,
        last_hash: contents.last_hash.clone(),
        failed: false,
    };
    Ok((Box::new(writer), contents))
}

/// Durations of the succeeded steps and runs of earlier runs of a playbook (against one
/// environment, when given), in one query.
pub(crate) fn history(store: &PgStore, playbook: &str, environment: Option<&str>) -> History {
    let playbook_name = playbook;
    let playbook = playbook.to_owned();
    let environment = environment.map(str::to_owned);
    let rows = store.inner().worker.call(move |client| async move {
        let rows = client
            .query(
                "SELECT j.run_id, j.line FROM runsheet_journal j JOIN runsheet_runs r ON r.id = j.run_id
                 WHERE r.playbook = $1 AND ($2::text IS NULL OR r.environment = $2)
                   AND j.kind IN ('step_succeeded', 'run_started', 'run_finished')
                 ORDER BY j.run_id, j.seq",
                &[&playbook, &environment],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| Ok((r.try_get::<_, String>(0).map_err(db)?, r.try_get::<_, String>(1).map_err(db)?)))
            .collect::<Result<Vec<_>, PgError>>()
    });
    let rows = rows.unwrap_or_else(|error| {
        // The figures are advice (window check, estimates): say they are missing, go on.
        tracing::warn!(
            "cannot read earlier runs of `{playbook_name}` from {}: {}; their durations are left out",
            store.inner().config.place,
            store.inner().mask(&error)
        );
        Vec::new()
    });
    let mut by_run: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    for (run, line) in rows {
        if let Ok(fields) = serde_json::from_str::<Map<String, Value>>(&line) {
            let records = by_run.entry(run).or_default();
            records.push(Record {
                line: records.len() + 1,
                fields,
            });
        }
    }
    let mut history = History::default();
    for records in by_run.values() {
        history.add_run(records);
    }
    history
}

/// A run's journal in the database, appending committed rows.
#[derive(Debug)]
struct PgJournal {
    inner: Arc<Inner>,
    run: String,
    seq: u64,
    last_hash: String,
    /// Set after a failed append: whether that row was committed is not known.
    failed: bool,
}

impl PgJournal {
    /// The environment whose lock this run lost, if a heartbeat found one.
    fn lost_lock(&self) -> Option<String> {
        let lost = self.inner.worker.lost.lock().ok()?;
        lost.iter()
            .find(|(_, run)| *run == self.run)
            .map(|(environment, _)| environment.clone())
    }
}

impl JournalWriter for PgJournal {
    fn append(
        &mut self,
        kind: &str,
        fields: Map<String, Value>,
        _sync: bool,
    ) -> Result<(), JournalError> {
        if self.failed {
            return Err(self.inner.journal_error(
                &self.run,
                &PgError::Lost(
                    "an earlier record could not be written; the run must be resumed".into(),
                ),
            ));
        }
        if let Some(environment) = self.lost_lock() {
            // Another runner may be working on this environment now: not one more step.
            self.failed = true;
            return Err(JournalError::Backend {
                run: self.run.clone(),
                place: self.inner.config.place.clone(),
                message: format!(
                    "the lock on `{environment}` is no longer this run's (taken over by another runner or released with `runsheet unlock`): this run stops here; `runsheet runs` shows who holds it"
                ),
            });
        }
        let seq = self.seq + 1;
        let line = encode(seq, &self.last_hash, kind, fields);
        let hash = hash_line(&line);
        let text = String::from_utf8_lossy(&line).into_owned();
        let (run, kind, prev, row_hash) = (
            self.run.clone(),
            kind.to_owned(),
            self.last_hash.clone(),
            hash.clone(),
        );
        let seq_value = i64::try_from(seq).unwrap_or(i64::MAX);
        // Every row is its own committed transaction: durable when this returns.
        let written = self.inner.worker.call(move |client| async move {
            client
                .execute(
                    "INSERT INTO runsheet_journal (run_id, seq, kind, prev, hash, line) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&run, &seq_value, &kind, &prev, &row_hash, &text],
                )
                .await
                .map_err(db)
        });
        if let Err(error) = written {
            self.failed = true;
            return Err(self.inner.journal_error(&self.run, &error));
        }
        self.seq = seq;
        self.last_hash = hash;
        Ok(())
    }

    fn failed(&self) -> bool {
        self.failed
    }

    fn sync(&mut self) -> Result<(), JournalError> {
        Ok(())
    }
}
