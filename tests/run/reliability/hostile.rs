//! Reliability matrix: hostile and malformed input, and hostile gateways.
//!
//! - [`input`]: alias bombs, 100k-level nesting, a 100 MB file and invalid
//!   UTF-8 given to the real binary (time and peak RSS measured), and a
//!   time-bounded fuzz loop over the loader and validation.
//! - [`templates`]: shell metacharacters in inputs reach `host.exec` inert,
//!   and a template can read no file and no environment variable.
//! - [`files`]: `host.file` and artefact paths with `..`, and symbolic links.
//! - [`gateway`]: a hostile HTTP server (huge bodies, a slow drip, invalid
//!   JSON and XML, wrong content types, redirects to another host) driven by
//!   `http`, `kong.*` and `layer7.*` steps.

mod files;
mod gateway;
mod input;
mod templates;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::lab::{Lab, Run};

/// What a measured command did, how long it took and its peak resident memory.
pub struct Measured {
    /// Exit code and output.
    pub run: Run,
    /// Wall time.
    pub elapsed: Duration,
    /// Peak resident set size in KiB (`/usr/bin/time`'s %M, or the last VmHWM seen).
    pub peak_kib: Option<u64>,
}

impl Measured {
    /// `1.23 s`.
    pub fn time(&self) -> String {
        format!("{:.2} s", self.elapsed.as_secs_f64())
    }

    /// `12.3 MiB`, or `?` when it could not be measured.
    pub fn peak(&self) -> String {
        self.peak_kib.map_or_else(
            || "?".to_owned(),
            |kib| format!("{:.1} MiB", kib as f64 / 1024.0),
        )
    }
}

/// Runs `runsheet ARGS` in the lab, measuring time and peak RSS.
pub fn measure(lab: &Lab, args: &[&str]) -> std::io::Result<Measured> {
    measure_command(lab, lab.command(args))
}

/// Runs a prepared command, measuring time and peak RSS: through
/// `/usr/bin/time` when the machine has it (exact: the kernel's maxrss of the
/// child), otherwise by polling the child's VmHWM.
pub fn measure_command(lab: &Lab, inner: Command) -> std::io::Result<Measured> {
    let time = Path::new("/usr/bin/time");
    let started = Instant::now();
    if time.exists() {
        let out = lab.path().join(".peak-rss");
        let mut outer = Command::new(time);
        outer
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&out)
            .arg(inner.get_program())
            .args(inner.get_args())
            .stdin(Stdio::null());
        if let Some(dir) = inner.get_current_dir() {
            outer.current_dir(dir);
        }
        for (name, value) in inner.get_envs() {
            match value {
                Some(value) => outer.env(name, value),
                None => outer.env_remove(name),
            };
        }
        let output = outer.output()?;
        let elapsed = started.elapsed();
        let peak_kib = std::fs::read_to_string(&out)
            .ok()
            .and_then(|text| text.lines().last()?.trim().parse().ok());
        let mut stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        // `time` adds a line when the command exits non-zero.
        if let Some(index) = stderr.rfind("Command exited with non-zero status") {
            stderr.truncate(index);
        }
        return Ok(Measured {
            run: Run {
                code: output.status.code(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr,
            },
            elapsed,
            peak_kib,
        });
    }
    let mut inner = inner;
    let mut child = inner
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = None;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let read = |pipe: Option<std::process::ChildStdout>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            }
            text
        })
    };
    let out_reader = read(stdout);
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = stderr {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        }
        text
    });
    let status = loop {
        if let Some(kib) = std::fs::read_to_string(&status_path).ok().and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        }) {
            peak_kib = Some(kib);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Measured {
        run: Run {
            code: status.code(),
            stdout: out_reader.join().unwrap_or_default(),
            stderr: err_reader.join().unwrap_or_default(),
        },
        elapsed: started.elapsed(),
        peak_kib,
    })
}

/// The first line of `text` holding `needle`, trimmed, for the tables.
pub fn line_with<'t>(text: &'t str, needle: &str) -> &'t str {
    text.lines()
        .find(|line| line.contains(needle))
        .map_or("", str::trim)
}

/// The headline of a refusal: the `×` line of a diagnostic, else the `FAILED` line.
pub fn headline(text: &str) -> &str {
    text.lines()
        .find(|line| line.trim_start().starts_with('×'))
        .or_else(|| text.lines().find(|line| line.contains("FAILED")))
        .map_or("", str::trim)
}
