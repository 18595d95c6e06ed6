//! Sending a request to an upstream peer over pooled HTTP/1.1 connections (hyper-util's
//! legacy client), within the service's connect and read timeouts. Main type: [`Upstreams`].

use std::collections::HashMap;
use std::error::Error as _;
use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The connection could not be made (refused, unreachable, or `connect_timeout`).
    Connect {
        /// The connect timeout expired.
        timed_out: bool,
    },
    /// No response within `read_timeout`.
    Timeout,
    /// The upstream broke the exchange (closed, invalid response).
    Broken,
}

/// Pooled clients, one per connect timeout (the connector holds the timeout).
#[derive(Debug, Default)]
pub(crate) struct Upstreams {
    /// Clients by connect timeout in milliseconds.
    clients: Mutex<HashMap<u64, Client<HttpConnector, Body>>>,
}

impl Upstreams {
    /// Sends `request` (absolute URI), waiting at most `connect` to connect and `read`
    /// for the response head.
    pub(crate) async fn send(
        &self,
        request: Request<Body>,
        connect: Duration,
        read: Duration,
    ) -> Result<Response<Body>, Failure> {
        let client = self.client(connect);
        match tokio::time::timeout(read, client.request(request)).await {
            Err(_) => Err(Failure::Timeout),
            Ok(Ok(response)) => Ok(response.map(Body::new)),
            Ok(Err(error)) if error.is_connect() => Err(Failure::Connect {
                timed_out: timed_out(&error),
            }),
            Ok(Err(_)) => Err(Failure::Broken),
        }
    }

    /// The client connecting within `connect`.
    fn client(&self, connect: Duration) -> Client<HttpConnector, Body> {
        let millis = u64::try_from(connect.as_millis()).unwrap_or(u64::MAX);
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(millis)
            .or_insert_with(|| {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(connect));
                connector.set_nodelay(true);
                Client::builder(TokioExecutor::new()).build(connector)
            })
            .clone()
    }
}

/// Whether a connect error was a timeout.
fn timed_out(error: &hyper_util::client::legacy::Error) -> bool {
    let mut cause = error.source();
    while let Some(current) = cause {
        if current
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = current.source();
    }
    false
}
