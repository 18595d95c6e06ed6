//! `layer7.service` ([`Layer7Service`]): enables or disables one published
//! service, found by resolution path or name, through restman.
//!
//! The write is GET → set `l7:Enabled` → PUT with the `version` it read, so a
//! concurrent change is refused by the gateway (a stale version) instead of
//! being overwritten; the policy XML is sent back unchanged, so no policy
//! revision is added. The undo record holds the service's id and its previous flag.

use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, Probe, StepContext, TargetKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::Layer7Error;
use super::gateway::Layer7Gateway;
use super::restman::{RestmanClient, Service, WriteOptions};
use super::{FAMILY, Layer7ServiceArguments};
use crate::arguments::parse;

/// The action's type name.
const NAME: &str = "layer7.service";

/// What `undo` restores: the service's flag before the step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceUndo {
    /// The service's goid.
    pub id: String,
    /// Whether it was enabled before the step.
    pub previous_enabled: bool,
}

/// The `layer7.service` action.
#[derive(Debug, Clone)]
pub struct Layer7Service {
    spec: ActionSpec,
}

impl Layer7Service {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<Layer7ServiceArguments>(
                NAME,
                FAMILY,
                "Enables or disables a published service.",
                Effect::write().idempotent().reversible(),
            )
            .target(TargetKind::Gateway("layer7"))
            .outputs(&["id", "changed", "enabled"]),
        }
    }
}

impl Default for Layer7Service {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Action for Layer7Service {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let service = wanted.find(&gateway.restman).await?;
        Ok(wanted.change(&service))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let client = &gateway.restman;
        let found = wanted.find(client).await?;
        let id = service_id(&found)?;
        // Read it again by id: the version the PUT carries is the one just read.
        let mut service: Service = client.get(&id).await?;
        let change = wanted.change(&service);
        let previous_enabled = service.detail.enabled;
        let changed = previous_enabled != wanted.enabled;
        if changed {
            service.detail.enabled = wanted.enabled;
            put_service(client, &id, &service, &wanted.describe(&service)).await?;
        }
        let undo = serde_json::to_value(ServiceUndo {
            id: id.clone(),
            previous_enabled,
        })
        .map_err(|error| ActionError::failed(format!("{NAME}: undo record: {error}")))?;
        Ok(Applied {
            outputs: outputs(&id, changed, wanted.enabled),
            undo: Some(undo),
            change: Some(change),
            secrets: Vec::new(),
        })
    }

    async fn undo(
        &self,
        context: &StepContext,
        _arguments: Value,
        undo: Value,
    ) -> Result<(), ActionError> {
        let undo: ServiceUndo = crate::arguments::undo_record(NAME, undo)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let client = &gateway.restman;
        let mut service: Service = client.get(&undo.id).await.map_err(|error| {
            if error.is_not_found() {
                ActionError::failed(format!(
                    "{NAME}: cannot restore service {}: it no longer exists on gateway `{}` ({error})",
                    undo.id, gateway.name
                ))
            } else {
                error.into()
            }
        })?;
        if service.detail.enabled == undo.previous_enabled {
            return Ok(());
        }
        service.detail.enabled = undo.previous_enabled;
        let described = format!("service `{}`", service.detail.name);
        put_service(client, &undo.id, &service, &described).await
    }

    async fn probe(&self, context: &StepContext, arguments: Value) -> Result<Probe, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = Layer7Gateway::for_step(context).await?;
        let service = wanted.find(&gateway.restman).await?;
        if service.detail.enabled != wanted.enabled {
            return Ok(Probe::NotDone);
        }
        // Done, but the flag it replaced is not known any more: no undo record.
        let id = service_id(&service)?;
        Ok(Probe::Done(Applied {
            outputs: outputs(&id, false, wanted.enabled),
            undo: None,
            change: Some(wanted.change(&service)),
            secrets: Vec::new(),
        }))
    }
}

/// PUTs `service` (with the version it was read at); a stale version becomes an
/// error saying someone changed it meanwhile.
async fn put_service(
    client: &RestmanClient,
    id: &str,
    service: &Service,
    described: &str,
) -> Result<(), ActionError> {
    match client.put(id, service, &WriteOptions::default()).await {
        Ok(_) => Ok(()),
        Err(error @ Layer7Error::Conflict { .. }) => Err(ActionError::failed(format!(
            "{NAME}: {described} was changed on the gateway by someone else between this step's \
             read and its write, so nothing was changed; re-run the step to apply it to the \
             current state ({error})"
        ))),
        Err(error) => Err(error.into()),
    }
}

/// The goid of a service read from the gateway.
fn service_id(service: &Service) -> Result<String, ActionError> {
    service.id.clone().ok_or_else(|| {
        ActionError::failed(format!(
            "{NAME}: the gateway listed service `{}` without an id",
            service.detail.name
        ))
    })
}

/// The step's outputs.
fn outputs(id: &str, changed: bool, enabled: bool) -> Map<String, Value> {
    let mut outputs = Map::new();
    outputs.insert("id".to_owned(), Value::from(id));
    outputs.insert("changed".to_owned(), Value::from(changed));
    outputs.insert("enabled".to_owned(), Value::from(enabled));
    outputs
}

/// How the service is looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    /// By its resolution path (`l7:HttpMapping/l7:UrlPattern`).
    ResolutionPath(String),
    /// By its name.
    Name(String),
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::ResolutionPath(path) => write!(f, "resolution path `{path}`"),
            Selector::Name(name) => write!(f, "name `{name}`"),
        }
    }
}

/// The checked arguments.
#[derive(Debug, Clone)]
struct Wanted {
    selector: Selector,
    enabled: bool,
}

impl Wanted {
    /// Reads the rendered arguments: exactly one of `resolution_path` and `name`.
    fn parse(arguments: Value) -> Result<Self, ActionError> {
        let arguments: Layer7ServiceArguments = parse(NAME, arguments)?;
        let invalid = |message: &str| ActionError::InvalidArguments {
            action: NAME,
            message: message.to_owned(),
        };
        let selector = match (arguments.resolution_path, arguments.name) {
            (Some(path), None) if !path.trim().is_empty() => Selector::ResolutionPath(path),
            (None, Some(name)) if !name.trim().is_empty() => Selector::Name(name),
            (Some(_), Some(_)) => {
                return Err(invalid("give either `resolution_path` or `name`, not both"));
            }
            (None, None) => return Err(invalid("give `resolution_path` or `name`")),
            _ => {
                return Err(invalid(
                    "the service's `resolution_path` or `name` is empty",
                ));
            }
        };
        Ok(Self {
            selector,
            enabled: arguments.enabled,
        })
    }

    /// The one service the selector names; none or several is an error.
    async fn find(&self, client: &RestmanClient) -> Result<Service, ActionError> {
        let candidates: Vec<Service> = match &self.selector {
            Selector::Name(name) => client.list(&[("name", name.as_str())]).await?,
            // restman has no resolution-path filter: list them all and match here.
            Selector::ResolutionPath(_) => client.list(&[]).await?,
        };
        let mut matching: Vec<Service> = candidates
            .into_iter()
            .filter(|service| self.matches(service))
            .collect();
        match matching.len() {
            1 => Ok(matching.remove(0)),
            0 => Err(ActionError::failed(format!(
                "{NAME}: no service with {} on the gateway ({}/services); check the {} \
                 (resolution paths and names are case-sensitive)",
                self.selector,
                client.base_url(),
                match self.selector {
                    Selector::ResolutionPath(_) => "resolution path",
                    Selector::Name(_) => "name",
                }
            ))),
            count => Err(ActionError::failed(format!(
                "{NAME}: {count} services have {}, the step changes exactly one: {}; \
                 name one by a {} that only it has",
                self.selector,
                matching
                    .iter()
                    .map(describe_candidate)
                    .collect::<Vec<_>>()
                    .join(", "),
                match self.selector {
                    Selector::ResolutionPath(_) => "name",
                    Selector::Name(_) => "resolution path",
                }
            ))),
        }
    }

    /// Whether `service` is the one the selector names.
    fn matches(&self, service: &Service) -> bool {
        match &self.selector {
            Selector::ResolutionPath(path) => service.resolution_path() == Some(path.as_str()),
            Selector::Name(name) => &service.detail.name == name,
        }
    }

    /// `service `orders` (/orders)`.
    fn describe(&self, service: &Service) -> String {
        match service.resolution_path() {
            Some(path) => format!("service `{}` ({path})", service.detail.name),
            None => format!("service `{}`", service.detail.name),
        }
    }

    /// What setting the flag changes on `service`.
    fn change(&self, service: &Service) -> Change {
        let current = service.detail.enabled;
        let described = self.describe(service);
        if current == self.enabled {
            return Change::none(format!("{described}: enabled {}, no change", self.enabled));
        }
        Change::between(
            format!("{described}: enabled {current} -> {}", self.enabled),
            Some(format!("enabled: {current}\n")),
            format!("enabled: {}\n", self.enabled),
        )
    }
}

/// `id 610e… in folder 0000…` for an ambiguity message.
fn describe_candidate(service: &Service) -> String {
    format!(
        "`{}` (id {}, folder {}, resolution path {})",
        service.detail.name,
        service.id.as_deref().unwrap_or("?"),
        service.detail.folder_id.as_deref().unwrap_or("?"),
        service.resolution_path().unwrap_or("none"),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::layer7::restman::xml::from_document;

    fn service(enabled: bool) -> Result<Service, quick_xml::DeError> {
        let mut service: Service =
            from_document(crate::layer7::restman::policy_entities::tests::SERVICE)?;
        service.detail.enabled = enabled;
        Ok(service)
    }

    #[test]
    fn reads_exactly_one_selector() {
        let parsed = Wanted::parse(json!({"resolution_path": "/foo", "enabled": false}));
        assert!(
            matches!(parsed, Ok(Wanted { selector: Selector::ResolutionPath(ref p), enabled: false }) if p == "/foo")
        );
        for bad in [
            json!({"resolution_path": "/foo", "name": "foo", "enabled": true}),
            json!({"enabled": true}),
            json!({"name": " ", "enabled": true}),
        ] {
            let error = Wanted::parse(bad.clone()).err().map(|e| e.to_string());
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.contains("invalid arguments for `layer7.service`")),
                "{bad}: {error:?}"
            );
        }
    }

    #[test]
    fn plans_a_flag_change_or_no_change() -> Result<(), Box<dyn std::error::Error>> {
        let wanted = Wanted::parse(json!({"name": "foo API", "enabled": false}))?;
        let change = wanted.change(&service(true)?);
        assert_eq!(
            change.summary,
            "service `foo API` (/foo): enabled true -> false"
        );
        assert_eq!(change.changes, Some(true));
        assert_eq!(change.before.as_deref(), Some("enabled: true\n"));
        assert_eq!(change.after.as_deref(), Some("enabled: false\n"));
        assert_eq!(
            wanted.change(&service(false)?),
            Change::none("service `foo API` (/foo): enabled false, no change")
        );
        Ok(())
    }

    #[test]
    fn matches_by_exact_path_or_name() -> Result<(), Box<dyn std::error::Error>> {
        let foo = service(true)?;
        let by_path = Wanted::parse(json!({"resolution_path": "/foo", "enabled": true}))?;
        let other_path = Wanted::parse(json!({"resolution_path": "/foo/*", "enabled": true}))?;
        let by_name = Wanted::parse(json!({"name": "foo api", "enabled": true}))?;
        assert!(by_path.matches(&foo));
        assert!(!other_path.matches(&foo));
        assert!(!by_name.matches(&foo));
        Ok(())
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod twin_tests;
