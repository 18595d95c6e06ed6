//! Listen ports in Graphman's shape (reference §2.4) and their TLS key switch
//! (`updateListenPort`).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::StoreResolver;
use super::kind::{GraphmanKind, NameValueInput, parse, properties_from, properties_json, text};
use crate::layer7::graphman::status::{
    DetailedStatus, EntityMutationAction, EntityMutationStatus, EntityOutcome, single_payload,
};
use crate::layer7::graphman::{Context, Field, FieldError};
use crate::layer7::store::{
    ClientAuth, DEFAULT_KEYSTORE_ID, ListenPort, ListenPortTls, PrivateKey, Store, Stored,
};

/// `ListenPortInput` and `ListenPortPartialInput`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListenPortInput {
    /// Name.
    name: Option<String>,
    /// Protocol.
    protocol: Option<String>,
    /// Port.
    port: Option<u16>,
    /// Listening.
    enabled: Option<bool>,
    /// Features.
    enabled_features: Option<Vec<String>>,
    /// TLS settings.
    tls_settings: Option<TlsSettingsInput>,
    /// Other properties.
    properties: Option<Vec<NameValueInput>>,
}

/// `tlsSettings` of a listen port input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlsSettingsInput {
    /// `NONE`, `OPTIONAL` or `REQUIRED`.
    client_authentication: Option<String>,
    /// Keystore of the server key.
    keystore_id: Option<String>,
    /// Alias of the server key.
    key_alias: Option<String>,
    /// TLS versions.
    tls_versions: Option<Vec<String>>,
    /// Cipher suites.
    cipher_suites: Option<Vec<String>>,
    /// Prefer the server's order.
    use_cipher_suites_order: Option<bool>,
}

/// Graphman's spelling of a client-auth setting.
fn client_auth_name(auth: ClientAuth) -> &'static str {
    match auth {
        ClientAuth::None => "NONE",
        ClientAuth::Optional => "OPTIONAL",
        ClientAuth::Required => "REQUIRED",
    }
}

/// `tls` with `input` applied; the key it names must exist.
fn merged_tls(
    store: &Store,
    tls: Option<ListenPortTls>,
    input: TlsSettingsInput,
) -> Result<ListenPortTls, String> {
    let mut tls = tls.unwrap_or(ListenPortTls {
        client_auth: ClientAuth::None,
        keystore_id: None,
        key_alias: None,
        versions: vec!["TLSv1.2".to_owned(), "TLSv1.3".to_owned()],
        cipher_suites: Vec::new(),
        use_cipher_suites_order: true,
    });
    if let Some(auth) = input.client_authentication {
        tls.client_auth = match auth.as_str() {
            "NONE" => ClientAuth::None,
            "OPTIONAL" => ClientAuth::Optional,
            "REQUIRED" => ClientAuth::Required,
            other => {
                return Err(format!(
                    "clientAuthentication {other} is not NONE, OPTIONAL or REQUIRED"
                ));
            }
        };
    }
    if input.keystore_id.is_some() || input.key_alias.is_some() {
        let alias = input
            .key_alias
            .or(tls.key_alias.clone())
            .ok_or("tlsSettings.keyAlias is required with keystoreId")?;
        let keystore = input
            .keystore_id
            .unwrap_or_else(|| DEFAULT_KEYSTORE_ID.to_owned());
        if store
            .get::<PrivateKey>(&format!("{keystore}:{alias}"))
            .is_none()
        {
            return Err(format!(
                "private key {alias} does not exist in keystore {keystore}"
            ));
        }
        tls.keystore_id = Some(keystore);
        tls.key_alias = Some(alias);
    }
    if let Some(versions) = input.tls_versions {
        tls.versions = versions;
    }
    if let Some(suites) = input.cipher_suites {
        tls.cipher_suites = suites;
    }
    if let Some(order) = input.use_cipher_suites_order {
        tls.use_cipher_suites_order = order;
    }
    Ok(tls)
}

impl GraphmanKind for ListenPort {
    const SECTION: &'static str = "listenPorts";
    const TYPE_NAME: &'static str = "ListenPort";

    fn config_json(stored: &Stored<Self>, _store: &Store) -> Map<String, Value> {
        let port = &stored.entity;
        let tls = port.tls.as_ref().map(|tls| {
            json!({
                "clientAuthentication": client_auth_name(tls.client_auth),
                "keystoreId": tls.keystore_id,
                "keyAlias": tls.key_alias,
                "tlsVersions": tls.versions,
                "cipherSuites": tls.cipher_suites,
                "useCipherSuitesOrder": tls.use_cipher_suites_order,
            })
        });
        let value = json!({
            "goid": stored.id,
            "name": port.name,
            "protocol": port.protocol,
            "port": port.port,
            "enabled": port.enabled,
            "hardwiredServiceName": null,
            "enabledFeatures": port.features,
            "tlsSettings": tls,
            "properties": properties_json(&port.properties),
        });
        value.as_object().cloned().unwrap_or_default()
    }

    fn find(store: &Store, input: &Value) -> Option<String> {
        let name = text(input, "name")?;
        store
            .find::<ListenPort>(&format!("name={name}"))
            .first()
            .map(|stored| stored.id.clone())
    }

    fn from_input(
        store: &Store,
        input: &Value,
        existing: Option<&Stored<Self>>,
        _context: &Context<'_>,
    ) -> Result<Self, String> {
        let given: ListenPortInput = parse(input, "listen port")?;
        let old = existing.map(|stored| &stored.entity);
        let protocol = given
            .protocol
            .or_else(|| old.map(|old| old.protocol.clone()))
            .ok_or("protocol is required")?;
        let secure =
            protocol.contains("HTTPS") || protocol.contains("Secure") || protocol == "FTPS";
        let tls = match (given.tls_settings, old.and_then(|old| old.tls.clone())) {
            (Some(input), tls) => Some(merged_tls(store, tls, input)?),
            (None, Some(tls)) => Some(tls),
            (None, None) if secure => Some(merged_tls(
                store,
                None,
                TlsSettingsInput {
                    client_authentication: None,
                    keystore_id: None,
                    key_alias: None,
                    tls_versions: None,
                    cipher_suites: None,
                    use_cipher_suites_order: None,
                },
            )?),
            (None, None) => None,
        };
        Ok(ListenPort {
            name: given
                .name
                .or_else(|| old.map(|old| old.name.clone()))
                .ok_or("name is required")?,
            enabled: given.enabled.or(old.map(|old| old.enabled)).unwrap_or(true),
            protocol,
            port: given
                .port
                .or(old.map(|old| old.port))
                .ok_or("port is required")?,
            features: given
                .enabled_features
                .or_else(|| old.map(|old| old.features.clone()))
                .unwrap_or_default(),
            tls,
            properties: match (&given.properties, old) {
                (Some(list), _) => properties_from(list),
                (None, Some(old)) => old.properties.clone(),
                (None, None) => Default::default(),
            },
        })
    }
}

impl StoreResolver {
    /// `updateListenPort(refInput: {name}, input: ListenPortPartialInput)`: the port with
    /// the input's fields changed (e.g. `tlsSettings {keystoreId keyAlias}`).
    pub(super) fn update_listen_port(
        &mut self,
        field: &Field,
        context: &Context<'_>,
    ) -> Result<Value, FieldError> {
        let reference: Value = field.argument("refInput")?;
        let mut input: Value = field.argument("input")?;
        let action = EntityMutationAction::NewOrUpdate;
        let section = ListenPort::section()?;
        let source = section.identity(&reference);
        let described = section.describe(&reference);
        let Some(id) = ListenPort::find(&self.store, &reference) else {
            let detailed = DetailedStatus::error(action, format!("{described} not found"))
                .with_source_identity(&source);
            return Ok(single_payload(
                "listenPort",
                EntityOutcome::new(detailed, None),
            ));
        };
        if let (Some(object), Some(name)) = (input.as_object_mut(), text(&reference, "name"))
            && !object.contains_key("name")
        {
            object.insert("name".into(), Value::String(name));
        }
        let previous = self.store.get::<ListenPort>(&id).cloned();
        let saved = ListenPort::from_input(&self.store, &input, previous.as_ref(), context)
            .and_then(|port| {
                self.store
                    .save(Some(&id), port, None, &Default::default())
                    .map_err(|error| error.to_string())
            });
        let outcome = match saved {
            Err(error) => EntityOutcome::new(
                DetailedStatus::error(action, format!("{described}: {error}"))
                    .with_source_identity(&source),
                None,
            ),
            Ok(saved) => {
                let status = match saved.change {
                    crate::layer7::store::Change::Unchanged => EntityMutationStatus::UsedExisting,
                    _ => {
                        self.changed = true;
                        EntityMutationStatus::Updated
                    }
                };
                self.outcome::<ListenPort>(
                    DetailedStatus::new(action, status).with_source_identity(&source),
                    &id,
                )
            }
        };
        Ok(single_payload("listenPort", outcome))
    }
}
