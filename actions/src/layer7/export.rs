//! `layer7.export` ([`Layer7Export`]): the selected services, folders, policies and
//! cluster properties (or the whole gateway) with their dependencies, exported
//! as one bundle file, with its SHA-256: restman XML, or with `api: graphman` a
//! Graphman JSON bundle ([`super::graphman_export`]).
//!
//! A read: it writes no gateway entity. The file is written atomically (a
//! temporary file in the same directory, synced, renamed over the path; mode
//! 0600, as a bundle may hold secrets) and only outside a dry run, like
//! `kong.snapshot`: a dry run writes a scratch copy that its later steps read
//! ([`crate::artefact`]). The item time stamps (the moment of the export, not part of
//! any entity) are written as [`FIXED_TIME_STAMP`], so two exports of the same
//! gateway state are byte for byte the same file.

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, StepContext, TargetKind,
};
use serde_json::{Map, Value, json};

use super::arguments::{Layer7Api, Layer7ExportArguments};
use super::gateway::Layer7Gateway;
use super::graphman_export::export_selection;
use super::restman::Bundle;
use super::selection::resolve_selection;
use super::{FAMILY, Layer7Error};
use crate::arguments::parse;
use crate::artefact::{artefact_path, sha256_hex, write_artefact};

/// The action's type name.
const NAME: &str = "layer7.export";

/// The time stamp every exported item carries, so that exports of one state are equal.
pub const FIXED_TIME_STAMP: &str = "1970-01-01T00:00:00.000Z";

/// The `layer7.export` action.
#[derive(Debug, Clone)]
pub struct Layer7Export {
    spec: ActionSpec,
}

impl Layer7Export {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<Layer7ExportArguments>(
                NAME,
                FAMILY,
                "Exports services, folders, policies and cluster properties (or all) as a bundle file.",
                Effect::READ,
            )
            .target(TargetKind::Gateway("layer7"))
            .outputs(&["path", "sha256", "entities", "summary", "written"]),
        }
    }
}

impl Default for Layer7Export {
    fn default() -> Self {
        Self::new()
    }
}

/// An export, ready to be written.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The bundle document (restman XML with time stamps fixed, or Graphman JSON).
    pub document: String,
    /// Its SHA-256, in hex.
    pub sha256: String,
    /// Reference items in it.
    pub entities: usize,
    /// Items per entity type (`SERVICE: 2`).
    pub summary: Map<String, Value>,
}

impl Exported {
    /// The export of `bundle`.
    pub fn of(bundle: &Bundle) -> Result<Self, Layer7Error> {
        let mut stable = bundle.clone();
        for item in &mut stable.items {
            item.xml = fixed_time_stamps(&item.xml);
        }
        let xml = stable.to_xml()?;
        Ok(Self {
            sha256: sha256_hex(xml.as_bytes()),
            entities: stable.items.len(),
            summary: summary(&stable),
            document: xml,
        })
    }
}

/// Items per entity type, in type order.
pub fn summary(bundle: &Bundle) -> Map<String, Value> {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for item in &bundle.items {
        *counts.entry(item.header.kind.clone()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(kind, count)| (kind, Value::from(count)))
        .collect()
}

/// Resolves the selection and exports it through the chosen API (no file written).
pub async fn take(
    context: &StepContext,
    arguments: &Layer7ExportArguments,
) -> Result<Exported, ActionError> {
    let gateway = Layer7Gateway::for_step(context).await?;
    if arguments.api == Layer7Api::Graphman {
        let bundle = export_selection(&gateway.graphman, &gateway.name, arguments.select.as_ref())
            .await
            .map_err(|error| ActionError::failed(format!("{NAME}: {error}")))?;
        return Ok(Exported::of_graphman(&bundle));
    }
    let query = resolve_selection(&gateway.restman, &gateway.name, arguments.select.as_ref())
        .await
        .map_err(|error| ActionError::failed(format!("{NAME}: {error}")))?;
    let bundle = gateway.restman.export(&query).await?;
    Ok(Exported::of(&bundle)?)
}

#[async_trait::async_trait]
impl Action for Layer7Export {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let arguments: Layer7ExportArguments = parse(NAME, arguments)?;
        let exported = take(context, &arguments).await?;
        Ok(Change::unknown(format!(
            "would write bundle {} ({} entities: {})",
            artefact_path(context, &arguments.path)?.display(),
            exported.entities,
            counts_text(&exported.summary)
        )))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: Layer7ExportArguments = parse(NAME, arguments)?;
        let path = artefact_path(context, &arguments.path)?;
        let exported = take(context, &arguments).await?;
        let artefact = write_artefact(
            context,
            &path,
            exported.document.as_bytes(),
            &format!("{NAME}: bundle"),
        )
        .await?;
        let summary = format!(
            "{} bundle {} ({} entities: {})",
            artefact.verb(),
            path.display(),
            exported.entities,
            counts_text(&exported.summary)
        );
        let written = artefact.written;
        let mut outputs = Map::new();
        outputs.insert("path".to_owned(), json!(artefact.path.display().to_string()));
        outputs.insert("sha256".to_owned(), json!(exported.sha256));
        outputs.insert("entities".to_owned(), json!(exported.entities));
        outputs.insert("summary".to_owned(), Value::Object(exported.summary));
        outputs.insert("written".to_owned(), json!(written));
        Ok(Applied {
            outputs,
            undo: None,
            change: Some(Change::unknown(summary)),
            secrets: Vec::new(),
        })
    }
}

/// `SERVICE 2, FOLDER 1`.
fn counts_text(summary: &Map<String, Value>) -> String {
    if summary.is_empty() {
        return "none".to_owned();
    }
    summary
        .iter()
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `xml` with the text of every `TimeStamp` element replaced by [`FIXED_TIME_STAMP`].
pub fn fixed_time_stamps(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(after_open) = time_stamp_open_end(rest) {
        out.push_str(&rest[..after_open]);
        rest = &rest[after_open..];
        match rest.find('<') {
            Some(close) => {
                out.push_str(FIXED_TIME_STAMP);
                rest = &rest[close..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// The offset just after the first opening `<TimeStamp>` (any prefix) in `text`.
fn time_stamp_open_end(text: &str) -> Option<usize> {
    const TAG: &str = "TimeStamp>";
    let mut from = 0;
    while let Some(found) = text[from..].find(TAG) {
        let at = from + found;
        let before = &text[..at];
        let name_start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '_' || c == '-'))
            .unwrap_or(0);
        let opens = before[name_start..].starts_with('<')
            && (before.len() == name_start + 1 || before[name_start + 1..].ends_with(':'));
        if opens {
            return Some(at + TAG.len());
        }
        from = at + TAG.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_stamps_are_fixed_whatever_their_prefix() {
        let xml = "<l7:Item><l7:Name>a</l7:Name><l7:TimeStamp>2024-01-02T03:04:05.678Z</l7:TimeStamp><TimeStamp>x</TimeStamp><l7:NotTimeStamp>keep</l7:NotTimeStamp></l7:Item>";
        assert_eq!(
            fixed_time_stamps(xml),
            format!(
                "<l7:Item><l7:Name>a</l7:Name><l7:TimeStamp>{FIXED_TIME_STAMP}</l7:TimeStamp><TimeStamp>{FIXED_TIME_STAMP}</TimeStamp><l7:NotTimeStamp>keep</l7:NotTimeStamp></l7:Item>"
            )
        );
        assert_eq!(fixed_time_stamps("<a>TimeStamp></a>"), "<a>TimeStamp></a>");
    }
}
