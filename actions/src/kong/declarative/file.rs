//! A decK-style declarative file read into a [`Document`] ([`read`]): the entities it
//! names, each with where it stands (line) and how it refers to other entities (the
//! parent it is nested under, or a name or id in a reference field).
//!
//! Accepted: `_format_version: "3.0"`, `_info.select_tags`, `_transform` and `_comment`
//! (ignored), the tables of the managed kinds at top level, and the nested tables decK
//! writes (`services[].routes[]`, `consumers[].keyauth_credentials[]`, ...). Anything
//! else is an error naming the file and line; so is a secret holding the snapshot mask.

use std::path::Path;

use runsheet_engine::SourceFile;
use runsheet_engine::node::{Node, NodeValue};
use serde_json::{Map, Value};

use super::{FORMAT_VERSION, MASK, children, kind_of_table, parent_field, table};
use crate::kong::KongEntityKind;
use crate::kong::kinds::{self, KINDS};

/// Largest file read, in bytes.
const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// decK tables runsheet does not manage: refused rather than passed to Kong as fields.
const UNSUPPORTED: &[&str] = &[
    "oauth2_credentials",
    "mtls_auth_credentials",
    "groups",
    "consumer_groups",
    "vaults",
    "keys",
    "key_sets",
    "partials",
    "filter_chains",
    "custom_entities",
    "rbac_roles",
    "licenses",
];

/// Why a declarative file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|line| format!(":{line}")).unwrap_or_default())]
pub struct FileError {
    /// The file, as the step names it.
    pub file: String,
    /// The line the problem is on, when it is known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// How an entity in the file refers to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// The entity it is nested under: its index in [`Document::entries`].
    Entry(usize),
    /// A name or id written in a reference field (`service: billing`).
    Named(String),
}

/// One entity as the file gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// Its kind.
    pub kind: KongEntityKind,
    /// The fields given, without nested tables and reference fields (`null`: unset).
    pub fields: Map<String, Value>,
    /// Its reference fields (`service`, `consumer`, `upstream`, ...) and what they name.
    pub references: Vec<(String, Reference)>,
    /// The line it starts on.
    pub line: usize,
}

impl Desired {
    /// How messages name it: `route billing-route`, or `route at line 12`.
    pub fn describe(&self) -> String {
        let entry = kinds::kind(self.kind);
        let name = if self.kind == KongEntityKind::Plugin {
            self.fields.get("name").and_then(Value::as_str)
        } else {
            entry
                .keys
                .iter()
                .filter(|key| !entry.is_secret(key))
                .find_map(|key| self.fields.get(*key).and_then(Value::as_str))
        };
        match (name, self.fields.get("id").and_then(Value::as_str)) {
            (Some(name), _) => format!("{} `{name}`", entry.label),
            (None, Some(id)) => format!("{} `{id}`", entry.label),
            (None, None) => format!("{} at line {}", entry.label, self.line),
        }
    }
}

/// A decK-style file, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The file, as the step names it.
    pub file: String,
    /// `_info.select_tags`, when the file gives them.
    pub select_tags: Option<Vec<String>>,
    /// Every entity, parents before the children nested under them.
    pub entries: Vec<Desired>,
}

impl Document {
    /// An error about the entity at `index`.
    pub fn error(&self, index: usize, message: impl std::fmt::Display) -> FileError {
        let entry = self.entries.get(index);
        FileError {
            file: self.file.clone(),
            line: entry.map(|entry| entry.line),
            message: match entry {
                Some(entry) => format!("{}: {message}", entry.describe()),
                None => message.to_string(),
            },
        }
    }
}

/// Reads the file at `path` (shown as `shown`); the document and the file's bytes.
pub async fn load(path: &Path, shown: &str) -> Result<(Document, Vec<u8>), FileError> {
    let failure = |message: String| FileError {
        file: shown.to_owned(),
        line: None,
        message,
    };
    let metadata = tokio::fs::metadata(path)
        .await
        .map_err(|error| failure(format!("cannot read the file: {error}")))?;
    if metadata.len() > MAX_FILE_BYTES as u64 {
        return Err(failure(format!(
            "the file is {} bytes, more than the {MAX_FILE_BYTES} read",
            metadata.len()
        )));
    }
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|error| failure(format!("cannot read the file: {error}")))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| failure("the file is not UTF-8 text".to_owned()))?;
    let document = read(shown, text)?;
    Ok((document, bytes))
}

/// Reads the text of a declarative file named `file`.
pub fn read(file: &str, text: &str) -> Result<Document, FileError> {
    let source = SourceFile::new(file, text);
    let reader = Reader {
        source: &source,
        line_starts: line_starts(text),
        document: Document {
            file: file.to_owned(),
            select_tags: None,
            entries: Vec::new(),
        },
    };
    reader.read()
}

/// Reads one document, keeping the source for line numbers.
struct Reader<'a> {
    source: &'a SourceFile,
    /// Byte offset of the start of each line (line 1 first).
    line_starts: Vec<usize>,
    document: Document,
}

impl Reader<'_> {
    /// Reads the whole file.
    fn read(mut self) -> Result<Document, FileError> {
        let root = runsheet_engine::node::parse(self.source).map_err(|error| FileError {
            file: self.source.name.clone(),
            line: error
                .span
                .map(|span| line_of(&self.line_starts, span.offset)),
            message: format!("not valid YAML: {}", error.message),
        })?;
        let Some(entries) = root.as_map() else {
            return Err(self.error(&root, "expected a mapping of declarative tables at the top"));
        };
        let mut format = None;
        for (key, value) in entries {
            let name = key.key_text();
            match name.as_str() {
                "_format_version" => format = Some((key, value)),
                "_info" => self.info(value)?,
                "_transform" | "_comment" => {}
                "_workspace" => {
                    return Err(self.error(
                        key,
                        "`_workspace` is not read: the workspace is the gateway's \
                         (`gateways.<name>.workspace` in the environment)",
                    ));
                }
                table_name => match kind_of_table(table_name) {
                    Some(kind) => self.table(kind, value, None)?,
                    None => {
                        let expected: Vec<&str> =
                            KINDS.iter().map(|entry| table(entry.kind)).collect();
                        return Err(self.error(
                            key,
                            format!(
                                "unknown top-level key `{table_name}` (expected _format_version, \
                                 _info, or one of: {})",
                                expected.join(", ")
                            ),
                        ));
                    }
                },
            }
        }
        match format {
            None => Err(self.error(
                &root,
                format!(
                    "`_format_version` is missing (write `_format_version: \"{FORMAT_VERSION}\"`)"
                ),
            )),
            Some((_, value)) if format_text(value).as_deref() == Some(FORMAT_VERSION) => {
                Ok(self.document)
            }
            Some((_, value)) => Err(self.error(
                value,
                format!(
                    "`_format_version` is {}, expected \"{FORMAT_VERSION}\" (Kong 3.x); convert \
                     older files with `deck file convert`",
                    value.to_json()
                ),
            )),
        }
    }

    /// `_info`: only `select_tags` is read.
    fn info(&mut self, node: &Node) -> Result<(), FileError> {
        let Some(entries) = node.as_map() else {
            return Err(self.error(node, "`_info` must be a mapping"));
        };
        for (key, value) in entries {
            match key.key_text().as_str() {
                "select_tags" => {
                    let tags = match &value.value {
                        NodeValue::Seq(items) => items
                            .iter()
                            .map(|item| item.as_str().map(str::to_owned))
                            .collect::<Option<Vec<String>>>(),
                        _ => None,
                    };
                    let Some(tags) = tags else {
                        return Err(
                            self.error(value, "`_info.select_tags` must be a list of strings")
                        );
                    };
                    self.document.select_tags = Some(tags);
                }
                other => {
                    return Err(self.error(
                        key,
                        format!("`_info.{other}` is not supported (only `select_tags` is read)"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A list of entities of `kind`, nested under the entry `parent` when given.
    fn table(
        &mut self,
        kind: KongEntityKind,
        node: &Node,
        parent: Option<(KongEntityKind, usize)>,
    ) -> Result<(), FileError> {
        let NodeValue::Seq(items) = &node.value else {
            return Err(self.error(
                node,
                format!(
                    "`{}` must be a list, not {}",
                    table(kind),
                    node.value.kind()
                ),
            ));
        };
        for item in items {
            self.entity(kind, item, parent)?;
        }
        Ok(())
    }

    /// One entity and the tables nested in it.
    fn entity(
        &mut self,
        kind: KongEntityKind,
        node: &Node,
        parent: Option<(KongEntityKind, usize)>,
    ) -> Result<(), FileError> {
        let entry = kinds::kind(kind);
        let mut desired = Desired {
            kind,
            fields: Map::new(),
            references: Vec::new(),
            line: self.line(node),
        };
        let mut nested = Vec::new();
        match &node.value {
            // An SNI nested under a certificate may be just its name.
            NodeValue::String(name) if kind == KongEntityKind::Sni => {
                desired
                    .fields
                    .insert("name".to_owned(), Value::String(name.clone()));
            }
            NodeValue::Map(entries) => {
                for (key, value) in entries {
                    let field = key.key_text();
                    if let Some(child) =
                        kind_of_table(&field).filter(|c| children(kind).contains(c))
                    {
                        nested.push((child, value));
                    } else if UNSUPPORTED.contains(&field.as_str()) {
                        return Err(self.error(
                            key,
                            format!("`{field}` is not managed by kong.snapshot and kong.sync"),
                        ));
                    } else if entry.foreign.contains(&field.as_str()) {
                        if let Some(named) = reference(value) {
                            desired.references.push((field, Reference::Named(named)));
                        } else if !matches!(value.value, NodeValue::Null) {
                            return Err(self.error(
                                value,
                                format!("`{field}` must name an entity by name or id"),
                            ));
                        }
                    } else {
                        desired.fields.insert(field, value.to_json());
                    }
                }
            }
            other => {
                return Err(self.error(
                    node,
                    format!(
                        "each entry of `{}` must be a mapping, not {}",
                        table(kind),
                        other.kind()
                    ),
                ));
            }
        }
        if let Some((parent_kind, index)) = parent {
            let field = parent_field(parent_kind);
            if desired.references.iter().any(|(name, _)| name == field) {
                return Err(self.error(
                    node,
                    format!(
                        "nested under a {}, it must not name `{field}` itself",
                        kinds::kind(parent_kind).label
                    ),
                ));
            }
            desired
                .references
                .push((field.to_owned(), Reference::Entry(index)));
        }
        let masked_field = entry
            .secrets
            .iter()
            .copied()
            .find(|secret| desired.fields.get(*secret).and_then(Value::as_str) == Some(MASK))
            .or_else(|| {
                desired
                    .fields
                    .get("config")
                    .is_some_and(|config| {
                        kinds::sensitive_config_values(config)
                            .iter()
                            .any(|value| value == MASK)
                    })
                    .then_some("config")
            });
        if let Some(secret) = masked_field {
            return Err(self.error(
                node,
                format!(
                    "{}: `{secret}` holds the snapshot mask, not the secret; take the \
                     snapshot with include_credentials: true to restore credentials",
                    desired.describe()
                ),
            ));
        }
        let index = self.document.entries.len();
        self.document.entries.push(desired);
        for (child, value) in nested {
            self.table(child, value, Some((kind, index)))?;
        }
        Ok(())
    }

    /// An error at a node.
    fn error(&self, node: &Node, message: impl Into<String>) -> FileError {
        FileError {
            file: self.source.name.clone(),
            line: Some(self.line(node)),
            message: message.into(),
        }
    }

    /// The line a node starts on.
    fn line(&self, node: &Node) -> usize {
        line_of(&self.line_starts, node.span.offset)
    }
}

/// Byte offsets where the lines of `text` start: found once, so that the line of each
/// of thousands of entities is a binary search, not a count from the top.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(at, _)| at + 1))
        .collect()
}

/// The line (from 1) the byte `offset` is on.
fn line_of(line_starts: &[usize], offset: usize) -> usize {
    line_starts.partition_point(|start| *start <= offset).max(1)
}

/// `_format_version` as text (`"3.0"`, or an unquoted `3.0`).
fn format_text(node: &Node) -> Option<String> {
    match &node.value {
        NodeValue::String(text) => Some(text.clone()),
        NodeValue::Float(number) => Some(format!("{number:.1}")),
        NodeValue::Int(number) => Some(format!("{number}.0")),
        _ => None,
    }
}

/// The name or id a reference field gives: a plain string, or `{id: ...}` / `{name: ...}`.
fn reference(node: &Node) -> Option<String> {
    match &node.value {
        NodeValue::String(text) if !text.is_empty() => Some(text.clone()),
        NodeValue::Map(_) => ["id", "name", "username"]
            .iter()
            .find_map(|key| node.get(key).and_then(Node::as_str))
            .map(str::to_owned),
        _ => None,
    }
}
