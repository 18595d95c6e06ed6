//! The consumer and credential the authentication plugins identify: the chain's
//! `anonymous` and `run_on_preflight` handling ([`authenticate`]), the consumer headers
//! set upstream, and the credential-to-consumer lookups the plugins share.

use serde_json::Value;

use super::{Authenticated, Effects, Exit, PluginRequest};
use crate::kong::credentials;
use crate::kong::store::{Entity, Store, text};

/// The consumers collection.
const CONSUMERS: &str = "consumers";

/// The consumer and credential identified so far.
#[derive(Debug, Default)]
pub(super) struct Identity {
    /// The consumer (authenticated or anonymous).
    pub(super) consumer: Option<Entity>,
    /// The credential, when one was accepted.
    pub(super) credential: Option<Entity>,
}

impl Authenticated {
    /// `credential` of `consumer` accepted, identified upstream by the credential's field
    /// `identifier`, with no plugin-specific headers.
    pub(super) fn by(
        consumer: Entity,
        credential: &Entity,
        identifier: &str,
        hide: Effects,
    ) -> Self {
        Self {
            identifier: Some(text(credential, identifier).to_owned()),
            consumer,
            credential: credential.clone(),
            headers: Vec::new(),
            hide,
        }
    }
}

/// Whether an authentication plugin's config names an `anonymous` consumer.
pub(super) fn has_anonymous(config: &Value) -> bool {
    anonymous_of(config).is_some()
}

/// The config's `anonymous` consumer id or username, if set.
fn anonymous_of(config: &Value) -> Option<&str> {
    config
        .get("anonymous")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
}

/// One authentication plugin in the chain: skipped for a preflight when
/// `run_on_preflight` is off, or when `anonymous` is set and an earlier plugin already
/// accepted a credential (Kong's logical OR); otherwise `check` runs, and a failure
/// either falls back to the anonymous consumer or answers.
pub(super) fn authenticate(
    store: &Store,
    config: &Value,
    request: &PluginRequest<'_>,
    identity: &mut Identity,
    effects: &mut Effects,
    check: impl FnOnce() -> Result<Authenticated, Exit>,
) -> Result<(), Exit> {
    let run_on_preflight = config
        .get("run_on_preflight")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if !run_on_preflight && request.method == "OPTIONS" {
        return Ok(());
    }
    let anonymous = anonymous_of(config);
    if anonymous.is_some() && identity.credential.is_some() {
        return Ok(());
    }
    match check() {
        Ok(found) => {
            identify(
                effects,
                Some(&found.consumer),
                found.identifier.as_deref(),
                false,
            );
            for (name, value) in found.headers {
                effects.header(name, value);
            }
            effects.clear_headers.extend(found.hide.clear_headers);
            effects.clear_query.extend(found.hide.clear_query);
            identity.consumer = Some(found.consumer);
            identity.credential = Some(found.credential);
            Ok(())
        }
        Err(exit) => match anonymous {
            Some(anonymous) => {
                let consumer = store.find(CONSUMERS, anonymous).cloned();
                identify(effects, consumer.as_ref(), None, true);
                identity.consumer = consumer;
                Ok(())
            }
            None => Err(exit),
        },
    }
}

/// The consumer headers authentication plugins set upstream (`set_consumer`): an absent
/// value clears the header, and `X-Anonymous-Consumer` marks a request without a
/// credential.
fn identify(
    effects: &mut Effects,
    consumer: Option<&Entity>,
    identifier: Option<&str>,
    anonymous: bool,
) {
    let field = |name: &str| {
        consumer
            .and_then(|entity| entity.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    effects.header("X-Consumer-ID", field("id"));
    effects.header("X-Consumer-Custom-ID", field("custom_id"));
    effects.header("X-Consumer-Username", field("username"));
    effects.header("X-Credential-Identifier", identifier.map(str::to_owned));
    effects.header("X-Anonymous-Consumer", anonymous.then(|| "true".to_owned()));
}

/// The consumer owning credential row `credential` (`consumer.id`), if it exists.
pub(super) fn owner(store: &Store, credential: &Entity) -> Option<Entity> {
    credentials::consumer_of(store, credential).cloned()
}

/// `credential` with its consumer: credentials go with their consumer, and one without
/// is no credential.
pub(super) fn owned(store: &Store, credential: Option<&Entity>) -> Option<(Entity, Entity)> {
    credential.and_then(|row| owner(store, row).map(|consumer| (row.clone(), consumer)))
}
