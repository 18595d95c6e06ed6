//! The connection's own thread: a small runtime that owns the database
//! connection, runs the queries callers send it one at a time, reconnects when
//! the connection is gone, and heartbeats the environment locks held here.
//!
//! Callers block until their query is done (like an fsync), so the store's API
//! stays synchronous and works from inside and outside a runtime alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::PgError;
use crate::config::PgConfig;

/// How often held locks are heartbeaten.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// Longest wait for one query before the connection is taken as lost.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A query to run; its future answers whether the session must be dropped (a query that
/// timed out may have left it inside a transaction, which must not swallow later writes).
type Job = Box<
    dyn FnOnce(Result<Arc<Client>, PgError>) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send,
>;

/// The locks this process holds: (environment, run).
pub type Held = Arc<Mutex<Vec<(String, String)>>>;

/// A handle on the connection thread.
#[derive(Debug)]
pub struct Worker {
    jobs: mpsc::UnboundedSender<Job>,
    /// Locks to heartbeat.
    pub held: Held,
    /// Locks whose row a heartbeat found no longer this process's (taken over or
    /// released by someone else): the run holding it must stop.
    pub lost: Held,
}

impl Worker {
    /// Starts the thread; it connects on the first query.
    pub fn start(config: PgConfig) -> Result<Worker, PgError> {
        let (jobs, receiver) = mpsc::unbounded_channel();
        let held: Held = Arc::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PgError::Config(format!("cannot start the database thread: {e}")))?;
        let lost: Held = Arc::default();
        let locks = Locks {
            held: Arc::clone(&held),
            lost: Arc::clone(&lost),
        };
        std::thread::Builder::new()
            .name("runsheet-state-pg".into())
            .spawn(move || runtime.block_on(serve(config, receiver, locks)))
            .map_err(|e| PgError::Config(format!("cannot start the database thread: {e}")))?;
        Ok(Worker { jobs, held, lost })
    }

    /// Runs `query` on the connection and waits for its result.
    pub fn call<T, F, Fut>(&self, query: F) -> Result<T, PgError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Client>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, PgError>> + Send + 'static,
    {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(move |client| {
            Box::pin(async move {
                let result = match client {
                    Ok(client) => match tokio::time::timeout(QUERY_TIMEOUT, query(client)).await {
                        Ok(result) => result,
                        Err(_) => Err(PgError::Lost(format!(
                            "no answer within {}s",
                            QUERY_TIMEOUT.as_secs()
                        ))),
                    },
                    Err(error) => Err(error),
                };
                let drop_session = matches!(result, Err(PgError::Lost(_)));
                let _ = reply.send(result);
                drop_session
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| PgError::Lost("the database thread has stopped".into()))?;
        answer
            .recv()
            .map_err(|_| PgError::Lost("the database thread has stopped".into()))?
    }
}

/// The locks the connection thread heartbeats, and where it puts those it lost.
struct Locks {
    /// Held here.
    held: Held,
    /// Found taken over.
    lost: Held,
}

async fn serve(config: PgConfig, mut jobs: mpsc::UnboundedReceiver<Job>, locks: Locks) {
    let mut client: Option<Arc<Client>> = None;
    let mut ticks = tokio::time::interval(HEARTBEAT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else { return };
                let connected = connected(&config, &mut client).await;
                if job(connected).await {
                    // The server aborts a dropped session, and with it any transaction
                    // the timed-out query left open; the next job reconnects.
                    client = None;
                }
            }
            _ = ticks.tick() => {
                let held: Vec<(String, String)> =
                    locks.held.lock().map(|h| h.clone()).unwrap_or_default();
                if held.is_empty() {
                    continue;
                }
                // Reconnect for the heartbeat too: a run busy in a step that writes no
                // journal record (a long wait, a gate) must not look stale after a short
                // database outage. A connection that cannot be had shows in the next
                // journal write.
                if let Ok(client) = connected(&config, &mut client).await {
                    for (environment, run) in held {
                        let renewed = tokio::time::timeout(QUERY_TIMEOUT, client.execute(
                            "UPDATE runsheet_locks SET heartbeat = now() WHERE environment = $1 AND run_id = $2",
                            &[&environment, &run],
                        )).await;
                        // No row: the lock is not this run's any more. Only a definite
                        // answer counts; an error or a timeout says nothing about the row.
                        if let Ok(Ok(0)) = renewed {
                            if let Ok(mut held) = locks.held.lock() {
                                held.retain(|(e, r)| !(e == &environment && r == &run));
                            }
                            if let Ok(mut lost) = locks.lost.lock() {
                                lost.push((environment, run));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The open connection, opened again when it is gone.
async fn connected(
    config: &PgConfig,
    client: &mut Option<Arc<Client>>,
) -> Result<Arc<Client>, PgError> {
    if let Some(open) = client.as_ref().filter(|c| !c.is_closed()) {
        return Ok(Arc::clone(open));
    }
    *client = None;
    let tls = config.tls()?;
    let (new, connection) = config
        .driver
        .connect(tls)
        .await
        .map_err(|e| PgError::Connect(config.mask(&crate::describe_error(&e))))?;
    tokio::spawn(connection);
    let new = Arc::new(new);
    *client = Some(Arc::clone(&new));
    Ok(new)
}
