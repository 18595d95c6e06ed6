//! The project configuration, `.runsheet.yaml`: a repository's defaults for
//! the environment, the state, the report directory and the policy.
//!
//! It is found in the working directory or the nearest parent up to the
//! repository root (the first directory holding `.git`), or named by
//! `--config FILE` / `RUNSHEET_CONFIG`. Its values become the defaults of the
//! matching flags, so a flag or its `RUNSHEET_*` variable still wins. Relative
//! paths in it are relative to the file, not to the working directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file name looked for.
pub const FILE_NAME: &str = ".runsheet.yaml";

/// The variable that names the project configuration file.
pub const VARIABLE: &str = "RUNSHEET_CONFIG";

/// A loaded project configuration, its paths already made absolute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Project {
    /// The file it was read from.
    pub file: PathBuf,
    /// The default environment (`--env`): a file, or a name under `environments/`.
    pub env: Option<String>,
    /// The default state directory (`--state-dir`).
    pub state_dir: Option<PathBuf>,
    /// The default report directory (`--report-dir`).
    pub report_dir: Option<PathBuf>,
    /// The policy file that `validate`, `plan` and `run` apply.
    pub policy: Option<PathBuf>,
    /// The shared state backend (`--state`), e.g. `postgres://runsheet@db/runsheet`.
    pub state: Option<String>,
}

/// The file as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Written {
    /// See [`Project::env`].
    env: Option<String>,
    /// See [`Project::state_dir`].
    state_dir: Option<PathBuf>,
    /// See [`Project::report_dir`].
    report_dir: Option<PathBuf>,
    /// See [`Project::policy`].
    policy: Option<PathBuf>,
    /// See [`Project::state`].
    state: Option<String>,
}

/// Why the project configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The file named by `--config` or the variable, or found, cannot be read.
    #[error("{}: cannot read the project configuration: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid project configuration.
    #[error("{}: {message}\n  help: the keys are env, state_dir, report_dir, policy and state", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// What is wrong, with its line and column.
        message: String,
    },
}

impl Project {
    /// Reads `file`, making its relative paths relative to the file's directory.
    pub fn read(file: &Path) -> Result<Project, ProjectError> {
        let text = std::fs::read_to_string(file).map_err(|source| ProjectError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        let written: Written = if text.trim().is_empty() {
            Written::default()
        } else {
            serde_saphyr::from_str(&text).map_err(|error| ProjectError::Invalid {
                file: file.to_path_buf(),
                message: error.to_string(),
            })?
        };
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let absolute = |path: PathBuf| {
            if path.is_absolute() {
                path
            } else {
                base.join(path)
            }
        };
        Ok(Project {
            file: file.to_path_buf(),
            env: written.env.map(|env| environment(&base, env)),
            state_dir: written.state_dir.map(absolute),
            report_dir: written.report_dir.map(absolute),
            policy: written.policy.map(absolute),
            // A directory given as `state:` is relative to the file too; a URL stays as written.
            state: written.state.map(|state| {
                if state.contains(':') || Path::new(&state).is_absolute() {
                    state
                } else {
                    base.join(state).display().to_string()
                }
            }),
        })
    }

    /// The configuration that applies in `cwd`: the file `named` (by `--config` or
    /// the variable), else the nearest `.runsheet.yaml` up to the repository root (or
    /// the home directory, outside a repository).
    pub fn find(cwd: &Path, named: Option<&Path>) -> Result<Option<Project>, ProjectError> {
        if let Some(file) = named {
            let file = if file.is_absolute() {
                file.to_path_buf()
            } else {
                cwd.join(file)
            };
            return Project::read(&file).map(Some);
        }
        let home = std::env::var_os("HOME").map(PathBuf::from);
        for dir in cwd.ancestors() {
            let candidate = dir.join(FILE_NAME);
            if candidate.is_file() {
                return Project::read(&candidate).map(Some);
            }
            // The repository root, or the home directory outside a repository: a file in
            // /tmp or / must not configure everything below it.
            if dir.join(".git").exists() || home.as_deref() == Some(dir) {
                break;
            }
        }
        Ok(None)
    }
}

/// An environment as the configuration names it: a file relative to the configuration,
/// a name under its `environments/`, or (neither existing) as written.
fn environment(base: &Path, env: String) -> String {
    let file = base.join(&env);
    if file.is_file() {
        return file.display().to_string();
    }
    let named = base.join("environments").join(format!("{env}.yaml"));
    if named.is_file() {
        return named.display().to_string();
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn relative_paths_are_relative_to_the_file_and_names_find_their_environment() -> TestResult {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("environments"))?;
        std::fs::write(dir.path().join("environments/uat.yaml"), "name: uat\n")?;
        std::fs::write(
            dir.path().join(FILE_NAME),
            "env: uat\nstate_dir: .state\nreport_dir: /abs/out\npolicy: policy.yaml\nstate: postgres://db/runsheet\n",
        )?;
        let sub = dir.path().join("playbooks/deep");
        std::fs::create_dir_all(&sub)?;
        let project = Project::find(&sub, None)?.ok_or("not found")?;
        assert_eq!(
            project.env.as_deref(),
            Some(
                dir.path()
                    .join("environments/uat.yaml")
                    .to_str()
                    .ok_or("path")?
            )
        );
        assert_eq!(project.state_dir, Some(dir.path().join(".state")));
        assert_eq!(project.report_dir, Some(PathBuf::from("/abs/out")));
        assert_eq!(project.policy, Some(dir.path().join("policy.yaml")));
        assert_eq!(project.state.as_deref(), Some("postgres://db/runsheet"));
        Ok(())
    }

    #[test]
    fn the_search_stops_at_the_repository_root() -> TestResult {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(FILE_NAME), "env: outside\n")?;
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join(".git"))?;
        assert_eq!(Project::find(&repo, None)?, None);
        Ok(())
    }

    #[test]
    fn an_unknown_key_is_refused_with_the_file_and_the_keys() -> TestResult {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join(FILE_NAME);
        std::fs::write(&file, "env: uat\nstate-dir: x\n")?;
        let error = Project::find(dir.path(), Some(&file))
            .err()
            .ok_or("accepted")?
            .to_string();
        assert!(
            error.contains(FILE_NAME) && error.contains("state-dir") && error.contains("state_dir"),
            "{error}"
        );
        Ok(())
    }

    #[test]
    fn a_named_file_that_is_missing_is_an_error() {
        let missing = Path::new("/nonexistent/runsheet.yaml");
        assert!(matches!(
            Project::find(Path::new("/"), Some(missing)),
            Err(ProjectError::Read { .. })
        ));
    }
}
