//! The Graphman side of `layer7.export`: a selection resolved entity by entity
//! through [`GraphmanClient::export`], naming every entity it cannot find at once
//! (as the restman path does), and the bundle as the JSON file the action writes
//! ([`Exported::of_graphman`]).
//!
//! The export selects only `folders`, `clusterProperties`, `trustedCerts`,
//! `policies`, `encassConfigs` and `services` ([`EXPORTED_SECTIONS`]): never
//! `keys` (`p12`/`pem`) nor `secrets`, so the file holds no private key and no
//! stored password.

use serde_json::{Map, Value};

use super::Layer7Error;
use super::arguments::Layer7Selection;
use super::export::Exported;
use super::graphman::GraphmanClient;
use super::graphman::bundle::{EXPORTED_SECTIONS, GraphmanBundle};
use super::graphman::bundle::{POLICY_BUNDLE_FIELDS, SERVICE_BUNDLE_FIELDS};
use super::selection::{SelectionError, is_goid};
use crate::artefact::sha256_hex;

impl Exported {
    /// The export of a Graphman bundle: indented JSON ending in a newline.
    pub fn of_graphman(bundle: &GraphmanBundle) -> Self {
        let mut document = bundle.to_json();
        document.push('\n');
        Self {
            sha256: sha256_hex(document.as_bytes()),
            entities: bundle.len(),
            summary: section_counts(bundle),
            document,
        }
    }
}

/// Entities per section (`{"folders": 1, "services": 2}`), sections in name order.
pub fn section_counts(bundle: &GraphmanBundle) -> Map<String, Value> {
    let mut counts = std::collections::BTreeMap::<&str, u64>::new();
    for (section, entities) in bundle.entity_sections() {
        if !entities.is_empty() {
            *counts.entry(section).or_default() += entities.len() as u64;
        }
    }
    counts
        .into_iter()
        .map(|(section, count)| (section.to_owned(), Value::from(count)))
        .collect()
}

/// Exports `selection` (everything when `None`): services by resolution path (a
/// value starting with `/`), name or goid; folders by path with their contents;
/// policies by name or goid; cluster properties by name. Every missing entity is
/// named in one [`SelectionError::Missing`]. Sections come in dependency order.
pub async fn export_selection(
    client: &GraphmanClient,
    gateway: &str,
    selection: Option<&Layer7Selection>,
) -> Result<GraphmanBundle, SelectionError> {
    let Some(selection) = selection else {
        return Ok(client.export(None).await?);
    };
    if selection.services.is_empty()
        && selection.folders.is_empty()
        && selection.policies.is_empty()
        && selection.cluster_properties.is_empty()
    {
        return Err(SelectionError::Empty);
    }
    let mut merged = GraphmanBundle::default();
    let mut missing = Vec::new();
    let one = |pick: fn(&mut Layer7Selection) -> &mut Vec<String>, reference: &str| {
        let mut single = Layer7Selection::default();
        pick(&mut single).push(reference.to_owned());
        single
    };
    let mut wanted: Vec<(String, Layer7Selection)> = Vec::new();
    for path in &selection.folders {
        wanted.push((format!("folder `{path}`"), one(|s| &mut s.folders, path)));
    }
    for name in &selection.cluster_properties {
        let single = one(|s| &mut s.cluster_properties, name);
        wanted.push((format!("cluster property `{name}`"), single));
    }
    for reference in &selection.policies {
        let single = one(|s| &mut s.policies, reference);
        wanted.push((format!("policy `{reference}`"), single));
    }
    for reference in &selection.services {
        let single = one(|s| &mut s.services, reference);
        wanted.push((format!("service `{reference}`"), single));
    }
    for (described, single) in wanted {
        let found = match client.export(Some(&single)).await {
            Ok(found) => Some(found),
            Err(Layer7Error::NotFound { .. }) => by_goid(client, &single).await?,
            Err(error) => return Err(error.into()),
        };
        match found {
            Some(found) => merge(&mut merged, &found),
            None => missing.push(described),
        }
    }
    if !missing.is_empty() {
        return Err(SelectionError::Missing {
            gateway: gateway.to_owned(),
            missing,
        });
    }
    Ok(in_dependency_order(merged))
}

/// A service or policy named by goid (Graphman's `serviceByGoid`, `policyByGoid`).
async fn by_goid(
    client: &GraphmanClient,
    single: &Layer7Selection,
) -> Result<Option<GraphmanBundle>, Layer7Error> {
    let (field, section, fields, goid) = match (single.services.first(), single.policies.first()) {
        (Some(goid), _) if is_goid(goid) => {
            ("serviceByGoid", "services", SERVICE_BUNDLE_FIELDS, goid)
        }
        (_, Some(goid)) if is_goid(goid) => {
            ("policyByGoid", "policies", POLICY_BUNDLE_FIELDS, goid)
        }
        _ => return Ok(None),
    };
    let query = format!("query {field}($goid: String!) {{ {field}(goid: $goid) {{ {fields} }} }}");
    let data: Map<String, Value> = client
        .query(&query, serde_json::json!({"goid": goid}))
        .await?;
    Ok(data
        .get(field)
        .filter(|entity| entity.is_object())
        .map(|entity| {
            let mut bundle = GraphmanBundle::default();
            bundle.push(section, entity.clone());
            bundle
        }))
}

/// Adds `found`'s entities to `merged` (an entity already there is not added again).
fn merge(merged: &mut GraphmanBundle, found: &GraphmanBundle) {
    for (section, entities) in found.entity_sections() {
        for entity in entities {
            merged.push(section, entity.clone());
        }
    }
}

/// The bundle with its sections in [`EXPORTED_SECTIONS`] order (others after, as they were).
pub fn in_dependency_order(bundle: GraphmanBundle) -> GraphmanBundle {
    let mut rest = bundle.sections;
    let mut sections = Map::new();
    for name in EXPORTED_SECTIONS {
        if let Some(entities) = rest.remove(*name) {
            sections.insert((*name).to_owned(), entities);
        }
    }
    sections.extend(rest);
    GraphmanBundle { sections }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sections_come_in_dependency_order_and_are_counted() -> Result<(), Box<dyn std::error::Error>>
    {
        let bundle = GraphmanBundle::parse(
            &json!({
                "services": [{"name": "a", "resolutionPath": "/a"}, {"name": "b", "resolutionPath": "/b"}],
                "folders": [{"name": "apis", "folderPath": "/apis"}],
                "clusterProperties": []
            })
            .to_string(),
        )?;
        let ordered = in_dependency_order(bundle);
        let names: Vec<&str> = ordered.sections.keys().map(String::as_str).collect();
        assert_eq!(names, ["folders", "clusterProperties", "services"]);
        let exported = Exported::of_graphman(&ordered);
        assert_eq!(exported.entities, 3);
        assert_eq!(
            Value::Object(exported.summary),
            json!({"folders": 1, "services": 2})
        );
        assert!(exported.document.ends_with("}\n"));
        assert_eq!(exported.sha256, sha256_hex(exported.document.as_bytes()));
        Ok(())
    }
}
