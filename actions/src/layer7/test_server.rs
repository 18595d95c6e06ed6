//! A small axum server on loopback for the Layer7 clients' HTTP tests: it
//! answers every request with what the test's handler says and records what
//! it received ([`GatewayStub`]).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use runsheet_engine::StepContext;

use super::connection::{Connection, Credentials};
use super::gateway::Layer7Gateway;
use crate::web::WebClient;

/// Any error in a test.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One request as the stub received it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// Path and query (`/restman/1.0/bundle?test=true`).
    pub uri: String,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Seen {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// An answer: status, content type, body.
pub type Answer = (u16, &'static str, String);

type Handler = Arc<dyn Fn(&Seen) -> Answer + Send + Sync>;

#[derive(Clone)]
struct Stub {
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A gateway stand-in on 127.0.0.1.
pub struct GatewayStub {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GatewayStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GatewayStub {
    /// Starts a stub answering with `handler`.
    pub async fn start(
        handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static,
    ) -> TestResult<Self> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stub = Stub {
            handler: Arc::new(handler),
            seen: Arc::clone(&seen),
        };
        let app = Router::new().fallback(answer).with_state(stub);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, seen, task })
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .map(|seen| seen.clone())
            .unwrap_or_default()
    }

    /// The gateway's clients, as `admin`/`s3cret-pw`, in a run that is (or is not) a dry run.
    pub async fn gateway(&self, dry_run: bool) -> TestResult<Layer7Gateway> {
        let web = WebClient::for_step(&StepContext::detached("step", dry_run), None).await?;
        let credentials = Credentials {
            username: "admin".to_owned(),
            password: "s3cret-pw".to_owned(),
        };
        Ok(Layer7Gateway::connect(
            "l7",
            &self.url,
            &self.url,
            Connection::new(web, Some(credentials)),
        ))
    }
}

async fn answer(
    State(stub): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let seen = Seen {
        method: method.to_string(),
        uri: uri.to_string(),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let (status, content_type, body) = (stub.handler)(&seen);
    if let Ok(mut all) = stub.seen.lock() {
        all.push(seen);
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `Basic base64(admin:s3cret-pw)`.
pub const ADMIN_BASIC: &str = "Basic YWRtaW46czNjcmV0LXB3";

/// An XML answer.
pub fn xml(status: u16, body: &str) -> Answer {
    (status, "application/xml", body.to_owned())
}

/// A JSON answer.
pub fn json(status: u16, body: serde_json::Value) -> Answer {
    (status, "application/json;charset=UTF-8", body.to_string())
}
