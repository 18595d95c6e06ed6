//! Environment locks in `runsheet_locks`: a row per environment with its owner
//! (host, pid, user, run, pipeline) and a heartbeat the holding process renews
//! every few seconds. An owner whose heartbeat stopped (its process ended, was
//! killed, or lost the database) holds a stale lock: it is reported, and only
//! `resume` of the same run or `unlock` takes it over.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use runsheet_engine::run::lock::{LockError, Owner};
use runsheet_engine::run::state::host_name;
use runsheet_engine::run::store::HeldLock;
use tokio_postgres::Row;

use crate::runs::transaction;
use crate::{Inner, PgError, PgStore, db};

/// A heartbeat older than this is a stopped one.
pub const LOCK_TTL: Duration = Duration::from_secs(30);

const OWNER_COLUMNS: &str = "run_id, pid, host, os_user, since, pipeline, \
    to_char(heartbeat AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
    extract(epoch FROM now() - heartbeat)::float8";

/// An owner row and whether its holder is alive.
fn owner_of(row: &Row) -> Result<Option<(Owner, bool)>, PgError> {
    let Some(run) = row.try_get::<_, Option<String>>(0).map_err(db)? else {
        return Ok(None);
    };
    let pid: Option<i32> = row.try_get(1).map_err(db)?;
    let host: Option<String> = row.try_get(2).map_err(db)?;
    let owner = Owner {
        run,
        pid: pid.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
        host: host.unwrap_or_default(),
        user: row
            .try_get::<_, Option<String>>(3)
            .map_err(db)?
            .unwrap_or_default(),
        since: row
            .try_get::<_, Option<String>>(4)
            .map_err(db)?
            .unwrap_or_default(),
        pipeline: row.try_get(5).map_err(db)?,
        heartbeat: Some(
            row.try_get::<_, Option<String>>(6)
                .map_err(db)?
                .unwrap_or_else(|| "none (its process ended)".into()),
        ),
    };
    let age: Option<f64> = row.try_get(7).map_err(db)?;
    Ok(Some((owner.clone(), alive(&owner, age))))
}

/// A holder is alive while its heartbeat is fresh, and, on this machine, while its process runs.
fn alive(owner: &Owner, heartbeat_age: Option<f64>) -> bool {
    let fresh = heartbeat_age.is_some_and(|age| age < LOCK_TTL.as_secs_f64());
    let gone_here =
        owner.host == host_name() && !Path::new("/proc").join(owner.pid.to_string()).exists();
    fresh && !gone_here
}

pub(crate) fn acquire(
    store: &PgStore,
    environment: &str,
    owner: &Owner,
) -> Result<Box<dyn HeldLock>, LockError> {
    let inner = store.inner();
    let (key, me) = (environment.to_owned(), owner.clone());
    let outcome = inner.worker.call(move |client| {
        transaction(client, move |client| async move {
            client
                .execute(
                    "INSERT INTO runsheet_locks (environment) VALUES ($1) ON CONFLICT DO NOTHING",
                    &[&key],
                )
                .await
                .map_err(db)?;
            let row = client
                .query_one(
                    &format!("SELECT {OWNER_COLUMNS} FROM runsheet_locks WHERE environment = $1 FOR UPDATE"),
                    &[&key],
                )
                .await
                .map_err(db)?;
            let previous = owner_of(&row)?;
            let mut taken_back_from = None;
            if let Some((previous, alive)) = previous {
                if alive {
                    return Ok(Err(LockError::Held {
                        environment: key,
                        owner: previous,
                    }));
                }
                if previous.run != me.run {
                    return Ok(Err(LockError::Stale {
                        environment: key,
                        owner: previous,
                    }));
                }
                taken_back_from = Some(previous);
            }
            let pid = i32::try_from(me.pid).unwrap_or(0);
            client
                .execute(
                    "UPDATE runsheet_locks SET run_id = $2, pid = $3, host = $4, os_user = $5, since = $6,
                     pipeline = $7, heartbeat = now() WHERE environment = $1",
                    &[&key, &me.run, &pid, &me.host, &me.user, &me.since, &me.pipeline],
                )
                .await
                .map_err(db)?;
            Ok(Ok(taken_back_from))
        })
    });
    let taken_back_from = outcome.map_err(|e| inner.lock_error(environment, &e))??;
    if let Ok(mut held) = inner.worker.held.lock() {
        held.push((environment.to_owned(), owner.run.clone()));
    }
    Ok(Box::new(PgLock {
        inner: Arc::clone(inner),
        environment: environment.to_owned(),
        run: owner.run.clone(),
        taken_back_from,
    }))
}

pub(crate) fn inspect(
    store: &PgStore,
    environment: &str,
) -> Result<Option<(Owner, bool)>, LockError> {
    let inner = store.inner();
    let key = environment.to_owned();
    inner
        .worker
        .call(move |client| async move {
            let row = client
                .query_opt(
                    &format!("SELECT {OWNER_COLUMNS} FROM runsheet_locks WHERE environment = $1"),
                    &[&key],
                )
                .await
                .map_err(db)?;
            match row {
                Some(row) => owner_of(&row),
                None => Ok(None),
            }
        })
        .map_err(|e| inner.lock_error(environment, &e))
}

pub(crate) fn unlock(store: &PgStore, environment: &str) -> Result<Option<Owner>, LockError> {
    let inner = store.inner();
    let key = environment.to_owned();
    let outcome = inner.worker.call(move |client| {
        transaction(client, move |client| async move {
            let row = client
                .query_opt(
                    &format!("SELECT {OWNER_COLUMNS} FROM runsheet_locks WHERE environment = $1 FOR UPDATE"),
                    &[&key],
                )
                .await
                .map_err(db)?;
            let Some((owner, alive)) = row.as_ref().map(owner_of).transpose()?.flatten() else {
                return Ok(Ok(None));
            };
            if alive {
                return Ok(Err(LockError::Held {
                    environment: key,
                    owner,
                }));
            }
            client
                .execute("DELETE FROM runsheet_locks WHERE environment = $1", &[&key])
                .await
                .map_err(db)?;
            Ok(Ok(Some(owner)))
        })
    });
    outcome.map_err(|e| inner.lock_error(environment, &e))?
}

/// A lock this process holds; its heartbeat runs on the connection's thread.
#[derive(Debug)]
struct PgLock {
    inner: Arc<Inner>,
    environment: String,
    run: String,
    taken_back_from: Option<Owner>,
}

impl PgLock {
    fn stop_heartbeat(&self) {
        if let Ok(mut held) = self.inner.worker.held.lock() {
            held.retain(|(e, r)| !(e == &self.environment && r == &self.run));
        }
    }

    fn update(&self, sql: &'static str) -> Result<(), LockError> {
        let (key, run) = (self.environment.clone(), self.run.clone());
        self.inner
            .worker
            .call(move |client| async move { client.execute(sql, &[&key, &run]).await.map_err(db) })
            .map(|_| ())
            .map_err(|e| self.inner.lock_error(&self.environment, &e))
    }
}

impl HeldLock for PgLock {
    fn taken_back_from(&self) -> Option<&Owner> {
        self.taken_back_from.as_ref()
    }

    fn release(self: Box<Self>, forget: bool) -> Result<(), LockError> {
        self.stop_heartbeat();
        if forget {
            self.update("DELETE FROM runsheet_locks WHERE environment = $1 AND run_id = $2")
        } else {
            self.update(
                "UPDATE runsheet_locks SET run_id = NULL, pid = NULL, host = NULL, os_user = NULL, since = NULL,
                 pipeline = NULL, heartbeat = NULL WHERE environment = $1 AND run_id = $2",
            )
        }
    }

    fn keep(self: Box<Self>) {
        self.stop_heartbeat();
        // The owner stays; no heartbeat says its process ended (a stale lock at once).
        let _ = self.update(
            "UPDATE runsheet_locks SET heartbeat = NULL WHERE environment = $1 AND run_id = $2",
        );
    }
}

impl Drop for PgLock {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}
