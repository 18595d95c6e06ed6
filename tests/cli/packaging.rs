//! Packaging: the Dockerfile builds what exists (a profile and a binary of this
//! workspace) and, where a container engine answers, the image builds and runs.

use std::process::Command;

use crate::support::{TestResult, root};

#[test]
fn the_dockerfile_builds_a_profile_and_binary_that_exist() -> TestResult {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile"))?;
    let manifest = std::fs::read_to_string(root().join("Cargo.toml"))?;
    let build = dockerfile
        .lines()
        .find(|line| line.contains("cargo build"))
        .ok_or("no cargo build in the Dockerfile")?;
    let words: Vec<&str> = build.split_whitespace().collect();
    let after = |flag: &str| {
        words
            .iter()
            .position(|word| *word == flag)
            .and_then(|at| words.get(at + 1))
            .copied()
    };
    let profile = after("--profile").ok_or("the Dockerfile builds no named profile")?;
    assert!(
        manifest.contains(&format!("[profile.{profile}]")),
        "profile {profile} is not in Cargo.toml"
    );
    assert!(
        words.contains(&"--locked"),
        "the image must build the tested dependency versions"
    );
    assert_eq!(after("--bin"), Some("runsheet"));
    assert!(
        dockerfile.contains(&format!("target/{profile}/runsheet")),
        "the Dockerfile copies another profile's binary"
    );
    assert!(
        dockerfile.contains("openssh-client"),
        "the ssh transport needs the OpenSSH client in the image"
    );

    // The image builds when a container engine is here; nothing in the suite depends on one.
    let engine = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    let Some(info) = engine.ok().filter(|info| info.status.success()) else {
        eprintln!(
            "skipped: no container engine answers `docker info`; the image itself was not built"
        );
        return Ok(());
    };
    eprintln!(
        "container engine {}",
        String::from_utf8_lossy(&info.stdout).trim()
    );
    let built = Command::new("docker")
        .args(["build", "-q", "-t", "runsheet:test", "."])
        .current_dir(root())
        .output()?;
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let version = Command::new("docker")
        .args(["run", "--rm", "runsheet:test", "--version"])
        .output()?;
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("runsheet "),
        "{version:?}"
    );
    Ok(())
}
