//! `host.file` and what a path names: a `..` is refused, and a symbolic link
//! at `path` is neither replaced nor written through, on the local transport
//! and in the SSH write script (run by the machine's own `sh`).

use std::path::Path;

use serde_json::json;

use super::file::HostFile;
use super::ssh::script;
use super::testing::local_step;
use super::transport::{FileSpec, LINK_REFUSED};
use runsheet_engine::Action as _;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The link's own target and the target file's bytes.
fn link_state(link: &Path, target: &Path) -> std::io::Result<(std::path::PathBuf, Vec<u8>)> {
    Ok((std::fs::read_link(link)?, std::fs::read(target)?))
}

#[tokio::test]
async fn a_path_with_dot_dot_is_refused_before_anything_is_read() -> TestResult {
    let directory = tempfile::tempdir()?;
    let path = format!("{}/conf.d/../../escaped", directory.path().display());
    let context = local_step(false);
    let arguments = json!({"path": path, "content": "x"});
    for outcome in [
        HostFile::new()
            .plan(&context, arguments.clone())
            .await
            .err(),
        HostFile::new().apply(&context, arguments).await.err(),
    ] {
        let message = outcome.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("may not contain `..`"), "{message}");
    }
    assert!(!directory.path().join("../escaped").exists());
    Ok(())
}

#[tokio::test]
async fn a_symbolic_link_at_path_is_refused_and_left_as_it_was() -> TestResult {
    let directory = tempfile::tempdir()?;
    let target = directory.path().join("real.conf");
    let link = directory.path().join("kong.conf");
    std::fs::write(&target, "old\n")?;
    std::os::unix::fs::symlink(&target, &link)?;
    let before = link_state(&link, &target)?;
    let context = local_step(false);
    let arguments = json!({"path": link, "content": "new\n"});

    // The plan reads through the link, so the operator sees the diff it would make.
    let change = HostFile::new().plan(&context, arguments.clone()).await?;
    assert!(change.summary.contains("update"), "{}", change.summary);
    let message = HostFile::new()
        .apply(&context, arguments)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("symbolic link to"), "{message}");
    assert!(message.contains(LINK_REFUSED), "{message}");
    assert_eq!(link_state(&link, &target)?, before);
    Ok(())
}

#[tokio::test]
async fn a_dangling_link_is_refused_too() -> TestResult {
    let directory = tempfile::tempdir()?;
    let link = directory.path().join("kong.conf");
    std::os::unix::fs::symlink(directory.path().join("missing"), &link)?;
    let outcome = HostFile::new()
        .apply(
            &local_step(false),
            json!({"path": link, "content": "new\n"}),
        )
        .await;
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(std::fs::symlink_metadata(&link)?.file_type().is_symlink());
    assert!(!directory.path().join("missing").exists());
    Ok(())
}

#[test]
fn the_ssh_write_script_refuses_a_link() -> TestResult {
    let directory = tempfile::tempdir()?;
    let target = directory.path().join("real.conf");
    let link = directory.path().join("kong.conf");
    std::fs::write(&target, "old\n")?;
    std::os::unix::fs::symlink(&target, &link)?;
    let spec = FileSpec {
        content: b"new\n".to_vec(),
        mode: 0o644,
        owner: None,
    };
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(script::write_file(&link, &spec))
        .stdin(std::process::Stdio::null())
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("symbolic link to"), "{stderr}");
    assert!(std::fs::symlink_metadata(&link)?.file_type().is_symlink());
    assert_eq!(std::fs::read(&target)?, b"old\n");
    assert_eq!(
        std::fs::read_dir(directory.path())?.count(),
        2,
        "a temporary file stayed"
    );
    Ok(())
}
