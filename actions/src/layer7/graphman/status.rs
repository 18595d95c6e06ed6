//! Graphman's per-entity mutation statuses (section 2.5):
//! [`EntityStatus`] is one `detailedStatus {action status description source
//! target}`; [`collect_statuses`] finds every one in a mutation's `data`,
//! however the mutation nests them (a `setXs` result, or the bundle
//! operations' summary).

use serde_json::{Map, Value};

/// The `EntityMutationStatus` values.
pub const STATUSES: &[&str] = &[
    "NONE",
    "CREATED",
    "UPDATED",
    "DELETED",
    "USED_EXISTING",
    "IGNORED",
    "ERROR",
];

/// One entity's mutation status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityStatus {
    /// The mutation field it came from (`setClusterProperties`), and section when nested.
    pub operation: String,
    /// `action`: the applied `EntityMutationAction` (`NEW_OR_UPDATE`, ...).
    pub action: Option<String>,
    /// `status`: `NONE`, `CREATED`, `UPDATED`, `DELETED`, `USED_EXISTING`, `IGNORED` or `ERROR`.
    pub status: String,
    /// `description`: the gateway's words.
    pub description: Option<String>,
    /// `source`: the bundle entity's identity, as `(name, value)`.
    pub source: Vec<(String, String)>,
    /// `target`: the matched gateway entity's identity, as `(name, value)`.
    pub target: Vec<(String, String)>,
}

impl EntityStatus {
    /// Whether the entity failed.
    pub fn is_error(&self) -> bool {
        self.status == "ERROR"
    }

    /// Whether the gateway's state changed for this entity.
    pub fn is_change(&self) -> bool {
        matches!(self.status.as_str(), "CREATED" | "UPDATED" | "DELETED")
    }

    /// The entity in words, from its source identity (`name=io.x`), else its target.
    pub fn entity(&self) -> String {
        let identity = if self.source.is_empty() {
            &self.target
        } else {
            &self.source
        };
        if identity.is_empty() {
            return "(unnamed entity)".to_owned();
        }
        identity
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A mutation's answer: its `data`, and the status of every entity it touched.
#[derive(Debug, Clone, PartialEq)]
pub struct MutationStatus {
    /// The `data` of the answer.
    pub data: Value,
    /// Every entity status found, in the answer's order.
    pub statuses: Vec<EntityStatus>,
}

impl MutationStatus {
    /// Whether any entity changed (created, updated or deleted).
    pub fn changed(&self) -> bool {
        self.statuses.iter().any(EntityStatus::is_change)
    }
}

/// Every entity status in `data`: objects with a `status` from
/// [`STATUSES`] (and usually `action`, `source`, `target`), found at any depth.
pub fn collect_statuses(data: &Value) -> Vec<EntityStatus> {
    let mut found = Vec::new();
    walk(data, &mut Vec::new(), &mut found);
    found
}

fn walk(value: &Value, path: &mut Vec<String>, found: &mut Vec<EntityStatus>) {
    match value {
        Value::Object(object) => {
            if let Some(status) = as_status(object, path) {
                found.push(status);
                return;
            }
            for (key, child) in object {
                path.push(key.clone());
                walk(child, path, found);
                path.pop();
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, path, found);
            }
        }
        _ => {}
    }
}

/// The object as a status, when it is one.
fn as_status(object: &Map<String, Value>, path: &[String]) -> Option<EntityStatus> {
    let status = object.get("status")?.as_str()?;
    if !STATUSES.contains(&status) {
        return None;
    }
    let operation: Vec<&str> = path
        .iter()
        .map(String::as_str)
        .filter(|part| *part != "detailedStatus")
        .collect();
    Some(EntityStatus {
        operation: if operation.is_empty() {
            "mutation".to_owned()
        } else {
            operation.join(".")
        },
        action: object
            .get("action")
            .and_then(Value::as_str)
            .map(str::to_owned),
        status: status.to_owned(),
        description: object
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        source: pairs(object.get("source")),
        target: pairs(object.get("target")),
    })
}

/// `[{name, value}]` as pairs.
fn pairs(value: Option<&Value>) -> Vec<(String, String)> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    let name = item.get("name")?.as_str()?.to_owned();
                    let value = match item.get("value")? {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    Some((name, value))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_statuses_of_plural_mutations_and_names_the_failing_entity() {
        let data = json!({
            "setClusterProperties": {
                "detailedStatus": [
                    {"action": "NEW_OR_UPDATE", "status": "UPDATED", "description": "updated",
                     "source": [{"name": "name", "value": "io.a"}], "target": [{"name": "goid", "value": "abc"}]},
                    {"action": "NEW_OR_UPDATE", "status": "ERROR", "description": "value must not be empty",
                     "source": [{"name": "name", "value": "io.b"}], "target": []}
                ],
                "clusterProperties": [{"name": "io.a", "status": "not a status"}]
            }
        });
        let statuses = collect_statuses(&data);
        assert_eq!(statuses.len(), 2);
        assert_eq!(statuses[0].operation, "setClusterProperties");
        assert!(statuses[0].is_change());
        let failed = statuses.iter().find(|s| s.is_error());
        assert_eq!(
            failed.map(EntityStatus::entity).as_deref(),
            Some("name=io.b")
        );
    }

    #[test]
    fn finds_statuses_nested_in_a_bundle_summary() {
        let data = json!({"installBundleEntities": {"summary": {
            "services": [{"action": "NEW_OR_UPDATE", "status": "CREATED", "source": [{"name": "resolutionPath", "value": "/orders"}], "target": []}],
            "folders": [{"action": "NEW_OR_EXISTING", "status": "USED_EXISTING", "source": [], "target": [{"name": "path", "value": "/apis"}]}]
        }}});
        let statuses = collect_statuses(&data);
        let seen: Vec<(String, String)> = statuses
            .iter()
            .map(|s| (s.operation.clone(), s.entity()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "installBundleEntities.summary.services".to_owned(),
                    "resolutionPath=/orders".to_owned()
                ),
                (
                    "installBundleEntities.summary.folders".to_owned(),
                    "path=/apis".to_owned()
                )
            ]
        );
    }
}
