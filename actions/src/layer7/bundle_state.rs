//! The target's side of a restman bundle import, for `layer7.import`: the
//! current version of the entities an import changes ([`pre_state`], the undo
//! record's content), what the import would change entity by entity
//! ([`Preview`], normalised texts and per-entity lines), and whether an
//! import already took effect ([`in_effect`], for resume).

use std::collections::BTreeMap;

use runsheet_engine::Change;

use super::error::Layer7Error;
use super::restman::compare::diff;
use super::restman::mapping::FAIL_ON_NEW;
use super::restman::{
    ActionTaken, Bundle, BundleItem, ExportQuery, MappingResult, RestmanAction, RestmanClient,
};

/// The `GET /bundle` parameter that exports an entity of a restman type (`SERVICE` → `service`).
pub fn export_parameter(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "SERVICE" => "service",
        "POLICY" => "policy",
        "FOLDER" => "folder",
        "CLUSTER_PROPERTY" => "clusterProperty",
        "TRUSTED_CERT" => "trustedCertificate",
        "SSG_KEY_ENTRY" => "privateKey",
        "SECURE_PASSWORD" => "password",
        "SSG_CONNECTOR" => "listenPort",
        "ENCAPSULATED_ASSERTION" => "encapsulatedAssertion",
        "JDBC_CONNECTION" => "jdbcConnection",
        "SCHEDULED_TASK" => "scheduledTask",
        "ID_PROVIDER_CONFIG" => "identityProvider",
        "JMS_ENDPOINT" => "jmsDestination",
        "SSG_ACTIVE_CONNECTOR" => "activeConnector",
        "GENERIC" => "genericEntity",
        _ => return None,
    })
}

/// Whether an import result replaces or removes an entity that exists on the target.
fn replaces_existing(result: &MappingResult) -> bool {
    matches!(
        result.action_taken,
        Some(ActionTaken::UpdatedExisting | ActionTaken::Deleted)
    ) && result.target_id.is_some()
}

/// The target's current version of what an import replaces or removes.
#[derive(Debug, Clone, Default)]
pub struct PreState {
    /// The entities, exported without dependencies; every mapping `NewOrUpdate`.
    pub bundle: Bundle,
    /// Entities whose type restman cannot export one by one (in words).
    pub not_captured: Vec<String>,
}

/// Exports the target's current version of every entity the results update or
/// delete (by the target id the gateway resolved, so `MapBy` is honoured).
pub async fn pre_state(
    restman: &RestmanClient,
    results: &[MappingResult],
) -> Result<PreState, Layer7Error> {
    let mut query = ExportQuery {
        include_dependencies: Some(false),
        ..ExportQuery::default()
    };
    let mut not_captured = Vec::new();
    for result in results.iter().filter(|result| replaces_existing(result)) {
        let target = result.target_id.as_deref().unwrap_or_default();
        match export_parameter(&result.kind) {
            Some(parameter) => {
                if !query
                    .entities
                    .iter()
                    .any(|(p, id)| p == parameter && id == target)
                {
                    query = query.entity(parameter, target);
                }
            }
            None => not_captured.push(result.entity()),
        }
    }
    if query.entities.is_empty() {
        return Ok(PreState {
            bundle: Bundle::default(),
            not_captured,
        });
    }
    let mut bundle = restman.export(&query).await?;
    for mapping in &mut bundle.mappings {
        mapping.action = RestmanAction::NewOrUpdate;
        mapping.set_flag(FAIL_ON_NEW, false);
        if mapping.properties.as_ref().is_some_and(|p| p.is_empty()) {
            mapping.properties = None;
        }
    }
    Ok(PreState {
        bundle,
        not_captured,
    })
}

/// An item of the target re-keyed to the bundle's id, so that it compares with the bundle's item.
fn rekeyed(item: &BundleItem, source_id: &str) -> BundleItem {
    let mut copy = item.clone();
    if copy.header.id != source_id {
        copy.xml = copy.xml.replace(&copy.header.id, source_id);
        copy.header.id = source_id.to_owned();
    }
    copy
}

/// How many mappings ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// `CreatedNew`.
    pub created: usize,
    /// `UpdatedExisting`.
    pub updated: usize,
    /// `UpdatedExisting` whose content differs from the target's.
    pub changed: usize,
    /// `Deleted`.
    pub deleted: usize,
    /// `UsedExisting`.
    pub used_existing: usize,
    /// `Ignored` (and anything else).
    pub ignored: usize,
}

impl Counts {
    /// The counts of these results.
    pub fn of(results: &[MappingResult]) -> Self {
        Self::of_taken(results.iter().map(|result| result.action_taken.as_ref()))
    }

    /// The counts of these actions taken (restman's words; Graphman statuses map onto them).
    pub fn of_taken<'a>(taken: impl IntoIterator<Item = Option<&'a ActionTaken>>) -> Self {
        let mut counts = Counts::default();
        for action_taken in taken {
            match action_taken {
                Some(ActionTaken::CreatedNew) => counts.created += 1,
                Some(ActionTaken::UpdatedExisting) => counts.updated += 1,
                Some(ActionTaken::Deleted) => counts.deleted += 1,
                Some(ActionTaken::UsedExisting) => counts.used_existing += 1,
                _ => counts.ignored += 1,
            }
        }
        counts
    }
}

/// What an import does (or would do), entity by entity, with the normalised
/// before and after texts of the entities it creates, updates or deletes.
#[derive(Debug, Clone)]
pub struct Preview {
    /// Per-mapping counts.
    pub counts: Counts,
    /// One line per mapping: `~ SERVICE `orders` (id): UpdatedExisting`.
    pub lines: Vec<String>,
    /// The touched entities on the target before, normalised.
    pub before: String,
    /// The touched entities as the import leaves them, normalised.
    pub after: String,
    /// Whether anything changes (`None`: an update whose content could not be compared).
    pub changes: Option<bool>,
}

impl Preview {
    /// Compares the bundle's entities with the target's current ones (`current`), as `results` map them.
    pub fn of(
        bundle: &Bundle,
        results: &[MappingResult],
        current: &Bundle,
    ) -> Result<Self, Layer7Error> {
        let mut before = Bundle::default();
        let mut after = Bundle::default();
        let mut uncompared = 0;
        for result in results {
            let target = result
                .target_id
                .as_deref()
                .and_then(|id| current.item(&result.kind, id))
                .map(|item| rekeyed(item, &result.src_id));
            let incoming = bundle.item(&result.kind, &result.src_id).cloned();
            match result.action_taken {
                Some(ActionTaken::UpdatedExisting) => match (target, incoming) {
                    (Some(target), Some(incoming)) => {
                        before.items.push(target);
                        after.items.push(incoming);
                    }
                    _ => uncompared += 1,
                },
                Some(ActionTaken::CreatedNew) => after.items.extend(incoming),
                Some(ActionTaken::Deleted) => before.items.extend(target),
                _ => {}
            }
        }
        let difference = diff(&before, &after)?;
        let changed: Vec<(&str, &str)> = difference
            .changed
            .iter()
            .map(|entity| (entity.header.kind.as_str(), entity.header.id.as_str()))
            .collect();
        let mut counts = Counts::of(results);
        counts.changed = changed.len();
        let lines = results
            .iter()
            .map(|result| line(result, changed.contains(&(&result.kind, &result.src_id))))
            .collect();
        let changes = if uncompared > 0 {
            None
        } else {
            Some(counts.created + counts.deleted + counts.changed > 0)
        };
        Ok(Self {
            counts,
            lines,
            before: text(&before)?,
            after: text(&after)?,
            changes,
        })
    }

    /// The change, with `headline` as the summary's first line and the per-entity lines below.
    pub fn change(&self, headline: &str) -> Change {
        let mut summary = headline.to_owned();
        for line in &self.lines {
            summary.push('\n');
            summary.push_str(line);
        }
        Change {
            changes: self.changes,
            summary,
            before: Some(self.before.clone()),
            after: Some(self.after.clone()),
        }
    }
}

/// `+ SERVICE `orders` (src): CreatedNew -> target`.
fn line(result: &MappingResult, changed: bool) -> String {
    let taken = result
        .action_taken
        .as_ref()
        .map_or("(no result)", ActionTaken::as_str);
    let marker = match result.action_taken {
        Some(ActionTaken::CreatedNew) => '+',
        Some(ActionTaken::Deleted) => '-',
        Some(ActionTaken::UpdatedExisting) if changed => '~',
        _ => '=',
    };
    let target = match &result.target_id {
        Some(target) if *target != result.src_id => format!(" (target {target})"),
        _ => String::new(),
    };
    format!("{marker} {}: {taken}{target}", result.entity())
}

/// A bundle's items normalised, one block per entity: its header line, then its XML.
fn text(bundle: &Bundle) -> Result<String, Layer7Error> {
    let mut out = String::new();
    for item in bundle.normalised()?.items {
        out.push_str(&format!("# {}\n{}\n", item.header, item.xml.trim_end()));
    }
    Ok(out)
}

/// Whether an import of `bundle` is in effect on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every entity is there with the bundle's content; deleted ones are gone.
    InEffect,
    /// Not in effect, and why (the first entity that differs).
    NotInEffect(String),
}

/// Compares a test import's `results` (and the target's `current` version of
/// the entities it would update) with the bundle.
pub fn in_effect(
    bundle: &Bundle,
    results: &[MappingResult],
    current: &Bundle,
) -> Result<Verdict, Layer7Error> {
    for result in results {
        let entity = result.entity();
        match result.action_taken {
            Some(ActionTaken::CreatedNew) => {
                return Ok(Verdict::NotInEffect(format!("{entity} does not exist")));
            }
            Some(ActionTaken::Deleted) => {
                return Ok(Verdict::NotInEffect(format!("{entity} still exists")));
            }
            Some(ActionTaken::UpdatedExisting) => {
                let target = result
                    .target_id
                    .as_deref()
                    .and_then(|id| current.item(&result.kind, id));
                let incoming = bundle.item(&result.kind, &result.src_id);
                let (Some(target), Some(incoming)) = (target, incoming) else {
                    return Ok(Verdict::NotInEffect(format!("{entity} cannot be compared")));
                };
                let have = Bundle {
                    items: vec![rekeyed(target, &result.src_id)],
                    ..Bundle::default()
                };
                let want = Bundle {
                    items: vec![incoming.clone()],
                    ..Bundle::default()
                };
                if !diff(&have, &want)?.is_empty() {
                    return Ok(Verdict::NotInEffect(format!(
                        "{entity} differs from the bundle"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(Verdict::InEffect)
}

/// Results as step outputs: `[{type, name, src_id, action, action_taken, target_id}]`.
pub fn results_json(results: &[MappingResult]) -> serde_json::Value {
    serde_json::Value::Array(
        results
            .iter()
            .map(|result| {
                serde_json::json!({
                    "type": result.kind,
                    "name": result.name,
                    "src_id": result.src_id,
                    "action": result.action.as_str(),
                    "action_taken": result.action_taken.as_ref().map(ActionTaken::as_str),
                    "target_id": result.target_id,
                })
            })
            .collect(),
    )
}

/// The results' counts as outputs: `created`, `updated`, `changed` (updated with a
/// different content), `deleted`, `used_existing`, `ignored`.
pub fn counts_json(counts: &Counts) -> BTreeMap<&'static str, usize> {
    BTreeMap::from([
        ("created", counts.created),
        ("updated", counts.updated),
        ("changed", counts.changed),
        ("deleted", counts.deleted),
        ("used_existing", counts.used_existing),
        ("ignored", counts.ignored),
    ])
}
