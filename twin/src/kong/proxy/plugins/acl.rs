//! acl (`kong/plugins/acl/handler.lua`, priority 950): allow or deny by the groups of the
//! consumer identified so far.

use axum::http::StatusCode;
use serde_json::Value;

use super::Exit;

/// The acl plugin (`kong/plugins/acl/handler.lua`) for a consumer with `groups` (`None`
/// when no consumer is identified): the group header to send, or 401/403.
pub(crate) fn acl(
    config: &Value,
    groups: Option<&[String]>,
    has_credential: bool,
) -> Result<Option<(String, String)>, Exit> {
    let list = |name: &str| -> Vec<&str> {
        config
            .get(name)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let deny = list("deny");
    let is_deny = !deny.is_empty();
    let configured = if is_deny { deny } else { list("allow") };
    let refused = |has_credential: bool| {
        if has_credential {
            Exit::Error {
                status: StatusCode::FORBIDDEN,
                message: "You cannot consume this service".to_owned(),
                headers: Vec::new(),
            }
        } else {
            Exit::Error {
                status: StatusCode::UNAUTHORIZED,
                message: "Unauthorized".to_owned(),
                headers: Vec::new(),
            }
        }
    };
    let Some(groups) = groups else {
        return Err(refused(has_credential));
    };
    if groups.is_empty() && !is_deny {
        return Err(refused(has_credential));
    }
    let in_group = configured
        .iter()
        .any(|group| groups.iter().any(|own| own == group));
    if in_group == is_deny {
        return Err(Exit::Error {
            status: StatusCode::FORBIDDEN,
            message: "You cannot consume this service".to_owned(),
            headers: Vec::new(),
        });
    }
    let hide = config
        .get("hide_groups_header")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((!hide).then(|| ("X-Consumer-Groups".to_owned(), groups.join(", "))))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn acl_allows_denies_and_names_groups() {
        let allow = json!({"allow": ["ops", "admin"]});
        let groups = ["dev".to_owned(), "ops".to_owned()];
        assert_eq!(
            acl(&allow, Some(&groups), true),
            Ok(Some((
                "X-Consumer-Groups".to_owned(),
                "dev, ops".to_owned()
            )))
        );
        let forbidden = Exit::Error {
            status: StatusCode::FORBIDDEN,
            message: "You cannot consume this service".into(),
            headers: Vec::new(),
        };
        assert_eq!(
            acl(&allow, Some(&["dev".to_owned()]), true),
            Err(forbidden.clone())
        );
        assert_eq!(acl(&allow, Some(&[]), true), Err(forbidden.clone()));
        let deny = json!({"deny": ["dev"], "hide_groups_header": true});
        assert_eq!(acl(&deny, Some(&groups), true), Err(forbidden));
        assert_eq!(acl(&deny, Some(&[]), false), Ok(None));
        assert_eq!(
            acl(&allow, None, false),
            Err(Exit::Error {
                status: StatusCode::UNAUTHORIZED,
                message: "Unauthorized".into(),
                headers: Vec::new()
            })
        );
    }
}
