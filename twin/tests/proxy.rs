//! The Kong twin's proxy listener over real HTTP: routing, path joining, balancing,
//! health and failures against loopback echo servers started by each test.
//!
//! Expected bodies come from the reference (`shared/reference/kong-admin-api.md` §7.1-§7.3,
//! §7.7, §7.8, §8) and Kong's runloop (`kong/runloop/handler.lua`, `kong/error_handlers.lua`).
#![expect(
    clippy::unwrap_used,
    reason = "a request that cannot be sent or parsed fails the test"
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use runsheet_twin::kong::TwinConfig;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

mod pki;
mod support;
use pki::Authority;
use support::{Admin, id};

/// A loopback HTTP server answering every request with its name and what it received.
struct Echo {
    /// The server's name, echoed as `name`.
    name: &'static str,
    /// Bound address.
    address: SocketAddr,
    /// Requests received.
    hits: Arc<AtomicUsize>,
    /// The server task, aborted on drop.
    task: JoinHandle<()>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Echo {
    /// `127.0.0.1:<port>`, as a target.
    fn target(&self) -> String {
        self.address.to_string()
    }

    /// `http://127.0.0.1:<port>`, as a service url.
    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Requests received so far.
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Starts an echo server named `name` that waits `delay` before answering.
async fn echo_after(name: &'static str, delay: Duration) -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let headers: HashMap<String, String> = headers
                    .iter()
                    .map(|(name, value)| {
                        (
                            name.as_str().to_owned(),
                            value.to_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                axum::Json(json!({
                    "name": name,
                    "method": method.as_str(),
                    "path": uri.path(),
                    "query": uri.query(),
                    "headers": headers,
                    "body": String::from_utf8_lossy(&body),
                }))
            }
        },
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Echo {
        name,
        address,
        hits,
        task,
    }
}

/// Starts an echo server named `name`.
async fn echo(name: &'static str) -> Echo {
    echo_after(name, Duration::ZERO).await
}

/// An address where nothing listens.
async fn closed_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A twin of `version` with its proxy started, and a client for both.
struct Gateway {
    /// The Admin API client (and the twin).
    admin: Admin,
    /// `http://<proxy address>`.
    proxy: String,
    /// A client that follows no redirects and uses no proxy.
    http: reqwest::Client,
}

/// A proxied response.
struct Proxied {
    /// Status.
    status: u16,
    /// Headers.
    headers: reqwest::header::HeaderMap,
    /// Parsed JSON body (`Null` when empty or not JSON).
    body: Value,
}

impl Proxied {
    /// A response header as text.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

impl Gateway {
    async fn start(version: &str) -> Self {
        let mut admin = Admin::start_with(TwinConfig::with_version(version)).await;
        admin.twin.start_proxy().await.unwrap();
        let proxy = admin.twin.proxy_url().unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        Self { admin, proxy, http }
    }

    /// Sends `method path` through the proxy with `headers`.
    async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Proxied {
        let mut request = self.http.request(method, format!("{}{path}", self.proxy));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Proxied {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Proxied {
        self.send(Method::GET, path, &[]).await
    }

    /// Creates `body` at `path` on the Admin API, asserting 201.
    async fn create(&self, path: &str, body: Value) -> Value {
        let reply = self.admin.post(path, body).await;
        assert_eq!(reply.status, 201, "{path}: {}", reply.body);
        reply.body
    }

    /// Counts which echo server answered `count` GETs of `path`.
    async fn tally(&self, path: &str, count: usize) -> HashMap<String, usize> {
        let mut seen = HashMap::new();
        for _ in 0..count {
            let reply = self.get(path).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let name = reply.body["name"].as_str().unwrap().to_owned();
            *seen.entry(name).or_insert(0) += 1;
        }
        seen
    }
}

/// Kong's error body, with the request id the response carries (3.5+).
fn kong_error(reply: &Proxied, message: &str) -> Value {
    json!({"message": message, "request_id": reply.header("x-kong-request-id").unwrap()})
}

#[tokio::test]
async fn routes_by_path_host_and_method_to_services_host_and_port() {
    let gateway = Gateway::start("3.9.3").await;
    let (alpha, beta, gamma) = (echo("alpha").await, echo("beta").await, echo("gamma").await);
    for (name, server) in [("alpha", &alpha), ("beta", &beta), ("gamma", &gamma)] {
        gateway
            .create("/services", json!({"name": name, "url": server.url()}))
            .await;
    }
    gateway
        .create("/services/alpha/routes", json!({"paths": ["/alpha"]}))
        .await;
    gateway
        .create(
            "/services/beta/routes",
            json!({"hosts": ["api.example.com"]}),
        )
        .await;
    gateway
        .create(
            "/services/gamma/routes",
            json!({"paths": ["/alpha"], "methods": ["POST"]}),
        )
        .await;

    let by_path = gateway.get("/alpha/x").await;
    assert_eq!(
        (by_path.status, &by_path.body["name"]),
        (200, &json!("alpha"))
    );
    let by_host = gateway
        .send(
            Method::GET,
            "/anything",
            &[("host", "API.example.com:8000")],
        )
        .await;
    assert_eq!(by_host.body["name"], "beta");
    // Methods add to the route's priority: the POST route wins over the bare path.
    let by_method = gateway.send(Method::POST, "/alpha/x", &[]).await;
    assert_eq!(by_method.body["name"], "gamma");
    assert_eq!(by_method.body["method"], "POST");

    let missing = gateway.get("/nowhere").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body,
        kong_error(&missing, "no Route matched with those values")
    );
    assert_eq!(missing.header("server"), Some("kong/3.9.3"));
    assert!(missing.header("x-kong-response-latency").is_some());
    assert_eq!(
        missing.header("x-kong-request-id").map(str::len),
        Some(32),
        "a 32-hex-digit request id"
    );
    let wrong_host = gateway
        .send(Method::GET, "/anything", &[("host", "web.example.com")])
        .await;
    assert_eq!(wrong_host.status, 404);
}

#[tokio::test]
async fn strip_path_preserve_host_and_the_service_path_shape_the_upstream_request() {
    let gateway = Gateway::start("3.9.3").await;
    let server = echo("backend").await;
    let url = format!("{}/v2", server.url());
    gateway
        .create("/services", json!({"name": "api", "url": url}))
        .await;
    gateway
        .create(
            "/services/api/routes",
            json!({"name": "stripped", "paths": ["/api"]}),
        )
        .await;
    gateway
        .create(
            "/services/api/routes",
            json!({"name": "kept", "paths": ["/keep"], "strip_path": false, "preserve_host": true}),
        )
        .await;

    let stripped = gateway
        .send(
            Method::GET,
            "/api/users?page=2&sort=name",
            &[("host", "api.example.com"), ("x-forwarded-for", "10.1.1.1")],
        )
        .await;
    assert_eq!(stripped.status, 200);
    let seen = &stripped.body;
    assert_eq!(seen["path"], "/v2/users");
    assert_eq!(seen["query"], "page=2&sort=name");
    let headers = &seen["headers"];
    assert_eq!(
        headers["host"],
        format!("127.0.0.1:{}", server.address.port())
    );
    assert_eq!(headers["x-forwarded-prefix"], "/api");
    assert_eq!(headers["x-forwarded-path"], "/api/users");
    assert_eq!(headers["x-forwarded-host"], "api.example.com");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-for"], "10.1.1.1, 127.0.0.1");
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(headers["via"], "1.1 kong/3.9.3");
    assert_eq!(
        headers["x-kong-request-id"].as_str(),
        stripped.header("x-kong-request-id")
    );
    assert_eq!(stripped.header("via"), Some("1.1 kong/3.9.3"));
    assert!(stripped.header("x-kong-upstream-latency").is_some());
    assert!(stripped.header("x-kong-proxy-latency").is_some());

    let bare = gateway.get("/api").await;
    assert_eq!(bare.body["path"], "/v2");
    let kept = gateway
        .send(Method::GET, "/keep/users", &[("host", "api.example.com")])
        .await;
    assert_eq!(kept.body["path"], "/v2/keep/users");
    assert_eq!(kept.body["headers"]["host"], "api.example.com");
    assert_eq!(kept.body["headers"]["x-forwarded-prefix"], Value::Null);
}

#[tokio::test]
async fn admin_changes_apply_to_the_next_proxied_request() {
    let gateway = Gateway::start("3.9.3").await;
    let (old, new) = (echo("old").await, echo("new").await);
    gateway
        .create("/services", json!({"name": "svc", "url": old.url()}))
        .await;
    gateway
        .create(
            "/services/svc/routes",
            json!({"name": "r", "paths": ["/v1"]}),
        )
        .await;
    assert_eq!(gateway.get("/v1").await.body["name"], "old");

    let moved = gateway
        .admin
        .patch("/routes/r", json!({"paths": ["/v2"]}))
        .await;
    assert_eq!(moved.status, 200);
    assert_eq!(gateway.get("/v1").await.status, 404);
    let repointed = gateway
        .admin
        .patch("/services/svc", json!({"port": new.address.port()}))
        .await;
    assert_eq!(repointed.status, 200);
    assert_eq!(gateway.get("/v2").await.body["name"], "new");

    let disabled = gateway
        .admin
        .patch("/services/svc", json!({"enabled": false}))
        .await;
    assert_eq!(disabled.status, 200);
    assert_eq!(gateway.get("/v2").await.status, 404);
}

/// An upstream named `name` behind service and route `/lb`, with the given targets.
async fn balanced(gateway: &Gateway, upstream: Value, targets: &[(&Echo, u32)]) -> String {
    let upstream = gateway.create("/upstreams", upstream).await;
    let name = upstream["name"].as_str().unwrap().to_owned();
    for (server, weight) in targets {
        gateway
            .create(
                &format!("/upstreams/{name}/targets"),
                json!({"target": server.target(), "weight": weight}),
            )
            .await;
    }
    gateway
        .create("/services", json!({"name": "lb", "host": name}))
        .await;
    gateway
        .create("/services/lb/routes", json!({"paths": ["/lb"]}))
        .await;
    name
}

#[tokio::test]
async fn weights_split_traffic_three_to_one() {
    let gateway = Gateway::start("3.9.3").await;
    let (heavy, light) = (echo("heavy").await, echo("light").await);
    balanced(
        &gateway,
        json!({"name": "backend"}),
        &[(&heavy, 300), (&light, 100)],
    )
    .await;
    let seen = gateway.tally("/lb", 400).await;
    let heavy_share = seen.get("heavy").copied().unwrap_or_default();
    let light_share = seen.get("light").copied().unwrap_or_default();
    assert_eq!(heavy_share + light_share, 400);
    assert!(
        (270..=330).contains(&heavy_share),
        "heavy got {heavy_share} of 400"
    );
    assert!(
        (70..=130).contains(&light_share),
        "light got {light_share} of 400"
    );
    assert_eq!((heavy.hits(), light.hits()), (heavy_share, light_share));
    // The upstream's own Host: the target's address.
    let reply = gateway.get("/lb").await;
    let name = reply.body["name"].as_str().unwrap();
    let answered = if name == heavy.name { &heavy } else { &light };
    assert_eq!(reply.body["headers"]["host"], answered.target());
}

#[tokio::test]
async fn a_drained_target_receives_no_request_at_all() {
    let gateway = Gateway::start("3.9.3").await;
    let (stay, drain) = (echo("stay").await, echo("drain").await);
    let upstream = balanced(
        &gateway,
        json!({"name": "backend"}),
        &[(&stay, 100), (&drain, 100)],
    )
    .await;
    let before = gateway.tally("/lb", 20).await;
    assert_eq!(before.get("drain"), Some(&10));

    let drained = gateway
        .admin
        .patch(
            &format!("/upstreams/{upstream}/targets/{}", drain.target()),
            json!({"weight": 0}),
        )
        .await;
    assert_eq!(drained.status, 200, "{}", drained.body);
    let hits_before = drain.hits();
    let after = gateway.tally("/lb", 200).await;
    assert_eq!(after.get("stay"), Some(&200));
    assert_eq!(drain.hits(), hits_before, "the drained target got traffic");

    let restored = gateway
        .admin
        .patch(
            &format!("/upstreams/{upstream}/targets/{}", drain.target()),
            json!({"weight": 100}),
        )
        .await;
    assert_eq!(restored.status, 200);
    let back = gateway.tally("/lb", 20).await;
    assert!(back.get("drain").is_some_and(|hits| *hits > 0));
}

#[tokio::test]
async fn forced_unhealthy_targets_are_skipped_when_health_checks_are_on() {
    let gateway = Gateway::start("3.9.3").await;
    let (good, bad) = (echo("good").await, echo("bad").await);
    let checks_on = json!({
        "name": "checked",
        "healthchecks": {"passive": {"unhealthy": {"tcp_failures": 3}}},
    });
    let upstream = balanced(&gateway, checks_on, &[(&good, 100), (&bad, 100)]).await;
    let path = format!("/upstreams/{upstream}/targets/{}/unhealthy", bad.target());
    assert_eq!(gateway.admin.put(&path, json!({})).await.status, 204);
    let seen = gateway.tally("/lb", 50).await;
    assert_eq!(seen.get("good"), Some(&50));
    assert_eq!(bad.hits(), 0);

    let path = format!("/upstreams/{upstream}/targets/{}/healthy", bad.target());
    assert_eq!(gateway.admin.put(&path, json!({})).await.status, 204);
    let seen = gateway.tally("/lb", 20).await;
    assert_eq!(seen.get("bad"), Some(&10));
}

#[tokio::test]
async fn forced_health_has_no_effect_without_health_checks() {
    let gateway = Gateway::start("3.9.3").await;
    let (first, second) = (echo("first").await, echo("second").await);
    let upstream = balanced(
        &gateway,
        json!({"name": "unchecked"}),
        &[(&first, 100), (&second, 100)],
    )
    .await;
    let path = format!(
        "/upstreams/{upstream}/targets/{}/unhealthy",
        second.target()
    );
    assert_eq!(gateway.admin.put(&path, json!({})).await.status, 204);
    let seen = gateway.tally("/lb", 20).await;
    assert_eq!(seen.get("second"), Some(&10));
}

#[tokio::test]
async fn no_live_target_answers_503_from_the_ring_balancer() {
    let gateway = Gateway::start("3.9.3").await;
    let (first, second) = (echo("first").await, echo("second").await);
    let upstream = balanced(
        &gateway,
        json!({"name": "backend"}),
        &[(&first, 0), (&second, 0)],
    )
    .await;
    let reply = gateway.get("/lb").await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.body,
        kong_error(&reply, "failure to get a peer from the ring-balancer")
    );
    assert_eq!(first.hits() + second.hits(), 0);

    // An upstream with no targets at all.
    let empty = gateway
        .admin
        .delete(&format!("/upstreams/{upstream}/targets/{}", first.target()))
        .await;
    assert_eq!(empty.status, 204);
    let gone = gateway
        .admin
        .delete(&format!(
            "/upstreams/{upstream}/targets/{}",
            second.target()
        ))
        .await;
    assert_eq!(gone.status, 204);
    let reply = gateway.get("/lb").await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.body["message"],
        "failure to get a peer from the ring-balancer"
    );
}

#[tokio::test]
async fn a_refused_connection_answers_502_and_other_targets_take_the_retry() {
    let gateway = Gateway::start("3.9.3").await;
    let down = closed_address().await;
    gateway
        .create(
            "/services",
            json!({"name": "down", "url": format!("http://{down}")}),
        )
        .await;
    gateway
        .create("/services/down/routes", json!({"paths": ["/down"]}))
        .await;
    let reply = gateway.get("/down").await;
    assert_eq!(reply.status, 502);
    assert_eq!(
        reply.body,
        kong_error(
            &reply,
            "An invalid response was received from the upstream server"
        )
    );

    // Kong retries a failed connection on the balancer's next target.
    let up = echo("up").await;
    let upstream = gateway.create("/upstreams", json!({"name": "mixed"})).await;
    let upstream = id(&upstream);
    for target in [down.to_string(), up.target()] {
        gateway
            .create(
                &format!("/upstreams/{upstream}/targets"),
                json!({"target": target}),
            )
            .await;
    }
    gateway
        .create("/services", json!({"name": "mixed", "host": "mixed"}))
        .await;
    gateway
        .create("/services/mixed/routes", json!({"paths": ["/mixed"]}))
        .await;
    let seen = gateway.tally("/mixed", 10).await;
    assert_eq!(seen.get("up"), Some(&10));
}

#[tokio::test]
async fn a_slow_upstream_answers_504_after_the_read_timeout() {
    let gateway = Gateway::start("3.9.3").await;
    let slow = echo_after("slow", Duration::from_secs(3)).await;
    gateway
        .create(
            "/services",
            json!({"name": "slow", "url": slow.url(), "read_timeout": 200, "retries": 0}),
        )
        .await;
    gateway
        .create("/services/slow/routes", json!({"paths": ["/slow"]}))
        .await;
    let started = std::time::Instant::now();
    let reply = gateway.get("/slow").await;
    assert_eq!(reply.status, 504);
    assert_eq!(
        reply.body,
        kong_error(&reply, "The upstream server is timing out")
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn older_versions_answer_without_request_ids_and_with_a_bare_via() {
    let gateway = Gateway::start("3.4.2").await;
    let server = echo("backend").await;
    gateway
        .create("/services", json!({"name": "svc", "url": server.url()}))
        .await;
    gateway
        .create("/services/svc/routes", json!({"paths": ["/svc"]}))
        .await;
    let missing = gateway.get("/nowhere").await;
    assert_eq!(
        missing.body,
        json!({"message": "no Route matched with those values"})
    );
    assert_eq!(missing.header("x-kong-request-id"), None);
    let proxied = gateway.get("/svc").await;
    assert_eq!(proxied.header("via"), Some("kong/3.4.2"));
    assert_eq!(proxied.body["headers"]["via"], Value::Null);
    assert_eq!(proxied.body["headers"]["x-kong-request-id"], Value::Null);
}

#[tokio::test]
async fn routes_without_a_service_and_https_only_routes_answer_kong_errors() {
    let gateway = Gateway::start("3.9.3").await;
    gateway
        .create("/routes", json!({"name": "orphan", "paths": ["/orphan"]}))
        .await;
    let reply = gateway.get("/orphan").await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.body,
        kong_error(&reply, "no Service found with those values")
    );

    let server = echo("secure").await;
    gateway
        .create("/services", json!({"name": "secure", "url": server.url()}))
        .await;
    gateway
        .create(
            "/services/secure/routes",
            json!({"paths": ["/secure"], "protocols": ["https"]}),
        )
        .await;
    let upgrade = gateway.get("/secure").await;
    assert_eq!(upgrade.status, 426);
    assert_eq!(
        upgrade.body,
        kong_error(&upgrade, "Please use HTTPS protocol")
    );
    gateway
        .create(
            "/services/secure/routes",
            json!({"paths": ["/moved"], "protocols": ["https"], "https_redirect_status_code": 301}),
        )
        .await;
    let moved = gateway
        .send(Method::GET, "/moved/x?y=1", &[("host", "api.example.com")])
        .await;
    assert_eq!(moved.status, 301);
    assert_eq!(
        moved.header("location"),
        Some("https://api.example.com/moved/x?y=1")
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn the_tls_proxy_presents_the_sni_certificate_and_serves_https_routes() {
    let mut gateway = Gateway::start("3.9.3").await;
    let authority = Authority::new("Proxy CA");
    let leaf = authority.issue(&["api.test"]);
    gateway
        .create(
            "/certificates",
            json!({"cert": leaf.cert, "key": leaf.key, "snis": ["api.test"]}),
        )
        .await;
    let server = echo("secure").await;
    gateway
        .create("/services", json!({"name": "secure", "url": server.url()}))
        .await;
    gateway
        .create(
            "/services/secure/routes",
            json!({"paths": ["/secure"], "protocols": ["https"]}),
        )
        .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = gateway
        .admin
        .twin
        .serve_proxy_tls(listener, None)
        .await
        .unwrap();
    assert_eq!(
        gateway.admin.twin.proxy_tls_url(),
        Some(format!("https://{address}"))
    );
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(authority.pair.cert.as_bytes()).unwrap(),
        )
        .resolve("api.test", address)
        .no_proxy()
        .build()
        .unwrap();
    let response = client
        .get(format!("https://api.test:{}/secure/x", address.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["path"], "/x");
    assert_eq!(body["headers"]["x-forwarded-proto"], "https");
    assert_eq!(
        body["headers"]["x-forwarded-port"],
        address.port().to_string()
    );
    // The same route over plain HTTP asks for HTTPS.
    assert_eq!(gateway.get("/secure/x").await.status, 426);
}

/// key-auth end to end: plugins, consumers and credentials created through the Admin API.
#[tokio::test]
async fn key_auth_guards_the_route_and_identifies_the_consumer() {
    let gateway = Gateway::start("3.9.3").await;
    let server = echo("guarded").await;
    gateway
        .create("/services", json!({"name": "guarded", "url": server.url()}))
        .await;
    gateway
        .create(
            "/services/guarded/routes",
            json!({"name": "guarded", "paths": ["/guarded"]}),
        )
        .await;
    gateway
        .create(
            "/services/guarded/plugins",
            json!({"name": "key-auth", "config": {"hide_credentials": true}}),
        )
        .await;
    let alice = gateway
        .create(
            "/consumers",
            json!({"username": "alice", "custom_id": "a-1"}),
        )
        .await;
    let credential = gateway
        .create("/consumers/alice/key-auth", json!({"key": "k-alice"}))
        .await;

    let missing = gateway.get("/guarded").await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.body,
        kong_error(&missing, "No API key found in request")
    );
    assert_eq!(missing.header("www-authenticate"), Some("Key"));
    let wrong = gateway
        .send(Method::GET, "/guarded", &[("apikey", "nope")])
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body, kong_error(&wrong, "Unauthorized"));
    assert_eq!(server.hits(), 0);

    let allowed = gateway
        .send(Method::GET, "/guarded/x", &[("apikey", "k-alice")])
        .await;
    assert_eq!(allowed.status, 200);
    let headers = &allowed.body["headers"];
    assert_eq!(headers["x-consumer-id"], alice["id"]);
    assert_eq!(headers["x-consumer-username"], "alice");
    assert_eq!(headers["x-consumer-custom-id"], "a-1");
    assert_eq!(headers["x-credential-identifier"], credential["id"]);
    assert_eq!(
        headers["apikey"],
        Value::Null,
        "hide_credentials strips the key"
    );
    let by_query = gateway.get("/guarded/x?apikey=k-alice&keep=1").await;
    assert_eq!(by_query.status, 200);
    assert_eq!(by_query.body["query"], "keep=1");

    // Rotation: once the credential is gone, the key is refused at the next request.
    let deleted = gateway
        .admin
        .delete(&format!("/consumers/alice/key-auth/{}", id(&credential)))
        .await;
    assert_eq!(deleted.status, 204);
    let retired = gateway
        .send(Method::GET, "/guarded", &[("apikey", "k-alice")])
        .await;
    assert_eq!(retired.status, 401);
    assert_eq!(retired.body, kong_error(&retired, "Unauthorized"));

    // A key with a TTL works until it expires, then is refused like a deleted one.
    gateway
        .create(
            "/consumers/alice/key-auth",
            json!({"key": "k-short", "ttl": 1}),
        )
        .await;
    let fresh = gateway
        .send(Method::GET, "/guarded", &[("apikey", "k-short")])
        .await;
    assert_eq!(fresh.status, 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let expired = gateway
        .send(Method::GET, "/guarded", &[("apikey", "k-short")])
        .await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.body, kong_error(&expired, "Unauthorized"));
}

#[tokio::test]
async fn a_body_over_16_mib_is_refused_with_413_before_it_reaches_the_upstream() {
    let gateway = Gateway::start("3.9.3").await;
    let server = echo("big").await;
    gateway
        .create("/services", json!({"name": "big", "url": server.url()}))
        .await;
    gateway
        .create("/services/big/routes", json!({"paths": ["/big"]}))
        .await;
    let url = format!("{}/big", gateway.proxy);
    let small = gateway
        .http
        .post(&url)
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(small.status().as_u16(), 200);
    let hits = server.hits();
    // Declared too large, and streamed too large without a length.
    let declared = gateway
        .http
        .post(&url)
        .body(vec![b'x'; 17 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status().as_u16(), 413);
    let chunks = futures_chunks(17);
    let streamed = gateway
        .http
        .post(&url)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status().as_u16(), 413);
    let body: Value = streamed.json().await.unwrap();
    assert_eq!(body["message"], "Payload too large");
    assert_eq!(server.hits(), hits, "nothing more reached the upstream");
}

/// `mib` chunks of 1 MiB as a body stream with no declared length.
fn futures_chunks(
    mib: usize,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures::stream::iter((0..mib).map(|_| Ok(vec![b'y'; 1024 * 1024])))
}

#[tokio::test]
async fn an_authentication_plugin_the_twin_cannot_run_refuses_traffic_instead_of_passing_it() {
    let gateway = Gateway::start("3.9.3").await;
    let server = echo("guarded").await;
    gateway
        .create("/services", json!({"name": "guarded", "url": server.url()}))
        .await;
    gateway
        .create("/services/guarded/routes", json!({"paths": ["/guarded"]}))
        .await;
    gateway
        .create("/services/guarded/plugins", json!({"name": "hmac-auth"}))
        .await;
    let reply = gateway.get("/guarded").await;
    assert_eq!(reply.status, 501, "{}", reply.body);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .contains("'hmac-auth'"),
        "{}",
        reply.body
    );
    assert_eq!(server.hits(), 0);
}
