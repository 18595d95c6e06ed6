//! The management listener's accept loop, plain or TLS: one connection per task (so that a
//! fault can drop it, [`crate::kong::listener::ConnectionKill`]), and a listening socket
//! that closes while connections are refused (a restart's down phase,
//! `refuse_connections_s`) and binds again afterwards.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::kong::listener::serve_connection;
use crate::kong::twin::Server;

/// Serves `app` on `listener` (over TLS with `tls`) until the returned server is dropped.
pub(crate) fn serve(
    listener: TcpListener,
    app: Router,
    refusals: watch::Receiver<Option<Instant>>,
    tls: Option<TlsAcceptor>,
) -> io::Result<Server> {
    let address = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(accept_loop(listener, address, app, refusals, tls, stopped));
    Ok(Server::spawned(address, stop, task))
}

/// Accepts connections until `stopped`, closing and re-binding around refusals.
async fn accept_loop(
    listener: TcpListener,
    address: SocketAddr,
    app: Router,
    mut refusals: watch::Receiver<Option<Instant>>,
    tls: Option<TlsAcceptor>,
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
                // A node going down drops what it was serving.
                connections.abort_all();
            }
            tokio::select! {
                _ = &mut stopped => break,
                () = tokio::time::sleep_until(until.into()) => {}
                changed = refusals.changed() => if changed.is_err() { break },
            }
            continue;
        }
        let Some(active) = &listener else {
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
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, tls.clone(), app.clone(), closing.subscribe()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
    Ok(())
}

/// One connection: the TLS handshake when asked, then HTTP/1.1.
async fn connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    app: Router,
    closing: watch::Receiver<u64>,
) {
    match tls {
        None => serve_connection(TokioIo::new(stream), app, closing).await,
        Some(acceptor) => {
            // A failed handshake has already told the client with a TLS alert.
            if let Ok(stream) = acceptor.accept(stream).await {
                serve_connection(TokioIo::new(stream), app, closing).await;
            }
        }
    }
}
