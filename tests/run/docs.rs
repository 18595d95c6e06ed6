//! Generated documentation stays in sync with the binary: docs/actions.md is
//! what `runsheet actions --markdown` prints.

use std::path::Path;
use std::process::Command;

use crate::lab::TestResult;

#[test]
fn docs_actions_md_is_what_actions_markdown_prints() -> TestResult {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO_BIN_EXE_runsheet"))
        .args(["actions", "--markdown"])
        .current_dir(root)
        .output()?;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let generated = String::from_utf8(output.stdout)?;
    assert!(generated.contains("### `kong.target`"), "{generated}");
    let committed = std::fs::read_to_string(root.join("docs/actions.md")).unwrap_or_default();
    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        return Err(format!(
            "docs/actions.md is stale: run `cargo run -- actions --markdown > docs/actions.md` \
             (first difference at line {})",
            first_difference + 1
        )
        .into());
    }
    Ok(())
}

#[test]
fn one_action_prints_as_its_markdown_section() -> TestResult {
    let output = Command::new(env!("CARGO_BIN_EXE_runsheet"))
        .args(["actions", "http", "--output", "markdown"])
        .output()?;
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout)?;
    assert!(text.starts_with("### `http`\n"), "{text}");
    assert!(
        text.contains("| `auth.basic.password` | string | required |"),
        "{text}"
    );
    assert!(text.contains("Outputs: `status`, `headers`"), "{text}");
    Ok(())
}

#[test]
fn the_docs_index_lists_every_page_in_docs() -> TestResult {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let index = std::fs::read_to_string(docs.join("README.md"))?;
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&docs)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") && name != "README.md" && !index.contains(&format!("]({name})")) {
            missing.push(name);
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "docs/README.md does not list {missing:?}: add one line per page"
    );
    Ok(())
}
