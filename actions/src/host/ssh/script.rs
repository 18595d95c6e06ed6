//! The shell text runsheet sends to a host over SSH.
//!
//! Every command is sent as `printf MARKER "$$"; exec sh -c RUNNER runsheet
//! SCRIPT`: the login shell prints its pid after a marker — sshd made it the
//! leader of a new session, so the pid is also the process group of everything
//! the command starts — then becomes a POSIX `sh` (RUNNER) that runs the script
//! in a child `sh`, prints an end marker (with a token new for each command) on
//! both streams, and exits with the script's status. Whatever the login shell printed before the first marker (a
//! banner from `.bashrc`) is not the command's output and is dropped. The end
//! markers let the transport read all of the output before it asks for the exit
//! status (openssh's `wait` closes the streams as soon as the status arrives,
//! output in flight or not), even while a background process holds them open.
//! A timed-out or abandoned command is stopped by its group ([`kill_group`]).
//! The login shell only has to understand `printf` and `exec`, which bash,
//! dash, zsh, ksh and busybox sh all do.

use std::path::Path;

use super::super::transport::{ExecRequest, FileSpec, Program, TransportError};

/// A word quoted for a POSIX shell: `it's` becomes `'it'\''s'`.
pub fn quote(word: &str) -> String {
    let mut quoted = String::with_capacity(word.len() + 2);
    quoted.push('\'');
    for c in word.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// A path quoted for a POSIX shell.
fn quote_path(path: &Path) -> String {
    quote(&path.to_string_lossy())
}

/// What precedes the process group id on the first line runsheet reads.
pub const GROUP_MARKER: &[u8] = b"\x1erunsheet-pgid:";

/// The end marker of a command whose token is `token`: printed on standard output and
/// standard error once the script has ended, on a line of its own. The token is new for
/// each command, so no output (a file read, a log) can hold the marker by chance.
pub fn end_marker(token: &str) -> Vec<u8> {
    format!("\x1erunsheet-end:{token}\n").into_bytes()
}

/// The line sent to the host: print the process group after the marker, then become
/// a POSIX `sh` that runs `script` in a child `sh`, prints the end marker of `token`
/// (letters and digits) on both streams, and exits as the script did.
pub fn wrapped(script: &str, token: &str) -> String {
    let runner = format!(
        "sh -c \"$1\"; s=$?; printf '\\036runsheet-end:%s\\n' {token}; printf '\\036runsheet-end:%s\\n' {token} >&2; exit $s"
    );
    format!(
        "printf '\\036runsheet-pgid:%s\\n' \"$$\"; exec sh -c {} runsheet {}",
        quote(&runner),
        quote(script)
    )
}

/// The process group id in a line that holds the marker, and whether the line holds it.
pub fn group_in(line: &[u8]) -> Option<Option<i32>> {
    let start = line
        .windows(GROUP_MARKER.len())
        .position(|window| window == GROUP_MARKER)?;
    let rest = &line[start + GROUP_MARKER.len()..];
    let id = std::str::from_utf8(rest)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
        .filter(|id| *id > 1);
    Some(id)
}

/// The script of a request: enter its directory, export its variables, run its program.
pub fn exec_script(request: &ExecRequest) -> Result<String, TransportError> {
    let mut script = String::new();
    if let Some(directory) = &request.cwd {
        script.push_str(&format!("cd -- {} || exit 126\n", quote_path(directory)));
    }
    for (name, value) in &request.env {
        if !is_variable_name(name) {
            return Err(TransportError::Spawn {
                command: request.program.to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("`{name}` is not a valid environment variable name"),
                ),
            });
        }
        script.push_str(&format!("export {name}={}\n", quote(value)));
    }
    match &request.program {
        Program::Argv(argv) if argv.is_empty() => {
            return Err(TransportError::Spawn {
                command: String::new(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "argv is empty"),
            });
        }
        Program::Argv(argv) => {
            script.push_str("exec");
            for word in argv {
                script.push(' ');
                script.push_str(&quote(word));
            }
        }
        Program::Shell(line) => script.push_str(line),
    }
    Ok(script)
}

/// Whether `name` can be exported by a POSIX shell.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Prints `absent`, or `file MODE USER GROUP UID GID SIZE` and then the file's bytes.
pub fn read_file(path: &Path) -> String {
    format!(
        "p={}\n\
         if [ ! -e \"$p\" ]; then echo absent; exit 0; fi\n\
         if [ ! -f \"$p\" ]; then echo \"$p: not a regular file\" >&2; exit 3; fi\n\
         stat -L -c 'file %a %U %G %u %g %s' -- \"$p\" && exec cat -- \"$p\"",
        quote_path(path)
    )
}

/// Writes standard input to a temporary file beside `path`, checks that all of
/// the content's bytes arrived, sets its owner and mode, syncs it, and renames
/// it over `path`; the temporary file never stays, and input cut short replaces
/// nothing. Temporary files of `path` older than an hour (left by a writer whose
/// connection died mid-write) are removed afterwards.
pub fn write_file(path: &Path, file: &FileSpec) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let owner = match &file.owner {
        Some(owner) => format!("chown -- {} \"$t\"\n", quote(&owner.to_string())),
        None => String::new(),
    };
    format!(
        "set -e\n\
         p={path}\n\
         if [ -L \"$p\" ]; then echo \"it is a symbolic link to $(readlink -- \"$p\"); {refused}\" >&2; exit 3; fi\n\
         t=$(mktemp -- \"$(dirname -- \"$p\")\"/{temporary})\n\
         trap 'rm -f -- \"$t\"' EXIT\n\
         cat > \"$t\"\n\
         n=$(wc -c < \"$t\")\n\
         if [ \"$((n))\" -ne {size} ]; then echo \"only $((n)) of {size} bytes arrived; the file was left as it was\" >&2; exit 3; fi\n\
         {owner}\
         chmod {mode:o} \"$t\"\n\
         sync -- \"$t\" 2>/dev/null || sync\n\
         mv -f -- \"$t\" \"$p\"\n\
         trap - EXIT\n\
         find \"$(dirname -- \"$p\")\" -maxdepth 1 -name {debris} -mmin +60 -exec rm -f -- {{}} + 2>/dev/null || true",
        path = quote_path(path),
        temporary = quote(&format!(".{name}.runsheet-XXXXXX")),
        debris = quote(&format!(".{}.runsheet-??????", glob_escape(&name))),
        mode = file.mode,
        size = file.content.len(),
        refused = super::super::transport::LINK_REFUSED,
    )
}

/// A file name with the characters `find -name` treats as a pattern escaped.
fn glob_escape(name: &str) -> String {
    let mut escaped = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Removes the file at `path`; nothing there is not an error.
pub fn remove_file(path: &Path) -> String {
    format!("rm -f -- {}", quote_path(path))
}

/// Prints `yes` when anything is at `path`, `no` otherwise.
pub fn path_exists(path: &Path) -> String {
    format!(
        "p={}; if [ -e \"$p\" ] || [ -L \"$p\" ]; then echo yes; else echo no; fi",
        quote_path(path)
    )
}

/// Prints `open` or `closed` for `host:port`, with bash's /dev/tcp or nc.
pub fn port_open(host: &str, port: u16) -> String {
    format!(
        "h={host}; p={port}\n\
         if command -v bash >/dev/null 2>&1; then\n\
         \x20 if bash -c 'exec 3<>\"/dev/tcp/$0/$1\"' \"$h\" \"$p\" 2>/dev/null; then echo open; else echo closed; fi\n\
         elif command -v nc >/dev/null 2>&1; then\n\
         \x20 if nc -z -w 3 \"$h\" \"$p\" 2>/dev/null; then echo open; else echo closed; fi\n\
         else echo 'the host has neither bash nor nc to check a port' >&2; exit 3; fi",
        host = quote(host),
    )
}

/// Prints the host name, then the kernel release.
pub const SYSTEM_NAMES: &str = "uname -n && uname -r";

/// Stops the process group `group`: TERM, two seconds to exit, then KILL.
pub fn kill_group(group: i32) -> String {
    format!(
        "g={group}\n\
         kill -TERM -$g 2>/dev/null || kill -s TERM -- -$g 2>/dev/null || exit 0\n\
         i=0\n\
         while [ $i -lt 20 ] && kill -0 -$g 2>/dev/null; do sleep 0.1; i=$((i + 1)); done\n\
         kill -KILL -$g 2>/dev/null; true"
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::host::transport::Ownership;

    /// Runs `script` with the local `sh` and returns its stdout.
    fn sh(script: &str, stdin: &[u8]) -> Result<(i32, String, String), Box<dyn std::error::Error>> {
        use std::io::Write as _;
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        child.stdin.take().ok_or("no stdin")?.write_all(stdin)?;
        let output = child.wait_with_output()?;
        Ok((
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }

    #[test]
    fn quoting_survives_the_shell() -> Result<(), Box<dyn std::error::Error>> {
        for word in [
            "plain",
            "it's",
            "a b",
            "$HOME",
            "`id`",
            "\"q\"",
            "back\\slash",
            "",
            "line\nbreak",
        ] {
            let (_, out, _) = sh(&format!("printf '%s' {}", quote(word)), b"")?;
            assert_eq!(out, word);
        }
        Ok(())
    }

    #[test]
    fn the_wrapper_prints_the_pid_then_runs_the_request() -> Result<(), Box<dyn std::error::Error>>
    {
        let mut request = ExecRequest::argv(["printf", "%s|%s", "a'b", "$X"]);
        request.env = BTreeMap::from([("X".to_owned(), "it's".to_owned())]);
        request.cwd = Some("/".into());
        let (code, out, err) = sh(&wrapped(&exec_script(&request)?, "t0k3n"), b"")?;
        assert_eq!(code, 0);
        assert_eq!(err.as_bytes(), end_marker("t0k3n"), "the end marker closes stderr");
        let (pid, rest) = out.split_once('\n').ok_or("no pid line")?;
        assert!(matches!(group_in(pid.as_bytes()), Some(Some(_))), "{pid:?}");
        assert_eq!(rest, "a'b|$X\x1erunsheet-end:t0k3n\n", "the end marker closes stdout");
        assert_eq!(
            group_in(b"Welcome\x1erunsheet-pgid:4321\n"),
            Some(Some(4321))
        );
        assert_eq!(group_in(b"Welcome to node1\n"), None);

        let mut shell = ExecRequest::shell("echo \"$X\" && pwd");
        shell.env = BTreeMap::from([("X".to_owned(), "it's".to_owned())]);
        shell.cwd = Some("/tmp".into());
        let (_, out, _) = sh(&wrapped(&exec_script(&shell)?, "t0k3n"), b"")?;
        assert!(out.ends_with("\nit's\n/tmp\n\x1erunsheet-end:t0k3n\n"), "{out}");

        // Standard input reaches the script; its status and stderr come back, then the marker.
        let (code, out, err) = sh(
            &wrapped("cat; echo 'it'\\''s bad' >&2; exit 7", "t0k3n"),
            b"input",
        )?;
        assert_eq!(
            (code, out.split_once('\n').map(|(_, rest)| rest)),
            (7, Some("input\x1erunsheet-end:t0k3n\n"))
        );
        assert_eq!(err, "it's bad\n\x1erunsheet-end:t0k3n\n");

        let mut bad = ExecRequest::shell("true");
        bad.env = BTreeMap::from([("A-B".to_owned(), "x".to_owned())]);
        assert!(exec_script(&bad).is_err());
        Ok(())
    }

    #[test]
    fn files_are_read_written_and_removed_by_scripts() -> Result<(), Box<dyn std::error::Error>> {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("it's a file");
        let (_, out, _) = sh(&read_file(&path), b"")?;
        assert_eq!(out, "absent\n");
        let (_, out, _) = sh(&path_exists(&path), b"")?;
        assert_eq!(out, "no\n");

        let spec = FileSpec {
            content: b"one\ntwo".to_vec(),
            mode: 0o640,
            owner: Some(Ownership::parse("root")?),
        };
        let (code, _, err) = sh(&write_file(&path, &spec), &spec.content)?;
        assert_eq!(code, 0, "{err}");
        let (_, out, _) = sh(&read_file(&path), b"")?;
        let (header, content) = out.split_once('\n').ok_or("no header")?;
        assert_eq!(header, "file 640 root root 0 0 7");
        assert_eq!(content, "one\ntwo");
        assert_eq!(
            std::fs::read_dir(directory.path())?.count(),
            1,
            "a temporary file stayed"
        );

        let unknown = FileSpec {
            content: b"other".to_vec(),
            owner: Some(Ownership::parse("no-such-user-xyz")?),
            ..spec.clone()
        };
        let (code, _, err) = sh(&write_file(&path, &unknown), &unknown.content)?;
        assert_ne!(code, 0);
        assert!(err.contains("invalid user"), "{err}");
        assert_eq!(
            std::fs::read(&path)?,
            b"one\ntwo",
            "a failed write changed the file"
        );
        assert_eq!(
            std::fs::read_dir(directory.path())?.count(),
            1,
            "a temporary file stayed"
        );

        // Input cut short (a connection that dropped mid-write) replaces nothing.
        let (code, _, err) = sh(&write_file(&path, &spec), b"one")?;
        assert_eq!(code, 3);
        assert!(err.contains("only 3 of 7 bytes arrived"), "{err}");
        assert_eq!(
            std::fs::read(&path)?,
            b"one\ntwo",
            "a short write changed the file"
        );
        assert_eq!(
            std::fs::read_dir(directory.path())?.count(),
            1,
            "a temporary file stayed"
        );

        // Debris of a writer that died an hour ago goes with the next write; a fresh one stays.
        let old = directory.path().join(".it's a file.runsheet-AbC123");
        let fresh = directory.path().join(".it's a file.runsheet-XyZ789");
        std::fs::write(&old, "debris")?;
        std::fs::write(&fresh, "in flight")?;
        let touched = std::process::Command::new("touch")
            .args(["-d", "2 hours ago"])
            .arg(&old)
            .status()?;
        assert!(touched.success());
        let (code, _, err) = sh(&write_file(&path, &spec), &spec.content)?;
        assert_eq!(code, 0, "{err}");
        assert!(!old.exists(), "old debris stayed");
        assert!(fresh.exists(), "a fresh temporary file was removed");
        std::fs::remove_file(&fresh)?;

        let (_, out, _) = sh(&path_exists(&path), b"")?;
        assert_eq!(out, "yes\n");
        let (code, _, _) = sh(&remove_file(&path), b"")?;
        assert_eq!(code, 0);
        assert!(!path.exists());
        let (code, _, _) = sh(&remove_file(&path), b"")?;
        assert_eq!(code, 0, "removing nothing is not an error");

        let (code, _, err) = sh(&read_file(directory.path()), b"")?;
        assert_eq!(code, 3);
        assert!(err.contains("not a regular file"), "{err}");
        Ok(())
    }

    #[test]
    fn a_process_group_is_stopped_by_the_hosts_sh() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::process::CommandExt as _;
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()?;
        let group = i32::try_from(child.id())?;
        let (code, _, err) = sh(&kill_group(group), b"")?;
        assert_eq!(code, 0, "{err}");
        let status = child.wait()?;
        assert!(!status.success(), "the group survived");
        Ok(())
    }

    #[test]
    fn ports_are_probed_with_the_hosts_tools() -> Result<(), Box<dyn std::error::Error>> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let (_, out, _) = sh(&port_open("127.0.0.1", port), b"")?;
        assert_eq!(out, "open\n");
        drop(listener);
        let (_, out, _) = sh(&port_open("127.0.0.1", port), b"")?;
        assert_eq!(out, "closed\n");
        Ok(())
    }
}
