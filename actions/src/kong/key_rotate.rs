//! `kong.key_rotate` ([`KongKeyRotate`]): the dual-key rotation of a consumer's
//! key-auth key (reference §15), never leaving the consumer without a valid key.
//!
//! Order of writes: add the new key (tagged `runsheet-rotation:<id>`), check it
//! through the proxy ([`KeyCheck`]), and only then retire the old keys (a `ttl` of
//! `overlap` seconds, or DELETE). A failure before the retirement removes the new key
//! and leaves the old ones untouched; a failure during it restores the old keys first
//! and removes the new key after. The undo record ([`KeyRotateUndo`]) holds the old
//! keys (id, key, tags, expiry): undo makes them valid again, then deletes the new key.

use runsheet_engine::model::Duration;
use runsheet_engine::{
    Action, ActionError, ActionSpec, Applied, Change, Effect, Probe, StepContext, TargetKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::client::{KongClient, segment};
use super::gateway::KongGateway;
use super::key_verify::KeyCheck;
use super::kinds::kind;
use super::rotation::{
    RotationId, now_seconds, rfc3339, scrub, scrubbed, tag_prefix_for, tags_of, text,
};
use super::{FAMILY, KeyVerifyArguments, KongEntityKind, KongKeyRotateArguments};
use crate::arguments::parse;

/// The action's name.
const NAME: &str = "kong.key_rotate";

/// The tag a rotation adds to each old key it gives an expiry: that `ttl` is the
/// rotation's, not the key's own, so the undo of a rerun (which finds the key already
/// expiring) clears it instead of keeping it.
pub const RETIRED_TAG: &str = "runsheet-retired";

/// The largest `ttl` Kong accepts (reference §7.5).
const MAX_TTL: u64 = 100_000_000;

/// Seconds of slack when comparing a counted-down `ttl` with the one wanted.
const TTL_SLACK: i64 = 2;

/// The outputs of `kong.key_rotate`.
pub const OUTPUTS: &[&str] = &[
    "key",
    "key_id",
    "rotation_id",
    "revoked",
    "old_keys_expire_at",
];

/// The `kong.key_rotate` action.
#[derive(Debug, Clone)]
pub struct KongKeyRotate {
    spec: ActionSpec,
}

impl KongKeyRotate {
    /// The action with its catalogue entry.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<KongKeyRotateArguments>(
                NAME,
                FAMILY,
                "Rotates a consumer's key-auth key with an overlap; undo revokes the new key and keeps the old.",
                Effect::write().reversible(),
            )
            .target(TargetKind::Gateway("kong"))
            .outputs(OUTPUTS),
        }
    }
}

impl Default for KongKeyRotate {
    fn default() -> Self {
        Self::new()
    }
}

/// What undo needs: the consumer, the new key and the old keys as they were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotateUndo {
    /// The consumer's id.
    pub consumer_id: String,
    /// The consumer's name, for messages.
    pub consumer: String,
    /// The new key's id.
    pub new_key_id: String,
    /// Whether undo deletes the new key (false when it was on the consumer before any rotation).
    pub delete_new: bool,
    /// The old keys before the rotation.
    pub old_keys: Vec<OldKey>,
}

/// An old key as it was before the rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OldKey {
    /// Its id.
    pub id: String,
    /// Its key value (a secret).
    pub key: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// When it expired on its own before the rotation (Unix seconds), if it had a `ttl`.
    pub expires_at: Option<i64>,
}

#[async_trait::async_trait]
impl Action for KongKeyRotate {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn plan(&self, context: &StepContext, arguments: Value) -> Result<Change, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = KongGateway::for_step(context).await?;
        let found = Found::read(&gateway.client, &wanted.consumer).await?;
        let check = wanted.check(&gateway, context).await?;
        let reused = found.given_key(wanted.key.as_deref());
        if let Some(key) = reused {
            refuse_expiring(&found.label, key)?;
        }
        let old = found.old_keys(reused.map(|key| key.id.as_str()));
        let origin = match (&wanted.key, reused) {
            (_, Some(_)) => "given, already on the consumer: reused",
            (Some(_), None) => "given",
            (None, _) => "generated",
        };
        let summary = format!(
            "add a key for consumer {} ({origin}), {}, {}",
            found.label,
            verify_words(check.as_ref()),
            wanted.retire.plan_words(old.len())
        );
        let before = key_list(&found.keys);
        let mut after = key_list(&old);
        after.push_str("<new key>\n");
        Ok(Change::between(summary, Some(before), after))
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = KongGateway::for_step(context).await?;
        let client = &gateway.client;
        let found = Found::read(client, &wanted.consumer).await?;
        // Everything that can fail without a write fails here, before the first one.
        let check = wanted.check(&gateway, context).await?;
        if let Some(check) = &check {
            check.precheck().await?;
        }
        let reused = found.given_key(wanted.key.as_deref()).cloned();
        if let Some(key) = &reused {
            refuse_expiring(&found.label, key)?;
        }
        let old = found.old_keys(reused.as_ref().map(|key| key.id.as_str()));
        let now = now_seconds();
        let old_keys: Vec<OldKey> = old.iter().map(|key| key.remember(now)).collect();
        let rotation = reused
            .as_ref()
            .and_then(|key| RotationId::from_tags(&key.tags))
            .unwrap_or_else(|| RotationId::new(&found.label));

        let (new, delete_new) = match reused {
            // On the consumer already: added by an interrupted rotation (tagged), or before.
            Some(key) => {
                let tagged = RotationId::from_tags(&key.tags).is_some();
                (key, tagged)
            }
            None => (found.add_key(client, &wanted, &rotation).await?, true),
        };
        let record = KeyRotateUndo {
            consumer_id: found.id.clone(),
            consumer: found.label.clone(),
            new_key_id: new.id.clone(),
            delete_new,
            old_keys,
        };
        let mut secrets: Vec<String> = vec![new.key.clone()];
        secrets.extend(record.old_keys.iter().map(|key| key.key.clone()));

        if let Some(check) = &check
            && let Err(reason) = check.wait_accepted(&new.key).await
        {
            let mut left = Vec::new();
            let cleanup = if delete_new {
                match delete_key(client, &found.id, &new.id).await {
                    Ok(()) => "it was deleted".to_owned(),
                    Err(error) => {
                        left.push(format!(
                            "consumer {}: new key id {} added and not deleted",
                            found.label, new.id
                        ));
                        format!(
                            "deleting it failed too ({error}): delete key id {} of consumer {} by hand",
                            new.id, found.label
                        )
                    }
                }
            } else {
                "it was on the consumer before this step and stays".to_owned()
            };
            let message = format!(
                "consumer {}: the new key (id {}) was not accepted through the proxy: {reason}; {cleanup}; the old keys are untouched",
                found.label, new.id
            );
            let message = scrub(&message, &secret_refs(&secrets));
            return Err(if left.is_empty() {
                ActionError::failed(message)
            } else {
                ActionError::partially_applied(message, left)
            });
        }

        let retired = match wanted.retire.apply(client, &found.id, &old).await {
            Ok(retired) => retired,
            Err(RetireFailure {
                message: failure,
                in_doubt,
            }) => {
                let restored = revert(client, &record).await;
                let outcome = match &restored {
                    Ok(()) if record.delete_new => {
                        "the old keys were restored and the new key removed".to_owned()
                    }
                    Ok(()) => "the old keys were restored".to_owned(),
                    Err(error) => format!("restoring failed: {error}"),
                };
                let message = format!(
                    "consumer {}: retiring the old keys failed: {failure}; {outcome}",
                    found.label
                );
                let message = scrub(&message, &secret_refs(&secrets));
                return Err(match (restored, in_doubt) {
                    (Ok(()), None) => ActionError::failed(message),
                    // A retirement Kong may still apply after the restore.
                    (Ok(()), Some(doubt)) => ActionError::partially_applied(message, vec![doubt]),
                    // The consumer's keys are half rotated: the run must not end "rolled back".
                    (Err(_), _) => ActionError::partially_applied(message, left_by(&record)),
                });
            }
        };

        let expire_at = retired.iter().filter_map(|(_, at)| *at).max();
        let summary = format!(
            "consumer {}: added key {} ({}), {}, {}",
            found.label,
            new.id,
            if wanted.key.is_some() {
                "given"
            } else {
                "generated"
            },
            match &check {
                Some(check) => format!("accepted through {}", check.path),
                None => "not verified (verify.skip)".to_owned(),
            },
            wanted.retire.done_words(retired.len(), expire_at)
        );
        let mut after_keys: Vec<Credential> = match wanted.retire {
            Retire::Delete => Vec::new(),
            _ => old.clone(),
        };
        after_keys.push(new.clone());
        let change = Change::between(summary, Some(key_list(&found.keys)), key_list(&after_keys));
        let mut outputs = Map::new();
        outputs.insert("key".to_owned(), Value::from(new.key.clone()));
        outputs.insert("key_id".to_owned(), Value::from(new.id.clone()));
        outputs.insert("rotation_id".to_owned(), Value::from(rotation.0.clone()));
        outputs.insert(
            "revoked".to_owned(),
            Value::from(
                retired
                    .iter()
                    .map(|(id, _)| Value::from(id.clone()))
                    .collect::<Vec<_>>(),
            ),
        );
        outputs.insert(
            "old_keys_expire_at".to_owned(),
            expire_at.map_or(Value::Null, |at| Value::from(rfc3339(at))),
        );
        let undo = serde_json::to_value(&record)
            .map_err(|error| ActionError::failed(format!("{NAME}: undo record: {error}")))?;
        Ok(Applied {
            outputs,
            undo: Some(undo),
            change: Some(change),
            secrets,
        })
    }

    async fn undo(
        &self,
        context: &StepContext,
        _arguments: Value,
        undo: Value,
    ) -> Result<(), ActionError> {
        let record: KeyRotateUndo = crate::arguments::undo_record(NAME, undo)?;
        let gateway = KongGateway::for_step(context).await?;
        let secrets: Vec<&str> = record.old_keys.iter().map(|key| key.key.as_str()).collect();
        revert(&gateway.client, &record)
            .await
            .map_err(|error| scrubbed(error, &secrets))
    }

    async fn probe(&self, context: &StepContext, arguments: Value) -> Result<Probe, ActionError> {
        let wanted = Wanted::parse(arguments)?;
        let gateway = KongGateway::for_step(context).await?;
        let Some(found) = Found::find(&gateway.client, &wanted.consumer).await? else {
            return Ok(Probe::NotDone);
        };
        let others = |id: &str| {
            let list: Vec<String> = found
                .keys
                .iter()
                .filter(|key| key.id != id)
                .map(Credential::describe)
                .collect();
            if list.is_empty() {
                "none".to_owned()
            } else {
                list.join("; ")
            }
        };
        if let Some(key) = found.given_key(wanted.key.as_deref()) {
            return Ok(Probe::Unknown(format!(
                "the given key is on consumer {} ({}): the interrupted step added it, or it was there before; other keys: {}. Rerunning is safe: it reuses this key, checks it and retires the others",
                found.label,
                key.describe(),
                others(&key.id)
            )));
        }
        if wanted.key.is_some() {
            return Ok(Probe::NotDone);
        }
        // A generated key's value is not known: a key a rotation tagged that is at least as
        // new as every other key (Kong stamps `created_at` in whole seconds) may be the one
        // the interrupted step added.
        let prefix = tag_prefix_for(&found.label);
        let tagged = |key: &&Credential| key.tags.iter().any(|tag| tag.starts_with(&prefix));
        let newest_other = found
            .keys
            .iter()
            .filter(|key| !tagged(key))
            .map(|key| key.created_at)
            .max();
        let suspect = found
            .keys
            .iter()
            .filter(tagged)
            .filter(|key| newest_other.is_none_or(|newest| key.created_at >= newest))
            .max_by_key(|key| key.created_at);
        match suspect {
            Some(key) => Ok(Probe::Unknown(format!(
                "the newest key of consumer {} was added by a rotation ({}): the interrupted step may have added it, or an earlier rotation did; other keys: {}. Rerunning adds another key; if this one is the interrupted step's, delete it first (kong.entity key_auth absent) or keep it",
                found.label,
                key.describe(),
                others(&key.id)
            ))),
            _ => Ok(Probe::NotDone),
        }
    }
}

/// How the old keys are retired once the new key is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Retire {
    /// Each old key gets a `ttl` of this many seconds (the overlap), written as given.
    Expire {
        /// The overlap in seconds.
        seconds: u64,
        /// The overlap as written (`5m`).
        written: String,
    },
    /// Deleted at once.
    Delete,
    /// Left as they are.
    Keep,
}

impl Retire {
    /// The plan's words for `count` old keys.
    fn plan_words(&self, count: usize) -> String {
        if count == 0 {
            return "no old keys".to_owned();
        }
        match self {
            Retire::Expire { written, .. } => format!("{} expire after {written}", old_keys(count)),
            Retire::Delete => format!("{} deleted once it is verified", old_keys(count)),
            Retire::Keep => format!("{} kept", old_keys(count)),
        }
    }

    /// The summary's words once `count` keys were retired.
    fn done_words(&self, count: usize, expire_at: Option<i64>) -> String {
        match self {
            Retire::Keep => "old keys kept".to_owned(),
            _ if count == 0 => "no old keys".to_owned(),
            Retire::Expire { .. } => format!(
                "{} expire at {}",
                old_keys(count),
                expire_at.map_or_else(|| "-".to_owned(), rfc3339)
            ),
            Retire::Delete => format!("{} deleted", old_keys(count)),
        }
    }

    /// Retires `old`: the ids retired and when each expires (`None`: deleted). On a
    /// failure, what went wrong (retired keys so far are restored by the caller).
    async fn apply(
        &self,
        client: &KongClient,
        consumer_id: &str,
        old: &[Credential],
    ) -> Result<Vec<(String, Option<i64>)>, RetireFailure> {
        let mut retired = Vec::new();
        for key in old {
            match self {
                Retire::Keep => {}
                Retire::Delete => {
                    match client.delete(&key_path(consumer_id, &key.id)).await {
                        Ok(()) => {}
                        Err(error) if error.is_not_found() => {}
                        Err(error) if error.is_unanswered() => {
                            let path = key_path(consumer_id, &key.id);
                            let gone = client
                                .look_again(|| async {
                                    matches!(client.find(&path).await, Ok(None)).then_some(())
                                })
                                .await;
                            if gone.is_none() {
                                return Err(RetireFailure::in_doubt(
                                    format!("deleting key {}: {error}", key.id),
                                    format!("key id {} of consumer id {consumer_id}: its deletion may still take effect", key.id),
                                ));
                            }
                        }
                        Err(error) => {
                            return Err(RetireFailure::plain(format!(
                                "deleting key {}: {error}",
                                key.id
                            )));
                        }
                    }
                    retired.push((key.id.clone(), None));
                }
                Retire::Expire { seconds, .. } => {
                    let seconds = i64::try_from(*seconds).unwrap_or(i64::MAX);
                    let now = now_seconds();
                    // A key that already expires sooner keeps its own end.
                    let expires_at = match key.ttl {
                        Some(ttl) if ttl <= seconds => now + ttl,
                        _ => {
                            let mut tags = key.tags.clone();
                            if !tags.iter().any(|tag| tag == RETIRED_TAG) {
                                tags.push(RETIRED_TAG.to_owned());
                            }
                            let path = key_path(consumer_id, &key.id);
                            match client
                                .patch(&path, &json!({"ttl": seconds, "tags": tags}))
                                .await
                            {
                                Ok(_) => {}
                                Err(error) if error.is_unanswered() => {
                                    // The tag alone may be an earlier rotation's: the new
                                    // expiry is what shows this write.
                                    let landed = client
                                        .look_again(|| async {
                                            client.find(&path).await.ok().flatten().is_some_and(
                                                |found| {
                                                    tags_of(&found).iter().any(|tag| tag == RETIRED_TAG)
                                                        && found
                                                            .get("ttl")
                                                            .and_then(Value::as_i64)
                                                            .is_some_and(|ttl| ttl <= seconds)
                                                },
                                            ).then_some(())
                                        })
                                        .await;
                                    if landed.is_none() {
                                        return Err(RetireFailure::in_doubt(
                                            format!("setting ttl {seconds} on key {}: {error}", key.id),
                                            format!("key id {} of consumer id {consumer_id}: its expiry (ttl {seconds}) may still be set", key.id),
                                        ));
                                    }
                                }
                                Err(error) => {
                                    return Err(RetireFailure::plain(format!(
                                        "setting ttl {seconds} on key {}: {error}",
                                        key.id
                                    )));
                                }
                            }
                            now + seconds
                        }
                    };
                    retired.push((key.id.clone(), Some(expires_at)));
                }
            }
        }
        Ok(retired)
    }
}

/// The checked arguments.
#[derive(Debug, Clone)]
struct Wanted {
    consumer: String,
    key: Option<String>,
    retire: Retire,
    verify: KeyVerifyArguments,
}

impl Wanted {
    /// Reads the rendered arguments: one of `key` and `generate: true`; an overlap Kong can
    /// take as a `ttl`, not combined with `revoke_old: false`.
    fn parse(arguments: Value) -> Result<Self, ActionError> {
        let arguments: KongKeyRotateArguments = parse(NAME, arguments)?;
        let invalid = |message: String| ActionError::InvalidArguments {
            action: NAME,
            message,
        };
        match (&arguments.key, arguments.generate) {
            (Some(_), true) => {
                return Err(invalid(
                    "give either `key` or `generate: true`, not both".to_owned(),
                ));
            }
            (None, false) => {
                return Err(invalid(
                    "give the new key as `key`, or `generate: true` to let Kong generate it"
                        .to_owned(),
                ));
            }
            (Some(key), false) if key.is_empty() => {
                return Err(invalid("`key` is empty".to_owned()));
            }
            _ => {}
        }
        if arguments.consumer.is_empty() {
            return Err(invalid("`consumer` is empty".to_owned()));
        }
        let retire = match (arguments.overlap, arguments.revoke_old) {
            (Some(_), false) => {
                return Err(invalid(
                    "`overlap` retires the old keys after it: it cannot go with `revoke_old: false`"
                        .to_owned(),
                ));
            }
            (Some(overlap), true) => Retire::Expire {
                seconds: overlap_seconds(overlap).map_err(invalid)?,
                written: overlap.to_string(),
            },
            (None, true) => Retire::Delete,
            (None, false) => Retire::Keep,
        };
        let verify = arguments.verify;
        if verify.skip
            && (verify.path.is_some()
                || verify.header.is_some()
                || verify.expect_status.is_some()
                || verify.timeout.is_some())
        {
            return Err(invalid(
                "`verify.skip: true` takes no other verify setting".to_owned(),
            ));
        }
        Ok(Self {
            consumer: arguments.consumer,
            key: arguments.key,
            retire,
            verify,
        })
    }

    /// The key check, or `None` when skipped (announced).
    async fn check(
        &self,
        gateway: &KongGateway,
        context: &StepContext,
    ) -> Result<Option<KeyCheck>, ActionError> {
        if self.verify.skip {
            tracing::warn!(
                step = %context.step_id,
                consumer = %self.consumer,
                "kong.key_rotate: the new key is not checked through the proxy (verify.skip: true); old keys are retired unverified"
            );
            return Ok(None);
        }
        KeyCheck::resolve(gateway, &self.verify).await.map(Some)
    }
}

/// The overlap in whole seconds (rounded up), as Kong's `ttl` takes it.
fn overlap_seconds(overlap: Duration) -> Result<u64, String> {
    let millis = overlap.0.as_millis();
    let seconds = u64::try_from(millis.div_ceil(1000)).unwrap_or(u64::MAX);
    if seconds == 0 {
        return Err(
            "`overlap` must be at least 1s (leave it out to delete the old keys at once)"
                .to_owned(),
        );
    }
    if seconds > MAX_TTL {
        return Err(format!(
            "`overlap` is {overlap}: Kong takes a ttl of at most {MAX_TTL} seconds"
        ));
    }
    Ok(seconds)
}

/// A key-auth credential as read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Credential {
    id: String,
    key: String,
    tags: Vec<String>,
    /// Seconds left before it expires, when it has a `ttl`.
    ttl: Option<i64>,
    created_at: i64,
}

impl Credential {
    /// Reads one from Kong's answer.
    fn read(entity: &Value) -> Self {
        Self {
            id: text(entity, "id"),
            key: text(entity, "key"),
            tags: tags_of(entity),
            ttl: entity.get("ttl").and_then(Value::as_i64),
            created_at: entity
                .get("created_at")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
        }
    }

    /// What undo keeps of it, its expiry made absolute from `now`; an expiry an earlier
    /// rotation gave it ([`RETIRED_TAG`]) is not its own, so it is remembered without one.
    fn remember(&self, now: i64) -> OldKey {
        let retired = self.tags.iter().any(|tag| tag == RETIRED_TAG);
        OldKey {
            id: self.id.clone(),
            key: self.key.clone(),
            tags: self
                .tags
                .iter()
                .filter(|tag| *tag != RETIRED_TAG)
                .cloned()
                .collect(),
            expires_at: if retired {
                None
            } else {
                self.ttl.map(|ttl| now + ttl)
            },
        }
    }

    /// The key in words, without its value.
    fn describe(&self) -> String {
        let expiry = match self.ttl {
            Some(ttl) => format!("expires in {ttl}s"),
            None => "no expiry".to_owned(),
        };
        let tags = if self.tags.is_empty() {
            String::new()
        } else {
            format!(", tags {}", self.tags.join(","))
        };
        format!(
            "id {}, created {}, {expiry}{tags}",
            self.id,
            rfc3339(self.created_at)
        )
    }
}

/// The consumer and its keys, as found.
#[derive(Debug, Clone)]
struct Found {
    id: String,
    label: String,
    keys: Vec<Credential>,
}

impl Found {
    /// The consumer (username or id) and its keys; an error when it does not exist.
    async fn read(client: &KongClient, consumer: &str) -> Result<Self, ActionError> {
        Self::find(client, consumer).await?.ok_or_else(|| {
            ActionError::failed(format!(
                "consumer `{consumer}` not found on the gateway ({}/consumers/{})",
                client.base_url(),
                segment(consumer)
            ))
        })
    }

    /// The consumer and its keys; `None` when it does not exist.
    async fn find(client: &KongClient, consumer: &str) -> Result<Option<Self>, ActionError> {
        let Some(entity) = client
            .find(&format!("/consumers/{}", segment(consumer)))
            .await?
        else {
            return Ok(None);
        };
        let id = text(&entity, "id");
        let label = [text(&entity, "username"), text(&entity, "custom_id")]
            .into_iter()
            .find(|name| !name.is_empty())
            .unwrap_or_else(|| id.clone());
        let keys = list_keys(client, &id).await?;
        Ok(Some(Self { id, label, keys }))
    }

    /// The consumer's key with the given value.
    fn given_key(&self, key: Option<&str>) -> Option<&Credential> {
        let key = key?;
        self.keys.iter().find(|credential| credential.key == key)
    }

    /// Every key but `new_id`.
    fn old_keys(&self, new_id: Option<&str>) -> Vec<Credential> {
        self.keys
            .iter()
            .filter(|key| Some(key.id.as_str()) != new_id)
            .cloned()
            .collect()
    }

    /// Adds the new key, tagged with the rotation. When the POST fails, anything stored
    /// with the rotation's tag anyway (an answer lost on the way back) is removed.
    async fn add_key(
        &self,
        client: &KongClient,
        wanted: &Wanted,
        rotation: &RotationId,
    ) -> Result<Credential, ActionError> {
        let mut body = json!({"tags": [rotation.tag()]});
        if let Some(key) = &wanted.key {
            body["key"] = Value::from(key.clone());
        }
        let secrets: Vec<&str> = wanted.key.iter().map(String::as_str).collect();
        match client.post(&keys_path(&self.id), &body).await {
            Ok(created) => Ok(Credential::read(&created)),
            Err(error) if error.is_unanswered() => {
                // Kong may store the key late: wait for it, and go on with it if it comes.
                let tag = rotation.tag();
                let stored = client
                    .look_again(|| async {
                        list_keys(client, &self.id)
                            .await
                            .ok()
                            .and_then(|keys| keys.into_iter().find(|key| key.tags.contains(&tag)))
                    })
                    .await;
                stored.ok_or_else(|| {
                    scrubbed(
                        ActionError::partially_applied(
                            format!(
                                "consumer {}: adding the new key: {error}; the old keys are untouched",
                                self.label
                            ),
                            vec![format!(
                                "consumer {}: a key tagged {tag} may still be stored: delete it",
                                self.label
                            )],
                        ),
                        &secrets,
                    )
                })
            }
            Err(error) => {
                let cleanup = match self.remove_tagged(client, rotation).await {
                    Ok(0) => String::new(),
                    Ok(count) => format!("; {count} key(s) stored anyway were removed"),
                    Err(cleanup) => format!("; looking for a key stored anyway failed: {cleanup}"),
                };
                Err(scrubbed(
                    ActionError::failed(format!(
                        "consumer {}: adding the new key failed: {error}{cleanup}; the old keys are untouched",
                        self.label
                    )),
                    &secrets,
                ))
            }
        }
    }

    /// Deletes the consumer's keys tagged with `rotation`; how many.
    async fn remove_tagged(
        &self,
        client: &KongClient,
        rotation: &RotationId,
    ) -> Result<usize, ActionError> {
        let tag = rotation.tag();
        let mut removed = 0;
        for key in list_keys(client, &self.id).await? {
            if key.tags.contains(&tag) {
                delete_key(client, &self.id, &key.id).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// The consumer's valid keys.
async fn list_keys(client: &KongClient, consumer_id: &str) -> Result<Vec<Credential>, ActionError> {
    Ok(client
        .list(&keys_path(consumer_id))
        .await?
        .iter()
        .map(Credential::read)
        .collect())
}

/// `/consumers/{id}/key-auth`.
fn keys_path(consumer_id: &str) -> String {
    kind(KongEntityKind::KeyAuth).collection_path(Some(consumer_id))
}

/// `/consumers/{id}/key-auth/{key id}`: keys are always addressed by id, so that no key
/// value ever appears in a URL (and so in an error message).
fn key_path(consumer_id: &str, key_id: &str) -> String {
    kind(KongEntityKind::KeyAuth).entity_path(Some(consumer_id), key_id)
}

/// Why retiring the old keys failed.
#[derive(Debug)]
struct RetireFailure {
    /// What went wrong.
    message: String,
    /// A change Kong may still apply after the restore (a write that went unanswered).
    in_doubt: Option<String>,
}

impl RetireFailure {
    /// A failure that changed nothing more.
    fn plain(message: String) -> Self {
        Self {
            message,
            in_doubt: None,
        }
    }

    /// A failure whose write may still take effect (`doubt` names it for a person).
    fn in_doubt(message: String, doubt: String) -> Self {
        Self {
            message,
            in_doubt: Some(doubt),
        }
    }
}

/// Deletes one key by id; already gone counts as done (a nested DELETE of a missing key is 404).
async fn delete_key(
    client: &KongClient,
    consumer_id: &str,
    key_id: &str,
) -> Result<(), ActionError> {
    match client.delete(&key_path(consumer_id, key_id)).await {
        Err(error) if error.is_not_found() => Ok(()),
        outcome => Ok(outcome?),
    }
}

/// Makes every old key valid again as it was (no expiry, or its own expiry), re-creating
/// deleted or expired ones with their id and key; then, if at least one other valid key
/// is left, deletes the new key. Restores before it deletes, so that the consumer always
/// has a valid key.
async fn revert(client: &KongClient, record: &KeyRotateUndo) -> Result<(), ActionError> {
    if client
        .find(&format!("/consumers/{}", segment(&record.consumer_id)))
        .await?
        .is_none()
    {
        return Err(ActionError::failed(format!(
            "consumer {} (id {}) no longer exists: its keys cannot be restored",
            record.consumer, record.consumer_id
        )));
    }
    let current = list_keys(client, &record.consumer_id).await?;
    let now = now_seconds();
    for old in &record.old_keys {
        let left = old.expires_at.map(|at| at - now);
        if left.is_some_and(|left| left <= 0) {
            // It would have expired by now without the rotation.
            continue;
        }
        let path = key_path(&record.consumer_id, &old.id);
        match current.iter().find(|key| key.id == old.id) {
            Some(key) => {
                let wanted_ttl = left.unwrap_or(0);
                let right = match (key.ttl, left) {
                    (None, None) => true,
                    (Some(ttl), Some(left)) => (ttl - left).abs() <= TTL_SLACK,
                    _ => false,
                };
                if !right || key.tags != old.tags {
                    client
                        .patch(&path, &json!({"ttl": wanted_ttl, "tags": old.tags}))
                        .await
                        .map_err(|error| {
                            ActionError::failed(format!(
                                "consumer {}: restoring old key {}: {error}",
                                record.consumer, old.id
                            ))
                        })?;
                }
            }
            None => {
                let mut body = json!({"key": old.key, "tags": old.tags});
                if let Some(left) = left {
                    body["ttl"] = Value::from(left);
                }
                client.put(&path, &body).await.map_err(|error| {
                    ActionError::failed(scrub(
                        &format!(
                            "consumer {}: re-creating old key {}: {error}",
                            record.consumer, old.id
                        ),
                        &[old.key.as_str()],
                    ))
                })?;
            }
        }
    }
    if !record.delete_new {
        return Ok(());
    }
    let others = list_keys(client, &record.consumer_id)
        .await?
        .into_iter()
        .filter(|key| key.id != record.new_key_id)
        .count();
    if others == 0 {
        return Err(ActionError::failed(format!(
            "consumer {}: the new key (id {}) is kept: deleting it would leave the consumer without a valid key (its old keys expired or could not be restored)",
            record.consumer, record.new_key_id
        )));
    }
    delete_key(client, &record.consumer_id, &record.new_key_id).await
}

/// What a rotation whose restore failed may have left changed on the consumer, by key id.
fn left_by(record: &KeyRotateUndo) -> Vec<String> {
    let mut left = Vec::new();
    if record.delete_new {
        left.push(format!(
            "consumer {}: new key id {} added",
            record.consumer, record.new_key_id
        ));
    }
    if !record.old_keys.is_empty() {
        let ids: Vec<&str> = record.old_keys.iter().map(|key| key.id.as_str()).collect();
        left.push(format!(
            "consumer {}: old keys {} may be retired (expiring or deleted)",
            record.consumer,
            ids.join(", ")
        ));
    }
    left
}

/// Refuses to make a key that expires the new key: once the others are retired, the
/// consumer would be left without a valid key when it expires.
fn refuse_expiring(consumer: &str, key: &Credential) -> Result<(), ActionError> {
    match key.ttl {
        Some(ttl) => Err(ActionError::failed(format!(
            "consumer {consumer}: the given key is already on the consumer and expires in {ttl}s (key id {}): made the new key, it would be the only one left when it expires; nothing was changed: clear its expiry first (PATCH ttl 0) or give another key",
            key.id
        ))),
        None => Ok(()),
    }
}

/// `old keys (2)`.
fn old_keys(count: usize) -> String {
    format!("old keys ({count})")
}

/// The secrets as string slices, for [`scrub`].
fn secret_refs(secrets: &[String]) -> Vec<&str> {
    secrets.iter().map(String::as_str).collect()
}

/// Key ids, one a line, for a Change's before/after text (never the key values).
fn key_list(keys: &[Credential]) -> String {
    keys.iter()
        .map(|key| match key.ttl {
            Some(_) => format!("key {} (expires)\n", key.id),
            None => format!("key {}\n", key.id),
        })
        .collect()
}

/// The plan's words for the check.
fn verify_words(check: Option<&KeyCheck>) -> String {
    match check {
        Some(check) => format!("verify through {}", check.path),
        None => "no verification (verify.skip)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_need_one_of_key_and_generate() {
        let parsed = |value: Value| Wanted::parse(value).map(|wanted| wanted.retire);
        assert!(parsed(json!({"consumer": "alice"})).is_err());
        assert!(parsed(json!({"consumer": "alice", "key": "k", "generate": true})).is_err());
        assert!(parsed(json!({"consumer": "alice", "key": ""})).is_err());
        assert_eq!(
            parsed(json!({"consumer": "alice", "generate": true})).ok(),
            Some(Retire::Delete)
        );
        assert_eq!(
            parsed(json!({"consumer": "alice", "generate": true, "revoke_old": false})).ok(),
            Some(Retire::Keep)
        );
        assert_eq!(
            parsed(json!({"consumer": "alice", "generate": true, "overlap": "1500ms"})).ok(),
            Some(Retire::Expire {
                seconds: 2,
                written: "1s500ms".to_owned()
            })
        );
        assert!(
            parsed(
                json!({"consumer": "alice", "generate": true, "overlap": "5m", "revoke_old": false})
            )
            .is_err()
        );
        assert!(
            parsed(json!({"consumer": "alice", "generate": true, "verify": {"skip": true, "path": "/a"}}))
                .is_err()
        );
        assert!(
            parsed(json!({"consumer": "alice", "generate": true, "verify": {"paht": "/a"}}))
                .is_err()
        );
    }

    #[test]
    fn plan_words_count_the_old_keys() {
        let expire = Retire::Expire {
            seconds: 300,
            written: "5m".to_owned(),
        };
        assert_eq!(expire.plan_words(2), "old keys (2) expire after 5m");
        assert_eq!(Retire::Delete.plan_words(0), "no old keys");
        assert_eq!(
            Retire::Delete.plan_words(1),
            "old keys (1) deleted once it is verified"
        );
        assert_eq!(
            expire.done_words(1, Some(0)),
            "old keys (1) expire at 1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn undo_records_read_back() -> Result<(), serde_json::Error> {
        let record = KeyRotateUndo {
            consumer_id: "c".to_owned(),
            consumer: "alice".to_owned(),
            new_key_id: "n".to_owned(),
            delete_new: true,
            old_keys: vec![OldKey {
                id: "o".to_owned(),
                key: "k".to_owned(),
                tags: vec!["t".to_owned()],
                expires_at: Some(5),
            }],
        };
        let value = serde_json::to_value(&record)?;
        assert_eq!(serde_json::from_value::<KeyRotateUndo>(value)?, record);
        Ok(())
    }
}
