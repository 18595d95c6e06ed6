//! [`HttpProbe`], the `http.probe` action: sends `count` read requests to one URL,
//! `concurrency` at a time, and reports latency percentiles, statuses, rate-limited
//! answers and errors. It judges nothing: every answer and every connection failure
//! is counted, and the playbook decides with `assert` what is acceptable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration as StdDuration;

use runsheet_engine::model::{Duration, TlsSettings};
use runsheet_engine::{Action, ActionError, ActionSpec, Applied, Change, Effect, StepContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::arguments::{OneOrMany, parse};
use crate::http::{
    FAMILY, HttpAuth, StatusCode, authenticate, check_auth_header, expected_status,
};
use crate::web::{ExpectedStatus, WebClient, WebRequest, error_chain};

/// The action's type name.
pub const NAME: &str = "http.probe";

/// The outputs of every `http.probe` step.
pub const OUTPUTS: &[&str] = &[
    "sent",
    "ok",
    "errors",
    "unanswered",
    "rate_limited",
    "statuses",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "mean_ms",
    "first_error",
];

/// The most requests one step may send.
pub const MAX_COUNT: u32 = 10_000;

/// The most requests one step may have in flight.
pub const MAX_CONCURRENCY: u32 = 64;

/// Arguments of `http.probe`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpProbeArguments {
    /// Absolute http or https URL probed.
    pub url: String,
    /// Request method: GET (default) or HEAD; a probe only reads.
    #[serde(default)]
    pub method: ProbeMethod,
    /// Requests sent in all (default 20, at most 10000).
    #[serde(default = "twenty")]
    #[schemars(range(min = 1, max = 10000))]
    pub count: u32,
    /// Requests in flight at once (default 1, at most 64).
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 64))]
    pub concurrency: u32,
    /// Request headers, name to value (an `apikey` from `secret()` is masked).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How to authenticate: `bearer`, `basic`, `oauth2_client_credentials` or `jwt` (default: none).
    #[serde(default)]
    pub auth: Option<HttpAuth>,
    /// TLS settings: CA to trust, client certificate and key for mTLS, server name, insecure.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// Status code or codes that count as ok (default: any 2xx); others count as errors.
    #[serde(default)]
    pub expect_status: Option<OneOrMany<StatusCode>>,
    /// Limit for one request (default 10s); a request without an answer by then is unanswered.
    #[serde(default = "ten_seconds")]
    pub timeout: Duration,
}

/// The read methods a probe may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProbeMethod {
    /// Reads a resource.
    #[default]
    Get,
    /// Reads a resource's headers.
    Head,
}

/// The default count, 20 requests.
fn twenty() -> u32 {
    20
}

/// The default concurrency, one request at a time.
fn one() -> u32 {
    1
}

/// The default request timeout, 10 seconds.
fn ten_seconds() -> Duration {
    Duration(StdDuration::from_secs(10))
}

/// What happened to one request.
#[derive(Debug, Clone, PartialEq)]
enum Sample {
    /// Answered with this status after this long.
    Answered {
        /// The status code.
        status: u16,
        /// The time to the whole answer.
        elapsed: StdDuration,
    },
    /// No answer: why.
    Unanswered(String),
}

/// The `http.probe` action.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    spec: ActionSpec,
}

impl HttpProbe {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<HttpProbeArguments>(
                NAME,
                FAMILY,
                "Sends N read requests to a URL and reports latency percentiles, statuses and errors.",
                Effect::READ,
            )
            .outputs(OUTPUTS),
        }
    }
}

impl Default for HttpProbe {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Action for HttpProbe {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, _context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let arguments = HttpProbeArguments::parse(arguments)?;
        Ok(Change::none(format!(
            "reads {} {} times",
            arguments.url, arguments.count
        )))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments = HttpProbeArguments::parse(arguments)?;
        let client = WebClient::for_step(context, arguments.tls.as_ref()).await?;
        if client.is_insecure() {
            tracing::warn!(
                step = %context.step_id,
                url = %arguments.url,
                "TLS certificate verification is off for this probe (insecure: true)"
            );
        }
        let request = arguments.request(&client).await?;
        let samples = send_all(&client, &request, arguments.count, arguments.concurrency).await;
        Ok(Applied {
            secrets: Vec::new(),
            outputs: summarise(&samples, &arguments.expected_status()),
            undo: None,
            change: None,
        })
    }
}

impl HttpProbeArguments {
    /// Reads and checks rendered arguments.
    fn parse(arguments: Value) -> Result<Self, ActionError> {
        let arguments: Self = parse(NAME, arguments)?;
        let invalid = |message: String| ActionError::InvalidArguments {
            action: NAME,
            message,
        };
        if !(1..=MAX_COUNT).contains(&arguments.count) {
            return Err(invalid(format!(
                "count {} is out of range (1 to {MAX_COUNT})",
                arguments.count
            )));
        }
        if !(1..=MAX_CONCURRENCY).contains(&arguments.concurrency) {
            return Err(invalid(format!(
                "concurrency {} is out of range (1 to {MAX_CONCURRENCY})",
                arguments.concurrency
            )));
        }
        check_auth_header(arguments.auth.as_ref(), &arguments.headers).map_err(invalid)?;
        Ok(arguments)
    }

    /// The statuses that count as ok: the listed ones, or any 2xx.
    fn expected_status(&self) -> ExpectedStatus {
        expected_status(self.expect_status.as_ref())
    }

    /// The request sent `count` times, authenticated (an OAuth2 token is fetched once, a JWT
    /// signed once).
    async fn request(&self, client: &WebClient) -> Result<WebRequest, ActionError> {
        let method = match self.method {
            ProbeMethod::Get => reqwest::Method::GET,
            ProbeMethod::Head => reqwest::Method::HEAD,
        };
        let mut request = WebRequest::new(method, &self.url)?.timeout(self.timeout.0);
        for (name, value) in &self.headers {
            request = request.header(name, value)?;
        }
        authenticate(request, self.auth.as_ref(), client).await
    }
}

/// Sends `request` `count` times with at most `concurrency` in flight; every outcome.
async fn send_all(
    client: &WebClient,
    request: &WebRequest,
    count: u32,
    concurrency: u32,
) -> Vec<Sample> {
    let next = Arc::new(AtomicU32::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(count) {
        let next = Arc::clone(&next);
        let client = client.clone();
        let request = request.clone();
        workers.spawn(async move {
            let mut samples = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                samples.push(match client.send(request.clone()).await {
                    Ok(response) => Sample::Answered {
                        status: response.status,
                        elapsed: response.elapsed,
                    },
                    Err(error) => Sample::Unanswered(error_chain(&error)),
                });
            }
            samples
        });
    }
    let mut samples = Vec::new();
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(more) => samples.extend(more),
            Err(error) => samples.push(Sample::Unanswered(format!("probe task ended: {error}"))),
        }
    }
    samples
}

/// The outputs for these samples: counts, statuses and latency figures in milliseconds
/// (to 0.1 ms, over answered requests; null when none was answered).
fn summarise(samples: &[Sample], expected: &ExpectedStatus) -> Map<String, Value> {
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut latencies: Vec<f64> = Vec::new();
    let (mut ok, mut errors, mut unanswered) = (0u64, 0u64, 0u64);
    let mut first_error: Option<String> = None;
    for sample in samples {
        match sample {
            Sample::Answered { status, elapsed } => {
                *statuses.entry(status.to_string()).or_default() += 1;
                latencies.push(elapsed.as_secs_f64() * 1000.0);
                if expected.accepts(*status) {
                    ok += 1;
                } else {
                    errors += 1;
                    first_error.get_or_insert_with(|| {
                        format!("answered {status}, expected {}", expected.describe())
                    });
                }
            }
            Sample::Unanswered(reason) => {
                errors += 1;
                unanswered += 1;
                first_error.get_or_insert_with(|| reason.clone());
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let figure = |value: Option<f64>| value.map_or(Value::Null, |ms| Value::from(round(ms)));
    let mean =
        (!latencies.is_empty()).then(|| latencies.iter().sum::<f64>() / latencies.len() as f64);
    let mut outputs = Map::new();
    outputs.insert("sent".to_owned(), Value::from(samples.len()));
    outputs.insert("ok".to_owned(), Value::from(ok));
    outputs.insert("errors".to_owned(), Value::from(errors));
    outputs.insert("unanswered".to_owned(), Value::from(unanswered));
    outputs.insert(
        "rate_limited".to_owned(),
        Value::from(statuses.get("429").copied().unwrap_or(0)),
    );
    outputs.insert(
        "statuses".to_owned(),
        Value::Object(
            statuses
                .into_iter()
                .map(|(code, n)| (code, Value::from(n)))
                .collect(),
        ),
    );
    outputs.insert("p50_ms".to_owned(), figure(percentile(&latencies, 50.0)));
    outputs.insert("p95_ms".to_owned(), figure(percentile(&latencies, 95.0)));
    outputs.insert("p99_ms".to_owned(), figure(percentile(&latencies, 99.0)));
    outputs.insert("max_ms".to_owned(), figure(latencies.last().copied()));
    outputs.insert("mean_ms".to_owned(), figure(mean));
    outputs.insert(
        "first_error".to_owned(),
        first_error.map_or(Value::Null, Value::from),
    );
    outputs
}

/// The nearest-rank percentile `p` (0 < p ≤ 100) of sorted values: the smallest value
/// with at least p % of the values at or below it.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "rank is between 1 and the number of samples"
    )]
    let index = (rank as usize).clamp(1, sorted.len()) - 1;
    sorted.get(index).copied()
}

/// Milliseconds to one decimal.
fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::{Reply, TestResult, TestServer, message};

    async fn apply(context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        HttpProbe::new().apply(context, arguments).await
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(50.0));
        assert_eq!(percentile(&values, 95.0), Some(95.0));
        assert_eq!(percentile(&values, 99.0), Some(99.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn a_summary_counts_statuses_rate_limits_and_unanswered_requests() {
        let ms = StdDuration::from_millis;
        let samples = [
            Sample::Answered {
                status: 200,
                elapsed: ms(10),
            },
            Sample::Answered {
                status: 200,
                elapsed: ms(30),
            },
            Sample::Answered {
                status: 429,
                elapsed: ms(20),
            },
            Sample::Unanswered("connection refused".to_owned()),
        ];
        let outputs = summarise(&samples, &ExpectedStatus::Success);
        assert_eq!(outputs["sent"], json!(4));
        assert_eq!(outputs["ok"], json!(2));
        assert_eq!(outputs["errors"], json!(2));
        assert_eq!(outputs["unanswered"], json!(1));
        assert_eq!(outputs["rate_limited"], json!(1));
        assert_eq!(outputs["statuses"], json!({"200": 2, "429": 1}));
        assert_eq!(outputs["p50_ms"], json!(20.0));
        assert_eq!(outputs["max_ms"], json!(30.0));
        assert_eq!(outputs["mean_ms"], json!(20.0));
        assert!(
            outputs["first_error"]
                .as_str()
                .is_some_and(|text| text.starts_with("answered 429"))
        );
    }

    #[test]
    fn nothing_answered_gives_null_figures() {
        let samples = [Sample::Unanswered("refused".to_owned())];
        let outputs = summarise(&samples, &ExpectedStatus::Success);
        assert_eq!(outputs["p99_ms"], Value::Null);
        assert_eq!(outputs["mean_ms"], Value::Null);
        assert_eq!(outputs["first_error"], json!("refused"));
    }

    #[tokio::test]
    async fn sends_count_requests_with_headers_and_counts_every_answer() -> TestResult {
        let served = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&served);
        let server = TestServer::http(move |_| {
            // Every fourth request is rate limited.
            if counter.fetch_add(1, Ordering::Relaxed) % 4 == 3 {
                Reply::json(429, json!({"message": "API rate limit exceeded"}))
            } else {
                Reply::json(200, json!({}))
            }
        })
        .await?;
        let context = StepContext::detached("probe", false);
        let applied = apply(
            &context,
            json!({
                "url": server.url("/orders"),
                "count": 12,
                "concurrency": 3,
                "headers": {"apikey": "k-1"}
            }),
        )
        .await?;
        let outputs = &applied.outputs;
        assert_eq!(outputs["sent"], json!(12));
        assert_eq!(outputs["ok"], json!(9));
        assert_eq!(outputs["rate_limited"], json!(3));
        assert_eq!(outputs["errors"], json!(3));
        assert_eq!(outputs["statuses"], json!({"200": 9, "429": 3}));
        for figure in ["p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms"] {
            assert!(outputs[figure].is_f64(), "{figure}: {}", outputs[figure]);
        }
        assert!(outputs["p50_ms"].as_f64() <= outputs["p99_ms"].as_f64());
        let requests = server.requests();
        assert_eq!(requests.len(), 12);
        assert!(requests.iter().all(
            |r| r.method == "GET" && r.headers.get("apikey").map(String::as_str) == Some("k-1")
        ));
        assert!(applied.undo.is_none() && applied.change.is_none());
        Ok(())
    }

    #[tokio::test]
    async fn expected_statuses_decide_what_counts_as_ok() -> TestResult {
        let server =
            TestServer::http(|_| Reply::json(401, json!({"message": "Unauthorized"}))).await?;
        let context = StepContext::detached("probe", false);
        let applied = apply(
            &context,
            json!({"url": server.url("/"), "count": 3, "expect_status": 401, "auth": {"bearer": "t0k"}}),
        )
        .await?;
        assert_eq!(applied.outputs["ok"], json!(3));
        assert_eq!(applied.outputs["errors"], json!(0));
        assert_eq!(applied.outputs["first_error"], Value::Null);
        assert_eq!(
            server.requests()[0]
                .headers
                .get("authorization")
                .map(String::as_str),
            Some("Bearer t0k")
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_closed_port_is_counted_not_raised() -> TestResult {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let context = StepContext::detached("probe", true);
        let applied = apply(
            &context,
            json!({"url": format!("http://127.0.0.1:{port}/"), "count": 2, "timeout": "2s"}),
        )
        .await?;
        assert_eq!(applied.outputs["unanswered"], json!(2));
        assert_eq!(applied.outputs["errors"], json!(2));
        assert_eq!(applied.outputs["p50_ms"], Value::Null);
        assert!(applied.outputs["first_error"].is_string());
        Ok(())
    }

    #[tokio::test]
    async fn bad_arguments_are_refused_before_sending() -> TestResult {
        let context = StepContext::detached("probe", false);
        for (arguments, expected) in [
            (
                json!({"url": "http://127.0.0.1:1/", "count": 0}),
                "count 0 is out of range",
            ),
            (
                json!({"url": "http://127.0.0.1:1/", "concurrency": 65}),
                "concurrency 65",
            ),
            (
                json!({"url": "http://127.0.0.1:1/", "method": "POST"}),
                "unknown variant",
            ),
            (
                json!({"url": "http://127.0.0.1:1/", "auth": {"bearer": "x"}, "headers": {"Authorization": "y"}}),
                "not both",
            ),
        ] {
            let text = message(apply(&context, arguments).await)?;
            assert!(text.contains(expected), "{text}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn plan_says_what_it_reads() -> TestResult {
        let context = StepContext::detached("probe", true);
        let change = HttpProbe::new()
            .plan(&context, json!({"url": "http://gw/orders", "count": 5}))
            .await?;
        assert!(format!("{change:?}").contains("reads http://gw/orders 5 times"));
        Ok(())
    }
}
