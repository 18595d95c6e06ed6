//! Writing a report file atomically: readers see the old file or the whole new one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Tells apart the temporary files of reports written at the same time by one process.
static TEMPORARY_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `contents` to `path` through a temporary file in the same directory, creating
/// missing parent directories.
pub(super) fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let Some(file_name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path names no file",
        ));
    };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::create_dir_all(directory)?;
    let temporary = temporary_path(directory, &file_name.to_string_lossy());
    let written = write_new(&temporary, contents).and_then(|()| fs::rename(&temporary, path));
    if written.is_err() {
        // The temporary file is ours alone; failing to remove it must not hide the real error.
        let _ = fs::remove_file(&temporary);
    }
    written
}

fn temporary_path(directory: &Path, file_name: &str) -> PathBuf {
    let counter = TEMPORARY_COUNTER.fetch_add(1, Ordering::Relaxed);
    directory.join(format!(".{file_name}.{}-{counter}.tmp", std::process::id()))
}

fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = File::create_new(path)?;
    file.write_all(contents)?;
    file.sync_all()
}
