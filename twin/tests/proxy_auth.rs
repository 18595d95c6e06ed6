//! The Kong twin's proxy with jwt, oauth2 and rate-limiting over real HTTP, seeded from a
//! decK-style file declaring the credentials under their consumer (`jwt_secrets`,
//! `oauth2_credentials`, `keyauth_credentials`), against a loopback echo upstream.
//!
//! Expected answers follow Kong 3.9 (`kong/plugins/{jwt,oauth2,rate-limiting}`).
#![expect(
    clippy::unwrap_used,
    reason = "a request that cannot be sent or parsed fails the test"
)]

use std::net::SocketAddr;

use axum::Router;
use axum::http::HeaderMap;
use base64::Engine;
use runsheet_twin::kong::{TlsSettings, TwinConfig};
use serde_json::{Value, json};
use tokio::net::TcpListener;

mod pki;
mod support;
use support::Admin;

/// The HS256 secret of the seeded jwt credential.
const JWT_SECRET: &str = "lab-jwt-secret-0123456789abcdef";

/// The seed: one service on the echo upstream, a route per plugin, one consumer with a
/// jwt secret, an oauth2 client and an API key.
fn seed(upstream: SocketAddr) -> String {
    format!(
        r#"
_format_version: "3.0"
services:
  - name: orders
    url: http://{upstream}
    routes:
      - name: orders-jwt
        paths: [/jwt]
        plugins:
          - name: jwt
            config: {{claims_to_verify: [exp]}}
      - name: orders-oauth
        paths: [/oauth]
        plugins:
          - name: oauth2
            config: {{enable_client_credentials: true, token_expiration: 3600}}
      - name: orders-basic
        paths: [/basic]
        plugins:
          - name: basic-auth
      - name: orders-limited
        paths: [/limited]
        plugins:
          - name: key-auth
          - name: rate-limiting
            config: {{minute: 3, policy: local}}
consumers:
  - username: shop-app
    custom_id: shop-1
    jwt_secrets:
      - key: shop-app-issuer
        secret: {JWT_SECRET}
        algorithm: HS256
    oauth2_credentials:
      - name: shop-app
        client_id: shop-app-client
        client_secret: shop-app-client-secret
    keyauth_credentials:
      - key: shop-app-key
    basicauth_credentials:
      - username: shop-deploy
        password: deploy-pass
"#
    )
}

/// A twin seeded with [`seed`], its plain and TLS proxies, and an echo upstream.
struct Shop {
    /// The twin.
    admin: Admin,
    /// `http://...` proxy.
    proxy: String,
    /// `https://...` proxy.
    proxy_tls: String,
    /// Accepts the twin's self-signed certificate.
    http: reqwest::Client,
    /// The echo server task.
    upstream: tokio::task::JoinHandle<()>,
}

impl Drop for Shop {
    fn drop(&mut self) {
        self.upstream.abort();
    }
}

/// A proxied answer.
struct Answer {
    /// Status.
    status: u16,
    /// Headers.
    headers: reqwest::header::HeaderMap,
    /// JSON body (`Null` when not JSON).
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

impl Shop {
    async fn open() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new().fallback(|headers: HeaderMap| async move {
            let headers: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        json!(value.to_str().unwrap_or_default()),
                    )
                })
                .collect();
            axum::Json(json!({"headers": headers}))
        });
        let upstream = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let mut admin = Admin::start_with(TwinConfig {
            control: true,
            ..TwinConfig::with_version("3.9.1")
        })
        .await;
        admin.twin.seed(&seed(address)).unwrap();
        admin.twin.start_proxy().await.unwrap();
        let pair = pki::ecdsa(&["localhost"]);
        let tls = TlsSettings::from_pem(&pair.cert, &pair.key).unwrap();
        admin
            .twin
            .serve_proxy_tls(TcpListener::bind("127.0.0.1:0").await.unwrap(), Some(tls))
            .await
            .unwrap();
        let proxy = admin.twin.proxy_url().unwrap();
        let proxy_tls = admin.twin.proxy_tls_url().unwrap();
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .no_proxy()
            .build()
            .unwrap();
        Self {
            admin,
            proxy,
            proxy_tls,
            http,
            upstream,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.http.get(format!("{}{path}", self.proxy));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }
}

/// An HS256 token with `claims`, signed with `secret` as a client would.
fn hs256(claims: &Value, secret: &str) -> String {
    let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let input = format!(
        "{}.{}",
        encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        encode(claims.to_string().as_bytes())
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", encode(tag.as_ref()))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

#[tokio::test]
async fn the_seeded_credentials_are_listed_under_their_consumer() {
    let shop = Shop::open().await;
    let jwts = shop.admin.get("/consumers/shop-app/jwt").await;
    assert_eq!(
        jwts.body["data"][0]["key"], "shop-app-issuer",
        "{}",
        jwts.body
    );
    let clients = shop.admin.get("/consumers/shop-app/oauth2").await;
    assert_eq!(clients.body["data"][0]["client_id"], "shop-app-client");
    assert_eq!(clients.body["data"][0]["client_type"], "confidential");
    let client = shop.admin.get("/oauth2/shop-app-client").await;
    assert_eq!(client.status, 200, "{}", client.body);
    let keys = shop.admin.get("/consumers/shop-app/key-auth").await;
    assert_eq!(keys.body["data"][0]["key"], "shop-app-key");
}

#[tokio::test]
async fn a_valid_jwt_passes_with_its_consumer_and_bad_ones_get_kongs_401s() {
    let shop = Shop::open().await;
    let valid = hs256(
        &json!({"iss": "shop-app-issuer", "exp": unix_now() + 300}),
        JWT_SECRET,
    );
    let bearer = format!("Bearer {valid}");
    let ok = shop.get("/jwt/orders", &[("authorization", &bearer)]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let upstream = &ok.body["headers"];
    assert_eq!(upstream["x-consumer-username"], "shop-app");
    assert_eq!(upstream["x-consumer-custom-id"], "shop-1");
    assert_eq!(upstream["x-credential-identifier"], "shop-app-issuer");
    assert!(upstream.get("x-anonymous-consumer").is_none());
    // The token in the query works as well.
    let query = shop.get(&format!("/jwt/orders?jwt={valid}"), &[]).await;
    assert_eq!(query.status, 200, "{}", query.body);

    let mut tampered = valid.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let refused = shop
        .get(
            "/jwt/orders",
            &[("authorization", &format!("Bearer {tampered}"))],
        )
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body, json!({"message": "Invalid signature"}));
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );

    let expired = hs256(
        &json!({"iss": "shop-app-issuer", "exp": unix_now() - 10}),
        JWT_SECRET,
    );
    let refused = shop
        .get(
            "/jwt/orders",
            &[("authorization", &format!("Bearer {expired}"))],
        )
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body, json!({"exp": "token expired"}));

    let unknown = hs256(&json!({"iss": "someone-else"}), JWT_SECRET);
    let refused = shop
        .get(
            "/jwt/orders",
            &[("authorization", &format!("Bearer {unknown}"))],
        )
        .await;
    assert_eq!(
        refused.body,
        json!({"message": "No credentials found for given 'iss'"})
    );
    let missing = shop.get("/jwt/orders", &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.body, json!({"message": "Unauthorized"}));
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn an_oauth2_token_from_the_token_endpoint_opens_the_route_and_an_unknown_one_does_not() {
    let shop = Shop::open().await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "shop-app-client"),
        ("client_secret", "shop-app-client-secret"),
    ];
    // Kong issues tokens over HTTPS only.
    let plain = shop
        .send(
            shop.http
                .post(format!("{}/oauth/oauth2/token", shop.proxy))
                .form(&form),
        )
        .await;
    assert_eq!(plain.status, 400);
    assert_eq!(
        plain.body,
        json!({"error": "access_denied", "error_description": "You must use HTTPS"})
    );
    let issued = shop
        .send(
            shop.http
                .post(format!("{}/oauth/oauth2/token", shop.proxy_tls))
                .form(&form),
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    assert_eq!(issued.body["token_type"], "bearer");
    assert_eq!(issued.body["expires_in"], 3600);
    assert_eq!(issued.header("cache-control"), Some("no-store"));
    let token = issued.body["access_token"].as_str().unwrap().to_owned();
    // The token is an Admin API entity.
    let stored = shop.admin.get(&format!("/oauth2_tokens/{token}")).await;
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(stored.body["expires_in"], 3600);

    let ok = shop
        .get(
            "/oauth/orders",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["headers"]["x-consumer-username"], "shop-app");
    assert_eq!(
        ok.body["headers"]["x-credential-identifier"],
        "shop-app-client"
    );
    let by_query = shop
        .get(&format!("/oauth/orders?access_token={token}"), &[])
        .await;
    assert_eq!(by_query.status, 200, "{}", by_query.body);

    let unknown = shop
        .get("/oauth/orders", &[("authorization", "Bearer not-a-token")])
        .await;
    assert_eq!(unknown.status, 401);
    assert_eq!(
        unknown.body,
        json!({"error": "invalid_token", "error_description": "The access token is invalid or has expired"})
    );
    assert_eq!(
        unknown.header("www-authenticate"),
        Some(
            "Bearer error=\"invalid_token\" error_description=\"The access token is invalid or has expired\""
        )
    );
    // A token created through the Admin API that has already expired is refused.
    let client = shop.admin.get("/oauth2/shop-app-client").await;
    let created = shop
        .admin
        .post(
            "/oauth2_tokens",
            json!({"credential": {"id": client.body["id"]}, "service": {"id": shop.admin.get("/services/orders").await.body["id"]},
                   "access_token": "made-by-admin", "expires_in": 1, "created_at": unix_now() - 60}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let expired = shop
        .get(
            "/oauth/orders",
            &[("authorization", "Bearer made-by-admin")],
        )
        .await;
    assert_eq!(expired.status, 401, "{}", expired.body);
    assert_eq!(expired.body["error"], "invalid_token");
}

#[tokio::test]
async fn the_request_after_the_limit_gets_429_with_the_rate_limit_headers() {
    let shop = Shop::open().await;
    // Three per minute: keep the four requests inside one minute window.
    let into_minute = unix_now().rem_euclid(60);
    if into_minute > 50 {
        let wait = u64::try_from(61 - into_minute).unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
    let key = [("apikey", "shop-app-key")];
    for expected_remaining in ["2", "1", "0"] {
        let ok = shop.get("/limited/orders", &key).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        assert_eq!(ok.header("x-ratelimit-limit-minute"), Some("3"));
        assert_eq!(
            ok.header("x-ratelimit-remaining-minute"),
            Some(expected_remaining)
        );
        assert_eq!(ok.header("ratelimit-limit"), Some("3"));
        assert_eq!(ok.header("ratelimit-remaining"), Some(expected_remaining));
        assert!(ok.header("ratelimit-reset").is_some());
    }
    let limited = shop.get("/limited/orders", &key).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["message"], "API rate limit exceeded");
    assert!(limited.body["request_id"].is_string(), "{}", limited.body);
    assert_eq!(limited.header("x-ratelimit-remaining-minute"), Some("0"));
    assert_eq!(limited.header("ratelimit-remaining"), Some("0"));
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // The twin's control reset forgets the counts.
    let reset = shop.admin.post("/_twin/reset", json!({})).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let again = shop.get("/limited/orders", &key).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.header("x-ratelimit-remaining-minute"), Some("2"));
    // Counted per consumer: without a key the route answers 401 before counting.
    let anonymous = shop.get("/limited/orders", &[]).await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn oauth2_plugin_credentials_and_tokens_validate_as_kong_does() {
    let shop = Shop::open().await;
    let no_flow = shop
        .admin
        .post("/plugins", json!({"name": "oauth2", "config": {}}))
        .await;
    assert_eq!(no_flow.status, 400, "{}", no_flow.body);
    assert_eq!(
        no_flow.body["fields"]["config"],
        "at least one of these fields must be true: enable_authorization_code, enable_implicit_grant, enable_client_credentials, enable_password_grant"
    );
    let plugin = shop
        .admin
        .post(
            "/plugins",
            json!({"name": "oauth2", "config": {"enable_client_credentials": true}}),
        )
        .await;
    assert_eq!(plugin.status, 201, "{}", plugin.body);
    assert_eq!(plugin.body["config"]["token_expiration"], 7200);
    assert_eq!(
        plugin.body["config"]["provision_key"]
            .as_str()
            .unwrap()
            .len(),
        32
    );
    let bad_uri = shop
        .admin
        .post(
            "/consumers/shop-app/oauth2",
            json!({"name": "web", "redirect_uris": ["/relative"]}),
        )
        .await;
    assert_eq!(bad_uri.status, 400, "{}", bad_uri.body);
    assert_eq!(
        bad_uri.body["fields"]["redirect_uris"],
        json!(["cannot parse '/relative'"])
    );
    let generated = shop
        .admin
        .post("/consumers/shop-app/oauth2", json!({"name": "web"}))
        .await;
    assert_eq!(generated.status, 201, "{}", generated.body);
    assert_eq!(generated.body["client_id"].as_str().unwrap().len(), 32);
    assert_eq!(generated.body["hash_secret"], false);
    let no_credential = shop
        .admin
        .post("/oauth2_tokens", json!({"expires_in": 10}))
        .await;
    assert_eq!(no_credential.status, 400, "{}", no_credential.body);
    assert_eq!(
        no_credential.body["fields"]["credential"],
        "required field missing"
    );
    // Tokens go with their credential.
    let token = shop
        .admin
        .post(
            "/oauth2_tokens",
            json!({"credential": {"id": generated.body["id"]}, "expires_in": 0}),
        )
        .await;
    assert_eq!(token.status, 201, "{}", token.body);
    assert_eq!(token.body["token_type"], "bearer");
    let deleted = shop
        .admin
        .delete(&format!(
            "/oauth2/{}",
            generated.body["client_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(deleted.status, 204);
    let gone = shop
        .admin
        .get(&format!(
            "/oauth2_tokens/{}",
            token.body["access_token"].as_str().unwrap()
        ))
        .await;
    assert_eq!(gone.status, 404, "{}", gone.body);
}

#[tokio::test]
async fn basic_auth_takes_the_seeded_password_and_refuses_others() {
    let shop = Shop::open().await;
    let basic = |user: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let ok = shop
        .get(
            "/basic/orders",
            &[("authorization", &basic("shop-deploy", "deploy-pass"))],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["headers"]["x-consumer-username"], "shop-app");
    assert_eq!(ok.body["headers"]["x-credential-identifier"], "shop-deploy");
    let wrong = shop
        .get(
            "/basic/orders",
            &[("authorization", &basic("shop-deploy", "guess"))],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body["message"], "Unauthorized");
    assert_eq!(
        wrong.header("www-authenticate"),
        Some("Basic realm=\"service\"")
    );
}
