//! Unified diffs of a change's before and after texts, for reports and plans.

use similar::TextDiff;

/// Lines of unchanged context around each change.
const CONTEXT_LINES: usize = 3;

/// The unified diff from `before` to `after` (an absent side is a new or deleted object); empty when they are the same.
pub fn unified(before: Option<&str>, after: Option<&str>) -> String {
    let before = before.unwrap_or_default();
    let after = after.unwrap_or_default();
    TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(CONTEXT_LINES)
        .header("before", "after")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_line_is_shown_with_headers_and_context() {
        let before = "name: r1\npaths:\n- /v1\nstrip_path: true\n";
        let after = "name: r1\npaths:\n- /v1\n- /v2\nstrip_path: true\n";
        assert_eq!(
            unified(Some(before), Some(after)),
            "--- before\n+++ after\n@@ -1,4 +1,5 @@\n name: r1\n paths:\n - /v1\n+- /v2\n strip_path: true\n"
        );
    }

    #[test]
    fn absent_before_is_a_new_object() {
        let diff = unified(None, Some("a\nb\n"));
        assert_eq!(diff, "--- before\n+++ after\n@@ -0,0 +1,2 @@\n+a\n+b\n");
    }

    #[test]
    fn absent_after_is_a_deleted_object() {
        let diff = unified(Some("a\nb\n"), None);
        assert_eq!(diff, "--- before\n+++ after\n@@ -1,2 +0,0 @@\n-a\n-b\n");
    }

    #[test]
    fn same_text_gives_no_diff() {
        assert_eq!(unified(Some("a\nb\n"), Some("a\nb\n")), "");
        assert_eq!(unified(None, None), "");
    }

    #[test]
    fn context_is_three_lines_on_each_side() {
        let before: String = (1..=20).map(|line| format!("line {line}\n")).collect();
        let after = before.replace("line 10\n", "line ten\n");
        let diff = unified(Some(&before), Some(&after));
        let context: Vec<&str> = diff.lines().filter(|line| line.starts_with(' ')).collect();
        assert_eq!(
            context,
            [
                " line 7", " line 8", " line 9", " line 11", " line 12", " line 13"
            ]
        );
        assert!(diff.contains("@@ -7,7 +7,7 @@"), "{diff}");
    }

    #[test]
    fn missing_final_newline_is_marked() {
        let diff = unified(Some("a\n"), Some("a\nb"));
        assert!(diff.contains("\\ No newline at end of file"), "{diff}");
    }
}
