//! The run journal: append-only JSON lines, each carrying the SHA-256 of the
//! line before it, fsynced at every write step's start and end.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::event::now_rfc3339;

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why the journal could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file system refused.
    #[error("journal {path}: {source}")]
    Io {
        /// The journal file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A state backend other than the file system refused (a database).
    #[error("journal of run {run} in {place}: {message}")]
    Backend {
        /// The run.
        run: String,
        /// The backend, with no secret in it (`postgres://ops@db:5432/runsheet`).
        place: String,
        /// Why.
        message: String,
    },
}

/// Something records can be appended to: the journal file, or a database's
/// journal table. An append is durable before it returns when `sync` is set.
pub trait JournalWriter: Send + std::fmt::Debug {
    /// Appends a record of `kind` with `fields`; `sync` makes it durable before returning.
    fn append(&mut self, kind: &str, fields: Map<String, Value>, sync: bool) -> Result<(), JournalError>;
    /// Whether an append failed: the journal takes no more records.
    fn failed(&self) -> bool;
    /// Makes everything appended so far durable.
    fn sync(&mut self) -> Result<(), JournalError>;
}

/// The bytes of record number `seq` chained to `prev` (no newline): what is
/// hashed, and what every backend stores verbatim.
pub fn encode(seq: u64, prev: &str, kind: &str, fields: Map<String, Value>) -> Vec<u8> {
    let mut record = Map::with_capacity(fields.len() + 4);
    record.insert("seq".into(), Value::from(seq));
    record.insert("at".into(), Value::String(now_rfc3339()));
    record.insert("prev".into(), Value::String(prev.to_owned()));
    record.insert("kind".into(), Value::String(kind.to_owned()));
    record.extend(fields);
    serde_json::to_vec(&Value::Object(record)).unwrap_or_default()
}

/// Checks a journal's records one complete line at a time, in order.
#[derive(Debug)]
pub struct Verifier {
    contents: Contents,
    expected_seq: u64,
    line_number: usize,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            contents: Contents {
                last_hash: GENESIS.to_owned(),
                ..Contents::default()
            },
            expected_seq: 1,
            line_number: 0,
        }
    }
}

impl Verifier {
    /// Checks the next complete line (without its newline); false once the chain is broken.
    pub fn push(&mut self, line: &[u8]) -> bool {
        if self.contents.broken.is_some() {
            return false;
        }
        self.line_number += 1;
        let line_number = self.line_number;
        let Some(fields) = serde_json::from_slice::<Map<String, Value>>(line).ok() else {
            self.contents.broken = Some((line_number, "not a JSON record".into()));
            return false;
        };
        let prev = fields.get("prev").and_then(Value::as_str).unwrap_or("");
        if prev != self.contents.last_hash {
            self.contents.broken = Some((
                line_number,
                "its `prev` hash does not match the record before it (edited, removed or reordered records)".into(),
            ));
            return false;
        }
        let seq = fields.get("seq").and_then(Value::as_u64).unwrap_or(0);
        if seq != self.expected_seq {
            self.contents.broken = Some((
                line_number,
                format!("sequence number {seq}, expected {}", self.expected_seq),
            ));
            return false;
        }
        self.expected_seq += 1;
        self.contents.last_hash = hash_line(line);
        self.contents.good_len += line.len() as u64 + 1;
        self.contents.records.push(Record {
            line: line_number,
            fields,
        });
        true
    }

    /// Marks the record after the last good one broken, for a reason the chain cannot see.
    pub fn break_at_next(&mut self, why: String) {
        if self.contents.broken.is_none() {
            self.contents.broken = Some((self.line_number + 1, why));
        }
    }

    /// What was found.
    pub fn finish(self) -> Contents {
        self.contents
    }
}

/// An open journal, appending records.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    last_hash: String,
    seq: u64,
    /// Set after a failed append: the chain cannot continue past a record that is not there.
    failed: bool,
}

/// A record read back, with its line number.
#[derive(Debug, Clone)]
pub struct Record {
    /// Line number, from 1.
    pub line: usize,
    /// The record's fields (`seq`, `at`, `prev`, `kind`, ...).
    pub fields: Map<String, Value>,
}

impl Record {
    /// The record's kind.
    pub fn kind(&self) -> &str {
        self.fields.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    /// A string field.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }
}

/// What reading a journal found.
#[derive(Debug, Default)]
pub struct Contents {
    /// Records that parsed and chained, in order.
    pub records: Vec<Record>,
    /// The first broken record: line number and why.
    pub broken: Option<(usize, String)>,
    /// Whether the last line was cut short (a crash while writing); it is ignored.
    pub truncated_tail: bool,
    /// Hash of the last good line.
    pub last_hash: String,
    /// Byte length of the good part of the file.
    pub good_len: u64,
}

/// SHA-256 of a line, hex.
pub fn hash_line(line: &[u8]) -> String {
    let digest = Sha256::digest(line);
    let mut out = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write as _;
        let _ = write!(out, "{byte:02x}");
    }
    out
}

impl Journal {
    /// Creates a new journal file (it must not exist), readable by its owner only.
    pub fn create(path: &Path) -> Result<Journal, JournalError> {
        let file = super::state::owner_only()
            .create_new(true)
            .append(true)
            .open(path)
            .map_err(|source| io(path, source))?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            last_hash: GENESIS.to_owned(),
            seq: 0,
            failed: false,
        })
    }

    /// Opens an existing journal to append, after checking its chain; a cut-short
    /// last line is removed first.
    pub fn reopen(path: &Path) -> Result<(Journal, Contents), JournalError> {
        let contents = read(path)?;
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|source| io(path, source))?;
        if contents.truncated_tail {
            file.set_len(contents.good_len)
                .map_err(|source| io(path, source))?;
            file.sync_data().map_err(|source| io(path, source))?;
        }
        drop(file);
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|source| io(path, source))?;
        let seq = contents
            .records
            .last()
            .and_then(|r| r.fields.get("seq"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok((
            Journal {
                path: path.to_path_buf(),
                file,
                last_hash: contents.last_hash.clone(),
                seq,
                failed: false,
            },
            contents,
        ))
    }

    /// Appends a record of `kind` with `fields`; `sync` makes it durable before returning.
    pub fn append(
        &mut self,
        kind: &str,
        fields: Map<String, Value>,
        sync: bool,
    ) -> Result<(), JournalError> {
        let seq = self.seq + 1;
        let mut line = encode(seq, &self.last_hash, kind, fields);
        let hash = hash_line(&line);
        line.push(b'\n');
        let written = self.file.write_all(&line).and_then(|()| {
            if sync {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(source) = written {
            // Part of the line may be on disk: nothing more is appended after it.
            self.failed = true;
            return Err(io(&self.path, source));
        }
        self.seq = seq;
        self.last_hash = hash;
        Ok(())
    }

    /// Whether an append failed: the journal takes no more records.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.file
            .sync_data()
            .map_err(|source| io(&self.path, source))
    }
}

impl JournalWriter for Journal {
    fn append(&mut self, kind: &str, fields: Map<String, Value>, sync: bool) -> Result<(), JournalError> {
        Journal::append(self, kind, fields, sync)
    }

    fn failed(&self) -> bool {
        Journal::failed(self)
    }

    fn sync(&mut self) -> Result<(), JournalError> {
        Journal::sync(self)
    }
}

fn io(path: &Path, source: std::io::Error) -> JournalError {
    JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a journal and checks its hash chain, stopping at the first broken record.
pub fn read(path: &Path) -> Result<Contents, JournalError> {
    let file = File::open(path).map_err(|source| io(path, source))?;
    let mut reader = BufReader::new(file);
    let mut verifier = Verifier::default();
    let mut buffer = Vec::new();
    let mut truncated_tail = false;
    loop {
        buffer.clear();
        let read = reader
            .read_until(b'\n', &mut buffer)
            .map_err(|source| io(path, source))?;
        if read == 0 {
            break;
        }
        let Some(line) = buffer.strip_suffix(b"\n") else {
            // A last line without its newline: the writer died in the middle of it.
            truncated_tail = true;
            break;
        };
        if !verifier.push(line) {
            break;
        }
    }
    let mut contents = verifier.finish();
    contents.truncated_tail = truncated_tail;
    Ok(contents)
}

/// The journal's lines as stored (complete lines only, without newlines), for export.
pub fn raw_lines(path: &Path) -> Result<Vec<Vec<u8>>, JournalError> {
    let text = std::fs::read(path).map_err(|source| io(path, source))?;
    let mut lines: Vec<Vec<u8>> = text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    // The part after the last newline is empty, or a line cut short by a crash.
    lines.pop();
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn chain_verifies_and_detects_tampering() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("journal.jsonl");
        let mut journal = Journal::create(&path)?;
        for i in 0..5 {
            journal.append("step_succeeded", fields(json!({"step": format!("s{i}")})), i % 2 == 0)?;
        }
        let contents = read(&path)?;
        assert_eq!(contents.records.len(), 5);
        assert!(contents.broken.is_none());
        let text = std::fs::read_to_string(&path)?;
        std::fs::write(&path, text.replacen("\"s2\"", "\"sX\"", 1))?;
        let contents = read(&path)?;
        assert_eq!(contents.broken.as_ref().map(|b| b.0), Some(4));
        assert_eq!(contents.records.len(), 3);
        Ok(())
    }

    #[test]
    fn a_cut_short_last_line_is_dropped_on_reopen() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("journal.jsonl");
        let mut journal = Journal::create(&path)?;
        journal.append("a", Map::new(), true)?;
        journal.append("b", Map::new(), true)?;
        drop(journal);
        let mut file = OpenOptions::new().append(true).open(&path)?;
        file.write_all(b"{\"seq\":3,\"kin")?;
        drop(file);
        let (mut journal, contents) = Journal::reopen(&path)?;
        assert!(contents.truncated_tail);
        assert_eq!(contents.records.len(), 2);
        journal.append("c", Map::new(), true)?;
        let contents = read(&path)?;
        assert!(contents.broken.is_none() && !contents.truncated_tail);
        assert_eq!(contents.records.iter().map(Record::kind).collect::<Vec<_>>(), ["a", "b", "c"]);
        Ok(())
    }
}
