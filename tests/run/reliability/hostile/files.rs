//! Paths a playbook names: `host.file` refuses `..` and symbolic links (so it
//! writes nothing outside the file named, and its undo restores exactly), and
//! an artefact path (`kong.snapshot`) cannot be made to climb out of its
//! directory by a value with `..` spliced into it.

use std::path::Path;

use crate::lab::{Lab, TestResult};
use crate::reliability::report;

/// Every file under `dir` with its bytes (links as `-> target`).
fn snapshot(dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let name = path
                .strip_prefix(dir.as_path())
                .unwrap_or(&path)
                .display()
                .to_string();
            if meta.file_type().is_symlink() {
                files.push((
                    path.display().to_string(),
                    format!("-> {}", std::fs::read_link(&path)?.display()).into_bytes(),
                ));
            } else if meta.is_dir() {
                stack.push(path);
            } else {
                files.push((format!("{}/{name}", dir.display()), std::fs::read(&path)?));
            }
        }
    }
    files.sort();
    Ok(files)
}

#[test]
fn host_file_writes_only_the_file_it_names() -> TestResult {
    let lab = Lab::with_data()?;
    std::fs::create_dir_all(lab.data().join("conf.d"))?;
    std::fs::write(lab.data().join("real.conf"), "original\n")?;
    std::os::unix::fs::symlink(
        lab.data().join("real.conf"),
        lab.data().join("conf.d/link.conf"),
    )?;
    std::os::unix::fs::symlink(
        lab.data().join("nowhere"),
        lab.data().join("conf.d/dangling.conf"),
    )?;
    std::fs::write(lab.data().join("conf.d/kept.conf"), "kept\n")?;
    lab.write(
        "files.yaml",
        r#"runsheet: 1
name: files
inputs:
  name: {type: string, required: true}
steps:
  - id: first
    action: host.file
    on: me
    with: {path: "{{ env.data }}/conf.d/kept.conf", content: "changed\n"}
  - id: named
    action: host.file
    on: me
    with: {path: "{{ env.data }}/conf.d/{{ inputs.name }}", content: "written by runsheet\n"}
"#,
    )?;
    let before = snapshot(&lab.data())?;
    let cases = [
        (
            "`..` in an input",
            "../../escaped.conf",
            "may not contain `..`",
        ),
        ("a symbolic link", "link.conf", "is a symbolic link to"),
        (
            "a dangling symbolic link",
            "dangling.conf",
            "is a symbolic link to",
        ),
    ];
    let mut rows = Vec::new();
    for (what, name, reason) in cases {
        let plan = lab.run(&[
            "plan",
            "files.yaml",
            "--env",
            "env.yaml",
            "--set",
            &format!("name={name}"),
        ])?;
        let run = lab.run(&[
            "run",
            "files.yaml",
            "--env",
            "env.yaml",
            "--yes",
            "--set",
            &format!("name={name}"),
        ])?;
        // Step `first` changed kept.conf, then `named` failed: the undo put kept.conf back.
        assert_eq!(run.code, Some(1), "{what}: {}", run.all());
        assert!(run.all().contains(reason), "{what}: {}", run.all());
        assert_eq!(snapshot(&lab.data())?, before, "{what}: the files changed");
        assert!(
            !lab.path().join("escaped.conf").exists() && !lab.data().join("escaped.conf").exists()
        );
        rows.push(vec![
            what.to_owned(),
            format!(
                "plan exit {}, run exit {}",
                plan.code.unwrap_or(-1),
                run.code.unwrap_or(-1)
            ),
            format!(
                "`{}`",
                super::line_with(&run.all(), reason)
                    .chars()
                    .take(110)
                    .collect::<String>()
            ),
            "files, link and target as before (undo restored kept.conf)".to_owned(),
        ]);
    }
    report(
        "Hostile input: host.file paths",
        &["case", "exit", "message", "files after"],
        &rows,
    );
    Ok(())
}

#[test]
fn an_artefact_path_cannot_climb_out_of_its_directory() -> TestResult {
    let lab = Lab::new()?;
    lab.write(
        "env.yaml",
        "runsheet: 1\nname: lab\ngateways:\n  kong: {type: kong, twin: {}}\nhosts:\n  me: {transport: local}\n",
    )?;
    lab.write(
        "snap.yaml",
        r#"runsheet: 1
name: snap
inputs:
  crq: {type: string, required: true}
steps:
  - id: snapshot
    action: kong.snapshot
    on: kong
    with: {path: "snapshots/{{ inputs.crq }}.yaml"}
"#,
    )?;
    let refused = lab.run(&[
        "run",
        "snap.yaml",
        "--env",
        "env.yaml",
        "--yes",
        "--set",
        "crq=../../escaped",
    ])?;
    assert_eq!(refused.code, Some(1), "{}", refused.all());
    assert!(
        refused.all().contains("climbs out of a directory"),
        "{}",
        refused.all()
    );
    assert!(
        !lab.path().join("../escaped.yaml").exists() && !lab.path().join("escaped.yaml").exists()
    );
    let fine = lab.run(&[
        "run",
        "snap.yaml",
        "--env",
        "env.yaml",
        "--yes",
        "--set",
        "crq=CRQ-1",
    ])?;
    assert_eq!(fine.code, Some(0), "{}", fine.all());
    assert!(lab.path().join("snapshots/CRQ-1.yaml").is_file());
    report(
        "Hostile input: artefact paths",
        &["case", "outcome"],
        &[
            vec![
                "`snapshots/{{ inputs.crq }}.yaml`, crq=`../../escaped`".into(),
                format!(
                    "exit 1: `{}`",
                    super::line_with(&refused.all(), "climbs out")
                        .chars()
                        .take(110)
                        .collect::<String>()
                ),
            ],
            vec![
                "same, crq=`CRQ-1`".into(),
                "exit 0, snapshots/CRQ-1.yaml written".into(),
            ],
        ],
    );
    Ok(())
}
