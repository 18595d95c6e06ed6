//! `runsheet init`: scaffolds a runbook repository (project configuration,
//! environment templates, a first playbook, editor schemas and a validate
//! gate for pre-commit and CI). It never overwrites a file.

use std::path::{Path, PathBuf};

use runsheet_engine::{Registry, format_schema};

use crate::exit::Exit;
use crate::render::json_text;

/// A file `init` writes: where, what, and whether it is executable.
struct Scaffold {
    /// Relative to the repository.
    path: &'static str,
    /// Its content.
    text: String,
    /// Mode 0755 instead of 0644.
    executable: bool,
}

/// The lines `init` makes sure `.gitignore` holds.
const IGNORED: [&str; 2] = [".runsheet/", "runsheet-out/"];

/// The files of a new repository.
fn scaffold(registry: &Registry) -> Vec<Scaffold> {
    let file = |path, text: &str| Scaffold {
        path,
        text: text.to_owned(),
        executable: false,
    };
    vec![
        file(".runsheet.yaml", include_str!("init/project.yaml")),
        file("environments/uat.yaml", include_str!("init/uat.yaml")),
        file("environments/prod.yaml", include_str!("init/prod.yaml")),
        file(
            "playbooks/health-check.yaml",
            include_str!("init/health-check.yaml"),
        ),
        file(
            "schemas/playbook.schema.json",
            &json_text(&format_schema::playbook_schema(registry)),
        ),
        file(
            "schemas/environment.schema.json",
            &json_text(&format_schema::environment_schema()),
        ),
        file(
            ".pre-commit-config.yaml",
            include_str!("init/pre-commit-config.yaml"),
        ),
        Scaffold {
            path: "ci/runsheet-validate.sh",
            text: include_str!("init/ci-validate.sh").to_owned(),
            executable: true,
        },
    ]
}

/// Scaffolds a repository in `dir`, keeping every file that already exists.
pub fn init(registry: &Registry, dir: &Path) -> Exit {
    match write(registry, dir) {
        Ok(report) => {
            print!("{report}");
            Exit::Success
        }
        Err((path, error)) => {
            eprintln!(
                "error: {}: {error}\n  help: nothing after this file was written; run `runsheet init` again once it is fixed",
                path.display()
            );
            Exit::StepFailed
        }
    }
}

/// Writes the missing files and returns what it did, for people.
fn write(registry: &Registry, dir: &Path) -> Result<String, (PathBuf, std::io::Error)> {
    let mut report = format!("runsheet init: {}\n", dir.display());
    for file in scaffold(registry) {
        let path = dir.join(file.path);
        if path.exists() {
            report.push_str(&format!("  kept     {}  (exists)\n", file.path));
            continue;
        }
        create(&path, &file.text, file.executable).map_err(|error| (path.clone(), error))?;
        report.push_str(&format!("  created  {}\n", file.path));
    }
    let gitignore = dir.join(".gitignore");
    let added = ignore(&gitignore).map_err(|error| (gitignore, error))?;
    if added {
        report.push_str("  updated  .gitignore  (.runsheet/ and runsheet-out/ stay out of Git)\n");
    }
    report.push_str(concat!(
        "\nNext:\n",
        "  1. Put your gateways and hosts in environments/uat.yaml and environments/prod.yaml.\n",
        "  2. runsheet validate playbooks/*.yaml          # against the default env (uat)\n",
        "  3. runsheet plan playbooks/health-check.yaml   # reads the gateway, changes nothing\n",
        "  Editors complete playbooks through the yaml-language-server line at their top\n",
        "  (refresh the schemas after an upgrade: runsheet schema > schemas/playbook.schema.json).\n",
    ));
    Ok(report)
}

/// Creates `path` (and its directories) with `text`.
fn create(path: &Path, text: &str, executable: bool) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Appends the state and report directories to `.gitignore` when missing; whether it did.
fn ignore(gitignore: &Path) -> std::io::Result<bool> {
    let text = match std::fs::read_to_string(gitignore) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error),
    };
    let present = |line: &str| {
        text.lines()
            .any(|have| have.trim() == line || have.trim() == line.trim_end_matches('/'))
    };
    let missing: Vec<&str> = IGNORED.into_iter().filter(|line| !present(line)).collect();
    if missing.is_empty() {
        return Ok(false);
    }
    let mut text = text;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# runsheet: local state and reports\n");
    for line in missing {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(gitignore, text)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitignore_lines_are_added_once_and_others_kept() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join(".gitignore");
        std::fs::write(&file, "target\n.runsheet\n")?;
        assert!(ignore(&file)?);
        assert_eq!(
            std::fs::read_to_string(&file)?,
            "target\n.runsheet\n# runsheet: local state and reports\nrunsheet-out/\n"
        );
        assert!(!ignore(&file)?);
        Ok(())
    }
}
