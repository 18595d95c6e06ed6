//! The Kong twin's proxy listener: Kong's data plane for what operators check during a
//! change window (routing, load balancing and health, jwt, oauth2, key-auth, acl,
//! rate-limiting, request-termination; reference §7.1-§7.3, §7.7, §7.8, §8), reading the
//! twin's store at every request, so an Admin API change applies to the next proxied
//! request.
//!
//! The proxy is an axum [`Router`] with a fallback handler ([`KongTwin::proxy_router`]),
//! served over plain HTTP ([`KongTwin::serve_proxy`]) or TLS by SNI
//! ([`KongTwin::serve_proxy_tls`]).

mod balancer;
mod forward;
mod handler;
mod plugins;
mod reply;
mod router;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::tls::TlsSettings;
use super::twin::{KongTwin, Server};
use handler::{ClientAddress, Listener, Proxy};
pub(crate) use plugins::RateCounters;

/// A twin's proxy: the state its listeners share, and their addresses.
#[derive(Debug, Default)]
pub(crate) struct ProxyListeners {
    /// Shared by every proxy listener (round-robin positions, connection pools).
    shared: Option<Arc<Proxy>>,
    /// The plain HTTP listener's address.
    http: Option<SocketAddr>,
    /// The TLS listener's address.
    https: Option<SocketAddr>,
}

impl KongTwin {
    /// Serves the proxy over plain HTTP on `listener` (Kong's `proxy_listen`, 8000 by
    /// default); returns the bound address. The listener stops with the twin.
    pub async fn serve_proxy(&mut self, listener: TcpListener) -> io::Result<SocketAddr> {
        let address = listener.local_addr()?;
        let app = self.proxy_router(false, address);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<ClientAddress>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
        });
        self.extra.push(Server::spawned(address, stop, task));
        self.proxy.http = Some(address);
        Ok(address)
    }

    /// Binds `127.0.0.1:0` and serves the proxy there.
    pub async fn start_proxy(&mut self) -> io::Result<SocketAddr> {
        self.serve_proxy(TcpListener::bind("127.0.0.1:0").await?)
            .await
    }

    /// Serves the proxy over TLS on `listener` (Kong's `proxy_listen ... ssl`, 8443),
    /// presenting the certificate the store's SNIs select, else `fallback`; returns the
    /// bound address. Requests are seen as `https`.
    pub async fn serve_proxy_tls(
        &mut self,
        listener: TcpListener,
        fallback: Option<TlsSettings>,
    ) -> io::Result<SocketAddr> {
        let address = listener.local_addr()?;
        let app = self.proxy_router(true, address);
        let address = self.serve_tls_by_sni(listener, app, fallback).await?;
        self.proxy.https = Some(address);
        Ok(address)
    }

    /// The proxy as an axum router for a listener bound to `address` (`tls` when it
    /// terminates TLS). Every router of a twin shares one balancer and connection pool.
    /// Client addresses (`X-Forwarded-For`) are known when served with
    /// `into_make_service_with_connect_info`, as [`KongTwin::serve_proxy`] does.
    pub fn proxy_router(&mut self, tls: bool, address: SocketAddr) -> Router {
        let state = Arc::clone(&self.state);
        let proxy = Arc::clone(
            self.proxy
                .shared
                .get_or_insert_with(|| Arc::new(Proxy::new(state))),
        );
        Router::new()
            .fallback(handler::handle)
            .with_state(Listener {
                proxy,
                tls,
                address,
            })
    }

    /// The plain HTTP proxy listener's address, once serving.
    pub fn proxy_address(&self) -> Option<SocketAddr> {
        self.proxy.http
    }

    /// `http://<proxy address>`, once the proxy serves.
    pub fn proxy_url(&self) -> Option<String> {
        self.proxy.http.map(|address| format!("http://{address}"))
    }

    /// `https://<TLS proxy address>`, once the TLS proxy serves.
    pub fn proxy_tls_url(&self) -> Option<String> {
        self.proxy.https.map(|address| format!("https://{address}"))
    }
}
