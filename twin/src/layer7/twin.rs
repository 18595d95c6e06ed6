//! [`Layer7Twin`]: one running twin (its state and listeners), for embedding and tests.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::gateway::{Gateway, Layer7Config};
use super::node::{Lifecycle, NodeInfo, Patch, Restart};
use super::restman::{self, Request as RestmanRequest, xml};
use super::server::{self, Front};
use super::store::Store;
use crate::kong::TlsSettings;
use crate::kong::twin::Server;

/// Why a seed bundle or saved state was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    /// The bundle was refused; the message names the mapping and the gateway's reason.
    #[error("{0}")]
    Bundle(String),
    /// The saved state is not readable.
    #[error("{0}")]
    State(String),
}

/// A running Layer7 twin; everything stops when it is dropped.
#[derive(Debug)]
pub struct Layer7Twin {
    /// Shared state.
    pub(crate) gateway: Arc<Gateway>,
    /// The management listener.
    main: Server,
    /// `http` or `https`.
    scheme: &'static str,
    /// Listen ports served, by goid.
    pub(crate) listen_ports: Vec<(String, Server)>,
}

impl Layer7Twin {
    /// Serves a new gateway (seeded defaults) on `listener`, over TLS with `tls`.
    pub async fn serve(
        listener: TcpListener,
        config: Layer7Config,
        tls: Option<TlsSettings>,
    ) -> io::Result<Self> {
        let store = Store::with_defaults().map_err(|error| io::Error::other(error.to_string()))?;
        let gateway = Arc::new(Gateway::new(config, store));
        let acceptor = tls
            .map(|settings| {
                settings
                    .server_config()
                    .map(Arc::new)
                    .map(TlsAcceptor::from)
            })
            .transpose()?;
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let front = Front {
            gateway: Arc::clone(&gateway),
            scheme,
            management: true,
        };
        let main = super::listener::serve(
            listener,
            server::app(front),
            gateway.control.refusals(),
            acceptor,
        )?;
        Ok(Self {
            gateway,
            main,
            scheme,
            listen_ports: Vec::new(),
        })
    }

    /// Binds `127.0.0.1:0` and serves plain HTTP there.
    pub async fn start(config: Layer7Config) -> io::Result<Self> {
        Self::serve(TcpListener::bind("127.0.0.1:0").await?, config, None).await
    }

    /// The management listener's address.
    pub fn address(&self) -> SocketAddr {
        self.main.address
    }

    /// `<scheme>://<address>`: management (`/restman/1.0`), `/ssg/ping` and published
    /// services.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.main.address)
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &Layer7Config {
        &self.gateway.config
    }

    /// Imports a restman bundle document with every mapping turned into `NewOrUpdate`
    /// (a bundle without mappings gets one per reference), or a Graphman JSON bundle
    /// (text starting with `{`) with every entity `NEW_OR_UPDATE`; all or nothing.
    pub fn seed_bundle(&self, text: &str) -> Result<(), SeedError> {
        if text.trim_start().starts_with('{') {
            let bundle: Value = serde_json::from_str(text)
                .map_err(|error| SeedError::Bundle(format!("invalid JSON: {error}")))?;
            let mut store = self.gateway.store();
            return super::resolver::http::seed(&mut store, &self.gateway, &bundle)
                .map_err(SeedError::Bundle);
        }
        let document =
            xml::parse(text).map_err(|error| SeedError::Bundle(format!("invalid XML: {error}")))?;
        let bundle = seeded(document)?;
        let request = RestmanRequest {
            method: Method::PUT,
            path: "/bundle".to_owned(),
            query: Vec::new(),
            body: bundle.to_document().into_bytes(),
            base: format!("{}/restman/1.0", self.url()),
            passphrase: None,
        };
        let reply = restman::handle(&mut self.gateway.store(), &request);
        if reply.status.is_success() {
            return Ok(());
        }
        Err(SeedError::Bundle(failure_of(&reply.body)))
    }

    /// The whole state (entities, node version and patches) as twin-internal JSON.
    pub fn export(&self) -> Value {
        let node = self.gateway.node.info();
        json!({
            "store": self.gateway.store().snapshot(),
            "node": {
                "version": node.product_version.formal_string,
                "patches": node.patches,
            },
        })
    }

    /// Replaces the state with one [`Layer7Twin::export`] made.
    pub fn load(&self, state: &Value) -> Result<(), SeedError> {
        let store = Store::from_snapshot(&state["store"]).map_err(SeedError::State)?;
        let patches: Option<Vec<Patch>> = match state["node"].get("patches") {
            None => None,
            Some(patches) => Some(
                serde_json::from_value(patches.clone())
                    .map_err(|error| SeedError::State(format!("invalid node patches: {error}")))?,
            ),
        };
        let version = state["node"]["version"].as_str().map(str::to_owned);
        *self.gateway.store() = store;
        self.gateway.node.set_versions(version, patches);
        Ok(())
    }

    /// Runs `change` on the store (for embedding code and other APIs over the same store).
    pub fn with_store<R>(&self, change: impl FnOnce(&mut Store) -> R) -> R {
        change(&mut self.gateway.store())
    }

    /// The node: identity, version, patches and lifecycle.
    pub fn node(&self) -> NodeHandle<'_> {
        NodeHandle { twin: self }
    }
}

/// The node of a running twin.
#[derive(Debug, Clone, Copy)]
pub struct NodeHandle<'a> {
    /// The twin.
    twin: &'a Layer7Twin,
}

impl NodeHandle<'_> {
    /// Identity, versions and lifecycle now (Graphman's `nodeInfo`).
    pub fn info(&self) -> NodeInfo {
        self.twin.gateway.node.info()
    }

    /// Where the node is in its lifecycle.
    pub fn lifecycle(&self) -> Lifecycle {
        self.twin.gateway.node.lifecycle()
    }

    /// Restarts it: connections refused, then starting (503), then running.
    pub fn restart(&self, restart: Restart) {
        self.twin.gateway.node.restart(restart);
        self.twin
            .gateway
            .control
            .publish_refusal(&self.twin.gateway.node);
    }

    /// Stops it (connections refused until [`NodeHandle::start`]).
    pub fn stop(&self) {
        self.twin.gateway.node.stop();
        self.twin
            .gateway
            .control
            .publish_refusal(&self.twin.gateway.node);
    }

    /// Starts it again.
    pub fn start(&self) {
        self.twin.gateway.node.start();
        self.twin
            .gateway
            .control
            .publish_refusal(&self.twin.gateway.node);
    }
}

/// The bundle of a seed document with its mappings all `NewOrUpdate`.
fn seeded(document: xml::Element) -> Result<xml::Element, SeedError> {
    let mut bundle = match document.local_name() {
        "Bundle" => document,
        "Item" => document
            .find("Resource")
            .and_then(|resource| resource.find("Bundle"))
            .cloned()
            .ok_or_else(|| SeedError::Bundle("expected an l7:Bundle".to_owned()))?,
        other => {
            return Err(SeedError::Bundle(format!(
                "expected an l7:Bundle, got l7:{other}"
            )));
        }
    };
    if bundle.find("Mappings").is_none() {
        let mappings: Vec<xml::Element> = bundle
            .find("References")
            .into_iter()
            .flat_map(|references| references.find_all("Item"))
            .filter_map(|item| {
                Some(
                    xml::Element::new("l7:Mapping")
                        .attr("action", "NewOrUpdate")
                        .attr("srcId", item.child_text("Id")?)
                        .attr("type", item.child_text("Type")?),
                )
            })
            .collect();
        bundle
            .children
            .push(xml::Element::new("l7:Mappings").children(mappings));
    }
    for list in bundle
        .children
        .iter_mut()
        .filter(|child| child.local_name() == "Mappings")
    {
        for mapping in list
            .children
            .iter_mut()
            .filter(|child| child.local_name() == "Mapping")
        {
            for (name, value) in &mut mapping.attributes {
                if name == "action" {
                    *value = "NewOrUpdate".to_owned();
                }
            }
        }
    }
    Ok(prefixed(bundle))
}

/// An element tree with the `l7:` prefix on every name.
fn prefixed(mut element: xml::Element) -> xml::Element {
    if !element.name.contains(':') {
        element.name = format!("l7:{}", element.name);
    }
    element.children = element.children.into_iter().map(prefixed).collect();
    element
}

/// What a refused import says: the failing mapping and its message, or the error detail.
pub(crate) fn failure_of(body: &str) -> String {
    let Ok(document) = xml::parse(body) else {
        return body.trim().to_owned();
    };
    if let Some(detail) = document.child_text("Detail") {
        return detail.to_owned();
    }
    let failing = document
        .find("Resource")
        .and_then(|resource| resource.find("Mappings"))
        .into_iter()
        .flat_map(|mappings| mappings.find_all("Mapping"))
        .find(|mapping| mapping.attribute("errorType").is_some());
    match failing {
        Some(mapping) => {
            let message = mapping
                .find("Properties")
                .into_iter()
                .flat_map(|properties| properties.find_all("Property"))
                .find(|property| property.attribute("key") == Some("ErrorMessage"))
                .and_then(|property| property.child_text("StringValue"))
                .unwrap_or_default();
            format!(
                "mapping {} {}: {}: {message}",
                mapping.attribute("type").unwrap_or_default(),
                mapping.attribute("srcId").unwrap_or_default(),
                mapping.attribute("errorType").unwrap_or_default(),
            )
        }
        None => body.trim().to_owned(),
    }
}
