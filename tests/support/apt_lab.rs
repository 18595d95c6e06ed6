//! An apt lab in a temporary directory: a local repository holding two
//! versions (1.0, 2.0) of the package `runsheet-fixture`, built with
//! `dpkg-deb`, and an apt configuration and dpkg database of its own, so real
//! `apt-get`, `dpkg` and `dpkg-query` can install and remove that package
//! without touching this machine's sources, lists, caches, logs or dpkg
//! database.
//!
//! Commands see the lab through two environment variables ([`AptLab::env`]):
//! `APT_CONFIG` (read by apt before anything else; it points every apt
//! directory, the configuration parts and dpkg's `--admindir` and `--log` into
//! the lab) and `DPKG_ADMINDIR` (read by `dpkg-query`). The package's only
//! file is [`AptLab::content_path`], inside the lab, holding `version 1.0` or
//! `version 2.0`. Include it with `#[path = ".../tests/support/apt_lab.rs"] mod apt_lab;`.
#![allow(dead_code, reason = "each including target uses a different part")]

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// What the lab's functions return on failure.
pub type LabResult<T> = Result<T, Box<dyn Error>>;

/// The package name in the lab's repository.
pub const PACKAGE: &str = "runsheet-fixture";

/// The versions in the lab's repository.
pub const VERSIONS: [&str; 2] = ["1.0", "2.0"];

/// A temporary apt repository, apt configuration and dpkg database.
pub struct AptLab {
    dir: tempfile::TempDir,
}

impl AptLab {
    /// Builds the packages, the repository index and the configuration, then runs `apt-get update`.
    pub fn new() -> LabResult<AptLab> {
        for tool in ["apt-get", "dpkg-deb", "dpkg-query", "sha256sum"] {
            if !on_path(tool) {
                return Err(format!("the apt lab needs `{tool}` (Debian or Ubuntu)").into());
            }
        }
        let lab = AptLab {
            dir: tempfile::Builder::new().prefix("apt-lab").tempdir()?,
        };
        lab.make_directories()?;
        let mut index = String::new();
        for version in VERSIONS {
            index.push_str(&lab.build_package(version)?);
            index.push('\n');
        }
        std::fs::write(lab.path("repo/Packages"), index)?;
        std::fs::write(
            lab.path("etc/sources.list"),
            format!("deb [trusted=yes] file:{} ./\n", lab.path("repo").display()),
        )?;
        std::fs::write(lab.apt_config(), lab.apt_config_text())?;
        lab.run(&["apt-get", "update"])?;
        Ok(lab)
    }

    /// Takes `version` out of the repository (as when a vendor keeps only the newest), then `apt-get update`.
    pub fn drop_version(&self, version: &str) -> LabResult<()> {
        let index = std::fs::read_to_string(self.path("repo/Packages"))?;
        let kept: Vec<&str> = index
            .split("\n\n")
            .filter(|stanza| {
                !stanza
                    .lines()
                    .any(|line| line == format!("Version: {version}"))
            })
            .collect();
        std::fs::write(self.path("repo/Packages"), kept.join("\n\n"))?;
        self.run(&["apt-get", "update"])?;
        Ok(())
    }

    /// Leaves `version` unpacked but not configured (`iU`), as an upgrade cut short does.
    pub fn unpack_only(&self, version: &str) -> LabResult<()> {
        let deb = self
            .path("repo")
            .join(format!("{PACKAGE}_{version}_all.deb"));
        let admindir = format!("--admindir={}", self.dpkg_admindir().display());
        let log = format!("--log={}", self.path("dpkg.log").display());
        let deb = deb.display().to_string();
        self.run(&["dpkg", &admindir, &log, "--unpack", &deb])?;
        Ok(())
    }

    /// The apt configuration file (`APT_CONFIG`).
    pub fn apt_config(&self) -> PathBuf {
        self.path("apt.conf")
    }

    /// The lab's dpkg database (`DPKG_ADMINDIR`).
    pub fn dpkg_admindir(&self) -> PathBuf {
        self.path("dpkg")
    }

    /// The file the package installs.
    pub fn content_path(&self) -> PathBuf {
        self.path("installed/content")
    }

    /// The installed package's file, or `None` when it is not there.
    pub fn content(&self) -> Option<String> {
        std::fs::read_to_string(self.content_path()).ok()
    }

    /// The variables that point apt and dpkg at the lab.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("APT_CONFIG".into(), self.apt_config().display().to_string()),
            (
                "DPKG_ADMINDIR".into(),
                self.dpkg_admindir().display().to_string(),
            ),
        ]
    }

    /// The package's installed version in the lab's database, asked of `dpkg-query` directly.
    pub fn installed_version(&self) -> LabResult<Option<String>> {
        let output = self
            .command("dpkg-query")
            .args(["-W", "-f", "${db:Status-Abbrev}|${Version}", PACKAGE])
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        match stdout.split_once('|') {
            Some((status, version)) if status.starts_with("ii") => Ok(Some(version.to_owned())),
            _ => Ok(None),
        }
    }

    /// Runs a command with the lab's environment; it must exit 0.
    pub fn run(&self, argv: &[&str]) -> LabResult<String> {
        let (program, arguments) = argv.split_first().ok_or("no command")?;
        let output = self.command(program).args(arguments).output()?;
        if !output.status.success() {
            return Err(format!(
                "`{}` failed ({}): {}",
                argv.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// A command with the lab's environment and no questions asked.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .envs(self.env())
            .env("DEBIAN_FRONTEND", "noninteractive");
        command
    }

    /// A path inside the lab.
    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The empty directories apt and dpkg expect, and an empty dpkg database.
    fn make_directories(&self) -> LabResult<()> {
        for directory in [
            "repo",
            "build",
            "dpkg/info",
            "dpkg/updates",
            "dpkg/triggers",
            "apt/lists/partial",
            "apt/state",
            "apt/cache/archives/partial",
            "apt/log",
            "etc/sources.list.d",
            "etc/apt.conf.d",
            "etc/preferences.d",
        ] {
            std::fs::create_dir_all(self.path(directory))?;
        }
        for file in ["dpkg/status", "dpkg/available", "etc/main.conf"] {
            std::fs::write(self.path(file), "")?;
        }
        Ok(())
    }

    /// Builds the package at `version` into the repository; returns its `Packages` stanza.
    fn build_package(&self, version: &str) -> LabResult<String> {
        let tree = self.path(&format!("build/{version}"));
        std::fs::create_dir_all(tree.join("DEBIAN"))?;
        let control = format!(
            "Package: {PACKAGE}\nVersion: {version}\nArchitecture: all\n\
             Maintainer: runsheet tests <tests@example.invalid>\n\
             Description: fixture package of the runsheet apt lab\n"
        );
        std::fs::write(tree.join("DEBIAN/control"), &control)?;
        let relative = self.content_path();
        let relative = relative.strip_prefix("/")?;
        let content = tree.join(relative);
        std::fs::create_dir_all(content.parent().ok_or("no parent")?)?;
        std::fs::write(&content, format!("version {version}\n"))?;
        let file_name = format!("{PACKAGE}_{version}_all.deb");
        let deb = self.path("repo").join(&file_name);
        let tree_text = tree.display().to_string();
        let deb_text = deb.display().to_string();
        self.run(&[
            "dpkg-deb",
            "--root-owner-group",
            "--build",
            &tree_text,
            &deb_text,
        ])?;
        let size = std::fs::metadata(&deb)?.len();
        let sha256 = self.run(&["sha256sum", &deb_text])?;
        let sha256 = sha256.split_whitespace().next().ok_or("no sha256")?;
        let mut stanza = control;
        writeln!(stanza, "Filename: ./{file_name}")?;
        writeln!(stanza, "Size: {size}")?;
        writeln!(stanza, "SHA256: {sha256}")?;
        Ok(stanza)
    }

    /// The configuration that keeps apt and dpkg inside the lab.
    fn apt_config_text(&self) -> String {
        let at = |relative: &str| self.path(relative).display().to_string();
        // APT_CONFIG is read first, so naming the parts directory and main
        // file here keeps /etc/apt/apt.conf.d (and its hooks) out.
        format!(
            "Dir::Etc::Parts \"{parts}\";\n\
             Dir::Etc::main \"{main}\";\n\
             Dir::Etc::SourceList \"{sources}\";\n\
             Dir::Etc::SourceParts \"{source_parts}\";\n\
             Dir::Etc::Preferences \"{preferences}\";\n\
             Dir::Etc::PreferencesParts \"{preference_parts}\";\n\
             Dir::State \"{state}\";\n\
             Dir::State::Lists \"{lists}\";\n\
             Dir::State::status \"{status}\";\n\
             Dir::Cache \"{cache}\";\n\
             Dir::Log \"{log}\";\n\
             APT::Sandbox::User \"root\";\n\
             DPkg::Options {{\"--admindir={admindir}\"; \"--log={dpkg_log}\";}};\n",
            parts = at("etc/apt.conf.d"),
            main = at("etc/main.conf"),
            sources = at("etc/sources.list"),
            source_parts = at("etc/sources.list.d"),
            preferences = at("etc/preferences"),
            preference_parts = at("etc/preferences.d"),
            state = at("apt/state"),
            lists = at("apt/lists"),
            status = at("dpkg/status"),
            cache = at("apt/cache"),
            log = at("apt/log"),
            admindir = at("dpkg"),
            dpkg_log = at("dpkg.log"),
        )
    }
}

/// Size and modification time of every file of this machine's apt and dpkg
/// state (`/etc/apt`, `/var/lib/dpkg`, `/var/lib/apt`, `/var/cache/apt`,
/// `/var/log/apt`, `/var/log/dpkg.log`), to show a test left them alone.
pub fn machine_apt_state() -> LabResult<BTreeMap<PathBuf, (u64, SystemTime)>> {
    let mut state = BTreeMap::new();
    for root in [
        "/etc/apt",
        "/var/lib/dpkg",
        "/var/lib/apt",
        "/var/cache/apt",
        "/var/log/apt",
        "/var/log/dpkg.log",
    ] {
        record(Path::new(root), &mut state)?;
    }
    Ok(state)
}

/// Adds `path` (and what is under it) to `state`; nothing there is recorded as nothing.
fn record(path: &Path, state: &mut BTreeMap<PathBuf, (u64, SystemTime)>) -> LabResult<()> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    state.insert(path.to_owned(), (metadata.len(), metadata.modified()?));
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path)? {
            record(&entry?.path(), state)?;
        }
    }
    Ok(())
}

/// Whether `program` is found on `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|directory| directory.join(program).is_file())
    })
}
