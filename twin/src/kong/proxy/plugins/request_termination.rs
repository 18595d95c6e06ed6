//! request-termination (`kong/plugins/request-termination/handler.lua`, priority 2): a
//! fixed response instead of the upstream's, optionally only when a trigger is present.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Exit, PluginRequest};

/// request-termination (`kong/plugins/request-termination/handler.lua`), without `echo`.
pub(crate) fn request_termination(config: &Value, request: &PluginRequest<'_>) -> Option<Exit> {
    let text = |name: &str| {
        config
            .get(name)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
    };
    if let Some(trigger) = text("trigger") {
        let in_headers = request.headers.contains_key(trigger);
        let in_query = request.query.iter().any(|(key, _)| key == trigger);
        if !in_headers && !in_query {
            return None;
        }
    }
    let code = config
        .get("status_code")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .unwrap_or(503);
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    if let Some(body) = text("body") {
        return Some(Exit::Body {
            status,
            body: body.to_owned(),
            content_type: text("content_type")
                .unwrap_or("application/json; charset=utf-8")
                .to_owned(),
        });
    }
    let default = match code {
        401 => Some("Unauthorized"),
        404 => Some("Not found"),
        405 => Some("Method not allowed"),
        500 => Some("An unexpected error occurred"),
        502 => Some("Bad Gateway"),
        503 => Some("Service unavailable"),
        _ => None,
    };
    let body = text("message")
        .or(default)
        .map(|message| json!({"message": message}).to_string())
        .unwrap_or_default();
    Some(Exit::Body {
        status,
        body,
        content_type: "application/json; charset=utf-8".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{headers, request};
    use super::*;

    #[test]
    fn request_termination_answers_with_status_and_message() {
        let none = headers(&[]);
        let plain = request(&none, &[]);
        assert_eq!(
            request_termination(&json!({"status_code": 503}), &plain),
            Some(Exit::Body {
                status: StatusCode::SERVICE_UNAVAILABLE,
                body: r#"{"message":"Service unavailable"}"#.into(),
                content_type: "application/json; charset=utf-8".into(),
            })
        );
        let custom = json!({"status_code": 418, "message": "maintenance window"});
        assert!(matches!(
            request_termination(&custom, &plain),
            Some(Exit::Body { status, ref body, .. }) if status.as_u16() == 418 && body == r#"{"message":"maintenance window"}"#
        ));
        let raw = json!({"status_code": 200, "body": "<p>bye</p>", "content_type": "text/html"});
        assert!(matches!(
            request_termination(&raw, &plain),
            Some(Exit::Body { ref body, ref content_type, .. }) if body == "<p>bye</p>" && content_type == "text/html"
        ));
        let triggered = json!({"status_code": 503, "trigger": "x-stop"});
        assert_eq!(request_termination(&triggered, &plain), None);
        let stop = headers(&[("x-stop", "1")]);
        assert!(request_termination(&triggered, &request(&stop, &[])).is_some());
    }
}
