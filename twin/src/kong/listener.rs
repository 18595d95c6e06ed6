//! The Admin API's accept loop: one hyper connection per task so that an injected fault can
//! close a connection without answering ([`ConnectionKill`]), and a listener that closes
//! itself while connections are refused (`refuse_connections_s`) and binds again afterwards.

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinSet;

use super::twin::Server;

/// Closes the connection a request arrived on, without an answer (a request extension).
#[derive(Debug, Clone)]
pub(crate) struct ConnectionKill(Arc<Notify>);

impl ConnectionKill {
    /// Closes the connection: the task serving it drops the socket at once.
    pub(crate) fn kill(&self) {
        self.0.notify_one();
    }
}

/// Serves `app` on `listener` until the returned server is dropped; while `refusals` holds a
/// deadline ahead, the listening socket is closed (clients get "connection refused") and
/// open connections close once their in-flight request is answered.
pub(crate) fn serve(
    listener: TcpListener,
    app: Router,
    refusals: watch::Receiver<Option<Instant>>,
) -> io::Result<Server> {
    let address = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(accept_loop(listener, address, app, refusals, stopped));
    Ok(Server::spawned(address, stop, task))
}

/// Accepts connections until `stopped`, closing and re-binding the listener around refusals.
async fn accept_loop(
    listener: TcpListener,
    address: SocketAddr,
    app: Router,
    mut refusals: watch::Receiver<Option<Instant>>,
    mut stopped: oneshot::Receiver<()>,
) -> io::Result<()> {
    let mut listener = Some(listener);
    // Bumped to close every open connection gracefully.
    let (closing, _) = watch::channel(0_u64);
    // Dropping the set (when the server stops) ends every open connection.
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let refuse_until = (*refusals.borrow_and_update()).filter(|until| *until > Instant::now());
        if let Some(until) = refuse_until {
            if listener.take().is_some() {
                closing.send_modify(|generation| *generation += 1);
            }
            tokio::select! {
                _ = &mut stopped => break,
                () = tokio::time::sleep_until(until.into()) => {}
                changed = refusals.changed() => if changed.is_err() { break },
            }
            continue;
        }
        let Some(active) = &listener else {
            // The refusal is over: listen again on the same address.
            match TcpListener::bind(address).await {
                Ok(bound) => listener = Some(bound),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
            continue;
        };
        tokio::select! {
            _ = &mut stopped => break,
            changed = refusals.changed() => if changed.is_err() { break },
            accepted = active.accept() => match accepted {
                Ok((stream, _)) => {
                    // Answers go out at once (no Nagle wait behind the client's delayed ACK).
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(
                        TokioIo::new(stream),
                        app.clone(),
                        closing.subscribe(),
                    ));
                }
                // Out of descriptors and the like: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
    Ok(())
}

/// One connection: HTTP/1.1 until the client closes, a fault kills it, or `closing` changes.
pub(crate) async fn serve_connection<I>(io: I, app: Router, mut closing: watch::Receiver<u64>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let service = Killable {
        inner: TowerToHyperService::new(app),
        kill: ConnectionKill(Arc::clone(&kill)),
    };
    let mut connection = pin!(http1::Builder::new().serve_connection(io, service));
    let mut watching = true;
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            // Returning drops the connection: the socket closes with no answer.
            () = kill.notified() => return,
            changed = closing.changed(), if watching => {
                watching = false;
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The app with a [`ConnectionKill`] for its connection in every request's extensions.
#[derive(Debug, Clone)]
struct Killable {
    /// The app.
    inner: TowerToHyperService<Router>,
    /// Closes this connection.
    kill: ConnectionKill,
}

impl hyper::service::Service<Request<Incoming>> for Killable {
    type Response = Response<Body>;
    type Error = <TowerToHyperService<Router> as hyper::service::Service<Request<Incoming>>>::Error;
    type Future =
        <TowerToHyperService<Router> as hyper::service::Service<Request<Incoming>>>::Future;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.kill.clone());
        self.inner.call(request)
    }
}
