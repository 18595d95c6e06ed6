//! Source files as loaded, and byte spans into them.

use std::path::Path;
use std::sync::Arc;

/// A loaded text file: the name shown in diagnostics and its full contents.
#[derive(Debug)]
pub struct SourceFile {
    /// Name shown to the user (the path as given on the command line).
    pub name: String,
    /// The whole text of the file.
    pub text: String,
}

impl SourceFile {
    /// Wraps an in-memory text under a display name.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            text: text.into(),
        })
    }

    /// Display name for a path.
    pub fn display_name(path: &Path) -> String {
        path.display().to_string()
    }

    /// One-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// A byte range in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Byte offset of the first byte.
    pub offset: usize,
    /// Length in bytes (zero for a point).
    pub len: usize,
}

impl Span {
    /// A span from its offset and length.
    pub const fn new(offset: usize, len: usize) -> Self {
        Self { offset, len }
    }

    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        let start = self.offset.min(other.offset);
        let end = (self.offset + self.len).max(other.offset + other.len);
        Span::new(start, end - start)
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        miette::SourceSpan::new(span.offset.into(), span.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let file = SourceFile::new("f", "ab\nçd: x\n");
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(3), (2, 1));
        // 'ç' is two bytes: offset 5 is 'd', the second character.
        assert_eq!(file.line_col(5), (2, 2));
    }

    #[test]
    fn join_covers_both() {
        assert_eq!(Span::new(4, 2).join(Span::new(1, 1)), Span::new(1, 5));
    }
}
