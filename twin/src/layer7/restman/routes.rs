//! Which handler serves a restman path.

use axum::http::{Method, StatusCode};

use super::request::{Failure, Reply, Request};
use super::{bundle, crud, keys, revisions};
use crate::layer7::store::{
    ClusterProperty, EncapsulatedAssertion, Folder, ListenPort, Policy, PrivateKey, Service, Store,
    StoredPassword, TrustedCertificate,
};

/// Serves one restman request against `store`; errors become `l7:Error` replies.
pub fn handle(store: &mut Store, request: &Request) -> Reply {
    route(store, request).unwrap_or_else(|failure| failure.reply(&request.url()))
}

/// Whether a request would change the gateway if it succeeds (a test import does not).
pub fn is_write(method: &Method, path: &str, query: &str) -> bool {
    let test = super::request::parse_query(query)
        .iter()
        .any(|(key, value)| key == "test" && value != "false");
    match *method {
        Method::POST | Method::DELETE => true,
        Method::PUT => !(path.trim_end_matches('/').ends_with("/bundle") && test),
        _ => false,
    }
}

/// Dispatches on the path.
fn route(store: &mut Store, request: &Request) -> Result<Reply, Failure> {
    let segments = request.segments();
    match segments.as_slice() {
        [] | ["doc", ..] => Ok(documentation(request)),
        ["bundle", rest @ ..] => bundle::serve(store, request, rest),
        ["folders", id] if request.method == Method::DELETE => {
            crud::found::<Folder>(store, id)?;
            let force = request.flag("force", false)?;
            store.delete_folder(id, force)?;
            Ok(Reply::no_content().changed(true))
        }
        ["folders", rest @ ..] => crud::serve::<Folder>(store, request, rest),
        ["services", id, "versions", rest @ ..] => {
            revisions::serve::<Service>(store, request, id, rest)
        }
        ["services", rest @ ..] => crud::serve::<Service>(store, request, rest),
        ["policies", id, "versions", rest @ ..] => {
            revisions::serve::<Policy>(store, request, id, rest)
        }
        ["policies", rest @ ..] => crud::serve::<Policy>(store, request, rest),
        ["encapsulatedAssertions", rest @ ..] => {
            crud::serve::<EncapsulatedAssertion>(store, request, rest)
        }
        ["clusterProperties", rest @ ..] => crud::serve::<ClusterProperty>(store, request, rest),
        ["trustedCertificates", rest @ ..] => {
            crud::serve::<TrustedCertificate>(store, request, rest)
        }
        ["privateKeys", id] if request.method == Method::POST => keys::create(store, request, id),
        ["privateKeys", id, "specialPurpose"] if request.method == Method::PUT => {
            keys::special_purpose(store, request, id)
        }
        ["privateKeys", rest @ ..] => crud::serve::<PrivateKey>(store, request, rest),
        ["listenPorts", rest @ ..] => crud::serve::<ListenPort>(store, request, rest),
        ["passwords", rest @ ..] => crud::serve::<StoredPassword>(store, request, rest),
        _ => Err(Failure::not_found(format!(
            "no resource at {} (the twin serves folders, services, policies, encapsulatedAssertions, clusterProperties, trustedCertificates, privateKeys, listenPorts, passwords and bundle)",
            request.path
        ))),
    }
}

/// `GET /restman/1.0/doc/...`: a small page (deployments poll it to see restman is up).
fn documentation(request: &Request) -> Reply {
    Reply {
        status: StatusCode::OK,
        body: format!(
            "<html><head><title>Gateway REST Management API</title></head><body><h1>Gateway REST Management API</h1><p>Layer7 twin: {}</p></body></html>\n",
            request.base
        ),
        changed: false,
        content_type: "text/html;charset=UTF-8",
    }
}
