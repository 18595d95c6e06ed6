//! A PostgreSQL state backend for runsheet: runs, their files, journals (the
//! same hash chain as the local journal) and environment locks with heartbeats
//! live in one database, so a run paused on one runner resumes on another.
//!
//! [`PgStore`] implements the engine's [`Store`]; the engine knows nothing of
//! PostgreSQL. Every write is committed before the call returns.

mod config;
mod journal;
mod lock;
pub mod migrate;
mod runs;
mod worker;

use std::sync::Arc;

use runsheet_engine::run::journal::{Contents, JournalError, JournalWriter};
use runsheet_engine::run::lock::{LockError, Owner};
use runsheet_engine::run::state::{RunRecord, StateError};
use runsheet_engine::run::store::{HeldLock, RunExport, Store};
use runsheet_engine::run::window::History;

pub use self::config::{PASSWORD_VARIABLE, PgConfig, is_postgres_url, looks_like_url};
pub use self::lock::LOCK_TTL;
pub use self::migrate::Migrated;
use self::worker::Worker;

/// Why the database could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PgError {
    /// The URL or a TLS option is wrong.
    #[error("{0}")]
    Config(String),
    /// The database could not be reached.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The connection broke or did not answer.
    #[error("connection lost: {0}")]
    Lost(String),
    /// A query failed.
    #[error("{0}")]
    Query(String),
    /// The schema is newer than this binary.
    #[error(
        "the database schema is version {database}, newer than this runsheet knows (up to {binary}): upgrade runsheet on this runner; nothing was written"
    )]
    SchemaNewer {
        /// The database's version.
        database: i32,
        /// The newest version this binary knows.
        binary: i32,
    },
}

/// A driver error as one line: the server's message and detail when it sent one.
pub(crate) fn describe_error(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// A driver error as a [`PgError`]; a closed connection is a lost one.
pub(crate) fn db(error: tokio_postgres::Error) -> PgError {
    if error.is_closed()
        || error.as_db_error().is_none() && error.to_string().contains("connection")
    {
        PgError::Lost(describe_error(&error))
    } else {
        PgError::Query(describe_error(&error))
    }
}

/// Runs kept in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: PgConfig,
    pub(crate) worker: Worker,
}

impl Inner {
    /// A message with the password masked.
    pub(crate) fn mask(&self, error: &PgError) -> String {
        self.config.mask(&error.to_string())
    }

    pub(crate) fn state_error(&self, error: &PgError) -> StateError {
        StateError::Backend {
            place: self.config.place.clone(),
            message: self.mask(error),
        }
    }

    pub(crate) fn journal_error(&self, run: &str, error: &PgError) -> JournalError {
        JournalError::Backend {
            run: run.to_owned(),
            place: self.config.place.clone(),
            message: self.mask(error),
        }
    }

    pub(crate) fn lock_error(&self, environment: &str, error: &PgError) -> LockError {
        LockError::Backend {
            environment: environment.to_owned(),
            place: self.config.place.clone(),
            message: self.mask(error),
        }
    }
}

impl PgStore {
    /// Connects to the database at `url` and brings its schema up to date
    /// (first use creates it); a schema newer than this binary is refused.
    pub fn open(url: &str) -> Result<PgStore, String> {
        let config = PgConfig::parse(url).map_err(|e| e.to_string())?;
        let place = config.place.clone();
        let inner = Arc::new(Inner {
            worker: Worker::start(config.clone()).map_err(|e| config.mask(&e.to_string()))?,
            config,
        });
        let latest = migrate::latest();
        let current = inner
            .worker
            .call(|client| async move {
                let exists = client
                    .query_one("SELECT to_regclass('runsheet_schema') IS NOT NULL", &[])
                    .await
                    .map_err(db)?;
                if !exists.try_get::<_, bool>(0).map_err(db)? {
                    return Ok(0);
                }
                let row = client
                    .query_one("SELECT coalesce(max(version), 0) FROM runsheet_schema", &[])
                    .await
                    .map_err(db)?;
                row.try_get::<_, i32>(0).map_err(db)
            })
            .map_err(|e| format!("state database {place}: {}", inner.mask(&e)))?;
        let store = PgStore { inner };
        if current != latest {
            store
                .migrate()
                .map_err(|e| format!("state database {place}: {e}"))?;
        }
        Ok(store)
    }

    /// Applies the migrations this binary ships that the database lacks.
    pub fn migrate(&self) -> Result<Migrated, String> {
        self.inner
            .worker
            .call(migrate::migrate)
            .map_err(|e| self.inner.mask(&e))
    }

    /// Whether TLS certificates go unverified (`sslinsecure=true`), to announce it.
    pub fn insecure(&self) -> bool {
        self.inner.config.insecure
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}

impl Store for PgStore {
    fn place(&self) -> String {
        self.inner.config.place.clone()
    }

    fn create_run(
        &self,
        record: &RunRecord,
        playbook_text: &str,
        environment_text: Option<&str>,
    ) -> Result<(), StateError> {
        let mut files = vec![(
            runsheet_engine::run::store::PLAYBOOK_FILE.to_owned(),
            playbook_text.as_bytes().to_vec(),
        )];
        if let Some(text) = environment_text {
            files.push((
                runsheet_engine::run::store::ENVIRONMENT_FILE.to_owned(),
                text.as_bytes().to_vec(),
            ));
        }
        runs::insert(self, record, files, Vec::new())
    }

    fn discard_run(&self, run: &str) -> Result<(), StateError> {
        runs::discard(self, run)
    }

    fn save(&self, record: &RunRecord) -> Result<(), StateError> {
        runs::save(self, record)
    }

    fn load(&self, run: &str) -> Result<RunRecord, StateError> {
        runs::load(self, run)
    }

    fn list(&self) -> Result<Vec<RunRecord>, StateError> {
        runs::list(self)
    }

    fn file(&self, run: &str, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        runs::file(self, run, name)
    }

    fn put_file(&self, run: &str, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        runs::put_file(self, run, name, bytes)
    }

    fn files(&self, run: &str) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        runs::files(self, run)
    }

    fn open_journal(&self, run: &str) -> Result<(Box<dyn JournalWriter>, Contents), JournalError> {
        journal::open(self, run)
    }

    fn read_journal(&self, run: &str) -> Result<Contents, JournalError> {
        journal::read(self, run)
    }

    fn journal_lines(&self, run: &str) -> Result<Vec<Vec<u8>>, JournalError> {
        journal::lines(self, run)
    }

    fn import_run(&self, run: &RunExport) -> Result<(), StateError> {
        runs::insert(self, &run.record, run.files.clone(), run.journal.clone())
    }

    fn history(&self, playbook: &str, environment: Option<&str>) -> History {
        journal::history(self, playbook, environment)
    }

    fn acquire(&self, environment: &str, owner: &Owner) -> Result<Box<dyn HeldLock>, LockError> {
        lock::acquire(self, environment, owner)
    }

    fn inspect(&self, environment: &str) -> Result<Option<(Owner, bool)>, LockError> {
        lock::inspect(self, environment)
    }

    fn unlock(&self, environment: &str) -> Result<Option<Owner>, LockError> {
        lock::unlock(self, environment)
    }
}
