//! runsheet-actions: the action families (core, http, host, kong, layer7).
//!
//! Every action type of the v1 catalogue is registered with its typed argument
//! struct (whose JSON Schema checks `with:`), its effect and its outputs, and runs.

pub mod arguments;
pub mod artefact;
pub mod core;
pub mod host;
pub mod http;
pub mod http_probe;
pub mod jwt_inspect;
pub mod jwt_sign;
pub mod kong;
pub mod layer7;
pub mod served_certificate;
#[cfg(test)]
mod test_support;
pub mod tls_inspect;
pub mod trust;
pub mod web;


use runsheet_engine::{DuplicateAction, Registry};

/// Registers every action family of this build into `registry`.
pub fn register_all(registry: &mut Registry) -> Result<(), DuplicateAction> {
    core::register(registry)?;
    http::register(registry)?;
    registry.register(http_probe::HttpProbe::new())?;
    host::register(registry)?;
    kong::register(registry)?;
    layer7::register(registry)
}

/// A registry holding every action type of this build.
pub fn registry() -> Result<Registry, DuplicateAction> {
    let mut registry = Registry::new();
    register_all(&mut registry)?;
    Ok(registry)
}

#[cfg(test)]
mod tests {
    use runsheet_engine::{EffectKind, TargetKind};
    use serde_json::{Value, json};

    use super::*;

    /// The catalogue of DESIGN.md ("Action catalogue (v1)"): name and effect letters.
    const CATALOGUE: &[(&str, &str)] = &[
        ("log", "R"),
        ("sleep", "R"),
        ("fail", "R"),
        ("assert", "R"),
        ("set", "R"),
        ("approval", "R"),
        ("http", "R/W"),
        ("http.probe", "R"),
        ("tls.inspect", "R"),
        ("jwt.inspect", "R"),
        ("host.exec", "R/W"),
        ("host.file", "W I U"),
        ("host.service", "W I"),
        ("host.package", "W I U"),
        ("host.wait", "R"),
        ("host.facts", "R"),
        ("kong.status", "R"),
        ("kong.entity", "W I U"),
        ("kong.target", "W I U"),
        ("kong.wait_healthy", "R"),
        ("kong.snapshot", "R"),
        ("kong.sync", "W I U"),
        ("kong.diff", "R"),
        ("kong.key_rotate", "W U"),
        ("kong.cert_rotate", "W U"),
        ("kong.certificate_check", "R"),
        ("layer7.ping", "R"),
        ("layer7.export", "R"),
        ("layer7.import", "W U"),
        ("layer7.service", "W I U"),
        ("layer7.cluster_property", "W I U"),
        ("layer7.policy_revision", "W U"),
        ("layer7.key_rotate", "W U"),
        ("layer7.listen_port", "R"),
        ("layer7.trusted_cert", "W I U"),
    ];

    #[test]
    fn registers_exactly_the_catalogue() -> Result<(), DuplicateAction> {
        let registry = registry()?;
        let mut registered: Vec<&str> = registry.iter().map(|action| action.spec().name).collect();
        let mut catalogue: Vec<&str> = CATALOGUE.iter().map(|(name, _)| *name).collect();
        registered.sort_unstable();
        catalogue.sort_unstable();
        assert_eq!(registered, catalogue);
        Ok(())
    }

    #[test]
    fn registering_twice_is_refused() -> Result<(), DuplicateAction> {
        let mut registry = registry()?;
        assert!(register_all(&mut registry).is_err());
        Ok(())
    }

    #[test]
    fn effects_match_the_catalogue_letters() -> Result<(), DuplicateAction> {
        let registry = registry()?;
        for (name, letters) in CATALOGUE {
            let action = registry.get(name);
            let declared = action.map(|action| action.spec().effect.letters());
            assert_eq!(declared.as_deref(), Some(*letters), "{name}");
        }
        Ok(())
    }

    #[test]
    fn conditional_effects_follow_the_arguments() -> Result<(), DuplicateAction> {
        let registry = registry()?;
        let effect_kind = |name: &str, arguments: Value| {
            registry
                .get(name)
                .map(|action| action.effect_for(&arguments).kind)
        };
        let url = "https://api.example/health";
        assert_eq!(
            effect_kind("http", json!({"url": url})),
            Some(EffectKind::Read)
        );
        assert_eq!(
            effect_kind("http", json!({"method": "GET", "url": url})),
            Some(EffectKind::Read)
        );
        assert_eq!(
            effect_kind("http", json!({"method": "POST", "url": url})),
            Some(EffectKind::Write)
        );
        assert_eq!(
            effect_kind("host.exec", json!({"argv": ["uptime"], "read_only": true})),
            Some(EffectKind::Read)
        );
        assert_eq!(
            effect_kind("host.exec", json!({"argv": ["reboot"]})),
            Some(EffectKind::Write)
        );
        assert_eq!(
            effect_kind("kong.target", json!({})),
            Some(EffectKind::Write)
        );
        assert_eq!(effect_kind("log", json!({})), Some(EffectKind::Read));
        Ok(())
    }

    #[test]
    fn targets_follow_the_family() -> Result<(), DuplicateAction> {
        for action in registry()?.iter() {
            let spec = action.spec();
            let expected = match spec.name.split_once('.') {
                Some(("host", _)) => TargetKind::Host,
                Some(("kong", _)) => TargetKind::Gateway("kong"),
                Some(("layer7", _)) => TargetKind::Gateway("layer7"),
                _ => TargetKind::None,
            };
            assert_eq!(spec.target, expected, "{}", spec.name);
        }
        Ok(())
    }

    #[test]
    fn argument_schemas_are_closed_and_described() -> Result<(), DuplicateAction> {
        for action in registry()?.iter() {
            let spec = action.spec();
            let schema = spec.arguments.as_ref();
            assert_eq!(schema.get("type"), Some(&json!("object")), "{}", spec.name);
            assert_closed_and_described(spec.name, schema);
            let definitions = schema.get("$defs").and_then(Value::as_object);
            for (definition, sub_schema) in definitions.into_iter().flatten() {
                if sub_schema.get("properties").is_some() {
                    assert_closed_and_described(&format!("{}#{definition}", spec.name), sub_schema);
                }
            }
        }
        Ok(())
    }

    fn assert_closed_and_described(name: &str, schema: &Value) {
        assert_eq!(
            schema.get("additionalProperties"),
            Some(&json!(false)),
            "{name}: unknown arguments must be refused"
        );
        let properties = schema.get("properties").and_then(Value::as_object);
        for (property, property_schema) in properties.into_iter().flatten() {
            let description = property_schema.get("description").and_then(Value::as_str);
            assert!(
                description.is_some_and(|text| !text.is_empty()),
                "{name}.{property} has no description"
            );
        }
    }

    #[test]
    fn outputs_are_declared_where_the_catalogue_names_them() -> Result<(), DuplicateAction> {
        let registry = registry()?;
        let outputs = |name: &str| registry.get(name).map(|action| action.spec().outputs);
        assert_eq!(
            outputs("http"),
            Some(&["status", "headers", "json", "body", "elapsed_ms"][..])
        );
        assert_eq!(
            outputs("host.exec"),
            Some(&["stdout", "stderr", "exit_code", "elapsed_ms"][..])
        );
        assert_eq!(
            outputs("kong.snapshot"),
            Some(&["path", "sha256", "entities", "counts", "written"][..])
        );
        Ok(())
    }

    #[test]
    fn every_catalogue_action_runs_in_this_build() -> Result<(), DuplicateAction> {
        let registry = registry()?;
        let unavailable: Vec<&str> = registry
            .iter()
            .filter(|action| !action.is_available())
            .map(|action| action.spec().name)
            .collect();
        assert!(unavailable.is_empty(), "not runnable: {unavailable:?}");
        Ok(())
    }
}
