//! TLS: the management listener over TLS or mTLS, and the HTTPS listen ports served on
//! loopback with the certificate of the key each listen port names, resolved at every
//! handshake (so switching a listen port's key takes effect on the next connection).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::gateway::Gateway;
use super::server::{self, Front};
use super::store::{ListenPort, PrivateKey, RevisionOptions, Store};
use super::twin::Layer7Twin;
use crate::kong::tls::provider;

/// The feature that puts management on a listen port.
const ADMINISTRATIVE_ACCESS: &str = "Administrative access";

/// A listen port served by the twin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedPort {
    /// The listen port's goid.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Where it listens.
    pub address: SocketAddr,
}

impl Layer7Twin {
    /// Serves every enabled HTTPS listen port not served yet on its own loopback TLS
    /// listener, and records the bound port in the entity's `port` (a real gateway binds
    /// the configured port; the twin cannot). Answers the ports served by this call.
    pub async fn serve_listen_ports(&mut self) -> io::Result<Vec<ServedPort>> {
        let wanted: Vec<(String, String, bool)> = {
            let store = self.gateway.store();
            store
                .all::<ListenPort>()
                .iter()
                .filter(|row| {
                    row.entity.enabled
                        && row.entity.protocol.eq_ignore_ascii_case("HTTPS")
                        && !self.listen_ports.iter().any(|(id, _)| *id == row.id)
                })
                .map(|row| {
                    (
                        row.id.clone(),
                        row.entity.name.clone(),
                        row.entity
                            .features
                            .iter()
                            .any(|feature| feature == ADMINISTRATIVE_ACCESS),
                    )
                })
                .collect()
        };
        let mut served = Vec::new();
        for (id, name, management) in wanted {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let address = listener.local_addr()?;
            let acceptor = port_acceptor(Arc::clone(&self.gateway), id.clone())?;
            let front = Front {
                gateway: Arc::clone(&self.gateway),
                scheme: "https",
                management,
            };
            let server = super::listener::serve(
                listener,
                server::app(front),
                self.gateway.control.refusals(),
                Some(acceptor),
            )?;
            record_port(&mut self.gateway.store(), &id, address.port());
            self.listen_ports.push((id.clone(), server));
            served.push(ServedPort { id, name, address });
        }
        Ok(served)
    }
}

/// Writes the bound port into listen port `id`.
fn record_port(store: &mut Store, id: &str, port: u16) {
    if let Some(row) = store.get::<ListenPort>(id) {
        let mut entity = row.entity.clone();
        entity.port = port;
        // A clash with another entity's port number keeps the configured one.
        let _ = store.save(Some(id), entity, None, &RevisionOptions::active());
    }
}

/// A TLS acceptor for listen port `id`, its certificate resolved per handshake.
fn port_acceptor(gateway: Arc<Gateway>, id: String) -> io::Result<TlsAcceptor> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(PortCertificate { gateway, id }));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The certificate of the key a listen port names, looked up at each handshake.
struct PortCertificate {
    /// The twin.
    gateway: Arc<Gateway>,
    /// The listen port's goid.
    id: String,
}

impl fmt::Debug for PortCertificate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PortCertificate")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for PortCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let store = self.gateway.store();
        let key = port_key(&store, &self.id)?;
        certified(key)
    }
}

/// The private key listen port `id` presents: the one its TLS settings name, else the
/// default SSL key. `None` when the port is gone, disabled or names a missing key.
pub fn port_key<'a>(store: &'a Store, id: &str) -> Option<&'a PrivateKey> {
    let port = &store.get::<ListenPort>(id)?.entity;
    if !port.enabled {
        return None;
    }
    match port
        .tls
        .as_ref()
        .and_then(|tls| Some((tls.keystore_id.as_ref()?, tls.key_alias.as_ref()?)))
    {
        Some((keystore, alias)) => store
            .get::<PrivateKey>(&format!("{keystore}:{alias}"))
            .map(|row| &row.entity),
        None => store.key_for_purpose("SSL").map(|row| &row.entity),
    }
}

/// A key as rustls presents it.
fn certified(key: &PrivateKey) -> Option<Arc<CertifiedKey>> {
    let chain: Vec<CertificateDer<'static>> = key
        .chain
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    let private = PrivateKeyDer::from_pem_slice(key.key_pem.as_bytes()).ok()?;
    let signing = any_supported_type(&private).ok()?;
    Some(Arc::new(CertifiedKey::new(chain, signing)))
}
