//! The target's side of a Graphman bundle install, for `layer7.import` with
//! `api: graphman`: the per-entity results of an install ([`GraphmanResult`],
//! from each `detailedStatus`), the target's current version of what an install
//! replaces or removes ([`graphman_pre_state`], the undo record's content), what
//! the install would change entity by entity ([`graphman_preview`]), and whether
//! it already took effect ([`graphman_in_effect`], for resume).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::Layer7Error;
use super::bundle_state::{Counts, Preview, Verdict};
use super::graphman::bundle::{
    GraphmanBundle, POLICY_BUNDLE_FIELDS, PROPERTIES, SERVICE_BUNDLE_FIELDS,
};
use super::graphman::operations::{
    CLUSTER_PROPERTY_FIELDS, ENCASS_CONFIG_FIELDS, FOLDER_FIELDS, TRUSTED_CERT_FIELDS,
};
use super::graphman::{GraphmanClient, MutationStatus};
use super::graphman_export::in_dependency_order;
use super::restman::ActionTaken;

/// Fields that say nothing about an entity's configuration.
const VOLATILE: &[&str] = &["goid", "checksum", "__typename"];

/// One entity's outcome of a bundle install (its `detailedStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphmanResult {
    /// The bundle section (`services`).
    pub section: String,
    /// The entity's position in its section of the bundle sent.
    pub index: usize,
    /// Its name in the bundle, when it has one.
    pub name: Option<String>,
    /// Its identity as the gateway reported it (`resolutionPath=/orders`).
    pub source: String,
    /// The applied mapping action (`NEW_OR_UPDATE`).
    pub action: String,
    /// The status (`CREATED`, `UPDATED`, `DELETED`, `USED_EXISTING`, `IGNORED`, `NONE`).
    pub status: String,
    /// The gateway's description, when it gave one.
    pub description: Option<String>,
}

impl GraphmanResult {
    /// The entity in words: ``services `orders` (resolutionPath=/orders)``.
    pub fn entity(&self) -> String {
        match &self.name {
            Some(name) => format!("{} `{name}` ({})", self.section, self.source),
            None => format!("{} ({})", self.section, self.source),
        }
    }

    /// The status in restman's words, for the shared counts.
    pub fn taken(&self) -> Option<ActionTaken> {
        Some(match self.status.as_str() {
            "CREATED" => ActionTaken::CreatedNew,
            "UPDATED" => ActionTaken::UpdatedExisting,
            "DELETED" => ActionTaken::Deleted,
            "USED_EXISTING" => ActionTaken::UsedExisting,
            "IGNORED" => ActionTaken::Ignored,
            _ => return None,
        })
    }

    /// Whether the install replaces or removes an entity the target has.
    fn replaces_existing(&self) -> bool {
        matches!(self.status.as_str(), "UPDATED" | "DELETED")
    }

    /// The result as a step output.
    pub fn to_json(&self) -> Value {
        json!({
            "type": self.section,
            "name": self.name,
            "source": self.source,
            "action": self.action,
            "status": self.status,
            "description": self.description,
        })
    }
}

/// The results of installing `bundle`: each status paired with the entity at the
/// same place in its section (the gateway answers one status per input, in order).
pub fn graphman_results(bundle: &GraphmanBundle, answer: &MutationStatus) -> Vec<GraphmanResult> {
    let mut next_index: HashMap<String, usize> = HashMap::new();
    answer
        .statuses
        .iter()
        .map(|status| {
            let section = status
                .operation
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_owned();
            let slot = next_index.entry(section.clone()).or_default();
            let index = *slot;
            *slot += 1;
            let name = bundle
                .entities(&section)
                .get(index)
                .and_then(|entity| entity.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            GraphmanResult {
                section,
                index,
                name,
                source: status.entity(),
                action: status.action.clone().unwrap_or_default(),
                status: status.status.clone(),
                description: status.description.clone(),
            }
        })
        .collect()
}

/// The counts of these results.
pub fn graphman_counts(results: &[GraphmanResult]) -> Counts {
    let taken: Vec<Option<ActionTaken>> = results.iter().map(GraphmanResult::taken).collect();
    Counts::of_taken(taken.iter().map(Option::as_ref))
}

/// How the target holds an entity of a bundle.
#[derive(Debug, Clone, PartialEq)]
pub enum Current {
    /// It has it, as Graphman answers it with the bundle fields.
    Found(Value),
    /// It has none.
    Absent,
    /// Its section cannot be read one entity at a time here (keys, secrets, ...).
    NotCapturable,
}

impl GraphmanClient {
    /// The target's current version of `entity` of `section`, found by its identity
    /// fields, with the fields an export selects.
    pub async fn current(&self, section: &str, entity: &Value) -> Result<Current, Layer7Error> {
        let text = |field: &str| entity.get(field).and_then(Value::as_str).map(str::to_owned);
        let (field, argument, value, fields) = match section {
            "services" => match text("resolutionPath") {
                Some(path) => (
                    "serviceByResolutionPath",
                    "resolutionPath",
                    path,
                    SERVICE_BUNDLE_FIELDS,
                ),
                None => (
                    "serviceByName",
                    "name",
                    text("name").unwrap_or_default(),
                    SERVICE_BUNDLE_FIELDS,
                ),
            },
            "policies" => (
                "policyByName",
                "name",
                text("name").unwrap_or_default(),
                POLICY_BUNDLE_FIELDS,
            ),
            "clusterProperties" => (
                "clusterPropertyByName",
                "name",
                text("name").unwrap_or_default(),
                CLUSTER_PROPERTY_FIELDS,
            ),
            "folders" => (
                "folderByPath",
                "path",
                text("folderPath").unwrap_or_default(),
                FOLDER_FIELDS,
            ),
            "encassConfigs" => (
                "encassConfigByName",
                "name",
                text("name").unwrap_or_default(),
                ENCASS_CONFIG_FIELDS,
            ),
            "trustedCerts" => (
                "trustedCertsByName",
                "name",
                text("name").unwrap_or_default(),
                TRUSTED_CERT_FIELDS,
            ),
            _ => return Ok(Current::NotCapturable),
        };
        let query = format!(
            "query {field}($value: String!) {{ {field}({argument}: $value) {{ {fields} }} }}"
        );
        let data: Map<String, Value> = self.query(&query, json!({"value": value})).await?;
        let found = match data.get(field) {
            Some(Value::Array(certificates)) => {
                let thumbprint = text("thumbprintSha1");
                certificates
                    .iter()
                    .find(|certificate| {
                        thumbprint.is_none()
                            || certificate.get("thumbprintSha1").and_then(Value::as_str)
                                == thumbprint.as_deref()
                    })
                    .cloned()
            }
            Some(entity) if entity.is_object() => Some(entity.clone()),
            _ => None,
        };
        Ok(found.map_or(Current::Absent, Current::Found))
    }
}

/// The target's current version of what an install replaces or removes.
#[derive(Debug, Clone, Default)]
pub struct GraphmanPreState {
    /// The entities as the target has them, every one to be put back `NEW_OR_UPDATE`.
    pub bundle: GraphmanBundle,
    /// Per result (same order), the target's version of the entity, when read.
    pub current: Vec<Option<Value>>,
    /// Replaced or removed entities whose section cannot be read here (in words).
    pub not_captured: Vec<String>,
}

/// Reads the target's current version of every entity the results update or delete.
pub async fn graphman_pre_state(
    client: &GraphmanClient,
    bundle: &GraphmanBundle,
    results: &[GraphmanResult],
) -> Result<GraphmanPreState, Layer7Error> {
    let mut pre_state = GraphmanPreState::default();
    for result in results {
        let incoming = bundle.entities(&result.section).get(result.index);
        let current = match incoming {
            Some(incoming) if result.replaces_existing() || result.status == "USED_EXISTING" => {
                client.current(&result.section, incoming).await?
            }
            _ => Current::Absent,
        };
        match current {
            Current::Found(entity) => {
                if result.replaces_existing() {
                    pre_state.bundle.push(&result.section, entity.clone());
                }
                pre_state.current.push(Some(entity));
            }
            Current::NotCapturable if result.replaces_existing() => {
                pre_state.not_captured.push(result.entity());
                pre_state.current.push(None);
            }
            _ => pre_state.current.push(None),
        }
    }
    let mut bundle = in_dependency_order(std::mem::take(&mut pre_state.bundle));
    if !bundle.is_empty() {
        bundle.sections.insert(
            PROPERTIES.to_owned(),
            json!({"defaultAction": "NEW_OR_UPDATE"}),
        );
    }
    pre_state.bundle = bundle;
    Ok(pre_state)
}

/// Whether the target's `current` entity differs from the bundle's `incoming` one:
/// every field the bundle gives (but goid and checksum) is compared.
pub fn differs(current: &Value, incoming: &Value) -> bool {
    let Some(fields) = incoming.as_object() else {
        return true;
    };
    fields
        .iter()
        .filter(|(name, _)| !VOLATILE.contains(&name.as_str()))
        .any(|(name, value)| current.get(name).unwrap_or(&Value::Null) != value)
}

/// Fields that carry a private key or a password (keys' `p12`/`pem`, secrets' `secret`).
const SECRET_FIELDS: &[&str] = &["p12", "pem", "secret", "password", "passphrase"];

/// An entity as shown in a plan: its configuration without goid and checksum, and
/// with every secret-bearing field masked.
fn shown(entity: &Value) -> Value {
    let mut copy = entity.clone();
    if let Some(object) = copy.as_object_mut() {
        for field in VOLATILE {
            object.remove(*field);
        }
        for field in SECRET_FIELDS {
            if let Some(value) = object.get_mut(*field)
                && !value.is_null()
            {
                *value = Value::String("********".to_owned());
            }
        }
    }
    copy
}

/// The preview of an install: per-entity lines, counts, and the touched entities'
/// configuration before (the target's) and after (the bundle's).
pub fn graphman_preview(
    bundle: &GraphmanBundle,
    results: &[GraphmanResult],
    pre_state: &GraphmanPreState,
) -> Preview {
    let mut before = String::new();
    let mut after = String::new();
    let mut changed = 0;
    let mut uncompared = 0;
    let mut lines = Vec::new();
    for (position, result) in results.iter().enumerate() {
        let incoming = bundle.entities(&result.section).get(result.index);
        let current = pre_state.current.get(position).and_then(Option::as_ref);
        let header = format!("# {}\n", result.entity());
        let mut marker = '=';
        match result.status.as_str() {
            "CREATED" => {
                marker = '+';
                after.push_str(&header);
                after.push_str(&pretty(incoming));
            }
            "DELETED" => {
                marker = '-';
                before.push_str(&header);
                before.push_str(&pretty(current));
            }
            "UPDATED" => match (current, incoming) {
                (Some(current), Some(incoming)) if differs(current, incoming) => {
                    marker = '~';
                    changed += 1;
                    before.push_str(&header);
                    before.push_str(&pretty(Some(current)));
                    after.push_str(&header);
                    after.push_str(&pretty(Some(incoming)));
                }
                (Some(_), Some(_)) => {}
                _ => {
                    marker = '~';
                    uncompared += 1;
                }
            },
            _ => {}
        }
        lines.push(format!(
            "{marker} {}: {} -> {}",
            result.entity(),
            result.action,
            result.status
        ));
    }
    let mut counts = graphman_counts(results);
    counts.changed = changed;
    let changes = if uncompared > 0 {
        None
    } else {
        Some(counts.created + counts.deleted + counts.changed > 0)
    };
    Preview {
        counts,
        lines,
        before,
        after,
        changes,
    }
}

/// An entity's configuration as indented JSON (`null` when unknown).
fn pretty(entity: Option<&Value>) -> String {
    let shown = entity.map_or(Value::Null, shown);
    let mut text = serde_json::to_string_pretty(&shown).unwrap_or_default();
    text.push('\n');
    text
}

/// Whether an install of `bundle` is in effect on the target, from a test
/// install's `results` and the target's versions of the entities (`pre_state`).
pub fn graphman_in_effect(
    bundle: &GraphmanBundle,
    results: &[GraphmanResult],
    pre_state: &GraphmanPreState,
) -> Verdict {
    for (position, result) in results.iter().enumerate() {
        let entity = result.entity();
        match result.status.as_str() {
            "CREATED" => return Verdict::NotInEffect(format!("{entity} does not exist")),
            "DELETED" => return Verdict::NotInEffect(format!("{entity} still exists")),
            "UPDATED" | "USED_EXISTING" => {
                let incoming = bundle.entities(&result.section).get(result.index);
                let current = pre_state.current.get(position).and_then(Option::as_ref);
                let same_action = result.action == "NEW_OR_UPDATE";
                match (current, incoming) {
                    (Some(current), Some(incoming))
                        if same_action && differs(current, incoming) =>
                    {
                        return Verdict::NotInEffect(format!("{entity} differs from the bundle"));
                    }
                    (None, _) | (_, None) if result.status == "UPDATED" => {
                        return Verdict::NotInEffect(format!("{entity} cannot be compared"));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Verdict::InEffect
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer7::graphman::EntityStatus;

    fn status(section: &str, status: &str, name: &str) -> EntityStatus {
        EntityStatus {
            operation: format!("installBundleEntities.summary.{section}"),
            action: Some("NEW_OR_UPDATE".to_owned()),
            status: status.to_owned(),
            description: None,
            source: vec![("name".to_owned(), name.to_owned())],
            target: Vec::new(),
        }
    }

    #[test]
    fn statuses_pair_with_the_entities_of_their_section_in_order()
    -> Result<(), Box<dyn std::error::Error>> {
        let bundle = GraphmanBundle::parse(
            &json!({
                "clusterProperties": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}],
                "policies": [{"name": "p"}]
            })
            .to_string(),
        )?;
        let answer = MutationStatus {
            data: Value::Null,
            statuses: vec![
                status("clusterProperties", "CREATED", "a"),
                status("clusterProperties", "UPDATED", "b"),
                status("policies", "USED_EXISTING", "p"),
            ],
        };
        let results = graphman_results(&bundle, &answer);
        let seen: Vec<(usize, Option<&str>)> = results
            .iter()
            .map(|result| (result.index, result.name.as_deref()))
            .collect();
        assert_eq!(seen, [(0, Some("a")), (1, Some("b")), (0, Some("p"))]);
        assert_eq!(results[1].entity(), "clusterProperties `b` (name=b)");
        let counts = graphman_counts(&results);
        assert_eq!(
            (counts.created, counts.updated, counts.used_existing),
            (1, 1, 1)
        );
        let pre_state = GraphmanPreState {
            current: vec![
                None,
                Some(json!({"goid": "x", "name": "b", "value": "1", "checksum": "c"})),
                None,
            ],
            ..GraphmanPreState::default()
        };
        let preview = graphman_preview(&bundle, &results, &pre_state);
        assert_eq!(
            preview.lines,
            [
                "+ clusterProperties `a` (name=a): NEW_OR_UPDATE -> CREATED",
                "~ clusterProperties `b` (name=b): NEW_OR_UPDATE -> UPDATED",
                "= policies `p` (name=p): NEW_OR_UPDATE -> USED_EXISTING",
            ]
        );
        assert_eq!(preview.counts.changed, 1);
        assert_eq!(preview.changes, Some(true));
        assert!(
            preview.before.contains("\"value\": \"1\""),
            "{}",
            preview.before
        );
        assert!(!preview.before.contains("checksum"), "{}", preview.before);
        assert!(
            preview.after.contains("\"value\": \"2\""),
            "{}",
            preview.after
        );
        assert!(matches!(
            graphman_in_effect(&bundle, &results, &pre_state),
            Verdict::NotInEffect(_)
        ));
        Ok(())
    }

    #[test]
    fn plans_never_show_a_private_key_or_a_password() {
        let key = json!({"alias": "new", "keystoreId": "2", "pem": "-----BEGIN PRIVATE KEY-----\nMIIE", "goid": "g"});
        let text = pretty(Some(&key));
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("MIIE"),
            "{text}"
        );
        assert!(text.contains("\"pem\": \"********\""), "{text}");
        assert!(!text.contains("goid"), "{text}");
        let secret = pretty(Some(
            &json!({"name": "db", "secret": "hunter2", "secretType": "PASSWORD"}),
        ));
        assert!(
            !secret.contains("hunter2") && secret.contains("PASSWORD"),
            "{secret}"
        );
    }

    #[test]
    fn only_the_fields_the_bundle_gives_are_compared() {
        let current =
            json!({"goid": "1", "name": "a", "value": "x", "description": null, "checksum": "c1"});
        assert!(!differs(
            &current,
            &json!({"goid": "2", "name": "a", "value": "x", "checksum": "c2"})
        ));
        assert!(differs(&current, &json!({"name": "a", "value": "y"})));
        assert!(differs(
            &current,
            &json!({"name": "a", "hiddenProperty": true})
        ));
    }
}
