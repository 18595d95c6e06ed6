//! A lab in a temporary directory: environment, playbooks, the binary, and a
//! key-value HTTP server that counts requests by method.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// What every test returns.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

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
    /// Both streams, for assertion messages.
    pub fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }

    /// Asserts that the run ended with exit code `code` and that its standard output holds
    /// each of `texts`.
    #[track_caller]
    pub fn assert_ended(&self, code: i32, texts: &[&str]) {
        assert_eq!(self.code, Some(code), "{}", self.all());
        for text in texts {
            assert!(self.stdout.contains(text), "{text:?} missing: {}", self.all());
        }
    }

    /// The run id named on the first line (`run ID: ...`).
    pub fn run_id(&self) -> Option<String> {
        self.stdout.lines().find_map(|line| {
            let rest = line.split("  ").nth(1).unwrap_or(line);
            let rest = ["run ", "resuming run ", "rolling back run "]
                .iter()
                .find_map(|prefix| rest.strip_prefix(prefix))?;
            rest.split(':').next().map(str::to_owned)
        })
    }
}

/// A temporary lab directory.
pub struct Lab {
    dir: tempfile::TempDir,
}

/// The lab's environment: this machine as host `me` (group `nodes`).
pub const ENVIRONMENT: &str = "runsheet: 1
name: lab
vars: {region: lab-1}
hosts:
  me: {transport: local, groups: [nodes]}
  me2: {transport: local, groups: [nodes]}
";

impl Lab {
    /// A lab with the environment file `env.yaml`.
    pub fn new() -> std::io::Result<Lab> {
        let lab = Lab {
            dir: tempfile::tempdir()?,
        };
        lab.write("env.yaml", ENVIRONMENT)?;
        std::fs::create_dir_all(lab.path().join("data"))?;
        Ok(lab)
    }

    /// A lab whose environment names its data directory as `env.data`.
    pub fn with_data() -> std::io::Result<Lab> {
        let lab = Lab::new()?;
        let text = ENVIRONMENT.replace(
            "vars: {region: lab-1}",
            &format!("vars: {{region: lab-1, data: \"{}\"}}", lab.data().display()),
        );
        lab.write("env.yaml", &text)?;
        Ok(lab)
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory playbooks write into.
    pub fn data(&self) -> PathBuf {
        self.path().join("data")
    }

    /// Writes a file in the lab.
    pub fn write(&self, name: &str, text: &str) -> std::io::Result<PathBuf> {
        let path = self.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// The command for `runsheet ARGS` in the lab, without colour or CI markers.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_runsheet"));
        command
            .args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null());
        command
    }

    /// Runs `runsheet ARGS` to the end.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> std::io::Result<Run> {
        self.run_with(self.command(args))
    }

    /// Runs a prepared command to the end.
    pub fn run_with(&self, mut command: Command) -> std::io::Result<Run> {
        let output = command.output()?;
        Ok(Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Starts `runsheet ARGS` with piped output.
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> std::io::Result<Child> {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    }

    /// The id of the lab's only run (directories being created start with `.`).
    pub fn only_run(&self) -> Option<String> {
        std::fs::read_dir(self.path().join(".runsheet/runs"))
            .ok()?
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .find(|name| !name.starts_with('.'))
    }

    /// Every file under the data directory with its bytes and mode.
    pub fn tree(&self) -> std::io::Result<BTreeMap<String, (Vec<u8>, u32)>> {
        use std::os::unix::fs::PermissionsExt as _;
        let mut tree = BTreeMap::new();
        for entry in std::fs::read_dir(self.data())? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_file() {
                tree.insert(
                    entry.file_name().to_string_lossy().into_owned(),
                    (std::fs::read(entry.path())?, meta.permissions().mode() & 0o7777),
                );
            }
        }
        Ok(tree)
    }

    /// Every file the run left in the lab (state dir, reports), as text.
    pub fn artefacts(&self) -> std::io::Result<Vec<(PathBuf, String)>> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) -> std::io::Result<()> {
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                if path.is_dir() {
                    walk(&path, out)?;
                } else {
                    out.push((path.clone(), String::from_utf8_lossy(&std::fs::read(&path)?).into_owned()));
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        walk(self.path(), &mut out)?;
        Ok(out)
    }
}

/// A key-value HTTP server on loopback: `PUT /kv/K` stores the body, `DELETE
/// /kv/K` removes it, `GET /kv` lists; every request is counted by method.
pub struct KvServer {
    /// Base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    state: Arc<Mutex<KvState>>,
}

/// The server's contents and counters.
#[derive(Debug, Default, Clone)]
pub struct KvState {
    /// Stored values.
    pub values: BTreeMap<String, String>,
    /// Requests by method.
    pub methods: BTreeMap<String, u32>,
}

impl KvServer {
    /// Starts the server on a free loopback port.
    pub fn start() -> std::io::Result<KvServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let state: Arc<Mutex<KvState>> = Arc::default();
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
        });
        Ok(KvServer { url, state })
    }

    /// A copy of the contents and counters.
    pub fn state(&self) -> KvState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn serve(stream: TcpStream, state: &Mutex<KvState>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let (status, reply) = {
            let mut state = state.lock().map_err(|_| std::io::Error::other("poisoned"))?;
            *state.methods.entry(method.clone()).or_default() += 1;
            let key = path.strip_prefix("/kv/").map(str::to_owned);
            match (method.as_str(), key) {
                ("PUT", Some(key)) => {
                    state.values.insert(key, String::from_utf8_lossy(&body).into_owned());
                    (200, "{\"ok\":true}".to_owned())
                }
                ("DELETE", Some(key)) => {
                    state.values.remove(&key);
                    (200, "{\"ok\":true}".to_owned())
                }
                ("GET", _) => (200, serde_json::to_string(&state.values).unwrap_or_default()),
                _ => (404, "{\"message\":\"not found\"}".to_owned()),
            }
        };
        write!(
            stream,
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        )?;
        stream.flush()?;
    }
}
