//! Shared helpers of the twin's conformance tests: a twin with a JSON client.
#![allow(dead_code, reason = "each test file uses a different subset")]
#![expect(
    clippy::unwrap_used,
    reason = "a request that cannot be sent or parsed fails the test"
)]

use reqwest::Method;
use runsheet_twin::kong::{KongTwin, TwinConfig};
use serde_json::Value;

/// A twin and a client for it.
pub struct Admin {
    /// Keeps the server alive.
    pub twin: KongTwin,
    /// HTTP client.
    pub http: reqwest::Client,
}

/// Status and parsed body (`Null` when empty).
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Parsed body.
    pub body: Value,
}

impl Admin {
    pub async fn start() -> Self {
        Self::start_with(TwinConfig::with_version("3.4.2")).await
    }

    /// A twin with `config`.
    pub async fn start_with(config: TwinConfig) -> Self {
        let twin = KongTwin::start(config).await.unwrap();
        Self {
            twin,
            http: reqwest::Client::new(),
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.twin.url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::read(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates a service and returns it, asserting 201.
    pub async fn service(&self, body: Value) -> Value {
        let reply = self.post("/services", body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body
    }
}

pub fn id(entity: &Value) -> String {
    entity["id"].as_str().unwrap().to_owned()
}

/// Percent-encodes a query value.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// Creates a consumer called `username`, asserting 201.
pub async fn consumer(admin: &Admin, username: &str) -> Value {
    created(
        admin,
        "/consumers",
        serde_json::json!({"username": username}),
    )
    .await
}

/// Creates `body` at `path`, asserting 201.
pub async fn created(admin: &Admin, path: &str, body: Value) -> Value {
    let reply = admin.post(path, body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

impl Reply {
    /// Reads a response: its status and its JSON body (`Null` when empty).
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        Reply { status, body }
    }
}
