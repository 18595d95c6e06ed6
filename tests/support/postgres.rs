//! A real PostgreSQL server for tests and benchmarks: `initdb` in a temporary
//! directory, `postgres` on a free loopback port with its unix socket in that
//! directory, a password-protected role, stopped by PID (from postmaster.pid).
//!
//! As root the server runs as the `postgres` system user (`runuser`), which
//! owns the directory. A watchdog stops the server when the process that
//! started it is gone, so a shared server never outlives its test binary.
//! Without the server binaries the caller skips, except under `.ci/run`
//! (`RUNSHEET_TEST_REQUIRE_ALL`), which installs them.
//!
//! Included with `#[path]` by the test and bench targets that need it.

#![allow(dead_code, reason = "each including target uses a different part")]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where Debian's postgresql package puts the server binaries.
pub const BIN: &str = "/usr/lib/postgresql/15/bin";
/// The role tests connect as.
pub const USER: &str = "runsheet";
/// Its password (tests check it never shows in output).
pub const PASSWORD: &str = "pg-Secret-7f3a91";

/// A PostgreSQL server of its own.
pub struct Postgres {
    dir: tempfile::TempDir,
    /// Its loopback port.
    pub port: u16,
    /// Whether it runs as the `postgres` user (this process is root).
    as_postgres: bool,
}

/// Whether the server binaries are here; `Err` when they must be (CI).
pub fn available() -> Result<bool, String> {
    if Path::new(BIN).join("postgres").is_file() && Path::new(BIN).join("initdb").is_file() {
        return Ok(true);
    }
    if std::env::var_os("RUNSHEET_TEST_REQUIRE_ALL").is_some() {
        return Err(format!(
            "PostgreSQL server binaries are missing from {BIN}: .ci/run installs the postgresql package"
        ));
    }
    eprintln!("skipped: PostgreSQL server binaries are not in {BIN} (apt-get install postgresql)");
    Ok(false)
}

/// The server shared by every test of this binary (each test uses its own database).
pub fn shared() -> Result<Option<&'static Postgres>, String> {
    static SHARED: OnceLock<Result<Option<Postgres>, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if !available()? {
                return Ok(None);
            }
            Postgres::start(false).map(Some)
        })
        .as_ref()
        .map(Option::as_ref)
        .map_err(Clone::clone)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            == Some("0")
    })
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

impl Postgres {
    /// Runs `initdb` and starts a server; `durable` keeps fsync on (benchmarks).
    pub fn start(durable: bool) -> Result<Postgres, String> {
        let dir = tempfile::Builder::new()
            .prefix("pglab-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let as_postgres = is_root();
        let mut server = Postgres {
            dir,
            port: 0,
            as_postgres,
        };
        std::fs::write(server.path().join("pwfile"), PASSWORD).map_err(|e| e.to_string())?;
        if as_postgres {
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(server.path())
                .status()
                .map_err(|e| e.to_string())?;
            if !chown.success() {
                return Err("chown of the PostgreSQL directory to `postgres` failed".into());
            }
        }
        let initdb = server
            .command("initdb")
            .arg("-D")
            .arg(server.data())
            .args([
                "-U",
                USER,
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ])
            .arg(format!(
                "--pwfile={}",
                server.path().join("pwfile").display()
            ))
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !initdb.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&initdb.stderr)
            ));
        }
        server.port = free_port()?;
        server.boot(durable)?;
        server.watch();
        Ok(server)
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn data(&self) -> PathBuf {
        self.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let binary = Path::new(BIN).join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(binary);
            command
        } else {
            Command::new(binary)
        };
        command.stdin(Stdio::null());
        command
    }

    /// Starts the server on its port (again, after [`Postgres::stop`]) and waits until it answers.
    pub fn boot(&self, durable: bool) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join("postgres.log"))
            .map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(self.data())
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-k")
            .arg(self.path())
            .args(["-c", "max_connections=60", "-c", "shared_buffers=16MB"])
            .stdout(log)
            .stderr(err);
        if !durable {
            command.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        command.spawn().map_err(|e| format!("postgres: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.pid().is_some()
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.psql("postgres", "SELECT 1").is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "postgres did not start on port {}: {}",
            self.port,
            std::fs::read_to_string(self.path().join("postgres.log")).unwrap_or_default()
        ))
    }

    /// The postmaster's PID, from postmaster.pid.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Stops the server by PID (fast shutdown: sessions are cut) and waits for it to exit.
    pub fn stop(&self) -> Result<(), String> {
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Path::new("/proc").join(pid.to_string()).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if Path::new("/proc").join(pid.to_string()).exists() {
            return Err(format!("postgres (pid {pid}) did not stop"));
        }
        Ok(())
    }

    /// Stops the server when this process is gone (a shared server is never dropped).
    fn watch(&self) {
        let script = format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 1; done; \
             pid=$(head -n 1 '{data}/postmaster.pid' 2>/dev/null) && kill -INT \"$pid\"",
            parent = std::process::id(),
            data = self.data().display()
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    /// Runs SQL through psql on database `db`; its output.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let output = Command::new(Path::new(BIN).join("psql"))
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                db,
                "-c",
                sql,
            ])
            .env("PGPASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "psql `{sql}`: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// A new empty database; its name.
    pub fn database(&self, name: &str) -> Result<String, String> {
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        self.psql("postgres", &format!("DROP DATABASE IF EXISTS {name}"))?;
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(name)
    }

    /// The state URL of database `db` (no password: it comes from `RUNSHEET_STATE_PASSWORD`).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{USER}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
