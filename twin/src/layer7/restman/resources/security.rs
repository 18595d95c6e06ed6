//! Trusted certificates, private keys and stored passwords as restman shows them: secrets
//! (a key's private half, a password) are written in and never read back.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{
    Parsed, Resource, ResourceError, id_of, properties, properties_element, required, take_bool,
    take_text, version_of,
};
use crate::layer7::keys::{self, KeyRequest};
use crate::layer7::restman::xml::Element;
use crate::layer7::store::{
    DEFAULT_KEYSTORE_ID, PasswordType, PrivateKey, PropertyValue, Store, Stored, StoredPassword,
    TrustFlags, TrustedCertificate,
};

/// The trust flags as restman property names, with accessors.
type FlagField = (
    &'static str,
    fn(&TrustFlags) -> bool,
    fn(&mut TrustFlags, bool),
);

/// Every trust flag.
const TRUST_FLAGS: [FlagField; 8] = [
    (
        "trustedForSsl",
        |f| f.trusted_for_ssl,
        |f, v| f.trusted_for_ssl = v,
    ),
    (
        "trustedForSigningClientCerts",
        |f| f.trusted_for_signing_client_certs,
        |f, v| f.trusted_for_signing_client_certs = v,
    ),
    (
        "trustedForSigningServerCerts",
        |f| f.trusted_for_signing_server_certs,
        |f, v| f.trusted_for_signing_server_certs = v,
    ),
    (
        "trustedAsSamlIssuer",
        |f| f.trusted_as_saml_issuer,
        |f, v| f.trusted_as_saml_issuer = v,
    ),
    (
        "trustedAsSamlAttestingEntity",
        |f| f.trusted_as_saml_attesting_entity,
        |f, v| f.trusted_as_saml_attesting_entity = v,
    ),
    ("trustAnchor", |f| f.trust_anchor, |f, v| f.trust_anchor = v),
    (
        "verifyHostname",
        |f| f.verify_hostname,
        |f, v| f.verify_hostname = v,
    ),
    (
        "revocationCheckingEnabled",
        |f| f.revocation_checking_enabled,
        |f, v| f.revocation_checking_enabled = v,
    ),
];

/// An `l7:CertificateData` of a DER certificate.
fn certificate_data(der: &[u8]) -> Element {
    let facts = keys::facts(der).ok();
    let text = |pick: fn(&keys::CertificateFacts) -> &String| {
        facts.as_ref().map(pick).cloned().unwrap_or_default()
    };
    Element::new("l7:CertificateData")
        .child(Element::text("l7:IssuerName", text(|f| &f.issuer)))
        .child(Element::text("l7:SerialNumber", text(|f| &f.serial)))
        .child(Element::text("l7:SubjectName", text(|f| &f.subject)))
        .child(Element::text("l7:Encoded", STANDARD.encode(der)))
}

/// The DER inside an `l7:CertificateData`, checked to be a certificate.
fn certificate_der(data: &Element) -> Result<Vec<u8>, ResourceError> {
    let encoded = required(data, "Encoded")?;
    let compact: String = encoded.split_whitespace().collect();
    let der = STANDARD
        .decode(compact)
        .map_err(|error| ResourceError(format!("l7:Encoded is not base64: {error}")))?;
    keys::facts(&der).map_err(|error| ResourceError(error.to_string()))?;
    Ok(der)
}

/// An `l7:CertificateChain` of DER certificates.
pub fn key_chain_elements(chain: &[Vec<u8>]) -> Element {
    Element::new("l7:CertificateChain").children(chain.iter().map(|der| certificate_data(der)))
}

impl Resource for TrustedCertificate {
    const ELEMENT: &'static str = "TrustedCertificate";
    const TYPE: &'static str = "TRUSTED_CERT";
    const COLLECTION: &'static str = "trustedCertificates";
    const FILTERS: &'static [(&'static str, &'static str)] =
        &[("thumbprintSha1", "thumbprintSha1")];

    fn to_xml(stored: &Stored<Self>, _store: &Store) -> Element {
        let certificate = &stored.entity;
        Element::new("l7:TrustedCertificate")
            .attr("id", &stored.id)
            .attr("version", stored.version.to_string())
            .child(Element::text("l7:Name", &certificate.name))
            .child(certificate_data(&certificate.der))
            .child_opt(properties_element(TRUST_FLAGS.iter().map(
                |(key, read, _)| (*key, PropertyValue::Boolean(read(&certificate.trust))),
            )))
    }

    fn from_xml(element: &Element, id: Option<&str>) -> Result<Parsed<Self>, ResourceError> {
        let data = element.find("CertificateData").ok_or_else(|| {
            ResourceError("l7:TrustedCertificate is missing l7:CertificateData".to_owned())
        })?;
        let mut properties = properties(element)?;
        let mut trust = TrustFlags::default();
        for (key, _, write) in TRUST_FLAGS {
            write(&mut trust, take_bool(&mut properties, key, false)?);
        }
        Ok(Parsed {
            version: version_of(element)?,
            id: id_of(element, id),
            entity: TrustedCertificate {
                name: required(element, "Name")?.to_owned(),
                der: certificate_der(data)?,
                trust,
            },
        })
    }
}

impl Resource for PrivateKey {
    const ELEMENT: &'static str = "PrivateKey";
    const TYPE: &'static str = "SSG_KEY_ENTRY";
    const COLLECTION: &'static str = "privateKeys";
    const FILTERS: &'static [(&'static str, &'static str)] =
        &[("alias", "alias"), ("keystore.id", "keystore")];

    fn to_xml(stored: &Stored<Self>, _store: &Store) -> Element {
        let key = &stored.entity;
        let mut properties = vec![("keyAlgorithm", PropertyValue::String(key.algorithm.clone()))];
        if !key.special_purposes.is_empty() {
            properties.push((
                "specialPurposes",
                PropertyValue::String(key.special_purposes.join(",")),
            ));
        }
        Element::new("l7:PrivateKey")
            .attr("alias", &key.alias)
            .attr("id", &stored.id)
            .attr("keystoreId", &key.keystore_id)
            .attr("version", stored.version.to_string())
            .child(key_chain_elements(&key.chain))
            .child_opt(properties_element(properties))
    }

    fn from_xml(element: &Element, id: Option<&str>) -> Result<Parsed<Self>, ResourceError> {
        let id = id_of(element, id);
        let (keystore_from_id, alias_from_id) =
            match id.as_deref().and_then(|id| id.split_once(':')) {
                Some((keystore, alias)) => (Some(keystore), Some(alias)),
                None => (None, None),
            };
        let keystore_id = element
            .attribute("keystoreId")
            .or(keystore_from_id)
            .unwrap_or(DEFAULT_KEYSTORE_ID)
            .to_owned();
        let alias = element
            .attribute("alias")
            .or(alias_from_id)
            .ok_or_else(|| ResourceError("l7:PrivateKey has no alias".to_owned()))?
            .to_owned();
        let chain = element
            .find("CertificateChain")
            .into_iter()
            .flat_map(|chain| chain.find_all("CertificateData"))
            .map(certificate_der)
            .collect::<Result<Vec<_>, _>>()?;
        if chain.is_empty() {
            return Err(ResourceError(
                "l7:PrivateKey has no l7:CertificateChain/l7:CertificateData".to_owned(),
            ));
        }
        let mut properties = properties(element)?;
        let algorithm =
            take_text(&mut properties, "keyAlgorithm").unwrap_or_else(|| "EC".to_owned());
        let key = PrivateKey {
            keystore_id,
            alias,
            chain,
            key_pem: String::new(),
            algorithm,
            special_purposes: Vec::new(),
        };
        Ok(Parsed {
            version: version_of(element)?,
            id: Some(key.id()),
            entity: key,
        })
    }

    fn keep_hidden(&mut self, previous: &Self) {
        if self.key_pem.is_empty() {
            self.key_pem.clone_from(&previous.key_pem);
            self.algorithm.clone_from(&previous.algorithm);
        }
        self.special_purposes.clone_from(&previous.special_purposes);
    }

    fn check_new(&self) -> Result<(), ResourceError> {
        if self.key_pem.is_empty() {
            return Err(ResourceError(format!(
                "private key '{}' has no key material: create keys with POST privateKeys/{{keystoreId}}:{{alias}} (l7:PrivateKeyCreationContext) or import them in a bundle with keyData",
                self.alias
            )));
        }
        Ok(())
    }
}

/// What `POST privateKeys/{id}` with an `l7:PrivateKeyCreationContext` asks for.
pub fn key_from_creation_context(element: &Element) -> Result<KeyRequest, ResourceError> {
    if element.local_name() != "PrivateKeyCreationContext" {
        return Err(ResourceError(format!(
            "expected l7:PrivateKeyCreationContext, got l7:{}",
            element.local_name()
        )));
    }
    let mut properties = properties(element)?;
    let days = match take_text(&mut properties, "daysUntilExpiry") {
        None => 5 * 365,
        Some(days) => days.trim().parse::<u32>().map_err(|_| {
            ResourceError(format!(
                "daysUntilExpiry: expected a number of days, got '{days}'"
            ))
        })?,
    };
    Ok(KeyRequest {
        dn: required(element, "Dn")?.to_owned(),
        curve: take_text(&mut properties, "ecName"),
        days,
        ca: take_bool(&mut properties, "caCapable", false)?,
    })
}

/// The restman name of a stored password's type.
fn password_type_name(kind: PasswordType) -> &'static str {
    match kind {
        PasswordType::Password => "Password",
        PasswordType::PemPrivateKey => "PEM Private Key",
    }
}

impl Resource for StoredPassword {
    const ELEMENT: &'static str = "StoredPassword";
    const TYPE: &'static str = "SECURE_PASSWORD";
    const COLLECTION: &'static str = "passwords";

    fn to_xml(stored: &Stored<Self>, _store: &Store) -> Element {
        let password = &stored.entity;
        let mut properties = vec![
            (
                "type",
                PropertyValue::String(password_type_name(password.kind).to_owned()),
            ),
            (
                "usageFromVariable",
                PropertyValue::Boolean(password.usage_from_variable),
            ),
        ];
        if let Some(description) = &password.description {
            properties.push(("description", PropertyValue::String(description.clone())));
        }
        Element::new("l7:StoredPassword")
            .attr("id", &stored.id)
            .attr("version", stored.version.to_string())
            .child(Element::text("l7:Name", &password.name))
            .child_opt(properties_element(properties))
    }

    fn from_xml(element: &Element, id: Option<&str>) -> Result<Parsed<Self>, ResourceError> {
        let mut properties = properties(element)?;
        let kind = match take_text(&mut properties, "type").as_deref() {
            None | Some("Password") => PasswordType::Password,
            Some("PEM Private Key") => PasswordType::PemPrivateKey,
            Some(other) => {
                return Err(ResourceError(format!(
                    "property 'type': expected Password or PEM Private Key, got '{other}'"
                )));
            }
        };
        Ok(Parsed {
            version: version_of(element)?,
            id: id_of(element, id),
            entity: StoredPassword {
                name: required(element, "Name")?.to_owned(),
                password: element
                    .find("Password")
                    .map(|password| password.text.clone())
                    .unwrap_or_default(),
                kind,
                usage_from_variable: take_bool(&mut properties, "usageFromVariable", false)?,
                description: take_text(&mut properties, "description"),
            },
        })
    }

    fn keep_hidden(&mut self, previous: &Self) {
        if self.password.is_empty() {
            self.password.clone_from(&previous.password);
        }
    }

    fn check_new(&self) -> Result<(), ResourceError> {
        if self.password.is_empty() {
            return Err(ResourceError(format!(
                "stored password '{}' needs an l7:Password",
                self.name
            )));
        }
        Ok(())
    }
}
