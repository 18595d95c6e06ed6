//! Positioned problems found while loading and validating, reported in batches.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::source::{SourceFile, Span};

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The playbook cannot run.
    Error,
    /// Worth fixing; does not stop a run.
    Warning,
}

/// One problem in a playbook, environment or input, with where and why.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Stable code such as `step::unknown-action` (a policy rule's id for policy violations).
    pub code: Cow<'static, str>,
    /// How serious it is.
    pub severity: Severity,
    /// What is wrong, as a lowercase fragment.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// The file it is in (none for problems of the command line).
    pub file: Option<Arc<SourceFile>>,
    /// Where in the file.
    pub span: Option<Span>,
    /// Text under the highlighted span.
    pub label: Option<String>,
    /// Further positions that explain the problem (a cycle's steps, a first definition).
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    /// An error with a code and a message.
    pub fn error(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            severity: Severity::Error,
            message: message.into(),
            help: None,
            file: None,
            span: None,
            label: None,
            related: Vec::new(),
        }
    }

    /// A warning with a code and a message.
    pub fn warning(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, message)
        }
    }

    /// Sets how serious the problem is.
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Places the problem in a file.
    pub fn at(mut self, file: &Arc<SourceFile>, span: Span) -> Self {
        self.file = Some(Arc::clone(file));
        self.span = Some(span);
        self
    }

    /// Names the file without a position.
    pub fn in_file(mut self, file: &Arc<SourceFile>) -> Self {
        self.file = Some(Arc::clone(file));
        self
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a help line when there is one.
    pub fn with_optional_help(mut self, help: Option<String>) -> Self {
        self.help = help.or(self.help);
        self
    }

    /// Sets the text under the highlighted span.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds a related position.
    pub fn with_related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    /// One-based line and column, when placed in a file.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        Some(self.file.as_ref()?.line_col(self.span?.offset))
    }

    /// The machine-readable form printed by `--output json`.
    pub fn to_record(&self) -> DiagnosticRecord {
        let (line, column) = self
            .line_col()
            .map_or((None, None), |(l, c)| (Some(l), Some(c)));
        DiagnosticRecord {
            file: self.file.as_ref().map(|f| f.name.clone()),
            line,
            column,
            severity: self.severity,
            code: self.code.clone(),
            message: self.message.clone(),
            help: self.help.clone(),
        }
    }
}

/// A diagnostic as data: file, line, column, code, message, help.
#[derive(Debug, Clone, Serialize)]
pub struct DiagnosticRecord {
    /// File name as given.
    pub file: Option<String>,
    /// One-based line.
    pub line: Option<usize>,
    /// One-based column (characters).
    pub column: Option<usize>,
    /// `error` or `warning`.
    pub severity: Severity,
    /// Stable code.
    pub code: Cow<'static, str>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        let file = self.file.as_ref()?;
        self.span?;
        Some(file.as_ref())
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let span = self.span?;
        self.file.as_ref()?;
        let primary = miette::LabeledSpan::new_primary_with_span(self.label.clone(), span);
        let related = self
            .related
            .iter()
            .map(|(span, label)| miette::LabeledSpan::new_with_span(Some(label.clone()), *span));
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}

impl miette::SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
            inner.line_count(),
        )))
    }
}

/// A batch of problems, in the order found.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a problem.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// The most recently added problem.
    ///
    /// Panics never: callers use it right after [`Diagnostics::push`]; an empty
    /// batch yields a throwaway diagnostic instead.
    pub fn last_mut(&mut self) -> &mut Diagnostic {
        if self.items.is_empty() {
            self.items.push(Diagnostic::error(
                "internal::empty",
                "internal: no diagnostic to amend",
            ));
        }
        let last = self.items.len() - 1;
        &mut self.items[last]
    }

    /// Adds every problem of another batch.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The problems in order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// Sorts by file, then position, keeping the found order for ties.
    pub fn sort(&mut self) {
        self.items.sort_by_key(|d| {
            (
                d.file.as_ref().map(|f| f.name.clone()),
                d.span.map_or(0, |s| s.offset),
            )
        });
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Self {
        Self {
            items: vec![diagnostic],
        }
    }
}
