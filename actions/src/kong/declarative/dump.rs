//! Reads the gateway into a [`State`] ([`dump`]), as decK's dump does: every
//! collection listed to its end at 1000 entities a page, limited by `?tags=a,b`
//! (all of them) when select tags are given.
//!
//! Targets are listed per upstream of the dump and belong to the selection with their
//! upstream, tagged or not (Kong has no top-level target list and ignores `tags` on
//! nested lists); credentials and SNIs come from their top-level listings
//! (`/key-auths`, `/snis`), filtered by Kong.

use super::state::{Entity, State, now};
use crate::kong::KongEntityKind;
use crate::kong::client::{KongClient, KongError, segment};
use crate::kong::kinds::{KINDS, Kind};

/// Kong's largest page.
const PAGE_SIZE: usize = 1000;

/// The gateway's entities of every managed kind, limited to those carrying all `select_tags`.
pub async fn dump(client: &KongClient, select_tags: &[String]) -> Result<State, KongError> {
    let mut state = State::default();
    let now = now();
    for entry in KINDS {
        if entry.kind == KongEntityKind::Target {
            let upstreams: Vec<String> = state
                .of_kind(KongEntityKind::Upstream)
                .map(|upstream| upstream.id().to_owned())
                .collect();
            for upstream in upstreams {
                let path = format!(
                    "{}?size={PAGE_SIZE}",
                    entry.collection_path(Some(&upstream))
                );
                add(
                    &mut state,
                    entry,
                    client.list(&path).await?,
                    now,
                    select_tags,
                );
            }
            continue;
        }
        let path = listing_path(entry, select_tags);
        add(
            &mut state,
            entry,
            client.list(&path).await?,
            now,
            select_tags,
        );
    }
    Ok(state)
}

/// `/services?size=1000&tags=a,b`, or the top-level listing of a nested kind.
fn listing_path(entry: &Kind, select_tags: &[String]) -> String {
    let collection = entry.listing.unwrap_or(entry.collection);
    let mut path = format!("/{collection}?size={PAGE_SIZE}");
    if !select_tags.is_empty() {
        let tags: Vec<String> = select_tags.iter().map(|tag| segment(tag)).collect();
        path.push_str("&tags=");
        path.push_str(&tags.join(","));
    }
    path
}

/// Adds the listed entities that carry the select tags.
fn add(
    state: &mut State,
    entry: &Kind,
    listed: Vec<serde_json::Value>,
    now: i64,
    select_tags: &[String],
) {
    for answer in &listed {
        if let Some(entity) = Entity::from_kong(entry.kind, answer, now)
            && entity.has_tags(select_tags)
        {
            state.push(entity);
        }
    }
}
