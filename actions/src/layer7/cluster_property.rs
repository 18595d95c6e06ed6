//! `layer7.cluster_property` ([`Layer7ClusterProperty`]): creates or updates a
//! cluster property by name, through restman.
//!
//! An update is GET → set `l7:Value` → PUT with the `version` it read (a
//! concurrent change is refused, not overwritten). Values of properties whose
//! name suggests a secret ([`is_sensitive`]) never appear in plans, outputs or
//! messages. The undo record holds the previous value (listed in
//! `Applied.secrets` when sensitive) or says the step created the property.

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, Probe, StepContext, TargetKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::Layer7Error;
use super::gateway::Layer7Gateway;
use super::restman::{ClusterProperty, RestmanClient, WriteOptions};
use super::{FAMILY, Layer7ClusterPropertyArguments};
use crate::arguments::parse;

/// The action's type name.
const NAME: &str = "layer7.cluster_property";

/// What a masked value shows.
pub const MASK: &str = "********";

/// Words in a property name that make its value a secret.
const SENSITIVE_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "key",
    "token",
    "credential",
];

/// Whether the value of the property `name` is a secret: its name contains
/// `password`, `secret`, `key`, `token` (or `passwd`, `passphrase`, `credential`), in any case.
pub fn is_sensitive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SENSITIVE_WORDS.iter().any(|word| lower.contains(word))
}

/// What `undo` restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClusterPropertyUndo {
    /// The property existed with this value.
    Value {
        /// Its goid.
        id: String,
        /// Its value before the step (a secret when the name is sensitive).
        previous_value: String,
    },
    /// The step created the property.
    Created {
        /// The created property's goid.
        id: String,
    },
}

/// The `layer7.cluster_property` action.
#[derive(Debug, Clone)]
pub struct Layer7ClusterProperty {
    spec: ActionSpec,
}

impl Layer7ClusterProperty {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<Layer7ClusterPropertyArguments>(
                NAME,
                FAMILY,
                "Creates or updates a cluster property; values of secret-looking names are masked.",
                Effect::write().idempotent().reversible(),
            )
            .target(TargetKind::Gateway("layer7"))
            .outputs(&["id", "changed", "previous_value"]),
        }
    }
}

impl Default for Layer7ClusterProperty {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Action for Layer7ClusterProperty {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let current = wanted.current(&gateway.restman).await?;
        Ok(wanted.change(current.as_ref()))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let client = &gateway.restman;
        let current = wanted.current(client).await?;
        let change = wanted.change(current.as_ref());
        let (id, undo, changed, previous) = match current {
            Some(property) => {
                let id = property_id(&property)?;
                let previous = property.value.clone();
                let changed = previous != wanted.value;
                if changed {
                    // Read it again by id: the version the PUT carries is the one just read.
                    let mut fresh: ClusterProperty = client.get(&id).await?;
                    fresh.value = wanted.value.clone();
                    put(client, &id, &fresh, &wanted).await?;
                }
                let undo = ClusterPropertyUndo::Value {
                    id: id.clone(),
                    previous_value: previous.clone(),
                };
                (id, undo, changed, Some(previous))
            }
            None => {
                let created = client
                    .create(
                        &ClusterProperty::new(&wanted.name, &wanted.value),
                        &WriteOptions::default(),
                    )
                    .await
                    .map_err(|error| wanted.masked(error))?;
                let id = created.id.ok_or_else(|| {
                    ActionError::failed(format!(
                        "{NAME}: the gateway created {} but did not say its id",
                        wanted.describe()
                    ))
                })?;
                (id.clone(), ClusterPropertyUndo::Created { id }, true, None)
            }
        };
        let mut secrets = Vec::new();
        if wanted.sensitive {
            secrets.push(wanted.value.clone());
            secrets.extend(previous.iter().filter(|value| !value.is_empty()).cloned());
        }
        let undo = serde_json::to_value(&undo)
            .map_err(|error| ActionError::failed(format!("{NAME}: undo record: {error}")))?;
        Ok(Applied {
            outputs: wanted.outputs(&id, changed, previous.as_deref()),
            undo: Some(undo),
            change: Some(change),
            secrets,
        })
    }

    async fn undo(
        &self,
        context: &StepContext,
        arguments: Value,
        undo: Value,
    ) -> Result<(), ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let undo: ClusterPropertyUndo = crate::arguments::undo_record(NAME, undo)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let client = &gateway.restman;
        match undo {
            ClusterPropertyUndo::Created { id } => {
                match client.delete::<ClusterProperty>(&id).await {
                    // Already gone: nothing left to undo.
                    Err(error) if error.is_not_found() => Ok(()),
                    outcome => Ok(outcome.map_err(|error| wanted.masked(error))?),
                }
            }
            ClusterPropertyUndo::Value { id, previous_value } => {
                match client.get::<ClusterProperty>(&id).await {
                    Ok(property) if property.value == previous_value => Ok(()),
                    Ok(mut property) => {
                        property.value = previous_value;
                        put(client, &id, &property, &wanted).await
                    }
                    // Deleted since: put it back as it was, at its id.
                    Err(error) if error.is_not_found() => {
                        let property = ClusterProperty::new(&wanted.name, &previous_value);
                        client
                            .put(&id, &property, &WriteOptions::default())
                            .await
                            .map_err(|error| wanted.masked(error))?;
                        Ok(())
                    }
                    Err(error) => Err(wanted.masked(error)),
                }
            }
        }
    }

    async fn probe(&self, context: &StepContext, arguments: Value) -> Result<Probe, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        match wanted.current(&gateway.restman).await? {
            // Done, but the value it replaced is not known any more: no undo record.
            Some(property) if property.value == wanted.value => {
                let id = property_id(&property)?;
                Ok(Probe::Done(Applied {
                    outputs: wanted.outputs(&id, false, None),
                    undo: None,
                    change: Some(wanted.change(Some(&property))),
                    secrets: if wanted.sensitive {
                        vec![wanted.value.clone()]
                    } else {
                        Vec::new()
                    },
                }))
            }
            _ => Ok(Probe::NotDone),
        }
    }
}

/// PUTs `property` (with the version it was read at); a stale version becomes an
/// error saying someone changed it meanwhile. Messages are masked when sensitive.
async fn put(
    client: &RestmanClient,
    id: &str,
    property: &ClusterProperty,
    wanted: &Wanted,
) -> Result<(), ActionError> {
    match client.put(id, property, &WriteOptions::default()).await {
        Ok(_) => Ok(()),
        Err(error @ Layer7Error::Conflict { .. }) => Err(wanted.masked_message(format!(
            "{NAME}: {} was changed on the gateway by someone else between this step's \
             read and its write, so nothing was changed; re-run the step to apply it to the \
             current state ({error})",
            wanted.describe()
        ))),
        Err(error) => Err(wanted.masked(error)),
    }
}

/// The goid of a property read from the gateway.
fn property_id(property: &ClusterProperty) -> Result<String, ActionError> {
    property.id.clone().ok_or_else(|| {
        ActionError::failed(format!(
            "{NAME}: the gateway listed cluster property `{}` without an id",
            property.name
        ))
    })
}

/// The checked arguments.
#[derive(Debug, Clone)]
struct Wanted {
    name: String,
    value: String,
    sensitive: bool,
}

impl Wanted {
    /// Reads the rendered arguments.
    fn parse(arguments: Value) -> Result<Self, ActionError> {
        let arguments: Layer7ClusterPropertyArguments = parse(NAME, arguments)?;
        if arguments.name.trim().is_empty() {
            return Err(ActionError::InvalidArguments {
                action: NAME,
                message: "the property `name` is empty".to_owned(),
            });
        }
        Ok(Self {
            sensitive: is_sensitive(&arguments.name),
            name: arguments.name,
            value: arguments.value,
        })
    }

    /// The property as the gateway has it now (exactly this name).
    async fn current(
        &self,
        client: &RestmanClient,
    ) -> Result<Option<ClusterProperty>, ActionError> {
        let found: Vec<ClusterProperty> = client
            .list(&[("name", self.name.as_str())])
            .await
            .map_err(|error| self.masked(error))?;
        Ok(found
            .into_iter()
            .find(|property| property.name == self.name))
    }

    /// A value as shown: masked when the property is sensitive.
    fn show<'a>(&self, value: &'a str) -> &'a str {
        if self.sensitive { MASK } else { value }
    }

    /// `cluster property `name``.
    fn describe(&self) -> String {
        format!("cluster property `{}`", self.name)
    }

    /// What setting the value changes, from the current property (`None`: it does not exist).
    fn change(&self, current: Option<&ClusterProperty>) -> Change {
        let after = format!("value: {}\n", self.show(&self.value));
        match current {
            Some(property) if property.value == self.value => {
                Change::none(format!("{}: value unchanged, no change", self.describe()))
            }
            Some(property) => {
                let before = format!("value: {}\n", self.show(&property.value));
                let summary = if self.sensitive {
                    format!(
                        "{}: value changes (masked: sensitive name)",
                        self.describe()
                    )
                } else {
                    format!(
                        "{}: value {} -> {}",
                        self.describe(),
                        quoted(&property.value),
                        quoted(&self.value)
                    )
                };
                // Masked texts may be equal: the change is known to happen all the same.
                Change {
                    changes: Some(true),
                    summary,
                    before: Some(before),
                    after: Some(after),
                }
            }
            None => Change::between(
                format!(
                    "create cluster property `{}` = {}",
                    self.name,
                    if self.sensitive {
                        MASK.to_owned()
                    } else {
                        quoted(&self.value)
                    }
                ),
                None,
                after,
            ),
        }
    }

    /// The step's outputs (`previous_value` masked when sensitive; null when created or unknown).
    fn outputs(&self, id: &str, changed: bool, previous: Option<&str>) -> Map<String, Value> {
        let mut outputs = Map::new();
        outputs.insert("id".to_owned(), Value::from(id));
        outputs.insert("changed".to_owned(), Value::from(changed));
        outputs.insert(
            "previous_value".to_owned(),
            previous.map_or(Value::Null, |value| Value::from(self.show(value))),
        );
        outputs
    }

    /// A gateway error as an action error, with the values masked out of it when sensitive
    /// (a gateway may quote the body it refused).
    fn masked(&self, error: Layer7Error) -> ActionError {
        match ActionError::from(error) {
            ActionError::Failed { message } => self.masked_message(message),
            other => other,
        }
    }

    /// A failure with this message, the value masked out of it when sensitive.
    fn masked_message(&self, message: String) -> ActionError {
        if !self.sensitive || self.value.is_empty() {
            return ActionError::failed(message);
        }
        ActionError::failed(message.replace(&self.value, MASK))
    }
}

/// A value in quotes, for a summary line (empty values stay visible).
fn quoted(value: &str) -> String {
    format!("\"{value}\"")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secret_looking_names_are_sensitive() {
        for name in [
            "db.password",
            "oauth.client_SECRET",
            "apiKey",
            "jwt.signing.key",
            "upstream.token",
            "ldap.Passphrase",
        ] {
            assert!(is_sensitive(name), "{name}");
        }
        for name in ["io.httpsHostVerify", "cluster.hostname", "log.level"] {
            assert!(!is_sensitive(name), "{name}");
        }
    }

    #[test]
    fn plans_update_create_and_no_change() -> Result<(), ActionError> {
        let wanted = Wanted::parse(json!({"name": "log.level", "value": "FINE"}))?;
        let current = ClusterProperty::new("log.level", "INFO");
        let change = wanted.change(Some(&current));
        assert_eq!(
            change.summary,
            "cluster property `log.level`: value \"INFO\" -> \"FINE\""
        );
        assert_eq!(change.before.as_deref(), Some("value: INFO\n"));
        assert_eq!(change.after.as_deref(), Some("value: FINE\n"));
        let create = wanted.change(None);
        assert_eq!(
            create.summary,
            "create cluster property `log.level` = \"FINE\""
        );
        assert_eq!(create.changes, Some(true));
        let same = wanted.change(Some(&ClusterProperty::new("log.level", "FINE")));
        assert_eq!(same.changes, Some(false));
        Ok(())
    }

    #[test]
    fn sensitive_values_never_show() -> Result<(), ActionError> {
        let wanted = Wanted::parse(json!({"name": "db.password", "value": "n3w-s3cret"}))?;
        let current = ClusterProperty::new("db.password", "old-s3cret");
        for change in [wanted.change(Some(&current)), wanted.change(None)] {
            let text = format!("{change:?}");
            assert!(!text.contains("s3cret"), "{text}");
            assert!(text.contains(MASK), "{text}");
            assert_eq!(change.changes, Some(true));
        }
        let outputs = wanted.outputs("id1", true, Some("old-s3cret"));
        assert_eq!(outputs["previous_value"], json!(MASK));
        Ok(())
    }

    #[test]
    fn undo_records_read_back() -> Result<(), serde_json::Error> {
        for undo in [
            ClusterPropertyUndo::Value {
                id: "a".to_owned(),
                previous_value: "x".to_owned(),
            },
            ClusterPropertyUndo::Created { id: "b".to_owned() },
        ] {
            let value = serde_json::to_value(&undo)?;
            assert_eq!(serde_json::from_value::<ClusterPropertyUndo>(value)?, undo);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "cluster_property_tests.rs"]
mod twin_tests;
