//! Unit tests of the store: versions, uniqueness, revisions, folders, snapshots.

use super::*;

/// A service at `path` for `verbs`.
fn service(name: &str, path: &str, verbs: &[&str]) -> Service {
    Service {
        guid: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        folder_id: ROOT_FOLDER_ID.to_owned(),
        enabled: true,
        resolution_path: Some(path.to_owned()),
        verbs: verbs.iter().map(|verb| (*verb).to_owned()).collect(),
        soap: false,
        internal: false,
        tracing_enabled: false,
        wss_processing_enabled: false,
        properties: Properties::new(),
        revisions: Revisions::new("<wsp:Policy/>", None),
    }
}

/// A cluster property.
fn property(name: &str, value: &str) -> ClusterProperty {
    ClusterProperty {
        name: name.to_owned(),
        value: value.to_owned(),
        description: None,
    }
}

#[test]
fn versions_start_at_zero_count_changes_and_refuse_stale_writes() -> Result<(), StoreError> {
    let mut store = Store::empty();
    let active = RevisionOptions::active();
    let created = store.save(None, property("a", "1"), None, &active)?;
    assert_eq!((created.version, created.change), (0, Change::Created));
    assert!(is_goid(&created.id));
    let same = store.save(Some(&created.id), property("a", "1"), Some(0), &active)?;
    assert_eq!((same.version, same.change), (0, Change::Unchanged));
    let updated = store.save(Some(&created.id), property("a", "2"), Some(0), &active)?;
    assert_eq!((updated.version, updated.change), (1, Change::Updated));
    let stale = store.save(Some(&created.id), property("a", "3"), Some(0), &active);
    assert!(
        matches!(
            stale,
            Err(StoreError::StaleVersion {
                given: 0,
                current: 1,
                ..
            })
        ),
        "{stale:?}"
    );
    assert_eq!(
        store.require::<ClusterProperty>(&created.id)?.entity.value,
        "2"
    );
    Ok(())
}

#[test]
fn services_conflict_on_the_same_path_only_when_a_verb_is_shared() -> Result<(), StoreError> {
    let mut store = Store::empty();
    let active = RevisionOptions::active();
    store.save(None, service("get", "/orders", &["GET"]), None, &active)?;
    store.save(None, service("post", "/orders", &["POST"]), None, &active)?;
    let clash = store.save(
        None,
        service("both", "/orders", &["POST", "PUT"]),
        None,
        &active,
    );
    assert!(
        matches!(
            clash,
            Err(StoreError::UniqueKeyConflict {
                field: "(resolution path, verbs)",
                ..
            })
        ),
        "{clash:?}"
    );
    assert_eq!(store.all::<Service>().len(), 2);
    assert_eq!(store.find::<Service>("path=/orders").len(), 2);
    Ok(())
}

#[test]
fn names_are_unique_where_layer7_says_so() -> Result<(), StoreError> {
    let mut store = Store::empty();
    let active = RevisionOptions::active();
    store.save(None, property("a", "1"), None, &active)?;
    let clash = store.save(None, property("a", "2"), None, &active);
    assert!(matches!(clash, Err(StoreError::UniqueKeyConflict { .. })));
    let folder = |name: &str| Folder {
        name: name.to_owned(),
        parent_id: Some(ROOT_FOLDER_ID.to_owned()),
    };
    let first = store.save(None, folder("apis"), None, &active)?;
    assert!(store.save(None, folder("apis"), None, &active).is_err());
    let nested = Folder {
        name: "apis".to_owned(),
        parent_id: Some(first.id.clone()),
    };
    store.save(None, nested, None, &active)?;
    assert_eq!(store.folder_path(&first.id).as_deref(), Some("/apis"));
    assert!(store.folder_by_path("/apis/apis").is_some());
    Ok(())
}

#[test]
fn a_changed_policy_is_a_new_revision_and_an_inactive_one_waits() -> Result<(), StoreError> {
    let mut store = Store::empty();
    let created = store.save(
        None,
        service("s", "/s", &["GET"]),
        None,
        &RevisionOptions {
            activate: true,
            comment: Some("first".to_owned()),
        },
    )?;
    let mut changed = store.require::<Service>(&created.id)?.entity.clone();
    changed.revisions = Revisions::new("<wsp:Policy><x/></wsp:Policy>", None);
    let saved = store.save(
        Some(&created.id),
        changed,
        None,
        &RevisionOptions {
            activate: false,
            comment: Some("second".to_owned()),
        },
    )?;
    assert_eq!(saved.change, Change::Updated);
    let stored = &store.require::<Service>(&created.id)?.entity;
    assert_eq!(stored.revisions.latest_ordinal(), 2);
    assert_eq!(stored.revisions.active_xml(), "<wsp:Policy/>");
    assert_eq!(
        stored.revisions.get(1).and_then(|r| r.comment.as_deref()),
        Some("first")
    );
    let activated = store.activate_revision::<Service>(&created.id, 2)?;
    assert_eq!(activated.version, 2);
    assert_eq!(
        store
            .require::<Service>(&created.id)?
            .entity
            .revisions
            .active_xml(),
        "<wsp:Policy><x/></wsp:Policy>"
    );
    Ok(())
}

#[test]
fn a_folder_with_contents_needs_force_and_the_root_stays() -> Result<(), StoreError> {
    let mut store = Store::empty();
    let active = RevisionOptions::active();
    let folder = store.save(
        None,
        Folder {
            name: "apis".to_owned(),
            parent_id: Some(ROOT_FOLDER_ID.to_owned()),
        },
        None,
        &active,
    )?;
    let mut inside = service("s", "/s", &["GET"]);
    inside.folder_id = folder.id.clone();
    store.save(None, inside, None, &active)?;
    assert!(matches!(
        store.delete_folder(&folder.id, false),
        Err(StoreError::FolderNotEmpty { .. })
    ));
    store.delete_folder(&folder.id, true)?;
    assert!(store.all::<Service>().is_empty());
    assert!(store.delete_folder(ROOT_FOLDER_ID, true).is_err());
    Ok(())
}

#[test]
fn references_must_exist() {
    let mut store = Store::empty();
    let mut orphan = service("s", "/s", &["GET"]);
    orphan.folder_id = new_goid();
    let refused = store.save(None, orphan, None, &RevisionOptions::active());
    assert!(
        matches!(refused, Err(StoreError::Invalid { .. })),
        "{refused:?}"
    );
}

#[test]
fn a_snapshot_loads_back_with_its_indexes() -> Result<(), Box<dyn std::error::Error>> {
    let mut store = Store::with_defaults()?;
    let active = RevisionOptions::active();
    store.save(None, service("s", "/s", &["GET"]), None, &active)?;
    let loaded = Store::from_snapshot(&store.snapshot())?;
    assert_eq!(loaded.find::<Service>("path=/s").len(), 1);
    assert_eq!(loaded.all::<ListenPort>().len(), 4);
    let ssl = loaded.key_for_purpose("SSL").ok_or("no SSL key")?;
    assert_eq!(ssl.id, format!("{DEFAULT_KEYSTORE_ID}:ssl"));
    assert!(Store::from_snapshot(&serde_json::json!({"folders": 3})).is_err());
    Ok(())
}

#[test]
fn special_purposes_move_between_keys() -> Result<(), Box<dyn std::error::Error>> {
    let mut store = Store::with_defaults()?;
    let ssl = store.key_for_purpose("SSL").ok_or("no SSL key")?.clone();
    let mut other = ssl.entity.clone();
    other.alias = "new".to_owned();
    other.special_purposes.clear();
    store.save(Some(&other.id()), other, None, &RevisionOptions::active())?;
    store.set_special_purposes(&format!("{DEFAULT_KEYSTORE_ID}:new"), &["SSL".to_owned()])?;
    let now = store.key_for_purpose("SSL").ok_or("no SSL key")?;
    assert_eq!(now.entity.alias, "new");
    assert!(
        store
            .require::<PrivateKey>(&ssl.id)?
            .entity
            .special_purposes
            .is_empty()
    );
    Ok(())
}

#[test]
fn a_private_key_a_listen_port_presents_cannot_be_deleted() -> Result<(), Box<dyn std::error::Error>>
{
    let mut store = Store::with_defaults()?;
    let id = format!("{DEFAULT_KEYSTORE_ID}:ssl");
    let refused = store
        .delete::<PrivateKey>(&id)
        .err()
        .ok_or("a key in use was deleted")?;
    assert!(
        matches!(&refused, StoreError::InUse { by, .. } if by.starts_with("listen port")),
        "{refused}"
    );
    assert!(store.get::<PrivateKey>(&id).is_some());
    let ports: Vec<String> = store
        .all::<ListenPort>()
        .iter()
        .map(|row| row.id.clone())
        .collect();
    for port in ports {
        store.delete::<ListenPort>(&port)?;
    }
    store.delete::<PrivateKey>(&id)?;
    assert!(store.get::<PrivateKey>(&id).is_none());
    Ok(())
}
