//! [`RestmanClient`]: a typed async client over `/restman/1.0` (section 1 of
//! reference/layer7-api.md): entity CRUD per collection with the optimistic
//! `version` lock, policy revisions, private-key creation and special
//! purposes, bundle export and import.
//!
//! Every answer that is not a success becomes a [`Layer7Error`] naming the
//! entity: 401/403 unauthorized, 404 not found, 409 (or a 400 that speaks of
//! the version) a conflict, a 409 bundle import the first failing mapping,
//! anything else the gateway's `l7:Error` type and detail.

use reqwest::Url;
use serde::de::DeserializeOwned;

use super::bundle::{
    Bundle, BundleError, ExportQuery, ImportOptions, MappingResult, find_mappings,
};
use super::entities::{PolicyVersion, PrivateKey, PrivateKeyCreationContext};
use super::policy_entities::{Policy, Service};
use super::xml::{
    ErrorBody, List, Reference, RestmanEntity, from_document, root_element, to_document,
};
use crate::layer7::connection::{Connection, content_type, passphrase_header};
use crate::layer7::error::{Layer7Error, snippet};
use crate::web::{Method, WebError, WebRequest, WebResponse};

/// The header carrying the bundle passphrase (base64).
pub const PASSPHRASE_HEADER: &str = "L7-key-passphrase";

/// The XML media type restman speaks.
const XML: &str = "application/xml";

/// Entity ids one export request names at most: 100 ids keep the URL near 5 KB, under
/// the 8 KB request line and headers a default Tomcat (the gateway's container) accepts.
pub const EXPORT_IDS_PER_REQUEST: usize = 100;

/// Options of a service or policy write (`?active=`, `?versionComment=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// `active`: whether a new policy revision is activated (the gateway's default is true).
    pub active: Option<bool>,
    /// `versionComment`: the new policy revision's comment.
    pub version_comment: Option<String>,
}

impl WriteOptions {
    fn parameters(&self) -> Vec<(String, String)> {
        let mut parameters = Vec::new();
        if let Some(active) = self.active {
            parameters.push(("active".to_owned(), active.to_string()));
        }
        if let Some(comment) = &self.version_comment {
            parameters.push(("versionComment".to_owned(), comment.clone()));
        }
        parameters
    }
}

/// An entity type with policy revisions (`/versions`): services and policies.
pub trait Versioned: RestmanEntity {}

impl Versioned for Service {}
impl Versioned for Policy {}

/// A typed client for one gateway's restman.
#[derive(Debug, Clone)]
pub struct RestmanClient {
    connection: Connection,
    base: String,
}

impl RestmanClient {
    /// A client for the gateway at `gateway_url` (`https://gw:8443`); restman is under `/restman/1.0`.
    pub fn new(connection: Connection, gateway_url: &str) -> Self {
        Self {
            connection,
            base: format!("{}/restman/1.0", gateway_url.trim_end_matches('/')),
        }
    }

    /// The restman base URL (`https://gw:8443/restman/1.0`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The entity with this id.
    pub async fn get<E: RestmanEntity>(&self, id: &str) -> Result<E, Layer7Error> {
        let url = self.url(&[E::COLLECTION, id], &[])?;
        let response = self.send(self.request(Method::GET, &url)?).await?;
        let entity = describe::<E>(id);
        let response = expect_success(response, &entity, None)?;
        let item: super::xml::Item<E> = read(&response)?;
        item.into_entity().ok_or_else(|| {
            Layer7Error::malformed(
                &response.request,
                "the l7:Item holds no l7:Resource",
                &response.text(),
            )
        })
    }

    /// The entities matching these filters (`[("name", "orders")]`; none: all), in the gateway's order.
    pub async fn list<E: RestmanEntity>(
        &self,
        filters: &[(&str, &str)],
    ) -> Result<Vec<E>, Layer7Error> {
        let parameters: Vec<(String, String)> = filters
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let url = self.url(&[E::COLLECTION], &parameters)?;
        let response = self.send(self.request(Method::GET, &url)?).await?;
        let response = expect_success(response, E::COLLECTION, None)?;
        let list: List<E> = read(&response)?;
        list.items
            .into_iter()
            .map(|item| {
                item.into_entity().ok_or_else(|| {
                    Layer7Error::malformed(
                        &response.request,
                        "an l7:Item of the list holds no l7:Resource",
                        &response.text(),
                    )
                })
            })
            .collect()
    }

    /// The entity with this name (`?name=`), if there is one.
    pub async fn find_by_name<E: RestmanEntity>(
        &self,
        name: &str,
    ) -> Result<Option<E>, Layer7Error> {
        Ok(self.list::<E>(&[("name", name)]).await?.into_iter().next())
    }

    /// Creates the entity (`POST`); the gateway assigns its id.
    pub async fn create<E: RestmanEntity>(
        &self,
        entity: &E,
        options: &WriteOptions,
    ) -> Result<Reference, Layer7Error> {
        let url = self.url(&[E::COLLECTION], &options.parameters())?;
        let request = self.with_entity(Method::POST, &url, entity)?;
        let response = self.send(request).await?;
        let response = expect_success(response, &describe_entity(entity, None), None)?;
        read(&response)
    }

    /// Creates or updates the entity at `id` (`PUT`). An update must carry the
    /// `version` it read: if the entity changed since, the answer is
    /// [`Layer7Error::Conflict`] saying the version is stale.
    pub async fn put<E: RestmanEntity>(
        &self,
        id: &str,
        entity: &E,
        options: &WriteOptions,
    ) -> Result<Reference, Layer7Error> {
        let url = self.url(&[E::COLLECTION, id], &options.parameters())?;
        let request = self.with_entity(Method::PUT, &url, entity)?;
        let response = self.send(request).await?;
        let response = expect_success(
            response,
            &describe_entity(entity, Some(id)),
            entity.version(),
        )?;
        read(&response)
    }

    /// Deletes the entity at `id`.
    pub async fn delete<E: RestmanEntity>(&self, id: &str) -> Result<(), Layer7Error> {
        let url = self.url(&[E::COLLECTION, id], &[])?;
        let response = self.send(self.request(Method::DELETE, &url)?).await?;
        expect_success(response, &describe::<E>(id), None)?;
        Ok(())
    }

    /// The policy revisions of a service or policy, in the gateway's order.
    pub async fn versions<E: Versioned>(
        &self,
        id: &str,
    ) -> Result<Vec<PolicyVersion>, Layer7Error> {
        let url = self.url(&[E::COLLECTION, id, "versions"], &[])?;
        let response = self.send(self.request(Method::GET, &url)?).await?;
        let response = expect_success(response, &describe::<E>(id), None)?;
        let list: List<PolicyVersion> = read(&response)?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|item| item.into_entity())
            .collect())
    }

    /// Activates revision `ordinal` of a service's or policy's policy (roll back or forward).
    pub async fn activate_version<E: Versioned>(
        &self,
        id: &str,
        ordinal: u64,
    ) -> Result<(), Layer7Error> {
        let ordinal_text = ordinal.to_string();
        let url = self.url(
            &[E::COLLECTION, id, "versions", &ordinal_text, "activate"],
            &[],
        )?;
        let response = self.send(self.request(Method::POST, &url)?).await?;
        let entity = format!("revision {ordinal} of {}", describe::<E>(id));
        expect_success(response, &entity, None)?;
        Ok(())
    }

    /// Has the gateway create a private key with a self-signed certificate under `keystore_id:alias`.
    pub async fn create_private_key(
        &self,
        keystore_id: &str,
        alias: &str,
        context: &PrivateKeyCreationContext,
    ) -> Result<Reference, Layer7Error> {
        let id = PrivateKey::id_of(keystore_id, alias);
        let url = self.url(&[PrivateKey::COLLECTION, &id], &[])?;
        let body = to_document(PrivateKeyCreationContext::ELEMENT, context).map_err(|error| {
            Layer7Error::Web(WebError::Client {
                reason: format!("cannot write the key creation context: {error}"),
            })
        })?;
        let request = self
            .request(Method::POST, &url)?
            .text(body)
            .header("content-type", XML)?;
        let response = self.send(request).await?;
        let response = expect_success(response, &format!("private key `{alias}`"), None)?;
        read(&response)
    }

    /// Marks the key `keystore_id:alias` for these special purposes (`SSL`, `CA`, ...).
    pub async fn set_special_purposes(
        &self,
        keystore_id: &str,
        alias: &str,
        purposes: &[&str],
    ) -> Result<(), Layer7Error> {
        let id = PrivateKey::id_of(keystore_id, alias);
        let parameters: Vec<(String, String)> = purposes
            .iter()
            .map(|purpose| ("purpose".to_owned(), (*purpose).to_owned()))
            .collect();
        let url = self.url(
            &[PrivateKey::COLLECTION, &id, "specialPurpose"],
            &parameters,
        )?;
        let response = self.send(self.request(Method::PUT, &url)?).await?;
        expect_success(response, &format!("private key `{alias}`"), None)?;
        Ok(())
    }

    /// Exports a bundle (`GET /bundle?...`), its `l7:Item` envelope stripped. A query
    /// naming more than [`EXPORT_IDS_PER_REQUEST`] entities is sent in parts whose
    /// bundles are merged, so the URL stays within what gateways accept.
    pub async fn export(&self, query: &ExportQuery) -> Result<Bundle, Layer7Error> {
        let mut parts = query.parts(EXPORT_IDS_PER_REQUEST).into_iter();
        let first = parts.next().unwrap_or_else(|| query.clone());
        let mut bundle = self.export_part(&first).await?;
        for part in parts {
            bundle.merge(self.export_part(&part).await?);
        }
        Ok(bundle)
    }

    /// One `GET /bundle` request.
    async fn export_part(&self, query: &ExportQuery) -> Result<Bundle, Layer7Error> {
        let url = self.url(&["bundle"], &query.parameters())?;
        let mut request = self.request(Method::GET, &url)?;
        if let Some(passphrase) = &query.passphrase {
            request = request.header(PASSPHRASE_HEADER, &passphrase_header(passphrase))?;
        }
        let response = self.send(request).await?;
        let response = expect_success(response, "the bundle export", None)?;
        expect_xml(&response)?;
        Bundle::parse(&response.text()).map_err(|error| malformed_bundle(&response, &error))
    }

    /// Imports a bundle (`PUT /bundle`); `options.test` runs it in the
    /// gateway's test mode, which changes nothing and is sent even in a dry
    /// run. A 409 is [`Layer7Error::BundleFailed`] naming the first failing
    /// mapping; otherwise the answer is every mapping's result, named from the bundle.
    pub async fn import(
        &self,
        bundle: &Bundle,
        options: &ImportOptions,
    ) -> Result<Vec<MappingResult>, Layer7Error> {
        let url = self.url(&["bundle"], &options.parameters())?;
        let body = bundle.to_xml()?;
        let mut request = self
            .request(Method::PUT, &url)?
            .text(body)
            .header("content-type", XML)?;
        if let Some(passphrase) = &options.passphrase {
            request = request.header(PASSPHRASE_HEADER, &passphrase_header(passphrase))?;
        }
        if options.test {
            request = request.changes_nothing();
        }
        let response = self.send(request).await?;
        if response.status == 409 {
            let results = results_of(bundle, &response)?;
            if let Some(failure) = results.iter().find_map(MappingResult::failure) {
                return Err(Layer7Error::BundleFailed {
                    failure: Box::new(failure),
                    results,
                });
            }
        }
        let response = expect_success(response, "the bundle import", None)?;
        results_of(bundle, &response)
    }

    /// A request with the XML accept header and the credentials.
    fn request(&self, method: Method, url: &str) -> Result<WebRequest, Layer7Error> {
        Ok(self
            .connection
            .request(method, url)?
            .header("accept", XML)?)
    }

    /// A request carrying `entity` as its XML body.
    fn with_entity<E: RestmanEntity>(
        &self,
        method: Method,
        url: &str,
        entity: &E,
    ) -> Result<WebRequest, Layer7Error> {
        let body = to_document(E::ELEMENT, entity).map_err(|error| {
            Layer7Error::Web(WebError::Client {
                reason: format!("cannot write the {} as XML: {error}", E::NOUN),
            })
        })?;
        Ok(self
            .request(method, url)?
            .text(body)
            .header("content-type", XML)?)
    }

    async fn send(&self, request: WebRequest) -> Result<WebResponse, Layer7Error> {
        self.connection.send(request).await
    }

    /// `base/segment/...?query`, each segment percent-encoded.
    fn url(&self, segments: &[&str], query: &[(String, String)]) -> Result<String, Layer7Error> {
        let invalid = |reason: String| {
            Layer7Error::Web(WebError::InvalidUrl {
                url: self.base.clone(),
                reason,
            })
        };
        let mut url = Url::parse(&self.base).map_err(|error| invalid(error.to_string()))?;
        url.path_segments_mut()
            .map_err(|()| invalid("cannot hold a path".to_owned()))?
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url.into())
    }
}

/// `service 610e…` (an entity type and id).
fn describe<E: RestmanEntity>(id: &str) -> String {
    format!("{} {id}", E::NOUN)
}

/// `service `foo API`` (or by id when it has no name).
fn describe_entity<E: RestmanEntity>(entity: &E, id: Option<&str>) -> String {
    match (entity.name(), id) {
        (Some(name), _) => format!("{} `{name}`", E::NOUN),
        (None, Some(id)) => describe::<E>(id),
        (None, None) => E::NOUN.to_owned(),
    }
}

/// The response if it is a success; otherwise the error its status and body say.
/// `version` is the version an update carried (for the stale-version message).
fn expect_success(
    response: WebResponse,
    entity: &str,
    version: Option<u64>,
) -> Result<WebResponse, Layer7Error> {
    if (200..300).contains(&response.status) {
        return Ok(response);
    }
    let error = error_body(&response);
    let detail = error.detail.clone();
    let speaks_of_version = detail
        .as_deref()
        .is_some_and(|d| d.to_ascii_lowercase().contains("version"));
    Err(match response.status {
        404 => Layer7Error::NotFound {
            entity: entity.to_owned(),
            request: response.request,
            detail,
        },
        409 | 400 if version.is_some() && (response.status == 409 || speaks_of_version) => {
            Layer7Error::Conflict {
                entity: entity.to_owned(),
                reason: match version {
                    Some(version) if response.status == 400 || speaks_of_version => format!(
                        "version {version} is stale: it changed on the gateway since it was read; read it again and retry"
                    ),
                    _ => {
                        "conflicts with the gateway's state (a stale version or a unique key taken)"
                            .to_owned()
                    }
                },
                request: response.request,
                status: response.status,
                detail,
            }
        }
        409 => Layer7Error::Conflict {
            entity: entity.to_owned(),
            reason: "conflicts with an existing entity (a unique key is taken)".to_owned(),
            request: response.request,
            status: 409,
            detail,
        },
        status => Layer7Error::Rejected {
            request: response.request.clone(),
            status,
            error_type: error.kind,
            detail: detail.unwrap_or_else(|| snippet(&response.text())),
        },
    })
}

/// The `l7:Error` of an answer, or nothing when the body is something else.
fn error_body(response: &WebResponse) -> ErrorBody {
    let text = response.text();
    if root_element(&text).as_deref() == Some("Error") {
        from_document(&text).unwrap_or_default()
    } else {
        ErrorBody::default()
    }
}

/// Fails unless the answer says it is XML (an answer without a content type is read as XML).
fn expect_xml(response: &WebResponse) -> Result<(), Layer7Error> {
    match content_type(response) {
        Some(kind) if !kind.contains("xml") => Err(Layer7Error::malformed(
            &response.request,
            format!("expected {XML}, got `{kind}`"),
            &response.text(),
        )),
        _ => Ok(()),
    }
}

/// The answer's body read as `T`.
fn read<T: DeserializeOwned>(response: &WebResponse) -> Result<T, Layer7Error> {
    expect_xml(response)?;
    let text = response.text();
    from_document(&text).map_err(|error| {
        Layer7Error::malformed(
            &response.request,
            format!("not the expected XML: {error}"),
            &text,
        )
    })
}

/// The per-mapping results of an import answer, named from the bundle.
fn results_of(bundle: &Bundle, response: &WebResponse) -> Result<Vec<MappingResult>, Layer7Error> {
    expect_xml(response)?;
    let mappings =
        find_mappings(&response.text()).map_err(|error| malformed_bundle(response, &error))?;
    Ok(mappings
        .iter()
        .map(|mapping| {
            MappingResult::from_mapping(mapping, bundle.name_of(&mapping.kind, &mapping.src_id))
        })
        .collect())
}

/// A bundle answer that could not be read.
fn malformed_bundle(response: &WebResponse, error: &BundleError) -> Layer7Error {
    Layer7Error::malformed(&response.request, error.reason.clone(), &response.text())
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
