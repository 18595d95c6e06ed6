//! Published services: resolving a request to an enabled service by resolution path and
//! verb, and the little of its policy the twin acts out (docs/twin-layer7.md, "Published
//! services"): `L7p:HardcodedResponse` answers, `L7p:HttpRoutingAssertion` forwards over
//! plain HTTP to `L7p:ProtectedServiceUrl`, `L7p:Include` is followed into the fragment;
//! anything else answers 200 with an empty body.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::restman::xml::{self, Element};
use super::store::{Policy, Service, Store};

/// What Layer7 answers when no published service resolves (HTTP 404).
pub const NOT_FOUND: &str = "Service Not Found.  The request may have been sent to an invalid URL, or intended for an unsupported operation.";

/// How deep `L7p:Include` is followed.
const MAX_INCLUDES: usize = 8;

/// How long a routed request may take.
const ROUTING_TIMEOUT: Duration = Duration::from_secs(30);

/// What a service's policy does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer this.
    Respond {
        /// Status.
        status: u16,
        /// Content type.
        content_type: String,
        /// Body.
        body: Vec<u8>,
    },
    /// Forward to this URL.
    Route {
        /// `L7p:ProtectedServiceUrl`.
        url: String,
    },
    /// 200, empty.
    Empty,
}

/// The enabled service that resolves `path` for `method`: an exact resolution path first,
/// then the longest pattern ending in `*` that prefixes the path.
pub fn resolve<'a>(store: &'a Store, method: &Method, path: &str) -> Option<&'a Service> {
    let accepts = |service: &Service| {
        service.enabled
            && service
                .verbs
                .iter()
                .any(|verb| verb.eq_ignore_ascii_case(method.as_str()))
    };
    let exact = store
        .find::<Service>(&format!("path={path}"))
        .into_iter()
        .map(|row| &row.entity)
        .find(|service| accepts(service));
    if exact.is_some() {
        return exact;
    }
    store
        .all::<Service>()
        .iter()
        .map(|row| &row.entity)
        .filter(|service| accepts(service))
        .filter_map(|service| {
            let prefix = service.resolution_path.as_deref()?.strip_suffix('*')?;
            path.starts_with(prefix).then_some((prefix.len(), service))
        })
        .max_by_key(|(length, _)| *length)
        .map(|(_, service)| service)
}

/// What `service`'s active policy does.
pub fn behaviour(store: &Store, service: &Service) -> Behaviour {
    policy_behaviour(store, service.revisions.active_xml(), 0).unwrap_or(Behaviour::Empty)
}

/// The behaviour of a policy XML text (`None`: it does nothing the twin acts out).
fn policy_behaviour(store: &Store, policy: &str, depth: usize) -> Option<Behaviour> {
    let root = xml::parse(policy).ok()?;
    walk(store, &root, depth)
}

/// The first assertion in document order the twin acts out.
fn walk(store: &Store, element: &Element, depth: usize) -> Option<Behaviour> {
    match element.local_name() {
        "HardcodedResponse" => return Some(hardcoded(element)),
        "HttpRoutingAssertion" => {
            if let Some(url) = string_value(element, "ProtectedServiceUrl") {
                return Some(Behaviour::Route { url });
            }
        }
        "Include" if depth < MAX_INCLUDES => {
            if let Some(guid) = string_value(element, "PolicyGuid")
                && let Some(fragment) = store.find::<Policy>(&format!("guid={guid}")).first()
                && let Some(found) =
                    policy_behaviour(store, fragment.entity.revisions.active_xml(), depth + 1)
            {
                return Some(found);
            }
        }
        _ => {}
    }
    element
        .children
        .iter()
        .find_map(|child| walk(store, child, depth))
}

/// The `stringValue` (or text) of child `name`.
fn string_value(element: &Element, name: &str) -> Option<String> {
    let child = element.find(name)?;
    child
        .attribute("stringValue")
        .map(str::to_owned)
        .or_else(|| (!child.text.trim().is_empty()).then(|| child.text.trim().to_owned()))
}

/// A hardcoded response's status, content type and body.
fn hardcoded(element: &Element) -> Behaviour {
    let status = element
        .find("ResponseStatus")
        .and_then(|status| {
            status
                .attribute("intValue")
                .or(status.attribute("stringValue"))
        })
        .and_then(|status| status.trim().parse::<u16>().ok())
        .unwrap_or(200);
    let body = string_value(element, "Base64ResponseBody")
        .and_then(|encoded| STANDARD.decode(encoded.trim()).ok())
        .or_else(|| {
            element
                .find("ResponseBody")
                .map(|body| body.text.clone().into_bytes())
        })
        .unwrap_or_default();
    Behaviour::Respond {
        status,
        content_type: string_value(element, "ResponseContentType")
            .unwrap_or_else(|| "text/xml; charset=UTF-8".to_owned()),
        body,
    }
}

/// The client routing assertions forward with.
pub(crate) fn client() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Answers a published-service request as `behaviour` says.
pub(crate) async fn answer(
    client: &Client<HttpConnector, Body>,
    behaviour: Behaviour,
    method: Method,
    path_and_query: &str,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Response<Body> {
    match behaviour {
        Behaviour::Empty => reply(StatusCode::OK, "text/plain", Vec::new()),
        Behaviour::Respond {
            status,
            content_type,
            body,
        } => reply(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            &content_type,
            body,
        ),
        Behaviour::Route { url } => {
            route(client, &url, method, path_and_query, headers, body).await
        }
    }
}

/// Forwards the request to `url` (`${request.url.path}` and `${request.url.query}`
/// replaced); 503 when the back end cannot be reached.
async fn route(
    client: &Client<HttpConnector, Body>,
    url: &str,
    method: Method,
    path_and_query: &str,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Response<Body> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let target = url
        .replace("${request.url.path}", path)
        .replace("${request.url.query}", query);
    let Ok(mut request) = Request::builder()
        .method(method)
        .uri(&target)
        .body(Body::from(body))
    else {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("invalid routing URL {target}").into_bytes(),
        );
    };
    for (name, value) in &headers {
        if name != header::HOST && name != header::CONTENT_LENGTH && name != header::CONNECTION {
            request.headers_mut().append(name, value.clone());
        }
    }
    match tokio::time::timeout(ROUTING_TIMEOUT, client.request(request)).await {
        Ok(Ok(response)) => response.map(Body::new),
        _ => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("routing to {target} failed").into_bytes(),
        ),
    }
}

/// A response with a body.
fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// The 404 Layer7 answers when no service resolves.
pub(crate) fn not_found() -> Response<Body> {
    reply(
        StatusCode::NOT_FOUND,
        "text/plain",
        NOT_FOUND.as_bytes().to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer7::store::{Properties, ROOT_FOLDER_ID, RevisionOptions, Revisions};

    /// A service at `path` whose policy is `xml`.
    fn service(path: &str, xml: &str) -> Service {
        Service {
            guid: uuid::Uuid::new_v4().to_string(),
            name: path.to_owned(),
            folder_id: ROOT_FOLDER_ID.to_owned(),
            enabled: true,
            resolution_path: Some(path.to_owned()),
            verbs: vec!["GET".to_owned()],
            soap: false,
            internal: false,
            tracing_enabled: false,
            wss_processing_enabled: false,
            properties: Properties::new(),
            revisions: Revisions::new(xml, None),
        }
    }

    #[test]
    fn exact_paths_win_over_the_longest_wildcard() -> Result<(), Box<dyn std::error::Error>> {
        let mut store = Store::empty();
        let options = RevisionOptions::active();
        store.save(None, service("/api/*", "<a/>"), None, &options)?;
        store.save(None, service("/api/orders*", "<b/>"), None, &options)?;
        store.save(None, service("/api/orders", "<c/>"), None, &options)?;
        let hit = |path: &str| resolve(&store, &Method::GET, path).map(|s| s.name.clone());
        assert_eq!(hit("/api/orders").as_deref(), Some("/api/orders"));
        assert_eq!(hit("/api/orders/1").as_deref(), Some("/api/orders*"));
        assert_eq!(hit("/api/x").as_deref(), Some("/api/*"));
        assert_eq!(hit("/other"), None);
        assert!(resolve(&store, &Method::POST, "/api/orders").is_none());
        Ok(())
    }

    #[test]
    fn hardcoded_responses_and_routes_are_read_from_the_policy_and_its_fragments()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut store = Store::empty();
        let hardcoded = r#"<wsp:Policy xmlns:L7p="http://www.layer7tech.com/ws/policy" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy"><wsp:All wsp:Usage="Required"><L7p:HardcodedResponse><L7p:Base64ResponseBody stringValue="aGVsbG8="/><L7p:ResponseContentType stringValue="text/plain"/><L7p:ResponseStatus intValue="201"/></L7p:HardcodedResponse></wsp:All></wsp:Policy>"#;
        let fragment = Policy {
            guid: "f-1".to_owned(),
            name: "fragment".to_owned(),
            folder_id: ROOT_FOLDER_ID.to_owned(),
            policy_type: crate::layer7::store::PolicyType::Include,
            soap: false,
            properties: Properties::new(),
            revisions: Revisions::new(hardcoded, None),
        };
        store.save(None, fragment, None, &RevisionOptions::active())?;
        let including = service(
            "/x",
            r#"<wsp:Policy xmlns:L7p="p" xmlns:wsp="w"><wsp:All><L7p:Include><L7p:PolicyGuid stringValue="f-1"/></L7p:Include></wsp:All></wsp:Policy>"#,
        );
        assert_eq!(
            behaviour(&store, &including),
            Behaviour::Respond {
                status: 201,
                content_type: "text/plain".to_owned(),
                body: b"hello".to_vec()
            }
        );
        let routing = service(
            "/y",
            r#"<wsp:Policy xmlns:L7p="p" xmlns:wsp="w"><wsp:All><L7p:HttpRoutingAssertion><L7p:ProtectedServiceUrl stringValue="http://127.0.0.1:9/echo"/></L7p:HttpRoutingAssertion></wsp:All></wsp:Policy>"#,
        );
        assert_eq!(
            behaviour(&store, &routing),
            Behaviour::Route {
                url: "http://127.0.0.1:9/echo".to_owned()
            }
        );
        assert_eq!(
            behaviour(&store, &service("/z", "<wsp:Policy/>")),
            Behaviour::Empty
        );
        Ok(())
    }
}
