//! What bundles need of each kind beyond [`Resource`]: references rewritten when a mapping
//! lands on another id, lookups for `MapBy`, and secrets sealed under the
//! `L7-key-passphrase` (private keys' `keyData`, stored passwords). Main trait:
//! [`BundleEntity`].

use std::collections::HashMap;

use super::super::resources::Resource;
use super::super::xml::Element;
use crate::layer7::keys::{self, Sealed};
use crate::layer7::store::{
    ClusterProperty, EncapsulatedAssertion, Folder, ListenPort, Policy, PrivateKey, Service, Store,
    StoredPassword, TrustedCertificate,
};

/// A kind that travels in bundles.
pub trait BundleEntity: Resource {
    /// Points references at their mapped targets (`map`: source id → target id).
    fn remap(&mut self, _map: &HashMap<String, String>) {}

    /// The natural key `MapBy` `by` looks up (`name`, `guid`, `path`...) for `value`.
    fn map_key(by: &str, value: &str) -> Option<String> {
        match by {
            "name" => Some(format!("name={value}")),
            _ => None,
        }
    }

    /// The value of the `MapBy` field `by` on this entity (when `MapTo` is absent).
    fn map_value(&self, by: &str, _store: &Store) -> Option<String> {
        (by == "name").then(|| self.name())
    }

    /// Keeps the target's identity (guid) and hidden fields when updating it.
    fn keep_identity(&mut self, target: &Self) {
        self.keep_hidden(target);
    }

    /// The id the entity must be stored at, when its content fixes it (private keys:
    /// `<keystoreId>:<alias>`).
    fn fixed_id(&self) -> Option<String> {
        None
    }

    /// Whether the bundle's entity can replace its target (a key exported without key
    /// data cannot: it would pair the target's key with another certificate).
    fn can_replace(&self) -> bool {
        true
    }

    /// Adds the entity's secrets to its exported element, sealed under `passphrase`.
    fn seal_secrets(&self, _element: &mut Element, _passphrase: Option<&str>) {}

    /// Reads sealed secrets from `element` into the entity.
    fn open_secrets(
        &mut self,
        _element: &Element,
        _passphrase: Option<&str>,
    ) -> Result<(), String> {
        Ok(())
    }
}

/// Rewrites `id` through `map`.
fn remapped(id: &mut String, map: &HashMap<String, String>) {
    if let Some(target) = map.get(id.as_str()) {
        id.clone_from(target);
    }
}

impl BundleEntity for Folder {
    fn remap(&mut self, map: &HashMap<String, String>) {
        if let Some(parent) = &mut self.parent_id {
            remapped(parent, map);
        }
    }

    fn map_key(by: &str, value: &str) -> Option<String> {
        match by {
            "name" => Some(format!("name={value}")),
            _ => None,
        }
    }

    fn map_value(&self, by: &str, _store: &Store) -> Option<String> {
        (by == "name").then(|| self.name.clone())
    }
}

impl BundleEntity for Service {
    fn remap(&mut self, map: &HashMap<String, String>) {
        remapped(&mut self.folder_id, map);
    }

    fn map_key(by: &str, value: &str) -> Option<String> {
        match by {
            "name" => Some(format!("name={value}")),
            "guid" => Some(format!("guid={value}")),
            "routingUri" | "resolutionPath" => Some(format!("path={value}")),
            _ => None,
        }
    }

    fn map_value(&self, by: &str, _store: &Store) -> Option<String> {
        match by {
            "name" => Some(self.name.clone()),
            "guid" => Some(self.guid.clone()),
            "routingUri" | "resolutionPath" => self.resolution_path.clone(),
            _ => None,
        }
    }
}

impl BundleEntity for Policy {
    fn remap(&mut self, map: &HashMap<String, String>) {
        remapped(&mut self.folder_id, map);
    }

    fn map_key(by: &str, value: &str) -> Option<String> {
        match by {
            "name" => Some(format!("name={value}")),
            "guid" => Some(format!("guid={value}")),
            _ => None,
        }
    }

    fn map_value(&self, by: &str, _store: &Store) -> Option<String> {
        match by {
            "name" => Some(self.name.clone()),
            "guid" => Some(self.guid.clone()),
            _ => None,
        }
    }

    fn keep_identity(&mut self, target: &Self) {
        self.guid.clone_from(&target.guid);
    }
}

impl BundleEntity for EncapsulatedAssertion {
    fn remap(&mut self, map: &HashMap<String, String>) {
        remapped(&mut self.policy_id, map);
    }

    fn map_key(by: &str, value: &str) -> Option<String> {
        match by {
            "name" => Some(format!("name={value}")),
            "guid" => Some(format!("guid={value}")),
            _ => None,
        }
    }

    fn map_value(&self, by: &str, _store: &Store) -> Option<String> {
        match by {
            "name" => Some(self.name.clone()),
            "guid" => Some(self.guid.clone()),
            _ => None,
        }
    }

    fn keep_identity(&mut self, target: &Self) {
        self.guid.clone_from(&target.guid);
    }
}

impl BundleEntity for ClusterProperty {}

impl BundleEntity for TrustedCertificate {
    fn map_key(by: &str, value: &str) -> Option<String> {
        match by {
            "name" => Some(format!("name={value}")),
            "thumbprintSha1" => Some(format!("thumbprintSha1={value}")),
            _ => None,
        }
    }

    fn map_value(&self, by: &str, _store: &Store) -> Option<String> {
        match by {
            "name" => Some(self.name.clone()),
            "thumbprintSha1" => Some(self.thumbprint_sha1()),
            _ => None,
        }
    }
}

impl BundleEntity for ListenPort {
    fn remap(&mut self, map: &HashMap<String, String>) {
        if let Some(tls) = &mut self.tls
            && let (Some(keystore), Some(alias)) = (&tls.keystore_id, &tls.key_alias)
            && let Some(target) = map.get(&format!("{keystore}:{alias}"))
            && let Some((keystore, alias)) = target.split_once(':')
        {
            tls.keystore_id = Some(keystore.to_owned());
            tls.key_alias = Some(alias.to_owned());
        }
    }
}

impl BundleEntity for PrivateKey {
    fn fixed_id(&self) -> Option<String> {
        Some(self.id())
    }

    fn can_replace(&self) -> bool {
        !self.key_pem.is_empty()
    }

    fn map_key(by: &str, value: &str) -> Option<String> {
        match by {
            "name" | "alias" => Some(format!("alias={value}")),
            _ => None,
        }
    }

    fn map_value(&self, by: &str, _store: &Store) -> Option<String> {
        matches!(by, "name" | "alias").then(|| self.alias.clone())
    }

    fn seal_secrets(&self, element: &mut Element, passphrase: Option<&str>) {
        let Some(passphrase) = passphrase else {
            return;
        };
        let sealed = keys::seal(&self.key_pem, passphrase);
        let key_data = Element::new("l7:Property").attr("key", "keyData").child(
            Element::text("l7:StringValue", sealed.data)
                .attr("bundleKey", sealed.salt)
                .attr("algorithm", &self.algorithm),
        );
        match element
            .children
            .iter_mut()
            .find(|child| child.local_name() == "Properties")
        {
            Some(properties) => properties.children.push(key_data),
            None => element
                .children
                .push(Element::new("l7:Properties").child(key_data)),
        }
    }

    fn open_secrets(&mut self, element: &Element, passphrase: Option<&str>) -> Result<(), String> {
        let Some(value) = element
            .find("Properties")
            .into_iter()
            .flat_map(|list| list.find_all("Property"))
            .find(|property| property.attribute("key") == Some("keyData"))
            .and_then(|property| property.find("StringValue"))
        else {
            return Ok(());
        };
        let Some(passphrase) = passphrase else {
            return Err(format!(
                "private key '{}' carries keyData: send the L7-key-passphrase it was exported with",
                self.alias
            ));
        };
        let sealed = Sealed {
            data: value.text.clone(),
            salt: value.attribute("bundleKey").unwrap_or_default().to_owned(),
        };
        self.key_pem = keys::open(&sealed, passphrase)
            .map_err(|error| format!("private key '{}': {error}", self.alias))?;
        if let Some(algorithm) = value.attribute("algorithm") {
            self.algorithm = algorithm.to_owned();
        }
        Ok(())
    }
}

impl BundleEntity for StoredPassword {
    fn seal_secrets(&self, element: &mut Element, passphrase: Option<&str>) {
        let Some(passphrase) = passphrase else {
            return;
        };
        let sealed = keys::seal(&self.password, passphrase);
        // l7:Password comes right after l7:Name.
        let at = element
            .children
            .iter()
            .position(|child| child.local_name() == "Name")
            .map_or(0, |index| index + 1);
        element.children.insert(
            at,
            Element::text("l7:Password", sealed.data).attr("bundleKey", sealed.salt),
        );
    }

    fn open_secrets(&mut self, element: &Element, passphrase: Option<&str>) -> Result<(), String> {
        let Some(password) = element.find("Password") else {
            return Ok(());
        };
        let Some(salt) = password.attribute("bundleKey") else {
            // A clear-text password, as restman accepts on create.
            return Ok(());
        };
        let Some(passphrase) = passphrase else {
            return Err(format!(
                "stored password '{}' is encrypted: send the L7-key-passphrase it was exported with",
                self.name
            ));
        };
        let sealed = Sealed {
            data: password.text.clone(),
            salt: salt.to_owned(),
        };
        self.password = keys::open(&sealed, passphrase)
            .map_err(|error| format!("stored password '{}': {error}", self.name))?;
        Ok(())
    }
}
