//! What an operator meets before the first run: `--help` of every verb (with
//! examples), shell completions, manual pages and `runsheet init`.

use std::path::Path;
use std::process::Command;

use crate::support::{TestResult, runsheet, runsheet_in};

/// The verbs, from the binary's own help, so a new verb is covered without editing this list.
fn verbs() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let help = runsheet(&["--help"])?;
    assert_eq!(help.code, Some(0), "{}", help.stderr);
    let commands = help
        .stdout
        .split("Commands:")
        .nth(1)
        .ok_or("no Commands: section")?;
    let verbs: Vec<String> = commands
        .lines()
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .filter(|verb| verb != "help")
        .collect();
    assert!(verbs.len() >= 15, "{verbs:?}");
    Ok(verbs)
}

#[test]
fn every_verb_has_help_with_examples_and_the_help_is_snapshotted() -> TestResult {
    let mut all = String::new();
    for verb in verbs()? {
        let help = runsheet(&[verb.as_str(), "--help"])?;
        assert_eq!(help.code, Some(0), "{verb}: {}", help.stderr);
        assert!(
            help.stdout.contains("Examples:\n  runsheet "),
            "`runsheet {verb} --help` has no examples:\n{}",
            help.stdout
        );
        all.push_str(&format!("=== runsheet {verb} --help\n{}\n", help.stdout));
    }
    insta::assert_snapshot!("help-of-every-verb", all);
    Ok(())
}

#[test]
fn completions_are_generated_for_each_shell_and_name_every_verb() -> TestResult {
    let verbs = verbs()?;
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = runsheet(&["completions", shell])?;
        assert_eq!(out.code, Some(0), "{shell}: {}", out.stderr);
        for verb in &verbs {
            assert!(
                out.stdout.contains(verb.as_str()),
                "{shell} completion lacks {verb}"
            );
        }
    }
    // The bash script is valid bash and completes verbs when sourced.
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("runsheet.bash");
    std::fs::write(&script, runsheet(&["completions", "bash"])?.stdout)?;
    let probe = format!(
        "source {}; COMP_WORDS=(runsheet ro); COMP_CWORD=1; COMP_LINE='runsheet ro'; COMP_POINT=11; _runsheet runsheet ro runsheet; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let completed = Command::new("bash")
        .args(["--norc", "-c", &probe])
        .output()?;
    let words = String::from_utf8_lossy(&completed.stdout);
    assert!(
        completed.status.success(),
        "{}",
        String::from_utf8_lossy(&completed.stderr)
    );
    assert_eq!(
        words.split_whitespace().collect::<Vec<_>>(),
        ["rollback"],
        "bash completed `ro` to: {words}"
    );
    assert_eq!(runsheet(&["completions", "tcsh"])?.code, Some(3));
    Ok(())
}

#[test]
fn the_manual_page_is_roff_and_one_page_per_verb_is_written() -> TestResult {
    let page = runsheet(&["man"])?;
    assert_eq!(page.code, Some(0), "{}", page.stderr);
    assert!(page.stdout.contains(".TH runsheet 1"), "{}", page.stdout);
    assert!(page.stdout.contains("runsheet\\-run(1)"));
    let dir = tempfile::tempdir()?;
    let out = runsheet(&["man", "--out", &dir.path().display().to_string()])?;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for verb in verbs()? {
        let file = dir.path().join(format!("runsheet-{verb}.1"));
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        assert!(
            text.contains(&format!(".TH runsheet-{verb} 1")),
            "{}",
            file.display()
        );
    }
    assert!(dir.path().join("runsheet-twin-kong.1").is_file());
    let run_page = std::fs::read_to_string(dir.path().join("runsheet-run.1"))?;
    assert!(
        run_page.contains("Exit codes: 0 success"),
        "the examples and exit codes are not in runsheet-run(1)"
    );
    Ok(())
}

/// The files `runsheet init` writes.
const SCAFFOLD: [&str; 8] = [
    ".runsheet.yaml",
    "environments/uat.yaml",
    "environments/prod.yaml",
    "playbooks/health-check.yaml",
    "schemas/playbook.schema.json",
    "schemas/environment.schema.json",
    ".pre-commit-config.yaml",
    "ci/runsheet-validate.sh",
];

#[test]
fn init_scaffolds_a_repository_whose_playbooks_validate_and_never_overwrites() -> TestResult {
    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("runbooks");
    std::fs::create_dir_all(repo.join(".git"))?;
    std::fs::write(repo.join(".gitignore"), "target/\n")?;
    let made = runsheet_in(dir.path(), &["init", "runbooks"])?;
    assert_eq!(made.code, Some(0), "{}", made.stderr);
    for file in SCAFFOLD {
        assert!(
            made.stdout.contains(&format!("created  {file}")),
            "{file}: {}",
            made.stdout
        );
        assert!(repo.join(file).is_file(), "{file} missing");
    }
    assert_eq!(
        std::fs::read_to_string(repo.join(".gitignore"))?,
        "target/\n# runsheet: local state and reports\n.runsheet/\nrunsheet-out/\n"
    );

    // Playbooks carry the modeline to the schema init wrote, and that schema is the binary's.
    let playbook = std::fs::read_to_string(repo.join("playbooks/health-check.yaml"))?;
    assert!(
        playbook.starts_with("# yaml-language-server: $schema=../schemas/playbook.schema.json\n")
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("schemas/playbook.schema.json"))?.trim(),
        runsheet(&["schema"])?.stdout.trim()
    );

    // The default environment comes from .runsheet.yaml, from any directory of the repository.
    let valid = runsheet_in(&repo.join("playbooks"), &["validate", "health-check.yaml"])?;
    assert_eq!(valid.code, Some(0), "{}{}", valid.stdout, valid.stderr);
    let prod = runsheet_in(
        &repo,
        &["validate", "playbooks/health-check.yaml", "--env", "prod"],
    )?;
    assert_eq!(prod.code, Some(0), "{}{}", prod.stdout, prod.stderr);

    // The CI gate passes on the scaffold and fails (exit 3) once a playbook is broken.
    assert_eq!(gate(&repo)?, Some(0));
    std::fs::write(
        repo.join("playbooks/broken.yaml"),
        "runsheet: 1\nname: broken\nsteps:\n  - {id: a, action: kong.nope}\n",
    )?;
    assert_eq!(gate(&repo)?, Some(3));

    // A second init keeps every file, edited or not.
    std::fs::write(repo.join("environments/uat.yaml"), "edited\n")?;
    let again = runsheet_in(dir.path(), &["init", "runbooks"])?;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        !again.stdout.contains("created") && !again.stdout.contains("updated"),
        "{}",
        again.stdout
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("environments/uat.yaml"))?,
        "edited\n"
    );
    Ok(())
}

#[test]
fn init_where_a_file_blocks_a_directory_says_which() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("playbooks"), "a file")?;
    let made = runsheet_in(dir.path(), &["init"])?;
    assert_eq!(made.code, Some(1), "{}", made.stdout);
    assert!(
        made.stderr.contains("playbooks/health-check.yaml"),
        "{}",
        made.stderr
    );
    Ok(())
}

/// Runs the scaffold's CI gate with this build's binary first on PATH.
fn gate(repo: &Path) -> std::io::Result<Option<i32>> {
    let bin = Path::new(env!("CARGO_BIN_EXE_runsheet"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = Command::new(repo.join("ci/runsheet-validate.sh"))
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()?;
    Ok(status.status.code())
}
