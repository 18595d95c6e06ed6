//! CI/CD systems: whether one runs the command, and which execution it is
//! (for the reports and the change request).

use runsheet_engine::run::summary::CiContext;

/// Variables whose presence means a CI/CD system runs the command.
///
/// `DRONE` and `HARNESS_*` are set by Harness CI stages, `CI` by most systems
/// (on Harness only with `CI_POPULATE_CI_VARIABLE`).
pub const CI_VARIABLES: [&str; 7] = [
    "CI",
    "DRONE",
    "HARNESS_BUILD_ID",
    "HARNESS_EXECUTION_ID",
    "HARNESS_PIPELINE_ID",
    "BUILD_ID",
    "GITHUB_ACTIONS",
];

/// Whether a variable's value turns a marker on (`CI=false` or `CI=0` does not).
fn set(value: Option<std::ffi::OsString>) -> bool {
    value.is_some_and(|v| {
        let text = v.to_string_lossy();
        !matches!(
            text.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no" | "off"
        )
    })
}

/// Whether the command runs inside a CI system.
pub fn in_ci() -> bool {
    CI_VARIABLES.iter().any(|name| set(std::env::var_os(name)))
}

/// A variable's value, when set and not empty.
fn variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The CI execution running the command, from the variables the systems set;
/// `RUNSHEET_CI_URL` names the execution where none does (a CD step on a delegate).
pub fn context() -> Option<CiContext> {
    let override_url = variable("RUNSHEET_CI_URL");
    let harness = variable("HARNESS_EXECUTION_ID").is_some()
        || variable("HARNESS_BUILD_ID").is_some()
        || variable("HARNESS_PIPELINE_ID").is_some();
    let github = set(std::env::var_os("GITHUB_ACTIONS"));
    let system = if harness {
        "harness"
    } else if github {
        "github"
    } else if in_ci() || override_url.is_some() {
        "ci"
    } else {
        return None;
    };
    let github_url = || {
        Some(format!(
            "{}/{}/actions/runs/{}",
            variable("GITHUB_SERVER_URL")?,
            variable("GITHUB_REPOSITORY")?,
            variable("GITHUB_RUN_ID")?
        ))
    };
    Some(CiContext {
        system: system.to_owned(),
        execution_url: override_url
            .or_else(|| variable("CI_BUILD_LINK"))
            .or_else(|| variable("DRONE_BUILD_LINK"))
            .or_else(|| github.then(github_url).flatten()),
        execution_id: variable("HARNESS_EXECUTION_ID").or_else(|| variable("GITHUB_RUN_ID")),
        pipeline: variable("HARNESS_PIPELINE_ID").or_else(|| variable("GITHUB_WORKFLOW")),
        stage: variable("HARNESS_STAGE_ID").or_else(|| variable("GITHUB_JOB")),
        build_id: variable("HARNESS_BUILD_ID")
            .or_else(|| variable("BUILD_ID"))
            .or_else(|| variable("GITHUB_RUN_NUMBER")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn false_like_values_do_not_mark_ci() {
        for value in ["", "0", "false", "FALSE", "no", " off "] {
            assert!(!set(Some(value.into())), "{value:?}");
        }
        for value in ["true", "1", "yes", "harness"] {
            assert!(set(Some(value.into())), "{value:?}");
        }
        assert!(!set(None));
    }
}
