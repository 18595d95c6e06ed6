//! A generated estate for load tests and the estate benchmark: `hosts` hosts
//! in group `estate`, a Kong gateway (a `runsheet twin kong` process), and a
//! playbook of ten steps per host — host.exec reads, host.file writes,
//! host.exec appends to a per-host log, a Kong consumer written and read back
//! — plus the checks that every step ran exactly once: in the journal
//! (`runsheet show RUN --output json`) and in its side effects (files, log
//! lines, consumers on the twin).
//!
//! Included with `#[path]` by `tests/run/estate.rs` and `benches/estate.rs`.

#![allow(dead_code, reason = "each including target uses a different part")]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Action steps per host.
pub const STEPS_PER_HOST: usize = 10;
/// host.file writes per host (s02, s05, s09).
pub const FILES_PER_HOST: usize = 3;
/// The lines each host's `ran.log` gets (s06 and s10 append one each).
pub const LOG_LINES: [&str; 2] = ["s06", "s10"];

/// How the hosts are reached.
pub enum Transport {
    /// Every host is this machine (`transport: local`).
    Local,
    /// Every host is an sshd on loopback; host `i` uses `ports[i % ports.len()]`.
    Ssh {
        /// The sshd ports, shared round-robin by the hosts.
        ports: Vec<u16>,
        /// The login user.
        user: String,
        /// The client's private key.
        identity: String,
        /// known_hosts listing every server.
        known_hosts: String,
    },
}

/// The name of host `index` (0-based): `h001`, `h002`, ...
pub fn host_name(index: usize) -> String {
    format!("h{:03}", index + 1)
}

/// The environment: `hosts` hosts in group `estate` and gateway `kong` at `admin_url`.
pub fn environment(hosts: usize, admin_url: &str, transport: &Transport) -> String {
    let mut text = format!(
        "runsheet: 1\nname: estate\ngateways:\n  kong: {{type: kong, admin_url: \"{admin_url}\"}}\nhosts:\n"
    );
    for index in 0..hosts {
        let name = host_name(index);
        match transport {
            Transport::Local => {
                let _ = writeln!(text, "  {name}: {{transport: local, groups: [estate]}}");
            }
            Transport::Ssh { ports, user, .. } => {
                let port = ports.get(index % ports.len().max(1)).copied().unwrap_or(22);
                let _ = writeln!(
                    text,
                    "  {name}: {{address: 127.0.0.1, port: {port}, user: {user}, groups: [estate]}}"
                );
            }
        }
    }
    if let Transport::Ssh {
        identity,
        known_hosts,
        ..
    } = transport
    {
        let _ = writeln!(
            text,
            "ssh: {{identity: \"{identity}\", known_hosts: \"{known_hosts}\", connect_timeout: 10s}}"
        );
    }
    text
}

/// The playbook: one for_each over the estate, ten steps per host, at most
/// `concurrency` steps in flight. Files land in `files/HOST/`.
pub fn playbook(files: &Path, concurrency: usize) -> String {
    let dir = format!("{}/{{{{ host.name }}}}", files.display());
    format!(
        r#"runsheet: 1
name: estate
concurrency: {concurrency}
steps:
  - id: estate
    for_each: "{{{{ hosts('estate') }}}}"
    as: host
    steps:
      - {{id: s01, action: host.exec, on: "{{{{ host }}}}", with: {{argv: [uname, -n], read_only: true}}}}
      - {{id: s02, action: host.file, on: "{{{{ host }}}}", with: {{path: "{dir}/a.conf", content: "a {{{{ host.name }}}}\n"}}}}
      - {{id: s03, action: host.exec, on: "{{{{ host }}}}", with: {{argv: [cat, "{dir}/a.conf"], read_only: true}}}}
      - {{id: s04, action: kong.entity, with: {{kind: consumer, match: {{username: "estate-{{{{ host.name }}}}"}}, spec: {{custom_id: "{{{{ host.name }}}}"}}}}}}
      - {{id: s05, action: host.file, on: "{{{{ host }}}}", with: {{path: "{dir}/b.conf", content: "b {{{{ host.name }}}}\n"}}}}
      - {{id: s06, action: host.exec, on: "{{{{ host }}}}", with: {{command: "echo s06 >> {dir}/ran.log"}}}}
      - {{id: s07, action: http, with: {{url: "{{{{ env.gateways.kong.admin_url }}}}/consumers/estate-{{{{ host.name }}}}", extract: {{custom_id: /custom_id}}}}}}
      - {{id: s08, action: host.exec, on: "{{{{ host }}}}", with: {{argv: [stat, -c, "%s", "{dir}/b.conf"], read_only: true}}}}
      - {{id: s09, action: host.file, on: "{{{{ host }}}}", with: {{path: "{dir}/c.conf", content: "c {{{{ steps.s07.outputs.custom_id }}}}\n"}}}}
      - {{id: s10, action: host.exec, on: "{{{{ host }}}}", with: {{command: "echo s10 >> {dir}/ran.log"}}}}
"#
    )
}

/// Creates `files/HOST/` for every host (host.file does not create directories).
pub fn prepare_files(files: &Path, hosts: usize) -> std::io::Result<()> {
    for index in 0..hosts {
        std::fs::create_dir_all(files.join(host_name(index)))?;
    }
    Ok(())
}

/// Checks the side effects on the hosts: every file with its content, and
/// each `ran.log` holding s06 and s10 once each. Returns the side effects
/// counted (files + log lines), or what is wrong (the first few problems).
pub fn check_files(files: &Path, hosts: usize) -> Result<usize, String> {
    let mut problems = Vec::new();
    let mut counted = 0;
    for index in 0..hosts {
        let name = host_name(index);
        let dir = files.join(&name);
        for (file, content) in [
            ("a.conf", format!("a {name}\n")),
            ("b.conf", format!("b {name}\n")),
            ("c.conf", format!("c {name}\n")),
        ] {
            match std::fs::read_to_string(dir.join(file)) {
                Ok(text) if text == content => counted += 1,
                Ok(text) => problems.push(format!("{name}/{file} holds {text:?}")),
                Err(e) => problems.push(format!("{name}/{file}: {e}")),
            }
        }
        let log = std::fs::read_to_string(dir.join("ran.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        if lines == LOG_LINES {
            counted += lines.len();
        } else {
            problems.push(format!("{name}/ran.log holds {lines:?}, not {LOG_LINES:?}"));
        }
    }
    if problems.is_empty() {
        Ok(counted)
    } else {
        let total = problems.len();
        problems.truncate(5);
        Err(format!("{total} problem(s): {}", problems.join("; ")))
    }
}

/// What a run's journal says about the estate's steps.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JournalCount {
    /// `step_succeeded` records of body steps (`estate[HOST].sNN`).
    pub succeeded: usize,
    /// Distinct body steps among them.
    pub distinct: usize,
    /// Records of failed steps (`step_failed`).
    pub failed: usize,
    /// Body steps recorded as succeeded more than once.
    pub duplicated: Vec<String>,
    /// The run's final state.
    pub state: String,
}

/// Counts the body steps in the document `runsheet show RUN --output json` prints.
pub fn count_journal(show: &serde_json::Value) -> JournalCount {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut count = JournalCount {
        state: show["state"].as_str().unwrap_or_default().to_owned(),
        ..JournalCount::default()
    };
    for record in show["journal"].as_array().into_iter().flatten() {
        let kind = record["kind"].as_str().unwrap_or_default();
        let step = record["step"].as_str().unwrap_or_default();
        if kind == "step_failed" {
            count.failed += 1;
        }
        if kind == "step_succeeded" && step.starts_with("estate[") && step.contains("].") {
            count.succeeded += 1;
            *seen.entry(step.to_owned()).or_default() += 1;
        }
    }
    count.distinct = seen.len();
    count.duplicated = seen
        .into_iter()
        .filter(|(_, times)| *times > 1)
        .map(|(step, _)| step)
        .collect();
    count
}

/// Counts the twin's consumers named `estate-*` (from `GET /consumers`, every page).
pub fn estate_consumers(pages: &[serde_json::Value]) -> usize {
    pages
        .iter()
        .flat_map(|page| page["data"].as_array().into_iter().flatten())
        .filter(|consumer| {
            consumer["username"]
                .as_str()
                .is_some_and(|name| name.starts_with("estate-"))
        })
        .count()
}
