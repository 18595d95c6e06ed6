//! `runsheet doc`: the runbook document of every shipped playbook on the lab
//! environment (Markdown snapshots), its HTML rendered by a headless Chromium,
//! and the refusals of `--from-plan`. Saved-plan diffs and the order against a
//! real run's journal are in tests/run/runbook_doc.rs (they need the lab's nodes).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TestResult, root, runsheet};

/// The lab environment the shipped playbooks are written for.
const LAB: &str = "environments/lab.yaml";

/// Every shipped playbook with the `--set` values it needs (those its header shows).
const SHIPPED: &[(&str, &[&str])] = &[
    ("gateway-diagnostics", &[]),
    ("health-validation", &[]),
    (
        "kong-cert-rotation",
        &["sni=shop.lab", "cert=new.pem", "key=NEW_CERT_KEY"],
    ),
    (
        "kong-key-rotation",
        &[
            "consumer=alice",
            "overlap=1h",
            "deprecation_date=2036-12-01T00:00:00Z",
            "enforcement_date=2036-12-02T00:00:00Z",
        ],
    ),
    (
        "kong-policy-migration",
        &[
            "state_file=examples/kong-lab-state.yaml",
            r#"smoke_tests=[{"path": "/v2/orders", "status": 401}]"#,
        ],
    ),
    ("kong-restart", &[]),
    ("kong-rollback", &[]),
    ("kong-rolling-upgrade", &["target_version=3.9.1"]),
    ("kong-scale", &["action=remove", r#"hosts=["dp3"]"#]),
    ("layer7-key-rotation", &["alias=ssl-2026"]),
    ("layer7-patch-upgrade", &["patch_id=CR03"]),
    ("layer7-policy-migration", &[]),
    ("layer7-restart", &[]),
];

/// `runsheet doc` of a shipped playbook with an empty state directory (no earlier runs).
fn doc(name: &str, sets: &[&str], extra: &[&str]) -> std::io::Result<crate::support::Run> {
    let empty = tempfile::tempdir()?;
    let playbook = format!("playbooks/{name}.yaml");
    let state = empty.path().display().to_string();
    let mut args = vec![
        "doc",
        playbook.as_str(),
        "--env",
        LAB,
        "--state-dir",
        &state,
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    args.extend(extra);
    runsheet(&args)
}

#[test]
fn every_shipped_playbook_has_a_runbook_document() -> TestResult {
    let shipped: Vec<String> = crate::support::yaml_files("playbooks")?
        .iter()
        .map(|p| crate::support::stem(p))
        .collect();
    let listed: Vec<String> = SHIPPED.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(listed, shipped, "list every playbooks/*.yaml in SHIPPED");
    for (name, sets) in SHIPPED {
        let run = doc(name, sets, &[])?;
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        assert!(!run.panicked(), "{name}: {}", run.stderr);
        for section in [
            "## Purpose",
            "## Inputs",
            "## Environment and targets",
            "## Steps",
            "## What the write steps change",
            "## Rollback plan",
            "## Approval gates",
            "## Verification",
            "## Expected duration",
        ] {
            assert!(run.stdout.contains(section), "{name}: no {section}");
        }
        assert!(
            run.stdout.contains("no earlier runs"),
            "{name}: an empty state directory has no earlier runs"
        );
        insta::with_settings!({
            snapshot_suffix => *name,
            filters => vec![
                (r"sha256 `[0-9a-f]{16}`", "sha256 `[hash]`"),
                // kong-key-rotation's overlap runs from now to the deprecation date.
                (r"`overlap` = `\d+s`", "`overlap` = `[seconds from now]`"),
            ],
        }, {
            insta::assert_snapshot!("runbook", run.stdout);
        });
    }
    Ok(())
}

#[test]
fn a_saved_plan_that_is_not_one_or_of_another_playbook_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let junk = dir.path().join("junk.plan");
    std::fs::write(&junk, "{\"hello\": 1}")?;
    let run = doc(
        "kong-restart",
        &[],
        &["--from-plan", &junk.display().to_string()],
    )?;
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stderr.contains("not a saved plan"), "{}", run.stderr);
    let other = dir.path().join("other.plan");
    std::fs::write(
        &other,
        r#"{"runsheet_plan": 1, "playbook": "kong-scale", "steps": []}"#,
    )?;
    let run = doc(
        "kong-restart",
        &[],
        &["--from-plan", &other.display().to_string()],
    )?;
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("it is a plan of playbook `kong-scale`, not `kong-restart`"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "no document: {}", run.stdout);
    Ok(())
}

#[test]
fn a_missing_required_input_is_invalid_and_names_it() -> TestResult {
    let run = doc("kong-rolling-upgrade", &[], &[])?;
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stderr.contains("target_version"), "{}", run.stderr);
    Ok(())
}

/// The Chromium binary, or `None` (skipped) when it is missing outside CI.
fn chromium() -> Result<Option<PathBuf>, String> {
    for candidate in ["chromium", "chromium-browser", "google-chrome"] {
        let found = Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if found {
            return Ok(Some(PathBuf::from(candidate)));
        }
    }
    if std::env::var_os("RUNSHEET_TEST_REQUIRE_ALL").is_some() {
        return Err("chromium is missing: .ci/run installs it (apt-get install chromium)".into());
    }
    eprintln!(
        "skipped: chromium is not installed (apt-get install chromium); the runbook's HTML was not rendered"
    );
    Ok(None)
}

/// Runs headless Chromium with `args` on `page`; its standard output.
fn headless(chromium: &Path, profile: &Path, args: &[&str], page: &Path) -> Result<String, String> {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start chromium: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("chromium did not finish within 90 s".into());
            }
            Err(e) => return Err(format!("waiting for chromium: {e}")),
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("reading chromium's output: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Values of `attribute="..."` in a document, in order.
fn attribute_values(document: &str, attribute: &str) -> Vec<String> {
    let pattern = format!(r#"{attribute}="([^"]*)""#);
    regex::Regex::new(&pattern)
        .map(|re| {
            re.captures_iter(document)
                .filter_map(|c| c.get(1).map(|m| m.as_str().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_html_document_renders_its_steps_in_order_and_its_graph_in_chromium() -> TestResult {
    let Some(chromium) = chromium()? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let page = dir.path().join("upgrade.html");
    let sets = ["target_version=3.9.1"];
    let run = doc(
        "kong-rolling-upgrade",
        &sets,
        &["--format", "html", "--out", &page.display().to_string()],
    )?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let html = std::fs::read_to_string(&page)?;
    for external in [
        "<script",
        "src=\"http",
        "href=\"http",
        "@import",
        "url(http",
    ] {
        assert!(
            !html.contains(external),
            "the page fetches or runs something: {external}"
        );
    }
    let markdown = doc("kong-rolling-upgrade", &sets, &[])?;
    // The step numbers of the Markdown document's step table, in order.
    let numbers: Vec<String> = markdown
        .stdout
        .split("## Steps")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|line| line.split(" |").next())
        .filter(|n| {
            n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || c == 'F')
        })
        .map(str::to_owned)
        .collect();
    assert!(numbers.len() > 20, "step table: {numbers:?}");
    let profile = dir.path().join("profile");
    let dom = headless(&chromium, &profile, &["--dump-dom"], &page)?;
    assert!(
        dom.contains("<h1>Runbook: kong-rolling-upgrade on lab</h1>"),
        "{dom}"
    );
    let rendered: Vec<String> = attribute_values(&dom, "id")
        .into_iter()
        .filter_map(|id| id.strip_prefix("step-").map(str::to_owned))
        .collect();
    assert_eq!(
        rendered, numbers,
        "the rendered step list is the document's, in order"
    );
    let paths = attribute_values(&dom, "data-path");
    assert_eq!(paths.first().map(String::as_str), Some("gateway"));
    assert!(
        paths.contains(&"upgrade.node.drain".to_owned()),
        "{paths:?}"
    );
    assert!(
        dom.matches("<svg").count() >= 3,
        "the step graphs are drawn: {dom}"
    );
    assert!(
        dom.contains("data-step=\"6.3.1\""),
        "the body's graph has its steps"
    );
    let pdf = dir.path().join("upgrade.pdf");
    headless(
        &chromium,
        &profile,
        &[
            &format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer",
        ],
        &page,
    )?;
    let printed = std::fs::read(&pdf)?;
    assert!(
        printed.starts_with(b"%PDF"),
        "chromium printed the document to a PDF"
    );
    assert!(printed.len() > 10_000, "a PDF of {} bytes", printed.len());
    Ok(())
}

#[test]
fn help_shows_examples() -> TestResult {
    let run = runsheet(&["doc", "--help"])?;
    assert_eq!(run.code, Some(0));
    assert!(run.stdout.contains("--from-plan"), "{}", run.stdout);
    assert!(run.stdout.contains("Examples:"), "{}", run.stdout);
    assert!(root().join("docs/runbook-document.md").exists());
    Ok(())
}
