//! A twin run as a process with a state directory (`runsheet twin layer7 --state-dir`),
//! so that a lab can patch and restart it like a gateway node: the node id is kept, the
//! product version is read from `version` and the installed patches from `patches` at
//! every start, the PID is in `layer7.pid` while it runs, and the entities are saved to
//! `state.json` when it stops and loaded back when it starts.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::node::Patch;
use super::store::new_goid;

/// The file holding the product version (e.g. `11.1.2`).
pub const VERSION_FILE: &str = "version";

/// The file listing installed patches, one per line: `<patchId> [description]`.
pub const PATCHES_FILE: &str = "patches";

/// The file holding the node id, kept across restarts.
pub const NODE_ID_FILE: &str = "node_id";

/// The file holding the PID while the twin runs.
pub const PID_FILE: &str = "layer7.pid";

/// The file holding the entities between runs.
pub const STATE_FILE: &str = "state.json";

/// What a start reads from the state directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Boot {
    /// The directory.
    pub dir: PathBuf,
    /// Product version.
    pub version: String,
    /// Node id.
    pub node_id: String,
    /// Installed patches (the last one is `latest`).
    pub patches: Vec<Patch>,
    /// The state saved by the previous run, if any.
    pub saved: Option<Value>,
}

/// Reads (and initialises what is missing in) `dir`: `version` (written with
/// `default_version` when missing), `node_id`, `patches` and `state.json`.
pub fn boot(dir: &Path, default_version: &str) -> io::Result<Boot> {
    std::fs::create_dir_all(dir)?;
    let version = read_or_init(&dir.join(VERSION_FILE), default_version)?;
    let node_id = read_or_init(&dir.join(NODE_ID_FILE), &new_goid())?;
    let patches = match std::fs::read_to_string(dir.join(PATCHES_FILE)) {
        Ok(text) => parse_patches(&text),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error),
    };
    let state_path = dir.join(STATE_FILE);
    let saved = match std::fs::read_to_string(&state_path) {
        Ok(text) => Some(serde_json::from_str(&text).map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {error}", state_path.display()),
            )
        })?),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(error),
    };
    Ok(Boot {
        dir: dir.to_path_buf(),
        version,
        node_id,
        patches,
        saved,
    })
}

/// The patches a `patches` file lists (blank lines and `#` comments skipped).
pub fn parse_patches(text: &str) -> Vec<Patch> {
    let mut patches: Vec<Patch> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (id, description) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            Patch {
                patch_id: id.to_owned(),
                description: description.trim().to_owned(),
                status: "INSTALLED".to_owned(),
                latest: false,
            }
        })
        .collect();
    if let Some(last) = patches.last_mut() {
        last.latest = true;
    }
    patches
}

/// Writes the PID file.
pub fn write_pid(dir: &Path) -> io::Result<()> {
    std::fs::write(dir.join(PID_FILE), format!("{}\n", std::process::id()))
}

/// Saves `state` (from [`super::Layer7Twin::export`]) and removes the PID file.
pub fn shut_down(dir: &Path, state: &Value) -> io::Result<()> {
    let path = dir.join(STATE_FILE);
    let temporary = dir.join(format!("{STATE_FILE}.tmp"));
    std::fs::write(&temporary, state.to_string())?;
    std::fs::rename(&temporary, &path)?;
    match std::fs::remove_file(dir.join(PID_FILE)) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// The trimmed content of `path`, after writing `initial` there when the file is missing.
fn read_or_init(path: &Path, initial: &str) -> io::Result<String> {
    if !path.exists() {
        std::fs::write(path, format!("{initial}\n"))?;
    }
    let text = std::fs::read_to_string(path)?;
    let value = text.trim();
    if value.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_are_listed_one_per_line_and_the_last_is_latest() {
        let patches = parse_patches("# installed\nCR01 first cumulative\n\nCR02\n");
        assert_eq!(patches.len(), 2);
        assert_eq!(patches[0].patch_id, "CR01");
        assert_eq!(patches[0].description, "first cumulative");
        assert!(!patches[0].latest && patches[1].latest);
    }

    #[test]
    fn a_state_directory_keeps_the_node_id_and_reads_the_version() -> io::Result<()> {
        let dir = std::env::temp_dir().join(format!("l7-state-{}", new_goid()));
        let first = boot(&dir, "11.1.2")?;
        std::fs::write(dir.join(VERSION_FILE), "11.1.3\n")?;
        std::fs::write(dir.join(PATCHES_FILE), "CR03\n")?;
        let second = boot(&dir, "11.1.2")?;
        assert_eq!(first.node_id, second.node_id);
        assert_eq!(second.version, "11.1.3");
        assert_eq!(second.patches.len(), 1);
        write_pid(&dir)?;
        shut_down(&dir, &serde_json::json!({"store": {}}))?;
        assert!(!dir.join(PID_FILE).exists());
        assert!(boot(&dir, "x")?.saved.is_some());
        std::fs::remove_dir_all(&dir)
    }
}
