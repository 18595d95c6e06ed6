//! SARIF 2.1.0 output of diagnostics (`validate --output sarif`), so code hosts and CI
//! show validation errors and policy violations inline.

use std::path::Path;

use runsheet_engine::policy::Policy;
use runsheet_engine::{Diagnostic, Diagnostics, Severity};
use serde_json::{Value, json};

/// The SARIF schema this output follows.
const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// One SARIF log with a run of runsheet: the rules (the policy's, then the codes of other
/// diagnostics found) and a result per diagnostic.
pub fn sarif(diagnostics: &Diagnostics, policy: Option<&Policy>, cwd: &Path) -> Value {
    let mut rules: Vec<(String, String, Severity)> = policy
        .map(|p| {
            p.rules
                .iter()
                .map(|r| (r.id.clone(), r.check.describe().to_owned(), r.severity))
                .collect()
        })
        .unwrap_or_default();
    for diagnostic in diagnostics.iter() {
        if !rules.iter().any(|(id, _, _)| *id == diagnostic.code) {
            rules.push((
                diagnostic.code.to_string(),
                format!("runsheet validation: {}", diagnostic.code),
                diagnostic.severity,
            ));
        }
    }
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let index = rules.iter().position(|(id, _, _)| *id == d.code);
            result(d, index, cwd)
        })
        .collect();
    let rules: Vec<Value> = rules
        .iter()
        .map(|(id, description, severity)| {
            json!({
                "id": id,
                "shortDescription": {"text": description},
                "defaultConfiguration": {"level": level(*severity)},
            })
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "runsheet",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn result(diagnostic: &Diagnostic, index: Option<usize>, cwd: &Path) -> Value {
    let mut text = diagnostic.message.clone();
    if let Some(help) = &diagnostic.help {
        text.push_str("\nhelp: ");
        text.push_str(help);
    }
    let mut result = json!({
        "ruleId": diagnostic.code,
        "level": level(diagnostic.severity),
        "message": {"text": text},
    });
    if let Some(index) = index {
        result["ruleIndex"] = json!(index);
    }
    if let Some(file) = &diagnostic.file {
        let mut location = json!({"artifactLocation": {"uri": uri(&file.name, cwd)}});
        if let Some(span) = diagnostic.span {
            let (line, column) = file.line_col(span.offset);
            let (end_line, end_column) = file.line_col(span.offset + span.len);
            location["region"] = json!({
                "startLine": line,
                "startColumn": column,
                "endLine": end_line,
                "endColumn": end_column,
            });
        }
        result["locations"] = json!([{"physicalLocation": location}]);
    }
    result
}

/// The file as a URI reference relative to the working directory, `/`-separated.
fn uri(name: &str, cwd: &Path) -> String {
    let path = Path::new(name);
    let relative = path.strip_prefix(cwd).unwrap_or(path);
    let text = relative.to_string_lossy().replace('\\', "/");
    let text = text.strip_prefix("./").unwrap_or(&text).replace(' ', "%20");
    if relative.is_absolute() {
        format!("file://{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_relative_to_the_working_directory() {
        let cwd = Path::new("/repo");
        assert_eq!(uri("/repo/playbooks/a.yaml", cwd), "playbooks/a.yaml");
        assert_eq!(uri("./playbooks/a b.yaml", cwd), "playbooks/a%20b.yaml");
        assert_eq!(uri("/elsewhere/a.yaml", cwd), "file:///elsewhere/a.yaml");
    }
}
