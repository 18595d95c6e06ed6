//! Schema migrations, shipped in the binary and applied in order on first use.
//! `runsheet_schema` records each version applied; a database whose schema is
//! newer than this binary knows is refused, not written to.

use std::sync::Arc;

use tokio_postgres::Client;

use crate::{PgError, db};

/// The migrations this binary knows: version, name, SQL.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[(
    1,
    "runs, journal, run files and environment locks",
    include_str!("../migrations/V1__runs_journal_files_locks.sql"),
)];

/// The newest schema version this binary knows.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// What migrating found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The version before.
    pub from: i32,
    /// The version now.
    pub to: i32,
    /// The versions applied now.
    pub applied: Vec<i32>,
}

/// Any number both the binary and the database agree on, to serialise migrations.
const MIGRATION_LOCK: i64 = 0x72_75_6e_73_68_65_65_74;

/// Brings the schema to this binary's version, under an advisory lock so two
/// runners starting at once do not both migrate; refuses a newer schema.
pub async fn migrate(client: Arc<Client>) -> Result<Migrated, PgError> {
    client.batch_execute("BEGIN").await.map_err(db)?;
    let result = migrate_in_transaction(&client).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = client.batch_execute(end).await.map_err(db);
    let migrated = result?;
    ended?;
    Ok(migrated)
}

async fn migrate_in_transaction(client: &Client) -> Result<Migrated, PgError> {
    client
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS runsheet_schema (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(db)?;
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM runsheet_schema", &[])
        .await
        .map_err(db)?;
    let from: i32 = row.try_get(0).map_err(db)?;
    if from > latest() {
        return Err(PgError::SchemaNewer {
            database: from,
            binary: latest(),
        });
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > from) {
        client.batch_execute(sql).await.map_err(|e| {
            PgError::Query(format!(
                "migration {version} ({name}): {}",
                crate::describe_error(&e)
            ))
        })?;
        client
            .execute(
                "INSERT INTO runsheet_schema (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await
            .map_err(db)?;
        applied.push(*version);
    }
    Ok(Migrated {
        from,
        to: from.max(latest()),
        applied,
    })
}
