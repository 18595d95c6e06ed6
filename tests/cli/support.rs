//! Running the binary, reading fixtures and checking diagnostics, shared by the test modules.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// What every test returns: `?` on I/O and JSON, assertions for the checks.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The workspace root; the binary runs here so paths in its output are relative.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The test environment every playbook fixture is validated against.
pub const LAB_ENV: &str = "tests/fixtures/envs/lab.yaml";

/// What the binary did.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Whether the binary panicked (Rust prints "panicked" for every panic).
    pub fn panicked(&self) -> bool {
        self.stderr.contains("panicked") || self.stdout.contains("panicked")
    }

    /// The diagnostics of `--output json`.
    pub fn records(&self) -> Result<Vec<Value>, serde_json::Error> {
        serde_json::from_str(&self.stdout)
    }
}

/// Runs `runsheet ARGS...` from the workspace root, without colour.
pub fn runsheet<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::io::Result<Run> {
    runsheet_in(root(), args)
}

/// Runs `runsheet ARGS...` in `directory`, without colour.
pub fn runsheet_in<S: AsRef<std::ffi::OsStr>>(
    directory: &Path,
    args: &[S],
) -> std::io::Result<Run> {
    let output = Command::new(env!("CARGO_BIN_EXE_runsheet"))
        .args(args)
        .current_dir(directory)
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()?;
    Ok(Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// The `.yaml` files of a fixtures directory (relative to the root), sorted.
pub fn yaml_files(dir: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root().join(dir))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") {
            files.push(Path::new(dir).join(name));
        }
    }
    files.sort();
    Ok(files)
}

/// A file name without its directory and `.yaml`.
pub fn stem(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.unwrap_or_default();
    name.strip_suffix(".yaml").unwrap_or(&name).to_owned()
}

/// What a fixture header says: `# expect: CODE` and, optionally, `# known-bug: WHY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The diagnostic code the file must produce.
    pub code: String,
    /// Set when the engine is known to get this file wrong today.
    pub known_bug: Option<String>,
}

/// Fixtures that cannot carry a comment: a truly empty file.
const HEADERLESS: &[(&str, &str)] = &[("04-empty", "yaml::empty")];

/// Reads the header of a fixture (leading `#` lines; bytes, since some are not UTF-8).
pub fn expectation(path: &Path) -> std::io::Result<Option<Expectation>> {
    let bytes = std::fs::read(root().join(path))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut code = None;
    let mut known_bug = None;
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(rest) = line.strip_prefix("# expect:") {
            code = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("# known-bug:") {
            known_bug = Some(rest.trim().to_owned());
        }
    }
    let code = code.or_else(|| {
        HEADERLESS
            .iter()
            .find(|(name, _)| *name == stem(path))
            .map(|(_, code)| (*code).to_owned())
    });
    Ok(code.map(|code| Expectation { code, known_bug }))
}

/// Problems with one `--output json` record: missing fields, positions out of range.
pub fn record_problems(record: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for field in [
        "file", "line", "column", "severity", "code", "message", "help",
    ] {
        if record.get(field).is_none() {
            problems.push(format!("no `{field}` field in {record}"));
        }
    }
    for field in ["code", "message"] {
        if record[field].as_str().is_none_or(str::is_empty) {
            problems.push(format!("`{field}` is not a non-empty string in {record}"));
        }
    }
    if !matches!(record["severity"].as_str(), Some("error" | "warning")) {
        problems.push(format!(
            "`severity` is neither error nor warning in {record}"
        ));
    }
    for field in ["line", "column"] {
        match &record[field] {
            Value::Null => {}
            value if value.as_u64().is_some_and(|n| n >= 1) => {}
            value => problems.push(format!("`{field}` is {value}, not a number >= 1")),
        }
    }
    if record["line"].is_null() != record["column"].is_null() {
        problems.push(format!(
            "`line` and `column` must come together in {record}"
        ));
    }
    if let (Some(file), Some(line)) = (record["file"].as_str(), record["line"].as_u64()) {
        let lines = std::fs::read(root().join(file))
            .map(|bytes| bytes.iter().filter(|b| **b == b'\n').count() as u64 + 1)
            .unwrap_or(u64::MAX);
        if line > lines {
            problems.push(format!(
                "line {line} is past the end of {file} ({lines} lines)"
            ));
        }
    }
    problems
}

/// The codes of the errors among the records.
pub fn error_codes(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .filter(|r| r["severity"] == "error")
        .filter_map(|r| r["code"].as_str())
        .collect()
}

/// Compares `content` with the snapshot `dir/name`; the description names the command.
pub fn snapshot(dir: &str, name: &str, description: &str, content: &str) {
    let root = root().to_string_lossy().into_owned();
    let content = content.replace(&root, "[ROOT]");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(format!("snapshots/{dir}"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(description);
    settings.bind(|| insta::assert_snapshot!(name, content));
}

/// Like [`snapshot`], but a mismatch is returned instead of ending the test, so a
/// loop over fixtures reports (and writes `.snap.new` for) every mismatch at once.
pub fn snapshot_collecting(
    dir: &str,
    name: &str,
    description: &str,
    content: &str,
) -> Option<String> {
    let outcome = std::panic::catch_unwind(|| snapshot(dir, name, description, content));
    outcome
        .err()
        .map(|_| format!("{name}: output differs from snapshots/{dir}/{name}.snap"))
}
