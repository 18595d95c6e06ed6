//! Configuration entities in Graphman's shape (reference §2.4): folders, encapsulated
//! assertions, cluster properties and secrets (services and policies: [`super::policies`]).

use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::kind::{
    GraphmanKind, NameValueInput, find_by_name_or_guid, folder_id, folder_path, parse,
    properties_from, properties_json, text,
};
use crate::layer7::graphman::Context;
use crate::layer7::store::{
    ClusterProperty, EncapsulatedAssertion, EncassArgument, EncassResult, Folder, PasswordType,
    Policy, Store, StoreError, Stored, StoredPassword,
};

/// A name or an existing value; required when new.
pub(super) fn required(
    given: Option<String>,
    existing: Option<String>,
    what: &str,
) -> Result<String, String> {
    given
        .or(existing)
        .ok_or_else(|| format!("{what} is required"))
}

/// A new guid when none is given or kept.
pub(super) fn guid(given: Option<String>, existing: Option<String>) -> String {
    given
        .or(existing)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

impl GraphmanKind for Folder {
    const SECTION: &'static str = "folders";
    const TYPE_NAME: &'static str = "Folder";

    fn config_json(stored: &Stored<Self>, store: &Store) -> Map<String, Value> {
        let mut object = Map::new();
        object.insert("goid".into(), json!(stored.id));
        object.insert("name".into(), json!(stored.entity.name));
        object.insert("folderPath".into(), json!(folder_path(store, &stored.id)));
        object
    }

    fn find(store: &Store, input: &Value) -> Option<String> {
        let path = text(input, "folderPath").or_else(|| text(input, "path"))?;
        store.folder_by_path(&path).map(|folder| folder.id.clone())
    }

    fn from_input(
        store: &Store,
        input: &Value,
        existing: Option<&Stored<Self>>,
        _context: &Context<'_>,
    ) -> Result<Self, String> {
        if let Some(existing) = existing
            && existing.entity.parent_id.is_none()
        {
            return Ok(existing.entity.clone());
        }
        let path = text(input, "folderPath")
            .or_else(|| text(input, "path"))
            .ok_or("folderPath is required")?;
        let trimmed = path.trim_end_matches('/');
        let (parent, last) = trimmed
            .rsplit_once('/')
            .ok_or_else(|| format!("folderPath {path} must start with /"))?;
        let name = text(input, "name").unwrap_or_else(|| last.to_owned());
        if name != last {
            return Err(format!(
                "name {name} does not match the last part of folderPath {path}"
            ));
        }
        Ok(Folder {
            name,
            parent_id: Some(folder_id(
                store,
                Some(if parent.is_empty() { "/" } else { parent }),
            )?),
        })
    }

    fn remove(store: &mut Store, id: &str, context: &Context<'_>) -> Result<(), StoreError> {
        store.delete_folder(id, context.options.force_delete)
    }
}

/// `EncassConfigInput` (the fields the twin models).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncassInput {
    /// Name.
    name: Option<String>,
    /// Stable id.
    guid: Option<String>,
    /// The backing policy's name.
    policy_name: Option<String>,
    /// Arguments.
    arguments: Option<Vec<EncassArgumentInput>>,
    /// Results.
    results: Option<Vec<EncassResultInput>>,
    /// Other properties.
    properties: Option<Vec<NameValueInput>>,
}

/// One argument of an `EncassConfigInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EncassArgumentInput {
    /// Name.
    name: String,
    /// Type.
    #[serde(rename = "type", default)]
    kind: Option<String>,
    /// Position.
    #[serde(default)]
    ordinal: Option<u32>,
    /// Shown in the dialog.
    #[serde(default)]
    gui_prompt: Option<bool>,
    /// Label in the dialog.
    #[serde(default)]
    gui_label: Option<String>,
}

/// One result of an `EncassConfigInput`.
#[derive(Debug, Deserialize)]
struct EncassResultInput {
    /// Name.
    name: String,
    /// Type.
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

impl GraphmanKind for EncapsulatedAssertion {
    const SECTION: &'static str = "encassConfigs";
    const TYPE_NAME: &'static str = "EncassConfig";

    fn config_json(stored: &Stored<Self>, store: &Store) -> Map<String, Value> {
        let encass = &stored.entity;
        let policy_name = store
            .get::<Policy>(&encass.policy_id)
            .map(|policy| policy.entity.name.clone());
        let value = json!({
            "goid": stored.id,
            "guid": encass.guid,
            "name": encass.name,
            "policyName": policy_name,
            "arguments": encass.arguments.iter().map(|argument| json!({
                "name": argument.name, "type": argument.kind, "ordinal": argument.ordinal,
                "guiPrompt": argument.gui_prompt, "guiLabel": argument.gui_label,
            })).collect::<Vec<_>>(),
            "results": encass.results.iter().map(|result| json!({
                "name": result.name, "type": result.kind,
            })).collect::<Vec<_>>(),
            "properties": properties_json(&encass.properties),
        });
        value.as_object().cloned().unwrap_or_default()
    }

    fn find(store: &Store, input: &Value) -> Option<String> {
        find_by_name_or_guid::<Self>(store, input)
    }

    fn from_input(
        store: &Store,
        input: &Value,
        existing: Option<&Stored<Self>>,
        _context: &Context<'_>,
    ) -> Result<Self, String> {
        let given: EncassInput = parse(input, "encass config")?;
        let old = existing.map(|stored| &stored.entity);
        let policy_id = match (&given.policy_name, old) {
            (Some(name), _) => store
                .find::<Policy>(&format!("name={name}"))
                .first()
                .map(|policy| policy.id.clone())
                .ok_or_else(|| format!("policy {name} does not exist"))?,
            (None, Some(old)) => old.policy_id.clone(),
            (None, None) => return Err("policyName is required".to_owned()),
        };
        let arguments = match given.arguments {
            Some(list) => list
                .into_iter()
                .zip(1_u32..)
                .map(|(argument, position)| EncassArgument {
                    ordinal: argument.ordinal.unwrap_or(position),
                    name: argument.name,
                    kind: argument.kind.unwrap_or_else(|| "string".to_owned()),
                    gui_prompt: argument.gui_prompt.unwrap_or(false),
                    gui_label: argument.gui_label,
                })
                .collect(),
            None => old.map(|old| old.arguments.clone()).unwrap_or_default(),
        };
        let results = match given.results {
            Some(list) => list
                .into_iter()
                .map(|result| EncassResult {
                    name: result.name,
                    kind: result.kind.unwrap_or_else(|| "string".to_owned()),
                })
                .collect(),
            None => old.map(|old| old.results.clone()).unwrap_or_default(),
        };
        Ok(EncapsulatedAssertion {
            name: required(given.name, old.map(|old| old.name.clone()), "name")?,
            guid: guid(given.guid, old.map(|old| old.guid.clone())),
            policy_id,
            arguments,
            results,
            properties: match (&given.properties, old) {
                (Some(list), _) => properties_from(list),
                (None, Some(old)) => old.properties.clone(),
                (None, None) => Default::default(),
            },
        })
    }
}

/// `ClusterPropertyInput`.
#[derive(Debug, Deserialize)]
struct ClusterPropertyInput {
    /// Name.
    name: String,
    /// Value.
    value: Option<String>,
    /// Description.
    description: Option<String>,
}

impl GraphmanKind for ClusterProperty {
    const SECTION: &'static str = "clusterProperties";
    const TYPE_NAME: &'static str = "ClusterProperty";

    fn config_json(stored: &Stored<Self>, _store: &Store) -> Map<String, Value> {
        let property = &stored.entity;
        let value = json!({
            "goid": stored.id,
            "name": property.name,
            "description": property.description,
            "hiddenProperty": false,
            "value": property.value,
        });
        value.as_object().cloned().unwrap_or_default()
    }

    fn find(store: &Store, input: &Value) -> Option<String> {
        let name = text(input, "name")?;
        store
            .find::<ClusterProperty>(&format!("name={name}"))
            .first()
            .map(|stored| stored.id.clone())
    }

    fn from_input(
        _store: &Store,
        input: &Value,
        existing: Option<&Stored<Self>>,
        _context: &Context<'_>,
    ) -> Result<Self, String> {
        let given: ClusterPropertyInput = parse(input, "cluster property")?;
        let old = existing.map(|stored| &stored.entity);
        Ok(ClusterProperty {
            value: required(given.value, old.map(|old| old.value.clone()), "value")?,
            description: given
                .description
                .or_else(|| old.and_then(|old| old.description.clone())),
            name: given.name,
        })
    }
}

/// `SecretInput`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretInput {
    /// Name.
    name: String,
    /// The secret, clear text (the twin does not decrypt bundle secrets).
    secret: Option<String>,
    /// `PASSWORD` or `PEM_PRIVATE_KEY`.
    secret_type: Option<String>,
    /// `${secpass.<name>.plaintext}` allowed.
    variable_referencable: Option<bool>,
    /// Description.
    description: Option<String>,
}

impl GraphmanKind for StoredPassword {
    const SECTION: &'static str = "secrets";
    const TYPE_NAME: &'static str = "Secret";

    fn config_json(stored: &Stored<Self>, _store: &Store) -> Map<String, Value> {
        let secret = &stored.entity;
        let value = json!({
            "goid": stored.id,
            "name": secret.name,
            "description": secret.description,
            "secret": null,
            "secretType": match secret.kind {
                PasswordType::Password => "PASSWORD",
                PasswordType::PemPrivateKey => "PEM_PRIVATE_KEY",
            },
            "variableReferencable": secret.usage_from_variable,
        });
        value.as_object().cloned().unwrap_or_default()
    }

    fn hidden_checksum_input(stored: &Stored<Self>) -> Option<String> {
        let digest = Sha256::digest(stored.entity.password.as_bytes());
        Some(digest.iter().map(|byte| format!("{byte:02x}")).collect())
    }

    fn find(store: &Store, input: &Value) -> Option<String> {
        let name = text(input, "name")?;
        store
            .find::<StoredPassword>(&format!("name={name}"))
            .first()
            .map(|stored| stored.id.clone())
    }

    fn from_input(
        _store: &Store,
        input: &Value,
        existing: Option<&Stored<Self>>,
        _context: &Context<'_>,
    ) -> Result<Self, String> {
        // Never quote the input: it holds the secret.
        let given = SecretInput::deserialize(input)
            .map_err(|_| "invalid secret input (name, secret, secretType, ...)".to_owned())?;
        let old = existing.map(|stored| &stored.entity);
        let kind = match (given.secret_type.as_deref(), old) {
            (Some("PASSWORD"), _) | (None, None) => PasswordType::Password,
            (Some("PEM_PRIVATE_KEY"), _) => PasswordType::PemPrivateKey,
            (Some(other), _) => {
                return Err(format!(
                    "secretType {other} is not PASSWORD or PEM_PRIVATE_KEY"
                ));
            }
            (None, Some(old)) => old.kind,
        };
        Ok(StoredPassword {
            password: required(given.secret, old.map(|old| old.password.clone()), "secret")?,
            kind,
            usage_from_variable: given
                .variable_referencable
                .or(old.map(|old| old.usage_from_variable))
                .unwrap_or(true),
            description: given
                .description
                .or_else(|| old.and_then(|old| old.description.clone())),
            name: given.name,
        })
    }
}
