//! `layer7.export` and `layer7.import` with `api: graphman` against the Layer7 twin
//! over loopback HTTP: selections, byte-stable JSON files, test-mode plans that
//! write nothing, round trips between twins, undo back to the pre-state, entity
//! errors and write faults that change nothing, and format mix-ups refused.


use runsheet_engine::{Action, EffectKind, Probe, StepContext};
use runsheet_twin::layer7::Layer7Twin;
use serde_json::{Value, json};

use super::Layer7Gateway;
use super::export::Layer7Export;
use super::graphman::bundle::diff;
use super::graphman::{GraphmanBundle, GraphmanClient, GraphmanOptions};
use super::import::Layer7Import;
use super::twin_support::{context, context_in, control, export_to, twin, writes};
use crate::test_support::{TestResult, message};

/// A service at `path` in folder `folder` answering `body`.
fn service(name: &str, path: &str, folder: &str, body: &str) -> Value {
    json!({"name": name, "resolutionPath": path, "serviceType": "WEB_API", "enabled": true,
        "folderPath": folder, "methodsAllowed": ["GET", "POST"],
        "policy": {"xml": format!("<wsp:Policy><L7p:HardcodedResponse body=\"{body}\"/></wsp:Policy>")}})
}

/// The source ("UAT"): folder `/apis` with `/orders` (v2), `/billing` at the root,
/// fragment `auth-fragment`, cluster properties `feature.x` (on) and `other.prop`.
fn source_state() -> Value {
    json!({
        "folders": [{"name": "apis", "folderPath": "/apis"}],
        "clusterProperties": [{"name": "feature.x", "value": "on"}, {"name": "other.prop", "value": "1"}],
        "policies": [{"name": "auth-fragment", "folderPath": "/", "policyType": "FRAGMENT", "policy": {"xml": "<auth/>"}}],
        "services": [service("orders", "/orders", "/apis", "orders v2"), service("billing", "/billing", "/", "billing v1")],
    })
}

/// The target ("production"): folder `/apis` with an older `/orders`, `feature.x` off.
fn target_state() -> Value {
    json!({
        "folders": [{"name": "apis", "folderPath": "/apis"}],
        "clusterProperties": [{"name": "feature.x", "value": "off"}],
        "services": [service("orders", "/orders", "/apis", "orders v1")],
    })
}

/// The Graphman client of `twin` (outside a dry run).
async fn client(twin: &Layer7Twin) -> TestResult<GraphmanClient> {
    Ok(Layer7Gateway::for_step(&context(twin, false))
        .await?
        .graphman)
}

/// A twin holding `state` (installed through Graphman).
async fn seeded(state: Value) -> TestResult<Layer7Twin> {
    let twin = twin().await?;
    let bundle = GraphmanBundle::parse(&state.to_string())?;
    client(&twin)
        .await?
        .install_bundle(&bundle, &GraphmanOptions::default())
        .await?;
    Ok(twin)
}

/// The twin's whole state as a Graphman export (compared with [`diff`], by checksum).
async fn state(twin: &Layer7Twin) -> TestResult<GraphmanBundle> {
    Ok(client(twin).await?.export(None).await?)
}

/// Fails unless `before` and `after` hold the same configuration.
fn assert_same(before: &GraphmanBundle, after: &GraphmanBundle) -> TestResult {
    let difference = diff(before, after);
    if difference.is_empty() {
        Ok(())
    } else {
        Err(format!("the states differ: {difference:?}").into())
    }
}

/// Requests the twin has answered (control requests left out).
async fn requests(twin: &Layer7Twin) -> TestResult<u64> {
    let counters = control(twin, reqwest::Method::GET, "/_twin/counters", None).await?;
    Ok(counters["requests"]
        .as_object()
        .ok_or("no requests")?
        .iter()
        .filter(|(key, _)| !key.contains("/_twin"))
        .filter_map(|(_, count)| count.as_u64())
        .sum())
}

#[tokio::test]
async fn export_writes_the_selection_as_stable_json_without_secrets() -> TestResult {
    let twin = seeded(source_state()).await?;
    let dir = tempfile::tempdir()?;
    let before = writes(&twin).await?;
    let select = json!({"services": ["/orders"], "cluster_properties": ["feature.x"]});
    let applied = Layer7Export::new()
        .apply(
            &context_in(&twin, false, dir.path()),
            json!({"path": "out/first.json", "api": "graphman", "select": select}),
        )
        .await?;
    let outputs = &applied.outputs;
    assert_eq!(
        outputs["summary"],
        json!({"clusterProperties": 1, "services": 1}),
        "{outputs:?}"
    );
    assert_eq!(outputs["entities"], json!(2));
    assert_eq!(outputs["written"], json!(true));
    let first = std::fs::read(dir.path().join("out/first.json"))?;
    let bundle = GraphmanBundle::parse(std::str::from_utf8(&first)?)?;
    let paths: Vec<&Value> = bundle
        .entities("services")
        .iter()
        .map(|service| &service["resolutionPath"])
        .collect();
    assert_eq!(paths, [&json!("/orders")]);
    assert_eq!(
        bundle.entities("clusterProperties")[0]["value"],
        json!("on")
    );
    for secret in [
        "\"p12\"",
        "\"pem\"",
        "\"secret\"",
        "\"keys\"",
        "\"secrets\"",
    ] {
        assert!(
            !std::str::from_utf8(&first)?.contains(secret),
            "{secret} in the export"
        );
    }
    assert_eq!(
        outputs["sha256"],
        json!(crate::artefact::sha256_hex(&first))
    );
    let second = export_to("graphman", &twin, dir.path(), "second.json", select).await?;
    assert_eq!(std::fs::read(second)?, first, "byte for byte the same");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join("out/first.json"))?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(writes(&twin).await?, before, "an export writes nothing");
    Ok(())
}

#[tokio::test]
async fn export_of_everything_by_goid_and_folder_and_every_missing_name() -> TestResult {
    let twin = seeded(source_state()).await?;
    let dir = tempfile::tempdir()?;
    let export = Layer7Export::new();
    let dry = context_in(&twin, true, dir.path());
    let all = export
        .apply(&dry, json!({"path": "all.json", "api": "graphman"}))
        .await?;
    assert_eq!(all.outputs["written"], json!(false));
    assert!(!dir.path().join("all.json").exists());
    assert_eq!(
        all.outputs["summary"],
        json!({"clusterProperties": 2, "folders": 1, "policies": 1, "services": 2})
    );
    let plan = export
        .plan(&dry, json!({"path": "all.json", "api": "graphman"}))
        .await?;
    assert!(plan.summary.contains("services 2"), "{}", plan.summary);
    let billing = client(&twin)
        .await?
        .service_by_resolution_path("/billing")
        .await?
        .ok_or("no /billing")?;
    let goid = billing.goid;
    let path = export_to(
        "graphman",
        &twin,
        dir.path(),
        "f.json",
        json!({"folders": ["/apis"], "services": [goid], "policies": ["auth-fragment"]}),
    )
    .await?;
    let bundle = GraphmanBundle::parse(&std::fs::read_to_string(path)?)?;
    let sections: Vec<&str> = bundle.sections.keys().map(String::as_str).collect();
    assert_eq!(
        sections,
        ["folders", "policies", "services"],
        "dependency order"
    );
    assert_eq!(
        bundle.entities("services").len(),
        2,
        "the folder's /orders and /billing"
    );
    let missing = message(
        export
            .apply(
                &context_in(&twin, false, dir.path()),
                json!({"path": "x.json", "api": "graphman", "select": {
                    "services": ["/orders", "/nope"],
                    "folders": ["/apis", "/missing"],
                    "policies": ["ghost"],
                    "cluster_properties": ["feature.x", "no.such"]
                }}),
            )
            .await,
    )?;
    for named in [
        "service `/nope`",
        "folder `/missing`",
        "policy `ghost`",
        "cluster property `no.such`",
        "gateway `l7`",
    ] {
        assert!(missing.contains(named), "{named}: {missing}");
    }
    assert!(!missing.contains("`/orders`"), "{missing}");
    assert!(!dir.path().join("x.json").exists());
    let empty = message(
        export
            .apply(
                &dry,
                json!({"path": "x.json", "api": "graphman", "select": {}}),
            )
            .await,
    )?;
    assert!(empty.contains("names no entity"), "{empty}");
    assert_eq!(writes(&twin).await?, 1, "only the seed wrote");
    Ok(())
}

/// A source twin, a target twin and the source's Graphman export of `/orders`,
/// `/billing` and `feature.x` in a temporary directory.
struct Migration {
    source: Layer7Twin,
    target: Layer7Twin,
    dir: tempfile::TempDir,
}

impl Migration {
    async fn start() -> TestResult<Self> {
        let source = seeded(source_state()).await?;
        let target = seeded(target_state()).await?;
        let dir = tempfile::tempdir()?;
        export_to(
            "graphman",
            &source,
            dir.path(),
            "bundle.json",
            Self::selection(),
        )
        .await?;
        Ok(Self {
            source,
            target,
            dir,
        })
    }

    fn selection() -> Value {
        json!({"services": ["/orders", "/billing"], "cluster_properties": ["feature.x"]})
    }

    fn context(&self, dry_run: bool) -> StepContext {
        context_in(&self.target, dry_run, self.dir.path())
    }

    fn arguments(&self) -> Value {
        json!({"bundle": "bundle.json", "api": "graphman", "comment": "CRQ-1"})
    }
}

#[tokio::test]
async fn plan_is_the_gateways_test_mode_per_entity_and_writes_nothing() -> TestResult {
    let migration = Migration::start().await?;
    let seeded = writes(&migration.target).await?;
    let change = Layer7Import::new()
        .plan(&migration.context(true), migration.arguments())
        .await?;
    let summary = &change.summary;
    assert!(summary.starts_with("import Graphman bundle "), "{summary}");
    assert!(
        summary.contains("1 to create, 2 to update (2 with changes), 0 to delete"),
        "{summary}"
    );
    for line in [
        "~ services `orders` (resolutionPath=/orders, serviceType=WEB_API): NEW_OR_UPDATE -> UPDATED",
        "+ services `billing` (resolutionPath=/billing, serviceType=WEB_API): NEW_OR_UPDATE -> CREATED",
        "~ clusterProperties `feature.x` (name=feature.x): NEW_OR_UPDATE -> UPDATED",
    ] {
        assert!(summary.contains(line), "{line}: {summary}");
    }
    assert_eq!(change.changes, Some(true));
    let before = change.before.clone().unwrap_or_default();
    let after = change.after.clone().unwrap_or_default();
    assert!(
        before.contains("orders v1") && !before.contains("orders v2"),
        "{before}"
    );
    assert!(
        after.contains("orders v2") && after.contains("billing v1"),
        "{after}"
    );
    assert!(
        before.contains("\"off\"") && after.contains("\"on\""),
        "{before}{after}"
    );
    let again = Layer7Import::new()
        .plan(&migration.context(true), migration.arguments())
        .await?;
    assert_eq!(again, change, "a plan of the same state is the same");
    assert_eq!(
        writes(&migration.target).await?,
        seeded,
        "a plan writes nothing"
    );
    Ok(())
}

#[tokio::test]
async fn a_round_trip_makes_the_target_hold_the_selection_and_undo_restores_it() -> TestResult {
    let migration = Migration::start().await?;
    let target = &migration.target;
    let pre = state(target).await?;
    let import = Layer7Import::new();
    let context = migration.context(false);
    assert_eq!(
        import.effect_for(&migration.arguments()).kind,
        EffectKind::Write
    );
    let applied = import.apply(&context, migration.arguments()).await?;
    assert_eq!(applied.outputs["created"], json!(1));
    assert_eq!(applied.outputs["updated"], json!(2));
    assert_eq!(applied.outputs["test"], json!(false));
    let results = applied.outputs["results"].as_array().ok_or("no results")?;
    let billing = results
        .iter()
        .find(|result| result["name"] == json!("billing"))
        .ok_or("no billing result")?;
    assert_eq!(billing["status"], json!("CREATED"));
    assert_eq!(billing["action"], json!("NEW_OR_UPDATE"));
    assert_eq!(billing["type"], json!("services"));
    // The target now holds what the source holds, for the selection.
    let dir = migration.dir.path();
    let from = export_to(
        "graphman",
        &migration.source,
        dir,
        "from.json",
        Migration::selection(),
    )
    .await?;
    let to = export_to("graphman", target, dir, "to.json", Migration::selection()).await?;
    assert_same(
        &GraphmanBundle::parse(&std::fs::read_to_string(from)?)?,
        &GraphmanBundle::parse(&std::fs::read_to_string(to)?)?,
    )?;
    let undo = applied.undo.clone().ok_or("no undo record")?;
    assert_eq!(undo["kind"], json!("graphman_restore"));
    assert!(
        undo["pre_state"].to_string().contains("orders v1"),
        "{undo}"
    );
    assert_eq!(
        undo["created"][0]["identity"]["resolutionPath"],
        json!("/billing")
    );
    import.undo(&context, migration.arguments(), undo).await?;
    assert_same(&pre, &state(target).await?)?;
    assert!(
        client(target)
            .await?
            .service_by_resolution_path("/billing")
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn undo_removes_the_folders_and_entities_an_import_created() -> TestResult {
    let source = seeded(source_state()).await?;
    let target = seeded(json!({"clusterProperties": [{"name": "kept", "value": "1"}]})).await?;
    let dir = tempfile::tempdir()?;
    export_to(
        "graphman",
        &source,
        dir.path(),
        "apis.json",
        json!({"folders": ["/apis"], "policies": ["auth-fragment"]}),
    )
    .await?;
    let pre = state(&target).await?;
    let import = Layer7Import::new();
    let context = context_in(&target, false, dir.path());
    let arguments = json!({"bundle": "apis.json", "api": "graphman"});
    let applied = import.apply(&context, arguments.clone()).await?;
    assert_eq!(
        applied.outputs["created"],
        json!(3),
        "{:?}",
        applied.outputs
    );
    import
        .undo(&context, arguments, applied.undo.ok_or("no undo")?)
        .await?;
    let after = state(&target).await?;
    assert_same(&pre, &after)?;
    assert!(after.entities("folders").is_empty(), "{}", after.to_json());
    Ok(())
}

#[tokio::test]
async fn mappings_activate_false_and_test_mode_steps() -> TestResult {
    let migration = Migration::start().await?;
    let target = &migration.target;
    let import = Layer7Import::new();
    let seeded = writes(target).await?;
    let mut test = migration.arguments();
    test["test"] = json!(true);
    assert_eq!(import.effect_for(&test).kind, EffectKind::Read);
    let tested = import.apply(&migration.context(true), test).await?;
    assert_eq!(tested.outputs["test"], json!(true));
    assert_eq!(tested.outputs["created"], json!(1));
    assert!(tested.undo.is_none());
    assert_eq!(writes(target).await?, seeded);
    let refused = message(
        import
            .plan(
                &migration.context(true),
                json!({"bundle": "bundle.json", "api": "graphman",
                    "mappings": [{"kind": "CLUSTER_PROPERTY", "source": "feature.x", "action": "ignore", "map_by": "name"}]}),
            )
            .await,
    )?;
    assert!(refused.contains("map_by"), "{refused}");
    let typo = message(
        import
            .plan(
                &migration.context(true),
                json!({"bundle": "bundle.json", "api": "graphman",
                    "mappings": [{"kind": "services", "source": "/ordres", "action": "ignore"}]}),
            )
            .await,
    )?;
    assert!(
        typo.contains("/ordres") && typo.contains("matches no entity"),
        "{typo}"
    );
    let arguments = json!({"bundle": "bundle.json", "api": "graphman",
        "default_action": "new_or_existing", "activate": false,
        "mappings": [{"kind": "services", "source": "/orders", "action": "new_or_update"}]});
    let applied = import.apply(&migration.context(false), arguments).await?;
    let results = applied.outputs["results"].as_array().ok_or("no results")?;
    let status_of = |name: &str| {
        results
            .iter()
            .find(|result| result["name"] == json!(name))
            .map(|result| result["status"].clone())
    };
    assert_eq!(status_of("feature.x"), Some(json!("USED_EXISTING")));
    assert_eq!(status_of("orders"), Some(json!("UPDATED")));
    assert_eq!(status_of("billing"), Some(json!("CREATED")));
    let orders = client(target)
        .await?
        .service_by_resolution_path("/orders")
        .await?
        .ok_or("no /orders")?;
    let active = orders
        .policy
        .and_then(|policy| policy.xml)
        .unwrap_or_default();
    assert!(
        active.contains("orders v1"),
        "activate: false keeps v1 active: {active}"
    );
    Ok(())
}

#[tokio::test]
async fn a_bad_entity_fails_naming_it_and_changes_nothing() -> TestResult {
    let migration = Migration::start().await?;
    let target = &migration.target;
    let mut bundle = GraphmanBundle::parse(&std::fs::read_to_string(
        migration.dir.path().join("bundle.json"),
    )?)?;
    bundle.push("services", service("lost", "/lost", "/nowhere", "x"));
    std::fs::write(migration.dir.path().join("bad.json"), bundle.to_json())?;
    let pre = state(target).await?;
    let seeded = writes(target).await?;
    let import = Layer7Import::new();
    let arguments = json!({"bundle": "bad.json", "api": "graphman"});
    let planned = message(
        import
            .plan(&migration.context(true), arguments.clone())
            .await,
    )?;
    let applied = message(import.apply(&migration.context(false), arguments).await)?;
    for text in [&planned, &applied] {
        for part in [
            "/lost",
            "folder /nowhere does not exist",
            "bad.json",
            "gateway `l7`",
            "nothing was committed",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
    }
    assert!(planned.contains("test import"), "{planned}");
    assert_eq!(writes(target).await?, seeded);
    assert_same(&pre, &state(target).await?)?;
    Ok(())
}

#[tokio::test]
async fn a_failed_or_dropped_write_changes_nothing() -> TestResult {
    let migration = Migration::start().await?;
    let target = &migration.target;
    let pre = state(target).await?;
    let seeded = writes(target).await?;
    control(
        target,
        reqwest::Method::POST,
        "/_twin/faults",
        Some(json!({"fail_nth_write": 1, "status": 500})),
    )
    .await?;
    let failed = message(
        Layer7Import::new()
            .apply(&migration.context(false), migration.arguments())
            .await,
    )?;
    assert!(
        failed.contains("500") && failed.contains("bundle.json"),
        "{failed}"
    );
    assert!(failed.contains("nothing was committed"), "{failed}");
    control(
        target,
        reqwest::Method::POST,
        "/_twin/faults",
        Some(json!({"drop_nth_write": 1})),
    )
    .await?;
    let dropped = Layer7Import::new()
        .apply(&migration.context(false), migration.arguments())
        .await;
    // Sent, and the connection lost: the outcome is unknown, so the step is partly applied.
    assert!(
        matches!(dropped, Err(runsheet_engine::ActionError::PartiallyApplied { .. })),
        "{dropped:?}"
    );
    let dropped = message(dropped)?;
    assert!(
        dropped.contains("whether the gateway committed it is unknown"),
        "{dropped}"
    );
    control(target, reqwest::Method::DELETE, "/_twin/faults", None).await?;
    assert_eq!(writes(target).await?, seeded);
    assert_same(&pre, &state(target).await?)?;
    Ok(())
}

#[tokio::test]
async fn a_bundle_in_the_other_format_is_refused_before_any_request() -> TestResult {
    let migration = Migration::start().await?;
    let target = &migration.target;
    let dir = migration.dir.path();
    std::fs::write(
        dir.join("restman.xml"),
        "<?xml version=\"1.0\"?>\n<l7:Bundle xmlns:l7=\"http://ns.l7tech.com/2010/04/gateway-management\"><l7:References/><l7:Mappings/></l7:Bundle>",
    )?;
    let import = Layer7Import::new();
    let before = requests(target).await?;
    let as_graphman = message(
        import
            .plan(
                &migration.context(true),
                json!({"bundle": "restman.xml", "api": "graphman"}),
            )
            .await,
    )?;
    assert!(
        as_graphman.contains("restman.xml is a restman (XML) bundle")
            && as_graphman.contains("`api: restman`"),
        "{as_graphman}"
    );
    let as_restman = message(
        import
            .apply(&migration.context(false), json!({"bundle": "bundle.json"}))
            .await,
    )?;
    assert!(
        as_restman.contains("bundle.json is a Graphman (JSON) bundle")
            && as_restman.contains("`api: graphman`"),
        "{as_restman}"
    );
    assert_eq!(requests(target).await?, before, "no request was sent");
    std::fs::write(dir.join("list.json"), "[1, 2]")?;
    let not_object = message(
        import
            .plan(
                &migration.context(true),
                json!({"bundle": "list.json", "api": "graphman"}),
            )
            .await,
    )?;
    assert!(
        not_object.contains("is not a Graphman bundle"),
        "{not_object}"
    );
    Ok(())
}

#[tokio::test]
async fn probe_says_not_done_before_and_done_after_an_import() -> TestResult {
    let migration = Migration::start().await?;
    let import = Layer7Import::new();
    let context = migration.context(false);
    let before = import.probe(&context, migration.arguments()).await?;
    assert!(matches!(before, Probe::NotDone), "{before:?}");
    import.apply(&context, migration.arguments()).await?;
    match import.probe(&context, migration.arguments()).await? {
        Probe::Done(applied) => {
            assert_eq!(applied.outputs["created"], json!(0));
            let undo = applied.undo.ok_or("no undo record")?;
            assert_eq!(undo["kind"], json!("lost"));
        }
        other => return Err(format!("expected Done, got {other:?}").into()),
    }
    let always =
        json!({"bundle": "bundle.json", "api": "graphman", "default_action": "always_create_new"});
    let unknown = import.probe(&context, always).await?;
    assert!(matches!(unknown, Probe::Unknown(_)), "{unknown:?}");
    Ok(())
}

#[tokio::test]
async fn a_test_install_counts_the_changed_entities_and_none_after_the_install() -> TestResult {
    let migration = Migration::start().await?;
    let import = Layer7Import::new();
    let context = migration.context(false);
    let mut test = migration.arguments();
    test["test"] = json!(true);
    let before = import.apply(&context, test.clone()).await?;
    assert_eq!(before.outputs["created"], json!(1), "{:?}", before.outputs);
    assert!(
        before.outputs["changed"].as_u64() >= Some(1),
        "orders v1 -> v2 changes: {:?}",
        before.outputs
    );
    let applied = import.apply(&context, migration.arguments()).await?;
    assert_eq!(applied.outputs["changed"], before.outputs["changed"]);
    let after = import.apply(&context, test).await?;
    for count in ["created", "changed", "deleted"] {
        assert_eq!(
            after.outputs[count],
            json!(0),
            "{count}: {:?}",
            after.outputs
        );
    }
    Ok(())
}
