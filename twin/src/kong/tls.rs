//! TLS listeners: the Admin API over TLS or mTLS (reference §1.2), and a listener that
//! presents the certificate the twin's `/certificates` and `/snis` select for the
//! client's SNI, as Kong's proxy does. Main types: [`TlsSettings`] and the SNI resolver.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::admin::AdminState;
use super::control;
use super::listener;
use super::pki;
use super::store::Store;
use super::twin::{KongTwin, Server};

/// A TLS server identity (certificate chain and key) and, for mTLS, the client CAs.
#[derive(Debug)]
pub struct TlsSettings {
    /// Server certificate chain, leaf first.
    cert_chain: Vec<CertificateDer<'static>>,
    /// Server private key.
    key: PrivateKeyDer<'static>,
    /// CAs client certificates must chain to; `None` lets clients connect without one.
    client_ca: Option<Vec<CertificateDer<'static>>>,
}

impl TlsSettings {
    /// Settings from a PEM certificate chain and a PEM private key, without client auth.
    pub fn from_pem(cert_chain: &str, key: &str) -> io::Result<Self> {
        let cert_chain = pki::certificate_chain(cert_chain).map_err(invalid)?;
        let key = pki::private_key(key).map_err(invalid)?;
        Ok(Self {
            cert_chain,
            key,
            client_ca: None,
        })
    }

    /// Requires clients to present a certificate issued by one of the PEM `client_ca`s.
    pub fn with_client_ca_pem(mut self, client_ca: &str) -> io::Result<Self> {
        self.client_ca = Some(pki::certificate_chain(client_ca).map_err(invalid)?);
        Ok(self)
    }

    /// Settings read from PEM files, with an optional client CA bundle for mTLS.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
        client_ca: Option<&Path>,
    ) -> io::Result<Self> {
        let settings = Self::from_pem(
            &std::fs::read_to_string(cert_chain)?,
            &std::fs::read_to_string(key)?,
        )?;
        match client_ca {
            Some(path) => settings.with_client_ca_pem(&std::fs::read_to_string(path)?),
            None => Ok(settings),
        }
    }

    /// The identity as a rustls key.
    fn certified_key(&self) -> io::Result<Arc<CertifiedKey>> {
        CertifiedKey::from_der(self.cert_chain.clone(), self.key.clone_key(), &provider())
            .map(Arc::new)
            .map_err(|error| invalid(error.to_string()))
    }

    /// A server configuration presenting this identity, verifying clients when asked.
    pub(crate) fn server_config(&self) -> io::Result<ServerConfig> {
        let builder = ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(|error| invalid(error.to_string()))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(cas) => {
                let mut roots = RootCertStore::empty();
                for ca in cas {
                    roots
                        .add(ca.clone())
                        .map_err(|error| invalid(format!("client CA: {error}")))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::new(provider()),
                )
                .build()
                .map_err(|error| invalid(format!("client CA: {error}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(self.cert_chain.clone(), self.key.clone_key())
            .map_err(|error| invalid(error.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl KongTwin {
    /// Serves the Admin API over TLS on `listener` (mTLS when `settings` has a client CA);
    /// returns the bound address. The listener stops with the twin.
    pub async fn serve_admin_tls(
        &mut self,
        listener: TcpListener,
        settings: TlsSettings,
    ) -> io::Result<SocketAddr> {
        let acceptor = TlsAcceptor::from(Arc::new(settings.server_config()?));
        let server = serve_tls(listener, acceptor, control::admin_app(Arc::clone(&self.state)))?;
        let address = server.address;
        self.extra.push(server);
        Ok(address)
    }

    /// Serves `app` over TLS on `listener`, presenting the certificate the twin's
    /// `/certificates` and `/snis` select for the client's SNI at each handshake (so
    /// changes apply at once), else `fallback`; returns the bound address.
    pub async fn serve_tls_by_sni(
        &mut self,
        listener: TcpListener,
        app: Router,
        fallback: Option<TlsSettings>,
    ) -> io::Result<SocketAddr> {
        let fallback = fallback
            .as_ref()
            .map(TlsSettings::certified_key)
            .transpose()?;
        let acceptor = sni_acceptor(Arc::clone(&self.state), fallback)?;
        let server = serve_tls(listener, acceptor, app)?;
        let address = server.address;
        self.extra.push(server);
        Ok(address)
    }
}

/// A TLS acceptor choosing its certificate by SNI from the twin's store, else `fallback`.
pub(crate) fn sni_acceptor(
    state: Arc<AdminState>,
    fallback: Option<Arc<CertifiedKey>>,
) -> io::Result<TlsAcceptor> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| invalid(error.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(StoreCertificates { state, fallback }));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` over HTTP/1.1 inside TLS on `listener` until the returned server is dropped.
pub(crate) fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
) -> io::Result<Server> {
    let address = listener.local_addr()?;
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // Dropping the set (when the server stops) ends every open connection.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        // Answers go out at once (no Nagle wait behind the client's delayed ACK).
                        let _ = stream.set_nodelay(true);
                        connections.spawn(serve_connection(stream, acceptor.clone(), app.clone()));
                    }
                    // Out of descriptors and the like: wait instead of spinning.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
            }
            while connections.try_join_next().is_some() {}
        }
        Ok(())
    });
    Ok(Server::spawned(address, stop, task))
}

/// One connection: the handshake, then HTTP/1.1 until the client closes.
async fn serve_connection(stream: TcpStream, acceptor: TlsAcceptor, app: Router) {
    // A failed handshake has already told the client with a TLS alert.
    let Ok(tls) = acceptor.accept(stream).await else {
        return;
    };
    // Served like the plain Admin API, so that injected faults can drop the connection.
    let (_never_closing, closing) = tokio::sync::watch::channel(0);
    listener::serve_connection(TokioIo::new(tls), app, closing).await;
}

/// Certificates chosen per handshake from the store, as Kong's `find_certificate`.
struct StoreCertificates {
    /// The twin whose `/certificates` and `/snis` are consulted.
    state: Arc<AdminState>,
    /// The certificate for clients that match no SNI (Kong's default certificate).
    fallback: Option<Arc<CertifiedKey>>,
}

impl fmt::Debug for StoreCertificates {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("StoreCertificates")
            .field("fallback", &self.fallback.is_some())
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for StoreCertificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let pairs = hello.server_name().and_then(|name| {
            let store = self.state.store();
            certificate_for(&store, &name.to_ascii_lowercase())
        });
        let Some(pairs) = pairs else {
            return self.fallback.clone();
        };
        let schemes = hello.signature_schemes();
        let usable = pairs
            .iter()
            .filter_map(|(cert, key)| pki::certified_key(cert, key))
            .collect::<Vec<_>>();
        usable
            .iter()
            .find(|key| key.key.choose_scheme(schemes).is_some())
            .or_else(|| usable.first())
            .cloned()
            .or_else(|| self.fallback.clone())
    }
}

/// The PEM pairs (main, then alternative) of the certificate Kong would serve for
/// `server_name`: the exact SNI, then `*.rest`, then `first.*`, then the `*` SNI.
pub(crate) fn certificate_for(store: &Store, server_name: &str) -> Option<Vec<(String, String)>> {
    let certificate = candidate_names(server_name).into_iter().find_map(|name| {
        let id = store
            .find("snis", &name)?
            .get("certificate")?
            .get("id")?
            .as_str()?
            .to_owned();
        store.find("certificates", &id).cloned()
    })?;
    let text = |field: &str| {
        certificate
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut pairs = Vec::new();
    for (cert, key) in [("cert", "key"), ("cert_alt", "key_alt")] {
        if let (Some(cert), Some(key)) = (text(cert), text(key)) {
            pairs.push((cert, key));
        }
    }
    Some(pairs)
}

/// The SNI names Kong looks up for `server_name`, in order.
fn candidate_names(server_name: &str) -> Vec<String> {
    let mut names = vec![server_name.to_owned()];
    if !server_name.contains('*') {
        // `a.example.com` → `*.example.com` (needs two labels after the first).
        if let Some((first, rest)) = server_name.split_once('.')
            && !first.is_empty()
            && rest
                .split_once('.')
                .is_some_and(|(second, tail)| !second.is_empty() && !tail.is_empty())
        {
            names.push(format!("*.{rest}"));
        }
        // `www.example.com` → `www.example.*`.
        if let Some((head, last)) = server_name.rsplit_once('.')
            && !last.is_empty()
            && head
                .rsplit('.')
                .next()
                .is_some_and(|label| !label.is_empty())
        {
            names.push(format!("{head}.*"));
        }
    }
    names.push("*".to_owned());
    names
}

/// The crypto provider of every listener.
pub(crate) fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// An `InvalidInput` I/O error.
fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_follow_kong_exact_then_prefix_then_suffix_then_default() {
        assert_eq!(
            candidate_names("api.example.com"),
            ["api.example.com", "*.example.com", "api.example.*", "*"]
        );
        assert_eq!(
            candidate_names("example.com"),
            ["example.com", "example.*", "*"]
        );
        assert_eq!(candidate_names("localhost"), ["localhost", "*"]);
    }
}
