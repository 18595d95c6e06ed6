//! The standalone twin (`runsheet twin kong --seed`) enforcing jwt, oauth2 and
//! rate-limiting at its proxy in front of a real `runsheet twin node`, seeded with the
//! decK fragment the lab seed uses for smoke credentials (consumer `smoke-client` with a
//! jwt secret, an oauth2 client and an API key; rate limiting on `inventory`).

use std::time::Duration;

use crate::lab::{Lab, TestResult};
use crate::traffic::{NodeProcess, Outcome, TwinProcess, request};

/// The jwt credential's HS256 secret.
const JWT_SECRET: &str = "lab-jwt-secret-7c1e9a42d85b3f60";

/// `{"iss":"lab-smoke-issuer","exp":4102444800}` (2100-01-01) signed with [`JWT_SECRET`]
/// (made with `openssl dgst -sha256 -hmac`, as the lab documentation shows).
const VALID_JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJsYWItc21va2UtaXNzdWVyIiwiZXhwIjo0MTAyNDQ0ODAwfQ.gbCLyayxtfWo39WJm4Jk6g_b7JYI5IPJx3vPyVmUYjw";

/// `{"iss":"lab-smoke-issuer","exp":1577836800}` (2020-01-01), signed the same way.
const EXPIRED_JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJsYWItc21va2UtaXNzdWVyIiwiZXhwIjoxNTc3ODM2ODAwfQ.iwIL2-tzHS7SLfHMmbOr_mXYh6bN-SVFHVCR3t_YF1M";

/// The seed: upstream `core` with one node; `orders` (key-auth), `payments` (jwt),
/// `inventory` (oauth2 + rate-limiting 5/minute); a certificate for `shop.test` and
/// `localhost` (clients reaching the TLS proxy as `localhost` send that SNI).
fn seed(node: &str, cert: &str, key: &str) -> String {
    format!(
        "_format_version: '3.0'
upstreams:
  - name: core
    targets:
      - {{target: '{node}', weight: 100}}
services:
  - name: orders
    host: core
    routes:
      - {{name: orders, paths: [/orders]}}
    plugins:
      - name: key-auth
  - name: payments
    host: core
    routes:
      - {{name: payments, paths: [/payments]}}
    plugins:
      - name: jwt
        config: {{claims_to_verify: [exp]}}
  - name: inventory
    host: core
    routes:
      - {{name: inventory, paths: [/inventory]}}
    plugins:
      - name: oauth2
        config: {{enable_client_credentials: true, token_expiration: 7200}}
      - name: rate-limiting
        config: {{minute: 5, limit_by: consumer, policy: local}}
consumers:
  - username: smoke-client
    custom_id: lab-smoke
    keyauth_credentials:
      - key: lab-smoke-key-41f0c7
    jwt_secrets:
      - key: lab-smoke-issuer
        algorithm: HS256
        secret: {JWT_SECRET}
    oauth2_credentials:
      - name: smoke-client
        client_id: lab-smoke-client
        client_secret: lab-smoke-client-secret-5d2b
certificates:
  - cert: |
{cert}    key: |
{key}    snis:
      - {{name: shop.test}}
      - {{name: localhost}}
"
    )
}

/// A node behind a seeded standalone twin.
struct Gateway {
    // Dropped in order: the node goes before the lab directory holding its PID file.
    _node: NodeProcess,
    twin: TwinProcess,
    lab: Lab,
}

impl Gateway {
    fn open() -> Outcome<Gateway> {
        let lab = Lab::new()?;
        let node = NodeProcess::start(&lab, "dp1")?;
        let made = rcgen::generate_simple_self_signed(vec![
            "shop.test".to_owned(),
            "localhost".to_owned(),
        ])?;
        let indent =
            |pem: String| -> String { pem.lines().map(|line| format!("      {line}\n")).collect() };
        lab.write(
            "kong.yaml",
            &seed(
                &node.address,
                &indent(made.cert.pem()),
                &indent(made.signing_key.serialize_pem()),
            ),
        )?;
        let twin = TwinProcess::start(&lab, "kong.yaml")?;
        Ok(Gateway {
            _node: node,
            twin,
            lab,
        })
    }

    /// `GET path` through the plain proxy with `headers`: status and body as JSON.
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Outcome<(u16, serde_json::Value)> {
        let (status, body) = request(&format!("{}{path}", self.twin.proxy_url), headers)?;
        Ok((status, serde_json::from_str(&body).unwrap_or_default()))
    }
}

#[test]
fn jwt_smoke_tokens_get_kongs_answers_through_the_binary() -> TestResult {
    let gateway = Gateway::open()?;
    let bearer = format!("Bearer {VALID_JWT}");
    let (status, body) = gateway.get("/payments/health", &[("authorization", &bearer)])?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["headers"]["x-consumer-username"], "smoke-client",
        "{body}"
    );
    assert_eq!(
        body["headers"]["x-credential-identifier"],
        "lab-smoke-issuer"
    );
    let mut tampered = VALID_JWT.to_owned();
    tampered.replace_range(tampered.len() - 2.., "xx");
    let (status, body) = gateway.get(
        "/payments/health",
        &[("authorization", &format!("Bearer {tampered}"))],
    )?;
    assert_eq!(
        (status, body),
        (401, serde_json::json!({"message": "Invalid signature"}))
    );
    let (status, body) = gateway.get(
        "/payments/health",
        &[("authorization", &format!("Bearer {EXPIRED_JWT}"))],
    )?;
    assert_eq!(
        (status, body),
        (401, serde_json::json!({"exp": "token expired"}))
    );
    let (status, _) = gateway.get("/orders/health", &[("apikey", "lab-smoke-key-41f0c7")])?;
    assert_eq!(status, 200);
    Ok(())
}

#[test]
fn an_oauth2_token_from_the_tls_proxy_opens_inventory_until_the_rate_limit() -> TestResult {
    let gateway = Gateway::open()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let tls_address: std::net::SocketAddr = gateway
        .twin
        .proxy_tls_url
        .trim_start_matches("https://")
        .parse()?;
    let issued: serde_json::Value = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .resolve("shop.test", tls_address)
            .no_proxy()
            .build()?;
        let response = client
            .post(format!(
                "https://shop.test:{}/inventory/oauth2/token",
                tls_address.port()
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "lab-smoke-client"),
                ("client_secret", "lab-smoke-client-secret-5d2b"),
            ])
            .send()
            .await?;
        response.json::<serde_json::Value>().await
    })?;
    let token = issued["access_token"]
        .as_str()
        .ok_or_else(|| format!("no access_token in {issued}"))?;
    assert_eq!(issued["token_type"], "bearer");
    let (status, body) = gateway.get(
        "/inventory/items",
        &[("authorization", "Bearer not-issued")],
    )?;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_token");
    // Five per minute for the consumer: keep the six requests inside one minute.
    let into_minute = jiff::Timestamp::now().as_second().rem_euclid(60);
    if into_minute > 50 {
        std::thread::sleep(Duration::from_secs((61 - into_minute).unsigned_abs()));
    }
    let bearer = format!("Bearer {token}");
    for _ in 0..5 {
        let (status, body) = gateway.get("/inventory/items", &[("authorization", &bearer)])?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["headers"]["x-consumer-username"], "smoke-client");
    }
    let (status, body) = gateway.get("/inventory/items", &[("authorization", &bearer)])?;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["message"], "API rate limit exceeded");
    Ok(())
}

#[test]
fn a_playbook_smoke_test_authenticates_with_bearer_and_oauth2_client_credentials() -> TestResult {
    let gateway = Gateway::open()?;
    let lab = &gateway.lab;
    let tls_port = gateway
        .twin
        .proxy_tls_url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    lab.write(
        "env.yaml",
        &format!(
            "runsheet: 1
name: smoke
gateways:
  kong: {{type: kong, admin_url: '{}', proxy_url: '{}', proxy_tls_url: '{}'}}
hosts:
  me: {{transport: local}}
",
            gateway.twin.admin_url, gateway.twin.proxy_url, gateway.twin.proxy_tls_url
        ),
    )?;
    lab.write(
        "smoke.yaml",
        &format!(
            r#"runsheet: 1
name: auth-smoke
steps:
  - id: jwt
    action: http
    with:
      url: "{{{{ env.gateways.kong.proxy_url }}}}/payments/health"
      auth: {{bearer: "{VALID_JWT}"}}
      expect_status: 200
      extract: {{consumer: /headers/x-consumer-username}}
  - id: jwt-expired
    action: http
    with:
      url: "{{{{ env.gateways.kong.proxy_url }}}}/payments/health"
      auth: {{bearer: "{EXPIRED_JWT}"}}
      expect_status: 401
      extract: {{why: /exp}}
  - id: oauth2
    action: http
    with:
      url: "https://localhost:{tls_port}/inventory/items"
      auth:
        oauth2_client_credentials:
          token_url: "https://localhost:{tls_port}/inventory/oauth2/token"
          client_id: lab-smoke-client
          client_secret: lab-smoke-client-secret-5d2b
      tls: {{insecure: true}}
      expect_status: 200
      extract: {{consumer: /headers/x-consumer-username}}
  - id: check
    action: assert
    with:
      that: "steps.jwt.outputs.consumer == 'smoke-client' and steps['jwt-expired'].outputs.why == 'token expired' and steps.oauth2.outputs.consumer == 'smoke-client'"
"#
        ),
    )?;
    let run = lab.run(&["run", "smoke.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    Ok(())
}
