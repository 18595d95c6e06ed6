//! [`HostPackage`]: `host.package`, a package at a version, installed with apt
//! or dnf.
//!
//! It reads the installed version first, with a read-only query (`dpkg-query`,
//! `rpm -q`), and installs only when it differs from the wanted one. Without
//! `version` the wanted version is the newest available: apt names it
//! (`apt-cache policy`), dnf does not, so there the step installs or upgrades
//! and reports a change when the installed version moved. Its undo record
//! ([`UndoRecord`]) is the version installed before, or its absence; `undo`
//! reinstalls that version (downgrading if need be) or removes the package.
//!
//! The work is done by [`plan_with`], [`apply_with`], [`undo_with`] and
//! [`probe_with`], which take the transport, so a test can hand them one that
//! sets extra environment variables.

use std::cmp::Ordering;
use std::time::Duration;

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, Prepared, Probe, StepContext,
    TargetKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::exec::{STDERR_TAIL_LINES, run_checked};
use super::transport::{self, ExecOutput, ExecRequest, Transport};
use super::{FAMILY, HostPackageArguments, PackageManager};
use crate::arguments::parse;

/// The action's type name.
pub const NAME: &str = "host.package";

/// `host.package`: installs a package version; undo reinstalls the previous version.
#[derive(Debug, Clone)]
pub struct HostPackage {
    spec: ActionSpec,
}

impl Default for HostPackage {
    fn default() -> Self {
        Self::new()
    }
}

impl HostPackage {
    /// The action with its catalogue description.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<HostPackageArguments>(
                NAME,
                FAMILY,
                "Installs a package version with apt or dnf; undo reinstalls the previous version.",
                Effect::write().idempotent().reversible(),
            )
            .target(TargetKind::Host)
            .outputs(&["changed", "version", "previous_version"]),
        }
    }
}

#[async_trait::async_trait]
impl Action for HostPackage {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let arguments: HostPackageArguments = parse(NAME, arguments)?;
        let transport = transport::for_step(context)?;
        plan_with(transport.as_ref(), &arguments, context.timeout).await
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: HostPackageArguments = parse(NAME, arguments)?;
        let transport = transport::for_step(context)?;
        apply_kept(transport.as_ref(), &arguments, context.timeout, &context.prepared).await
    }

    async fn undo(
        &self,
        context: &StepContext,
        arguments: Value,
        undo: Value,
    ) -> Result<(), ActionError> {
        let arguments: HostPackageArguments = parse(NAME, arguments)?;
        let record: UndoRecord = crate::arguments::undo_record(NAME, undo)?;
        let transport = transport::for_step(context)?;
        undo_with(transport.as_ref(), &arguments, &record, context.timeout).await
    }

    async fn probe(&self, context: &StepContext, arguments: Value) -> Result<Probe, ActionError> {
        let arguments: HostPackageArguments = parse(NAME, arguments)?;
        let transport = transport::for_step(context)?;
        probe_with(transport.as_ref(), &arguments, context.timeout).await
    }
}

/// What plan, apply and probe learn first, with read-only commands.
struct Assessed<'t> {
    /// The host's package manager.
    host: PackageHost<'t>,
    /// The package as found on the host.
    found: Option<Found>,
    /// The version the arguments ask for.
    wanted: Wanted,
    /// The change from `found` to `wanted`.
    change: Change,
}

/// Finds the package manager, the installed package and the wanted version.
async fn assess<'t>(
    transport: &'t dyn Transport,
    arguments: &HostPackageArguments,
    timeout: Option<Duration>,
) -> Result<Assessed<'t>, ActionError> {
    let host = PackageHost::for_arguments(transport, arguments, timeout).await?;
    let found = host.installed(&arguments.name).await?;
    let wanted = host.wanted_version(arguments).await?;
    let change = change_of(
        &arguments.name,
        host.manager,
        found.as_ref(),
        wanted.clone(),
    );
    Ok(Assessed {
        host,
        found,
        wanted,
        change,
    })
}

/// What applying would change, found with read-only commands only.
pub async fn plan_with(
    transport: &dyn Transport,
    arguments: &HostPackageArguments,
    timeout: Option<Duration>,
) -> Result<Change, ActionError> {
    let Assessed {
        host,
        found,
        mut change,
        ..
    } = assess(transport, arguments, timeout).await?;
    if change.changes != Some(false)
        && let Some(previous) = version_of(found.as_ref())
        && host.manager == PackageManager::Apt
        && !host.available(&arguments.name).await?.contains(&previous)
    {
        // Say it before the window: a rollback that cannot reinstall fails at the worst time.
        change.summary.push_str(&format!(
            " (the undo cannot reinstall {previous}: the host's repositories no longer have it)"
        ));
    }
    Ok(change)
}

/// Installs the wanted version unless it is installed already.
pub async fn apply_with(
    transport: &dyn Transport,
    arguments: &HostPackageArguments,
    timeout: Option<Duration>,
) -> Result<Applied, ActionError> {
    apply_kept(transport, arguments, timeout, &Prepared::default()).await
}

/// [`apply_with`], keeping the version it replaces in the journal before it installs
/// (and, run again after an interrupted attempt, undoing to the version that one replaced).
pub async fn apply_kept(
    transport: &dyn Transport,
    arguments: &HostPackageArguments,
    timeout: Option<Duration>,
    prepared: &Prepared,
) -> Result<Applied, ActionError> {
    let Assessed {
        host,
        found,
        wanted,
        change,
    } = assess(transport, arguments, timeout).await?;
    let name = &arguments.name;
    let before = version_of(found.as_ref());
    let earlier: Option<UndoRecord> = prepared
        .earlier()
        .map(|kept| crate::arguments::undo_record(NAME, kept.clone()))
        .transpose()?;
    if change.changes == Some(false) {
        return Ok(match earlier {
            // An interrupted attempt installed it: its undo is that attempt's.
            Some(record) => {
                let previous = record.previous_version.clone();
                applied(true, before, previous, Some(json!(record)), change)
            }
            None => applied(false, before.clone(), before, None, change),
        });
    }
    let interrupted = earlier.is_some();
    let record = earlier.unwrap_or_else(|| UndoRecord {
        manager: host.manager,
        previous_version: before.clone(),
    });
    prepared.keep(json!(record)).await?;
    let target = match &wanted {
        Wanted::Version(version) => Some(version.as_str()),
        Wanted::Newest => None,
    };
    host.install(name, target, before.as_deref()).await?;
    let found_after = host.installed(name).await?;
    let after = match &found_after {
        Some(Found {
            version,
            complete: true,
        }) => Some(version.clone()),
        Some(Found { version, .. }) => {
            return Err(ActionError::failed(format!(
                "the package manager reported success, but {name} {version} is not completely installed (dpkg status)"
            )));
        }
        None => {
            return Err(ActionError::failed(format!(
                "the package manager reported success, but {name} is not installed"
            )));
        }
    };
    let changed = interrupted || after != before || found.as_ref().is_some_and(|f| !f.complete);
    let previous = record.previous_version.clone();
    let undo = changed.then(|| json!(record));
    Ok(applied(changed, after, previous, undo, change))
}

/// Puts back the version installed before, or removes the package when there was none.
pub async fn undo_with(
    transport: &dyn Transport,
    arguments: &HostPackageArguments,
    record: &UndoRecord,
    timeout: Option<Duration>,
) -> Result<(), ActionError> {
    let host = PackageHost {
        transport,
        manager: record.manager,
        timeout,
    };
    let name = &arguments.name;
    let current = host.installed(name).await?;
    let complete = current.as_ref().is_some_and(|f| f.complete);
    let current = version_of(current.as_ref());
    match &record.previous_version {
        None if current.is_none() => Ok(()),
        None => host.remove(name).await,
        Some(previous) if complete && current.as_deref() == Some(previous.as_str()) => Ok(()),
        Some(previous) => host.install(name, Some(previous), current.as_deref()).await,
    }
}

/// Whether an interrupted apply took effect: the wanted version is installed.
pub async fn probe_with(
    transport: &dyn Transport,
    arguments: &HostPackageArguments,
    timeout: Option<Duration>,
) -> Result<Probe, ActionError> {
    let Assessed { found, change, .. } = assess(transport, arguments, timeout).await?;
    let installed = version_of(found.as_ref());
    match (change.changes, &installed) {
        (Some(false), _) => Ok(Probe::Done(applied(
            false,
            installed.clone(),
            installed,
            None,
            change,
        ))),
        (_, None) | (Some(true), _) => Ok(Probe::NotDone),
        (None, Some(version)) => Ok(Probe::Unknown(format!(
            "{} {version} is installed; dnf cannot tell without installing whether it is the newest",
            arguments.name
        ))),
    }
}

/// The version before an apply, as kept in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UndoRecord {
    /// The package manager that installed it.
    pub manager: PackageManager,
    /// The version installed before, or `None` when the package was not installed.
    pub previous_version: Option<String>,
}

/// The version the arguments ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// This exact version (apt), or this version or version-release (dnf).
    Version(String),
    /// The newest available, which the package manager does not name beforehand (dnf).
    Newest,
}

/// A host's package manager, reached through a transport.
struct PackageHost<'a> {
    transport: &'a dyn Transport,
    manager: PackageManager,
    timeout: Option<Duration>,
}

impl<'a> PackageHost<'a> {
    /// The manager the arguments name, or the one found on the host.
    async fn for_arguments(
        transport: &'a dyn Transport,
        arguments: &HostPackageArguments,
        timeout: Option<Duration>,
    ) -> Result<Self, ActionError> {
        check_word("name", &arguments.name)?;
        if let Some(version) = &arguments.version {
            check_word("version", version)?;
        }
        let manager = match arguments.manager {
            Some(manager) => manager,
            None => detect_manager(transport, timeout).await?,
        };
        Ok(Self {
            transport,
            manager,
            timeout,
        })
    }

    /// Runs a read-only request and returns its output, whatever the exit code.
    async fn read(&self, request: ExecRequest) -> Result<ExecOutput, ActionError> {
        let request = request.read_only(true).timeout(self.timeout);
        Ok(self.transport.exec(&request).await?)
    }

    /// The version of `name` on the host and whether it is completely installed, or `None`.
    async fn installed(&self, name: &str) -> Result<Option<Found>, ActionError> {
        let request = installed_query(self.manager, name);
        let program = request.program.to_string();
        let output = self.read(request).await?;
        let stdout = output.stdout.text();
        let parsed = match self.manager {
            PackageManager::Apt => parse_dpkg_query(output.exit_code, &stdout),
            PackageManager::Dnf => parse_rpm_query(output.exit_code, &stdout).map(|found| {
                found.map(|version| Found {
                    version,
                    complete: true,
                })
            }),
        };
        parsed.ok_or_else(|| {
            ActionError::failed(format!(
                "`{program}` {}; the end of its stderr:\n{}",
                ended(&output),
                output.stderr.tail(STDERR_TAIL_LINES)
            ))
        })
    }

    /// The versions apt's repositories offer (`apt-cache madison`).
    async fn available(&self, name: &str) -> Result<Vec<String>, ActionError> {
        let request = ExecRequest::argv(["apt-cache", "madison", name]).with_env("LC_ALL", "C");
        let output = self.read(request).await?;
        Ok(parse_apt_madison(&output.stdout.text()))
    }

    /// The version to install: the given one, apt's candidate, or dnf's newest.
    async fn wanted_version(
        &self,
        arguments: &HostPackageArguments,
    ) -> Result<Wanted, ActionError> {
        if let Some(version) = &arguments.version {
            return Ok(Wanted::Version(version.clone()));
        }
        match self.manager {
            PackageManager::Dnf => Ok(Wanted::Newest),
            PackageManager::Apt => {
                let request = candidate_query(&arguments.name);
                let output = run_checked(
                    self.transport,
                    &request.read_only(true).timeout(self.timeout),
                    &[0],
                )
                .await?;
                parse_apt_candidate(&output.stdout.text())
                    .map(Wanted::Version)
                    .ok_or_else(|| {
                        ActionError::failed(format!(
                            "apt has no version of {} to install (`apt-cache policy {}` names no candidate)",
                            arguments.name, arguments.name
                        ))
                    })
            }
        }
    }

    /// Installs `name` at `version` (or the newest), going down from `current` when need be.
    async fn install(
        &self,
        name: &str,
        version: Option<&str>,
        current: Option<&str>,
    ) -> Result<(), ActionError> {
        let downgrade = match (version, current) {
            (Some(version), Some(current)) => {
                compare_versions(self.manager, version, current) == Ordering::Less
            }
            _ => false,
        };
        let request = install_command(self.manager, name, version, current.is_some(), downgrade)
            .timeout(self.timeout);
        match run_checked(self.transport, &request, &[0]).await {
            Ok(_) => Ok(()),
            Err(ActionError::Failed { message }) => Err(ActionError::failed(
                match version.filter(|_| reports_missing_version(&message)) {
                    Some(version) => format!(
                        "version {version} of package {name} is not available from the host's {} repositories: {message}",
                        manager_name(self.manager)
                    ),
                    None => message,
                },
            )),
            Err(other) => Err(other),
        }
    }

    /// Removes `name`.
    async fn remove(&self, name: &str) -> Result<(), ActionError> {
        let request = remove_command(self.manager, name).timeout(self.timeout);
        run_checked(self.transport, &request, &[0]).await.map(drop)
    }
}

/// Finds the package manager: apt-get first, then dnf.
async fn detect_manager(
    transport: &dyn Transport,
    timeout: Option<Duration>,
) -> Result<PackageManager, ActionError> {
    let request = ExecRequest::argv([
        "sh",
        "-c",
        "if command -v apt-get >/dev/null 2>&1; then echo apt; \
         elif command -v dnf >/dev/null 2>&1; then echo dnf; fi",
    ])
    .read_only(true)
    .timeout(timeout);
    let output = run_checked(transport, &request, &[0]).await?;
    match output.stdout.text().trim() {
        "apt" => Ok(PackageManager::Apt),
        "dnf" => Ok(PackageManager::Dnf),
        _ => Err(ActionError::failed(
            "found neither apt-get nor dnf on the host; set `manager: apt` or `manager: dnf`",
        )),
    }
}

/// The read-only query of the installed version.
pub fn installed_query(manager: PackageManager, name: &str) -> ExecRequest {
    match manager {
        PackageManager::Apt => ExecRequest::argv([
            "dpkg-query",
            "-W",
            "-f",
            "${db:Status-Abbrev} ${Version}\\n",
            name,
        ]),
        PackageManager::Dnf => ExecRequest::argv([
            "rpm",
            "-q",
            "--qf",
            "%{EPOCH}:%{VERSION}-%{RELEASE}\\n",
            name,
        ]),
    }
    .read_only(true)
    .with_env("LC_ALL", "C")
}

/// The read-only query of apt's candidate version.
pub fn candidate_query(name: &str) -> ExecRequest {
    ExecRequest::argv(["apt-cache", "policy", name])
        .read_only(true)
        .with_env("LC_ALL", "C")
}

/// The command that installs `name` at `version` (or the newest available).
///
/// `installed` says whether some version is installed (dnf then upgrades to
/// the newest), `downgrade` whether `version` is older than it (dnf then downgrades).
pub fn install_command(
    manager: PackageManager,
    name: &str,
    version: Option<&str>,
    installed: bool,
    downgrade: bool,
) -> ExecRequest {
    match manager {
        PackageManager::Apt => {
            let target = match version {
                Some(version) => format!("{name}={version}"),
                None => name.to_owned(),
            };
            apt_request([
                "apt-get",
                "install",
                "-y",
                "--allow-downgrades",
                "-o",
                "Dpkg::Options::=--force-confold",
                &target,
            ])
        }
        PackageManager::Dnf => {
            let verb = match (version, installed, downgrade) {
                (Some(_), _, true) => "downgrade",
                (None, true, _) => "upgrade",
                _ => "install",
            };
            let target = match version {
                Some(version) => format!("{name}-{version}"),
                None => name.to_owned(),
            };
            ExecRequest::argv(["dnf", verb, "-y", &target]).with_env("LC_ALL", "C")
        }
    }
}

/// The command that removes `name`.
pub fn remove_command(manager: PackageManager, name: &str) -> ExecRequest {
    match manager {
        PackageManager::Apt => apt_request(["apt-get", "remove", "-y", name]),
        PackageManager::Dnf => {
            ExecRequest::argv(["dnf", "remove", "-y", name]).with_env("LC_ALL", "C")
        }
    }
}

/// An apt-get command that asks no questions.
fn apt_request<'s>(argv: impl IntoIterator<Item = &'s str>) -> ExecRequest {
    ExecRequest::argv(argv)
        .with_env("DEBIAN_FRONTEND", "noninteractive")
        .with_env("LC_ALL", "C")
}

/// The installed version from `dpkg-query -W -f '${db:Status-Abbrev} ${Version}'`.
///
/// `Some(None)`: not installed (unknown to dpkg, or removed with its
/// configuration kept); `None`: output this function cannot read. A package
/// is found whenever its files are there, so an undo never removes a package
/// that was present: dpkg's status letter is `i` (`ii`, or `hi` when held), or
/// a half-done state (`U`npacked, half-configured `F`, half-installed `H`,
/// triggers `W`/`t`). Only `i` and the trigger states are complete: a package
/// left unpacked by an interrupted upgrade still needs installing. With several
/// architectures the first line counts.
pub fn parse_dpkg_query(exit_code: Option<i32>, stdout: &str) -> Option<Option<Found>> {
    match exit_code {
        Some(1) if stdout.trim().is_empty() => Some(None),
        Some(0) => {
            let line = stdout.lines().next().unwrap_or_default();
            let status = line.get(..3)?;
            let version = line.get(3..)?.trim();
            let letter = status.as_bytes().get(1).copied().unwrap_or(b'n');
            let installed = b"iUFHWt".contains(&letter);
            if installed && !version.is_empty() {
                Some(Some(Found {
                    version: version.to_owned(),
                    complete: b"iWt".contains(&letter),
                }))
            } else if installed {
                None
            } else {
                Some(None)
            }
        }
        _ => None,
    }
}

/// The installed version from `rpm -q --qf '%{EPOCH}:%{VERSION}-%{RELEASE}\n'`.
///
/// An epoch of `(none)` or 0 is dropped (`3.9.1-1.el9`); with several
/// versions installed the newest counts. `Some(None)`: not installed.
pub fn parse_rpm_query(exit_code: Option<i32>, stdout: &str) -> Option<Option<String>> {
    match exit_code {
        Some(1) if stdout.contains("is not installed") => Some(None),
        Some(0) => stdout
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| {
                let (epoch, rest) = line.split_once(':')?;
                Some(match epoch {
                    "(none)" | "0" => rest.to_owned(),
                    epoch => format!("{epoch}:{rest}"),
                })
            })
            .collect::<Option<Vec<String>>>()?
            .into_iter()
            .max_by(|a, b| rpm_compare(a, b))
            .map(Some),
        _ => None,
    }
}

/// The versions in `apt-cache madison NAME` output (`kong | 3.9.1 | https://... Packages`).
pub fn parse_apt_madison(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.split('|').nth(1))
        .map(|version| version.trim().to_owned())
        .filter(|version| !version.is_empty())
        .collect()
}

/// The `Candidate:` of `apt-cache policy NAME`; `None` when apt has none.
pub fn parse_apt_candidate(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Candidate:"))
        .map(str::trim)
        .filter(|candidate| !candidate.is_empty() && *candidate != "(none)")
        .map(str::to_owned)
}

/// Whether the installed version is the wanted one.
///
/// Epoch 0 may be written or not. With dnf a wanted version without release
/// (`3.9.1`) matches any release of it (`3.9.1-1.el9`).
pub fn is_satisfied(manager: PackageManager, installed: &str, wanted: &str) -> bool {
    let (installed, wanted) = (without_zero_epoch(installed), without_zero_epoch(wanted));
    if installed == wanted {
        return true;
    }
    manager == PackageManager::Dnf
        && !wanted.contains('-')
        && installed
            .strip_prefix(wanted)
            .is_some_and(|release| release.starts_with('-'))
}

/// Orders two versions as the package manager does (only dnf's order is
/// needed: apt is told to allow downgrades).
fn compare_versions(manager: PackageManager, a: &str, b: &str) -> Ordering {
    match manager {
        PackageManager::Dnf => {
            let a_has_release = without_zero_epoch(a).contains('-');
            let b_has_release = without_zero_epoch(b).contains('-');
            if a_has_release == b_has_release {
                rpm_compare(a, b)
            } else {
                rpm_compare(&without_release(a), &without_release(b))
            }
        }
        PackageManager::Apt => Ordering::Equal,
    }
}

/// Compares `[epoch:]version[-release]` strings as rpm does.
pub fn rpm_compare(a: &str, b: &str) -> Ordering {
    let (epoch_a, rest_a) = split_epoch(a);
    let (epoch_b, rest_b) = split_epoch(b);
    let (version_a, release_a) = rest_a.rsplit_once('-').unwrap_or((rest_a, ""));
    let (version_b, release_b) = rest_b.rsplit_once('-').unwrap_or((rest_b, ""));
    epoch_a
        .cmp(&epoch_b)
        .then_with(|| rpmvercmp(version_a, version_b))
        .then_with(|| rpmvercmp(release_a, release_b))
}

/// rpm's segment-wise comparison of one version or release string.
fn rpmvercmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        a = skip_separators(a);
        b = skip_separators(b);
        match (a.first(), b.first()) {
            (Some(b'~'), Some(b'~')) | (Some(b'^'), Some(b'^')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (Some(b'^'), None) => return Ordering::Greater,
            (None, Some(b'^')) => return Ordering::Less,
            (Some(b'^'), _) => return Ordering::Less,
            (_, Some(b'^')) => return Ordering::Greater,
            (None, _) | (_, None) => break,
            (Some(first), Some(_)) => {
                let numeric = first.is_ascii_digit();
                let (segment_a, rest_a) = split_segment(a, numeric);
                let (segment_b, rest_b) = split_segment(b, numeric);
                if segment_b.is_empty() {
                    // A numeric segment is newer than an alphabetic one.
                    return if numeric {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    };
                }
                let order = if numeric {
                    let segment_a = trim_zeros(segment_a);
                    let segment_b = trim_zeros(segment_b);
                    segment_a
                        .len()
                        .cmp(&segment_b.len())
                        .then_with(|| segment_a.cmp(segment_b))
                } else {
                    segment_a.cmp(segment_b)
                };
                if order != Ordering::Equal {
                    return order;
                }
                a = rest_a;
                b = rest_b;
            }
        }
    }
    a.len().min(1).cmp(&b.len().min(1))
}

/// The bytes after leading separators (anything but letters, digits, `~` and `^`).
fn skip_separators(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|byte| byte.is_ascii_alphanumeric() || *byte == b'~' || *byte == b'^')
        .unwrap_or(text.len());
    &text[start..]
}

/// The leading run of digits (or of letters), and the rest.
fn split_segment(text: &[u8], numeric: bool) -> (&[u8], &[u8]) {
    let end = text
        .iter()
        .position(|byte| {
            if numeric {
                !byte.is_ascii_digit()
            } else {
                !byte.is_ascii_alphabetic()
            }
        })
        .unwrap_or(text.len());
    text.split_at(end)
}

/// Digits without leading zeros.
fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|digit| *digit != b'0')
        .unwrap_or(digits.len());
    &digits[start..]
}

/// The epoch (0 when absent) and the rest.
fn split_epoch(version: &str) -> (u64, &str) {
    match version.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            (epoch.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, version),
    }
}

/// The version without a `0:` epoch.
fn without_zero_epoch(version: &str) -> &str {
    version.strip_prefix("0:").unwrap_or(version)
}

/// `[epoch:]version` without its `-release`.
fn without_release(version: &str) -> String {
    let (epoch, rest) = split_epoch(version);
    let version = rest.rsplit_once('-').map_or(rest, |(version, _)| version);
    format!("{epoch}:{version}")
}

/// Whether a failed install says the version does not exist (apt, dnf).
fn reports_missing_version(message: &str) -> bool {
    (message.contains("Version '") && message.contains("was not found"))
        || message.contains("No match for argument")
        || message.contains("Unable to find a match")
        || message.contains("Unable to locate package")
}

/// A package found on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its version.
    pub version: String,
    /// Whether it is completely installed (not left unpacked or half-configured).
    pub complete: bool,
}

/// The version of a found package.
fn version_of(found: Option<&Found>) -> Option<String> {
    found.map(|f| f.version.clone())
}

/// The change from what was found to `wanted`, for plans and reports.
fn change_of(name: &str, manager: PackageManager, found: Option<&Found>, wanted: Wanted) -> Change {
    let installed = version_of(found);
    let before = match found {
        None => "not installed".to_owned(),
        Some(Found {
            version,
            complete: true,
        }) => version.clone(),
        Some(Found { version, .. }) => format!("{version} (not completely installed)"),
    };
    let complete = found.is_some_and(|f| f.complete);
    match (&installed, wanted) {
        (Some(current), Wanted::Version(wanted))
            if complete && is_satisfied(manager, current, &wanted) =>
        {
            Change::none(format!("{name} {current} is installed"))
        }
        (_, Wanted::Version(wanted)) => Change {
            // An incomplete installation of the same version still changes: it gets installed.
            changes: Some(true),
            ..Change::between(format!("{name} {before} → {wanted}"), installed, wanted)
        },
        (_, Wanted::Newest) => Change::unknown(format!(
            "{name} {before} → the newest version available (dnf names it only when installing)"
        )),
    }
}

/// The step's result.
fn applied(
    changed: bool,
    version: Option<String>,
    previous_version: Option<String>,
    undo: Option<Value>,
    change: Change,
) -> Applied {
    let mut outputs = Map::new();
    outputs.insert("changed".into(), json!(changed));
    outputs.insert("version".into(), json!(version));
    outputs.insert("previous_version".into(), json!(previous_version));
    Applied {
        secrets: Vec::new(),
        outputs,
        undo,
        change: Some(change),
    }
}

/// The manager's name for humans.
fn manager_name(manager: PackageManager) -> &'static str {
    match manager {
        PackageManager::Apt => "apt",
        PackageManager::Dnf => "dnf",
    }
}

/// How a command ended, for messages.
fn ended(output: &ExecOutput) -> String {
    match (output.exit_code, output.signal) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended without an exit code".to_owned(),
    }
}

/// A name or version must be one word that cannot be read as an option.
fn check_word(field: &str, value: &str) -> Result<(), ActionError> {
    if value.is_empty() || value.starts_with('-') || value.chars().any(char::is_whitespace) {
        return Err(ActionError::InvalidArguments {
            action: NAME,
            message: format!("`{field}` must be one word not starting with `-`, not `{value}`"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::transport::Program;
    use super::*;

    fn argv(request: &ExecRequest) -> Vec<&str> {
        match &request.program {
            Program::Argv(argv) => argv.iter().map(String::as_str).collect(),
            Program::Shell(command) => vec!["sh", "-c", command],
        }
    }

    #[test]
    fn dpkg_query_output_counts_every_state_with_files_present() {
        let found = |version: &str, complete: bool| {
            Some(Some(Found {
                version: version.into(),
                complete,
            }))
        };
        assert_eq!(parse_dpkg_query(Some(0), "ii  3.9.1"), found("3.9.1", true));
        assert_eq!(
            parse_dpkg_query(Some(0), "hi  1:2.0-1"),
            found("1:2.0-1", true)
        );
        for half in ["iU  3.4.2", "iF  3.4.2", "iH  3.4.2"] {
            assert_eq!(
                parse_dpkg_query(Some(0), half),
                found("3.4.2", false),
                "{half}"
            );
        }
        for triggers in ["iW  3.4.2", "it  3.4.2"] {
            assert_eq!(
                parse_dpkg_query(Some(0), triggers),
                found("3.4.2", true),
                "{triggers}"
            );
        }
        assert_eq!(
            parse_dpkg_query(Some(0), "ii  3.9.1\nii  3.9.1\n"),
            found("3.9.1", true),
            "two architectures"
        );
        assert_eq!(parse_dpkg_query(Some(0), "rc  3.4.2"), Some(None));
        assert_eq!(parse_dpkg_query(Some(0), "un  "), Some(None));
        assert_eq!(parse_dpkg_query(Some(1), ""), Some(None));
        assert_eq!(parse_dpkg_query(Some(2), ""), None);
        assert_eq!(parse_dpkg_query(Some(0), "ii  "), None);
        assert_eq!(parse_dpkg_query(None, ""), None);
    }

    #[test]
    fn rpm_output_drops_an_empty_epoch_and_says_not_installed() {
        assert_eq!(
            parse_rpm_query(Some(0), "(none):3.9.1-1.el9\n"),
            Some(Some("3.9.1-1.el9".into()))
        );
        assert_eq!(
            parse_rpm_query(Some(0), "0:3.9.1-1\n"),
            Some(Some("3.9.1-1".into()))
        );
        assert_eq!(
            parse_rpm_query(Some(0), "2:1.0-3\n"),
            Some(Some("2:1.0-3".into()))
        );
        assert_eq!(
            parse_rpm_query(Some(0), "(none):5.14-2\n(none):5.14-10\n"),
            Some(Some("5.14-10".into())),
            "several installed: the newest"
        );
        assert_eq!(
            parse_rpm_query(Some(1), "package kong is not installed\n"),
            Some(None)
        );
        assert_eq!(parse_rpm_query(Some(1), "error: rpmdb open failed\n"), None);
        assert_eq!(parse_rpm_query(Some(0), "garbage\n"), None);
    }

    #[test]
    fn apt_cache_policy_names_the_candidate() {
        let policy =
            "kong:\n  Installed: 3.4.2\n  Candidate: 3.9.1\n  Version table:\n     3.9.1 500\n";
        assert_eq!(parse_apt_candidate(policy), Some("3.9.1".into()));
        let none = "kong:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n";
        assert_eq!(parse_apt_candidate(none), None);
        assert_eq!(parse_apt_candidate(""), None, "an unknown package");
    }

    #[test]
    fn installed_matches_wanted_as_the_manager_spells_it() {
        use PackageManager::{Apt, Dnf};
        assert!(is_satisfied(Apt, "3.9.1", "3.9.1"));
        assert!(is_satisfied(Apt, "3.9.1", "0:3.9.1"));
        assert!(!is_satisfied(Apt, "3.9.1", "3.9.10"));
        assert!(!is_satisfied(Apt, "3.9.1-1", "3.9.1"));
        assert!(!is_satisfied(Apt, "1:3.9.1", "3.9.1"));
        assert!(is_satisfied(Dnf, "3.9.1-1.el9", "3.9.1"));
        assert!(is_satisfied(Dnf, "3.9.1-1.el9", "3.9.1-1.el9"));
        assert!(is_satisfied(Dnf, "3.9.1-1.el9", "0:3.9.1-1.el9"));
        assert!(!is_satisfied(Dnf, "3.9.1-1.el9", "3.9.1-2.el9"));
        assert!(!is_satisfied(Dnf, "3.9.10-1", "3.9.1"));
        assert!(!is_satisfied(Dnf, "3.9.1.1-1", "3.9.1"));
    }

    #[test]
    fn rpm_versions_order_segment_by_segment() {
        let cases = [
            ("1.0", "1.0", Ordering::Equal),
            ("1.0", "2.0", Ordering::Less),
            ("3.10", "3.9", Ordering::Greater),
            ("3.9.1-2", "3.9.1-10", Ordering::Less),
            ("1.0~rc1", "1.0", Ordering::Less),
            ("1.0^git1", "1.0", Ordering::Greater),
            ("1.0a", "1.0", Ordering::Greater),
            ("1.0.a", "1.0.1", Ordering::Less),
            ("1:1.0", "2.0", Ordering::Greater),
            ("007", "7", Ordering::Equal),
        ];
        for (a, b, expected) in cases {
            assert_eq!(rpm_compare(a, b), expected, "{a} vs {b}");
            assert_eq!(rpm_compare(b, a), expected.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn dnf_downgrades_only_when_going_down() {
        use PackageManager::Dnf;
        assert_eq!(
            compare_versions(Dnf, "3.4.2", "3.9.1-1.el9"),
            Ordering::Less
        );
        assert_eq!(
            compare_versions(Dnf, "3.9.1", "3.9.1-1.el9"),
            Ordering::Equal
        );
        assert_eq!(
            compare_versions(Dnf, "3.10.0-1", "3.9.1-1"),
            Ordering::Greater
        );
    }

    #[test]
    fn apt_commands_are_argv_with_a_quiet_frontend() {
        let install = install_command(PackageManager::Apt, "kong", Some("3.9.1"), true, true);
        assert_eq!(
            argv(&install),
            [
                "apt-get",
                "install",
                "-y",
                "--allow-downgrades",
                "-o",
                "Dpkg::Options::=--force-confold",
                "kong=3.9.1"
            ]
        );
        assert_eq!(
            install.env.get("DEBIAN_FRONTEND").map(String::as_str),
            Some("noninteractive")
        );
        assert!(!install.read_only);
        let newest = install_command(PackageManager::Apt, "kong", None, false, false);
        assert_eq!(argv(&newest).last(), Some(&"kong"));
        let remove = remove_command(PackageManager::Apt, "kong");
        assert_eq!(argv(&remove), ["apt-get", "remove", "-y", "kong"]);
        assert!(remove.env.contains_key("DEBIAN_FRONTEND"));
        assert_eq!(
            remove.env.get("LC_ALL").map(String::as_str),
            Some("C"),
            "parsed output must not be translated"
        );

        let query = installed_query(PackageManager::Apt, "kong");
        assert_eq!(
            argv(&query),
            [
                "dpkg-query",
                "-W",
                "-f",
                "${db:Status-Abbrev} ${Version}\\n",
                "kong"
            ]
        );
        assert!(query.read_only);
        let candidate = candidate_query("kong");
        assert_eq!(argv(&candidate), ["apt-cache", "policy", "kong"]);
        assert!(candidate.read_only);
    }

    #[test]
    fn dnf_commands_install_upgrade_or_downgrade() {
        use PackageManager::Dnf;
        let cases = [
            (
                Some("3.9.1"),
                false,
                false,
                ["dnf", "install", "-y", "kong-3.9.1"],
            ),
            (
                Some("3.9.1"),
                true,
                false,
                ["dnf", "install", "-y", "kong-3.9.1"],
            ),
            (
                Some("3.4.2"),
                true,
                true,
                ["dnf", "downgrade", "-y", "kong-3.4.2"],
            ),
            (None, false, false, ["dnf", "install", "-y", "kong"]),
            (None, true, false, ["dnf", "upgrade", "-y", "kong"]),
        ];
        for (version, installed, downgrade, expected) in cases {
            let request = install_command(Dnf, "kong", version, installed, downgrade);
            assert_eq!(argv(&request), expected);
            assert!(!request.read_only);
        }
        assert_eq!(
            argv(&remove_command(Dnf, "kong")),
            ["dnf", "remove", "-y", "kong"]
        );
        let query = installed_query(Dnf, "kong");
        assert_eq!(
            argv(&query),
            [
                "rpm",
                "-q",
                "--qf",
                "%{EPOCH}:%{VERSION}-%{RELEASE}\\n",
                "kong"
            ]
        );
        assert!(query.read_only);
    }

    #[test]
    fn plans_read_before_and_after() {
        use PackageManager::{Apt, Dnf};
        let found = |version: &str, complete: bool| Found {
            version: version.into(),
            complete,
        };
        let upgrade = change_of(
            "kong",
            Apt,
            Some(&found("3.4.2", true)),
            Wanted::Version("3.9.1".into()),
        );
        assert_eq!(upgrade.summary, "kong 3.4.2 → 3.9.1");
        assert_eq!(upgrade.changes, Some(true));
        assert_eq!(upgrade.before.as_deref(), Some("3.4.2"));
        assert_eq!(upgrade.after.as_deref(), Some("3.9.1"));
        let new = change_of("kong", Apt, None, Wanted::Version("3.9.1".into()));
        assert_eq!(new.summary, "kong not installed → 3.9.1");
        assert_eq!(new.changes, Some(true));
        let same = change_of(
            "kong",
            Dnf,
            Some(&found("3.9.1-1.el9", true)),
            Wanted::Version("3.9.1".into()),
        );
        assert_eq!(same.changes, Some(false));
        assert_eq!(same.summary, "kong 3.9.1-1.el9 is installed");
        // An upgrade cut short leaves the wanted version unpacked: it still needs installing.
        let unpacked = change_of(
            "kong",
            Apt,
            Some(&found("3.9.1", false)),
            Wanted::Version("3.9.1".into()),
        );
        assert_eq!(unpacked.changes, Some(true));
        assert_eq!(
            unpacked.summary,
            "kong 3.9.1 (not completely installed) → 3.9.1"
        );
        let newest = change_of("kong", Dnf, Some(&found("3.4.2-1", true)), Wanted::Newest);
        assert_eq!(newest.changes, None);
    }

    #[test]
    fn missing_versions_are_recognised() {
        assert!(reports_missing_version(
            "E: Version '3.0' for 'runsheet-fixture' was not found"
        ));
        assert!(reports_missing_version(
            "No match for argument: kong-9.9\nError: Unable to find a match: kong-9.9"
        ));
        assert!(!reports_missing_version("E: Could not get lock"));
    }

    #[test]
    fn names_and_versions_cannot_be_options() {
        for bad in ["", "-y", "--purge", "kong 3.9", "a\tb"] {
            assert!(check_word("name", bad).is_err(), "{bad:?}");
        }
        assert!(check_word("name", "kong-enterprise-edition").is_ok());
        assert!(check_word("version", "1:3.9.1-1~deb12").is_ok());
    }
}
