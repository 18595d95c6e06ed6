//! [`HostFile`]: `host.file`, a file on the host with a given content, mode and
//! owner.
//!
//! It writes only when something differs. Its undo record ([`UndoRecord`]) is
//! the file it replaced — content, mode and owner — or the file's absence, and
//! `undo` restores exactly that. Its `probe` answers `Done` when the file
//! already is as wanted; the state before the interrupted write is lost then,
//! so that answer carries no undo record.
//!
//! The file is replaced, not edited in place. `path` must be absolute, without
//! `..`; a symbolic link at `path` is refused by the transports' writes (its
//! content is read through for the plan's diff, but neither the link nor its
//! target is written), so undo always restores exactly what was there.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, Probe, StepContext, TargetKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::transport::{self, FileSpec, FileState, Ownership};
use super::{FAMILY, HostFileArguments};
use crate::arguments::parse;

/// The action's type name.
pub const NAME: &str = "host.file";

/// The mode of a new file when `mode` is not given.
pub const DEFAULT_MODE: u32 = 0o644;

/// `host.file`: writes a file; undo restores the previous file or its absence.
#[derive(Debug, Clone)]
pub struct HostFile {
    spec: ActionSpec,
}

impl Default for HostFile {
    fn default() -> Self {
        Self::new()
    }
}

impl HostFile {
    /// The action with its catalogue description.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<HostFileArguments>(
                NAME,
                FAMILY,
                "Writes a file with the given content, mode and owner; undo restores the previous file or its absence.",
                Effect::write().idempotent().reversible(),
            )
            .target(TargetKind::Host)
            .outputs(&["changed", "sha256"]),
        }
    }
}

#[async_trait::async_trait]
impl Action for HostFile {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let wanted = Wanted::read(context, parse(NAME, arguments)?).await?;
        let transport = transport::for_step(context)?;
        let current = transport.read_file(&wanted.path).await?;
        Ok(wanted.change_from(current.as_ref()))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let wanted = Wanted::read(context, parse(NAME, arguments)?).await?;
        let transport = transport::for_step(context)?;
        let current = transport.read_file(&wanted.path).await?;
        let change = wanted.change_from(current.as_ref());
        // An earlier attempt interrupted after its write kept the file it replaced: that
        // file, not the one it wrote, is what the undo restores.
        let earlier = match context.prepared.earlier() {
            Some(kept) => Some(crate::arguments::undo_record::<UndoRecord>(NAME, kept.clone())?),
            None => None,
        };
        if wanted.is_met_by(current.as_ref()) {
            return Ok(match earlier {
                Some(undo) => wanted.applied(true, Some(json!(undo)), change),
                None => wanted.applied(false, None, change),
            });
        }
        let undo = earlier.unwrap_or_else(|| UndoRecord::of(current.as_ref()));
        context.prepared.keep(json!(undo)).await?;
        transport
            .write_file(&wanted.path, &wanted.resolve(current.as_ref()))
            .await?;
        Ok(wanted.applied(true, Some(json!(undo)), change))
    }

    async fn undo(
        &self,
        context: &StepContext,
        arguments: Value,
        undo: Value,
    ) -> Result<(), ActionError> {
        let arguments: HostFileArguments = parse(NAME, arguments)?;
        let path = absolute_path(&arguments.path)?;
        let record: UndoRecord = crate::arguments::undo_record(NAME, undo)?;
        let transport = transport::for_step(context)?;
        match record.previous()? {
            None => transport.remove_file(&path).await?,
            Some(previous) => transport.write_file(&path, &previous).await?,
        }
        Ok(())
    }

    async fn probe(&self, context: &StepContext, arguments: Value) -> Result<Probe, ActionError> {
        let wanted = Wanted::read(context, parse(NAME, arguments)?).await?;
        let transport = transport::for_step(context)?;
        let current = transport.read_file(&wanted.path).await?;
        if wanted.is_met_by(current.as_ref()) {
            let change = wanted.change_from(current.as_ref());
            Ok(Probe::Done(wanted.applied(false, None, change)))
        } else {
            Ok(Probe::NotDone)
        }
    }
}

/// The file the arguments ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    path: PathBuf,
    content: Vec<u8>,
    mode: Option<u32>,
    owner: Option<Ownership>,
}

impl Wanted {
    /// Reads the arguments, loading `src` or `template` from the playbook's directory.
    async fn read(
        context: &StepContext,
        arguments: HostFileArguments,
    ) -> Result<Self, ActionError> {
        let content = match (&arguments.content, &arguments.template, &arguments.src) {
            (Some(content), None, None) => content.clone().into_bytes(),
            (None, Some(template), None) => template_content(context, template).await?,
            (None, None, Some(src)) => read_local(&context.base_dir, src).await?,
            _ => {
                return Err(invalid(
                    "give exactly one of `content`, `template` and `src`",
                ));
            }
        };
        Ok(Self {
            path: absolute_path(&arguments.path)?,
            content,
            mode: arguments.mode.as_deref().map(parse_mode).transpose()?,
            owner: arguments
                .owner
                .as_deref()
                .map(Ownership::parse)
                .transpose()
                .map_err(|message| invalid(&message))?,
        })
    }

    /// Whether the file already has the wanted content, and mode and owner where given.
    fn is_met_by(&self, current: Option<&FileState>) -> bool {
        current.is_some_and(|current| {
            current.content == self.content
                && self.mode.is_none_or(|mode| mode == current.mode)
                && self
                    .owner
                    .as_ref()
                    .is_none_or(|owner| owner.is_met_by(&current.owner))
        })
    }

    /// The file to write: what is not given stays as it is (or takes the defaults).
    fn resolve(&self, current: Option<&FileState>) -> FileSpec {
        let owner = match (&self.owner, current) {
            (Some(owner), Some(current)) if owner.group.is_none() => Some(Ownership {
                user: owner.user.clone(),
                group: current.owner.group.clone(),
            }),
            (Some(owner), _) => Some(owner.clone()),
            (None, Some(current)) => Some(current.owner.clone()),
            (None, None) => None,
        };
        FileSpec {
            content: self.content.clone(),
            mode: self
                .mode
                .or(current.map(|current| current.mode))
                .unwrap_or(DEFAULT_MODE),
            owner,
        }
    }

    /// The change from `current` to the wanted file, as text.
    fn change_from(&self, current: Option<&FileState>) -> Change {
        let after = self.resolve(current);
        let path = self.path.display();
        let summary = match current {
            None => format!("create {path} ({})", size(&after.content)),
            Some(_) if self.is_met_by(current) => format!("{path} is up to date"),
            Some(current) => {
                let mut parts = Vec::new();
                if current.content != after.content {
                    parts.push(format!("content, {}", size(&after.content)));
                }
                if current.mode != after.mode {
                    parts.push(format!("mode {:04o}", after.mode));
                }
                if after.owner.as_ref() != Some(&current.owner) {
                    parts.push(format!("owner {}", owner_text(after.owner.as_ref())));
                }
                format!("update {path} ({})", parts.join("; "))
            }
        };
        let before =
            current.map(|current| text_form(&current.content, current.mode, Some(&current.owner)));
        Change::between(
            summary,
            before,
            text_form(&after.content, after.mode, after.owner.as_ref()),
        )
    }

    /// The step's result.
    fn applied(&self, changed: bool, undo: Option<Value>, change: Change) -> Applied {
        let mut outputs = Map::new();
        outputs.insert("changed".into(), json!(changed));
        outputs.insert("sha256".into(), json!(sha256_hex(&self.content)));
        Applied {
            secrets: Vec::new(),
            outputs,
            undo,
            change: Some(change),
        }
    }
}

/// The previous state of the file, as kept in the journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UndoRecord {
    /// There was no file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absent: bool,
    /// Its content, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_b64: Option<String>,
    /// Its mode in octal (`0644`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Its owner as `user:group`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl UndoRecord {
    /// The record of `current`, or of its absence.
    pub fn of(current: Option<&FileState>) -> Self {
        match current {
            None => Self {
                absent: true,
                ..Self::default()
            },
            Some(current) => Self {
                absent: false,
                content_b64: Some(BASE64.encode(&current.content)),
                mode: Some(format!("{:04o}", current.mode)),
                owner: Some(current.owner.to_string()),
            },
        }
    }

    /// The file to restore, or `None` for "remove it".
    pub fn previous(&self) -> Result<Option<FileSpec>, ActionError> {
        if self.absent {
            return Ok(None);
        }
        let broken = |what: &str| ActionError::failed(format!("undo record has {what}"));
        let content = self
            .content_b64
            .as_deref()
            .ok_or_else(|| broken("no content"))
            .and_then(|text| {
                BASE64
                    .decode(text)
                    .map_err(|_| broken("content that is not base64"))
            })?;
        let mode = self
            .mode
            .as_deref()
            .ok_or_else(|| broken("no mode"))
            .and_then(|mode| parse_mode(mode).map_err(|_| broken("an unreadable mode")))?;
        let owner = self
            .owner
            .as_deref()
            .ok_or_else(|| broken("no owner"))
            .and_then(|owner| Ownership::parse(owner).map_err(|_| broken("an unreadable owner")))?;
        Ok(Some(FileSpec {
            content,
            mode,
            owner: Some(owner),
        }))
    }
}

/// The path, which must be absolute and free of `..`.
fn absolute_path(path: &str) -> Result<PathBuf, ActionError> {
    let path = PathBuf::from(path);
    if path
        .components()
        .any(|component| component == std::path::Component::ParentDir)
    {
        Err(invalid(&format!(
            "`path` may not contain `..` (`{}`): name the file by its own absolute path, \
             so that no value spliced into it can reach outside the directory it names",
            path.display()
        )))
    } else if path.is_absolute() {
        Ok(path)
    } else {
        Err(invalid(&format!(
            "`path` must be absolute, not `{}`",
            path.display()
        )))
    }
}

/// Permission bits from octal text (`0644`, `755`).
fn parse_mode(text: &str) -> Result<u32, ActionError> {
    let valid = (3..=4).contains(&text.len()) && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|_| valid)
        .ok_or_else(|| {
            invalid(&format!(
                "`mode` must be 3 or 4 octal digits such as \"0644\", not `{text}`"
            ))
        })
}

/// A file on this machine, relative to the playbook's directory.
async fn read_local(base_dir: &Path, name: &str) -> Result<Vec<u8>, ActionError> {
    let path = base_dir.join(name);
    tokio::fs::read(&path)
        .await
        .map_err(|error| ActionError::failed(format!("failed to read {}: {error}", path.display())))
}

/// A template file rendered with the step's context (`host`, `inputs`, `steps`, ...).
async fn template_content(context: &StepContext, name: &str) -> Result<Vec<u8>, ActionError> {
    let content = read_local(&context.base_dir, name).await?;
    let text = String::from_utf8(content).map_err(|_| {
        ActionError::failed(format!("template `{name}` is not UTF-8 text"))
    })?;
    context
        .evaluator
        .render(&text)
        .map(String::into_bytes)
        .map_err(|error| ActionError::failed(format!("template `{name}`: {error}")))
}

/// An argument error of this action.
fn invalid(message: &str) -> ActionError {
    ActionError::InvalidArguments {
        action: NAME,
        message: message.to_owned(),
    }
}

/// A file as text for a diff: a header with mode and owner, then the content.
fn text_form(content: &[u8], mode: u32, owner: Option<&Ownership>) -> String {
    let header = format!("mode {mode:04o} owner {}\n", owner_text(owner));
    match std::str::from_utf8(content) {
        Ok(text) if !text.contains('\0') => header + text,
        _ => format!(
            "{header}(binary, {} bytes, sha256 {})\n",
            content.len(),
            sha256_hex(content)
        ),
    }
}

/// An owner for humans; a new file without `owner` belongs to the connecting user.
fn owner_text(owner: Option<&Ownership>) -> String {
    owner.map_or_else(|| "(the connecting user)".to_owned(), ToString::to_string)
}

/// The size of content for humans: lines for text, bytes otherwise.
fn size(content: &[u8]) -> String {
    match std::str::from_utf8(content) {
        Ok(text) if !text.contains('\0') => match text.lines().count() {
            1 => "1 line".to_owned(),
            lines => format!("{lines} lines"),
        },
        _ => format!("{} bytes", content.len()),
    }
}

/// The SHA-256 of content, in hex.
fn sha256_hex(content: &[u8]) -> String {
    Sha256::digest(content)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use nix::unistd::{Gid, Group, Uid, User};

    use super::*;
    use crate::host::testing::local_step;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn mode_of(path: &Path) -> std::io::Result<u32> {
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o7777)
    }

    fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }

    /// `user:group` of the user the tests run as.
    fn me() -> Result<String, Box<dyn std::error::Error>> {
        let user = User::from_uid(Uid::effective())?.ok_or("no user")?;
        let group = Group::from_gid(Gid::effective())?.ok_or("no group")?;
        Ok(format!("{}:{}", user.name, group.name))
    }

    #[tokio::test]
    async fn creates_a_file_and_undo_removes_it() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("kong.conf");
        let arguments = json!({"path": path, "content": "a = 1\n", "mode": "0600"});
        let context = local_step(false);
        let applied = HostFile::new().apply(&context, arguments.clone()).await?;
        assert_eq!(applied.outputs["changed"], json!(true));
        assert_eq!(applied.outputs["sha256"], json!(sha256_hex(b"a = 1\n")));
        assert_eq!(std::fs::read(&path)?, b"a = 1\n");
        assert_eq!(mode_of(&path)?, 0o600);
        let undo = applied.undo.ok_or("no undo record")?;
        assert_eq!(undo, json!({"absent": true}));

        HostFile::new().undo(&context, arguments, undo).await?;
        assert!(!path.exists());
        Ok(())
    }

    #[tokio::test]
    async fn a_new_file_without_mode_gets_0644() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("f");
        HostFile::new()
            .apply(&local_step(false), json!({"path": path, "content": "x"}))
            .await?;
        assert_eq!(mode_of(&path)?, 0o644);
        Ok(())
    }

    #[tokio::test]
    async fn a_write_run_again_after_a_crash_undoes_to_the_file_its_first_attempt_replaced()
    -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("kong.conf");
        std::fs::write(&path, "old\n")?;
        let arguments = json!({"path": path, "content": "new\n"});
        // The first attempt kept the old file, wrote the new one and was killed before its
        // end record; run again, the file is already as wanted.
        let (first, kept) = crate::test_support::keeping(local_step(false), None);
        HostFile::new().apply(&first, arguments.clone()).await?;
        let state = kept.lock().map_err(|_| "poisoned")?.first().cloned();
        assert!(state.is_some(), "nothing kept");
        assert_eq!(std::fs::read(&path)?, b"new\n");

        let (again, _) = crate::test_support::keeping(local_step(false), state);
        let applied = HostFile::new().apply(&again, arguments.clone()).await?;
        assert_eq!(applied.outputs["changed"], json!(true));
        let undo = applied.undo.ok_or("no undo record")?;
        HostFile::new().undo(&again, arguments, undo).await?;
        assert_eq!(std::fs::read(&path)?, b"old\n", "the undo restored the file before the run");
        Ok(())
    }

    #[tokio::test]
    async fn updates_a_file_and_undo_restores_it_byte_for_byte() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("data.bin");
        let original: Vec<u8> = (0..=255_u8).chain([0, 13, 10, 255]).collect();
        std::fs::write(&path, &original)?;
        set_mode(&path, 0o751)?;
        let arguments = json!({"path": path, "content": "new\n", "mode": "0640", "owner": me()?});
        let context = local_step(false);

        let applied = HostFile::new().apply(&context, arguments.clone()).await?;
        assert_eq!(applied.outputs["changed"], json!(true));
        assert_eq!(std::fs::read(&path)?, b"new\n");
        assert_eq!(mode_of(&path)?, 0o640);
        let undo = applied.undo.ok_or("no undo record")?;
        assert_eq!(undo["mode"], json!("0751"));
        assert_eq!(undo["owner"], json!(me()?));

        HostFile::new().undo(&context, arguments, undo).await?;
        assert_eq!(std::fs::read(&path)?, original);
        assert_eq!(mode_of(&path)?, 0o751);
        Ok(())
    }

    /// Changing a file's owner needs root: as another user this test checks nothing.
    #[tokio::test]
    async fn undo_restores_the_owner() -> TestResult {
        if !Uid::effective().is_root() {
            return Ok(());
        }
        use std::os::unix::fs::MetadataExt as _;
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("owned");
        std::fs::write(&path, "x\n")?;
        std::os::unix::fs::chown(&path, Some(1), Some(1))?;
        let arguments = json!({"path": path, "content": "x\n", "owner": "nobody"});
        let context = local_step(false);

        let applied = HostFile::new().apply(&context, arguments.clone()).await?;
        assert_eq!(applied.outputs["changed"], json!(true));
        let metadata = std::fs::metadata(&path)?;
        assert_eq!(
            (metadata.uid(), metadata.gid()),
            (65534, 1),
            "the group stays"
        );
        let undo = applied.undo.ok_or("no undo record")?;

        HostFile::new().undo(&context, arguments, undo).await?;
        let metadata = std::fs::metadata(&path)?;
        assert_eq!((metadata.uid(), metadata.gid()), (1, 1));
        Ok(())
    }

    #[tokio::test]
    async fn a_file_already_as_wanted_is_not_written() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("f");
        std::fs::write(&path, "same\n")?;
        set_mode(&path, 0o600)?;
        let before = std::fs::metadata(&path)?;
        let context = local_step(false);
        for arguments in [
            json!({"path": path, "content": "same\n"}),
            json!({"path": path, "content": "same\n", "mode": "600", "owner": me()?}),
        ] {
            let applied = HostFile::new().apply(&context, arguments).await?;
            assert_eq!(applied.outputs["changed"], json!(false));
            assert!(applied.undo.is_none());
            assert_eq!(
                applied.change.and_then(|change| change.changes),
                Some(false)
            );
        }
        let after = std::fs::metadata(&path)?;
        assert_eq!(
            std::os::unix::fs::MetadataExt::ino(&before),
            std::os::unix::fs::MetadataExt::ino(&after),
            "the file was replaced"
        );

        let applied = HostFile::new()
            .apply(
                &context,
                json!({"path": path, "content": "same\n", "mode": "0644"}),
            )
            .await?;
        assert_eq!(
            applied.outputs["changed"],
            json!(true),
            "a mode change is a change"
        );
        assert_eq!(mode_of(&path)?, 0o644);
        Ok(())
    }

    #[tokio::test]
    async fn copies_src_and_renders_templates_only_in_a_run() -> TestResult {
        let directory = tempfile::tempdir()?;
        std::fs::write(directory.path().join("plain.conf"), "plain\n")?;
        std::fs::write(directory.path().join("real.j2"), "x = {{ x }}\n")?;
        let target = directory.path().join("out");
        let mut context = local_step(false);
        context.base_dir = directory.path().to_owned();

        HostFile::new()
            .apply(&context, json!({"path": target, "src": "plain.conf"}))
            .await?;
        assert_eq!(std::fs::read(&target)?, b"plain\n");

        // Rendering needs the run's template context (tests/run/ssh.rs renders for real).
        let outcome = HostFile::new()
            .apply(&context, json!({"path": target, "template": "real.j2"}))
            .await;
        assert!(
            matches!(&outcome, Err(ActionError::Failed { message }) if message.contains("template `real.j2`: cannot render")),
            "{outcome:?}"
        );
        assert_eq!(std::fs::read(&target)?, b"plain\n");
        let outcome = HostFile::new()
            .apply(&context, json!({"path": target, "src": "missing"}))
            .await;
        assert!(
            matches!(outcome, Err(ActionError::Failed { .. })),
            "{outcome:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn refuses_relative_paths_bad_modes_and_several_sources() {
        let context = local_step(false);
        for arguments in [
            json!({"path": "etc/x", "content": "x"}),
            json!({"path": "/tmp/x", "content": "x", "mode": "0988"}),
            json!({"path": "/tmp/x", "content": "x", "mode": "64"}),
            json!({"path": "/tmp/x", "content": "x", "owner": "kong:"}),
            json!({"path": "/tmp/x", "content": "x", "src": "y"}),
            json!({"path": "/tmp/x"}),
        ] {
            let outcome = HostFile::new().apply(&context, arguments.clone()).await;
            assert!(
                matches!(outcome, Err(ActionError::InvalidArguments { .. })),
                "{arguments}: {outcome:?}"
            );
        }
    }

    #[tokio::test]
    async fn plan_shows_the_diff_with_mode_and_owner() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("kong.conf");
        std::fs::write(&path, "a = 1\nb = 2\n")?;
        set_mode(&path, 0o644)?;
        let owner = me()?;
        let context = local_step(true);

        let change = HostFile::new()
            .plan(
                &context,
                json!({"path": path, "content": "a = 1\nb = 3\n", "mode": "0600"}),
            )
            .await?;
        assert_eq!(change.changes, Some(true));
        assert_eq!(
            change.summary,
            format!("update {} (content, 2 lines; mode 0600)", path.display())
        );
        assert_eq!(
            change.before.as_deref(),
            Some(format!("mode 0644 owner {owner}\na = 1\nb = 2\n").as_str())
        );
        assert_eq!(
            change.after.as_deref(),
            Some(format!("mode 0600 owner {owner}\na = 1\nb = 3\n").as_str())
        );
        assert_eq!(
            std::fs::read(&path)?,
            b"a = 1\nb = 2\n",
            "plan changed the file"
        );

        let new = directory.path().join("new.bin");
        let change = HostFile::new()
            .plan(&context, json!({"path": new, "content": "\u{0}\u{1}"}))
            .await?;
        assert_eq!(change.before, None);
        assert_eq!(
            change.after.as_deref(),
            Some(
                format!(
                    "mode 0644 owner (the connecting user)\n(binary, 2 bytes, sha256 {})\n",
                    sha256_hex(b"\0\x01")
                )
                .as_str()
            )
        );
        assert!(!new.exists());

        let change = HostFile::new()
            .plan(&context, json!({"path": path, "content": "a = 1\nb = 2\n"}))
            .await?;
        assert_eq!(change.changes, Some(false));
        Ok(())
    }

    #[tokio::test]
    async fn a_dry_run_apply_is_refused_and_the_file_is_unchanged() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("f");
        std::fs::write(&path, "old\n")?;
        let outcome = HostFile::new()
            .apply(&local_step(true), json!({"path": path, "content": "new\n"}))
            .await;
        assert!(
            matches!(&outcome, Err(ActionError::DryRunWrite { what }) if what.contains("write")),
            "{outcome:?}"
        );
        assert_eq!(std::fs::read(&path)?, b"old\n");
        assert_eq!(std::fs::read_dir(directory.path())?.count(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn probe_tells_whether_the_file_is_as_wanted() -> TestResult {
        let directory = tempfile::tempdir()?;
        let path = directory.path().join("f");
        let arguments = json!({"path": path, "content": "x\n"});
        let context = local_step(false);
        assert!(matches!(
            HostFile::new().probe(&context, arguments.clone()).await?,
            Probe::NotDone
        ));
        std::fs::write(&path, "x\n")?;
        match HostFile::new().probe(&context, arguments).await? {
            Probe::Done(applied) => {
                assert_eq!(applied.outputs["changed"], json!(false));
                assert!(applied.undo.is_none());
            }
            other => return Err(format!("expected Done, got {other:?}").into()),
        }
        Ok(())
    }

    #[test]
    fn undo_records_round_trip() -> Result<(), ActionError> {
        let state = FileState {
            content: vec![0, 1, 2],
            mode: 0o4755,
            owner: Ownership {
                user: "kong".into(),
                group: Some("kong".into()),
            },
        };
        let record = UndoRecord::of(Some(&state));
        assert_eq!(
            record.previous()?,
            Some(FileSpec {
                content: state.content,
                mode: state.mode,
                owner: Some(state.owner)
            })
        );
        assert_eq!(UndoRecord::of(None).previous()?, None);
        assert!(UndoRecord::default().previous().is_err());
        Ok(())
    }
}
