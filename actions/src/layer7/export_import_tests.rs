//! `layer7.export` and `layer7.import` against the Layer7 twin over loopback HTTP:
//! selections, byte-stable files, test-mode plans with diffs, 409s naming the
//! mapping, undo back to the normalised pre-state, probes after a crash.


use runsheet_engine::{Action, EffectKind, Probe, StepContext};
use runsheet_twin::layer7::Layer7Twin;
use serde_json::{Value, json};

use super::export::Layer7Export;
use super::import::Layer7Import;
use super::restman::{Bundle, ExportQuery};
use super::twin_support::{
    PASSWORD, USERNAME, context, context_in, context_with, control, export_to, twin, waiting, writes,
};
use super::{Layer7Error, Layer7Gateway};
use crate::test_support::{TestResult, message};

const ROOT: &str = "0000000000000000ffffffffffffec76";
const APIS: &str = "a0000000000000000000000000000001";
const ORDERS: &str = "5e000000000000000000000000000001";
const BILLING: &str = "5e000000000000000000000000000002";
const FRAGMENT: &str = "90000000000000000000000000000001";
const FEATURE: &str = "c0000000000000000000000000000001";
const OTHER: &str = "c0000000000000000000000000000002";
const NAMESPACE: &str = "http://ns.l7tech.com/2010/04/gateway-management";

/// PUTs an entity document at `/restman/1.0/{path}`; fails unless the twin accepts it.
pub(super) async fn put(twin: &Layer7Twin, path: &str, body: String) -> TestResult {
    let response = reqwest::Client::new()
        .put(format!("{}/restman/1.0/{path}", twin.url()))
        .basic_auth(USERNAME, Some(PASSWORD))
        .header("content-type", "application/xml")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        return Err(format!("PUT {path}: {status}: {text}").into());
    }
    Ok(())
}

/// XML-escapes text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A policy answering `body`.
pub(super) fn policy_xml(body: &str) -> String {
    format!(
        r#"<wsp:Policy xmlns:L7p="http://www.layer7tech.com/ws/policy" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy"><wsp:All wsp:Usage="Required"><L7p:HardcodedResponse><L7p:ResponseBody>{body}</L7p:ResponseBody></L7p:HardcodedResponse></wsp:All></wsp:Policy>"#
    )
}

/// A service document.
pub(super) fn service(name: &str, path: &str, body: &str, folder: &str) -> String {
    format!(
        r#"<l7:Service xmlns:l7="{NAMESPACE}"><l7:ServiceDetail folderId="{folder}"><l7:Name>{name}</l7:Name><l7:Enabled>true</l7:Enabled><l7:ServiceMappings><l7:HttpMapping><l7:UrlPattern>{path}</l7:UrlPattern><l7:Verbs><l7:Verb>GET</l7:Verb><l7:Verb>POST</l7:Verb></l7:Verbs></l7:HttpMapping></l7:ServiceMappings></l7:ServiceDetail><l7:Resources><l7:ResourceSet tag="policy"><l7:Resource type="policy">{}</l7:Resource></l7:ResourceSet></l7:Resources></l7:Service>"#,
        escape(&policy_xml(body))
    )
}

/// A policy fragment document.
pub(super) fn fragment(name: &str, body: &str) -> String {
    format!(
        r#"<l7:Policy xmlns:l7="{NAMESPACE}"><l7:PolicyDetail folderId="{ROOT}"><l7:Name>{name}</l7:Name><l7:PolicyType>Include</l7:PolicyType></l7:PolicyDetail><l7:Resources><l7:ResourceSet tag="policy"><l7:Resource type="policy">{}</l7:Resource></l7:ResourceSet></l7:Resources></l7:Policy>"#,
        escape(&policy_xml(body))
    )
}

fn folder(name: &str, parent: &str) -> String {
    format!(
        r#"<l7:Folder xmlns:l7="{NAMESPACE}" folderId="{parent}"><l7:Name>{name}</l7:Name></l7:Folder>"#
    )
}

fn cluster_property(name: &str, value: &str) -> String {
    format!(
        r#"<l7:ClusterProperty xmlns:l7="{NAMESPACE}"><l7:Name>{name}</l7:Name><l7:Value>{value}</l7:Value></l7:ClusterProperty>"#
    )
}

/// The source ("UAT"): folder `/apis` with service `/orders`, service `/billing`,
/// fragment `auth-fragment`, cluster properties `feature.x` and `other.prop`.
async fn seed_source(twin: &Layer7Twin) -> TestResult {
    put(twin, &format!("folders/{APIS}"), folder("apis", ROOT)).await?;
    put(
        twin,
        &format!("services/{ORDERS}"),
        service("orders", "/orders", "orders v2", APIS),
    )
    .await?;
    put(
        twin,
        &format!("services/{BILLING}"),
        service("billing", "/billing", "billing v1", ROOT),
    )
    .await?;
    put(
        twin,
        &format!("policies/{FRAGMENT}"),
        fragment("auth-fragment", "auth"),
    )
    .await?;
    put(
        twin,
        &format!("clusterProperties/{FEATURE}"),
        cluster_property("feature.x", "on"),
    )
    .await?;
    put(
        twin,
        &format!("clusterProperties/{OTHER}"),
        cluster_property("other.prop", "1"),
    )
    .await
}

/// The target ("production"): folder `/apis` with an older `/orders`, and
/// `feature.x` off at another id; no `/billing`.
async fn seed_target(twin: &Layer7Twin) -> TestResult {
    put(twin, &format!("folders/{APIS}"), folder("apis", ROOT)).await?;
    put(
        twin,
        &format!("services/{ORDERS}"),
        service("orders", "/orders", "orders v1", APIS),
    )
    .await?;
    put(
        twin,
        "clusterProperties/c0000000000000000000000000000009",
        cluster_property("feature.x", "off"),
    )
    .await
}

/// The twin's whole state as a normalised bundle (for before/after comparisons).
async fn normalised_state(twin: &Layer7Twin) -> TestResult<String> {
    let gateway = Layer7Gateway::for_step(&context(twin, true)).await?;
    let bundle = gateway.restman.export(&ExportQuery::everything()).await?;
    Ok(bundle.normalised()?.to_xml()?)
}

#[tokio::test]
async fn export_writes_the_selection_with_dependencies_byte_for_byte_stable() -> TestResult {
    let twin = twin().await?;
    seed_source(&twin).await?;
    let dir = tempfile::tempdir()?;
    let before = writes(&twin).await?;
    let select = json!({"services": ["/orders"], "cluster_properties": ["feature.x"]});
    let applied = Layer7Export::new()
        .apply(
            &context_in(&twin, false, dir.path()),
            json!({"path": "out/first.xml", "select": select}),
        )
        .await?;
    let first = std::fs::read(dir.path().join("out/first.xml"))?;
    let outputs = &applied.outputs;
    assert_eq!(outputs["summary"]["SERVICE"], json!(1));
    assert_eq!(outputs["summary"]["CLUSTER_PROPERTY"], json!(1));
    assert_eq!(outputs["summary"]["FOLDER"], json!(2), "{outputs:?}");
    assert_eq!(outputs["entities"], json!(4));
    assert_eq!(outputs["written"], json!(true));
    assert_eq!(
        outputs["path"],
        json!(dir.path().join("out/first.xml").display().to_string())
    );
    let bundle = Bundle::parse(std::str::from_utf8(&first)?)?;
    assert!(bundle.item("SERVICE", ORDERS).is_some());
    assert!(bundle.item("SERVICE", BILLING).is_none());
    // The second export of the same state is the same file, time stamps included.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = export_to("restman", &twin, dir.path(), "second.xml", select).await?;
    assert_eq!(std::fs::read(second)?, first);
    assert_eq!(
        outputs["sha256"],
        json!(crate::artefact::sha256_hex(&first))
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join("out/first.xml"))?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(writes(&twin).await?, before, "an export writes nothing");
    Ok(())
}

#[tokio::test]
async fn export_without_select_takes_the_whole_gateway_and_a_dry_run_writes_no_file() -> TestResult
{
    let twin = twin().await?;
    seed_source(&twin).await?;
    let dir = tempfile::tempdir()?;
    let export = Layer7Export::new();
    let dry = context_in(&twin, true, dir.path());
    let seeded = writes(&twin).await?;
    let applied = export.apply(&dry, json!({"path": "all.xml"})).await?;
    assert_eq!(applied.outputs["written"], json!(false));
    assert!(!dir.path().join("all.xml").exists());
    assert_eq!(applied.outputs["summary"]["SERVICE"], json!(2));
    assert_eq!(applied.outputs["summary"]["POLICY"], json!(1));
    assert_eq!(applied.outputs["summary"]["CLUSTER_PROPERTY"], json!(2));
    let plan = export.plan(&dry, json!({"path": "all.xml"})).await?;
    assert!(
        plan.summary.starts_with(&format!(
            "would write bundle {}",
            dir.path().join("all.xml").display()
        )),
        "{}",
        plan.summary
    );
    assert!(plan.summary.contains("SERVICE 2"), "{}", plan.summary);
    assert_eq!(writes(&twin).await?, seeded);
    Ok(())
}

#[tokio::test]
async fn export_names_every_missing_selection_and_refuses_bad_credentials() -> TestResult {
    let twin = twin().await?;
    seed_source(&twin).await?;
    let dir = tempfile::tempdir()?;
    let export = Layer7Export::new();
    let context = context_in(&twin, false, dir.path());
    let missing = message(
        export
            .apply(
                &context,
                json!({"path": "x.xml", "select": {
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
    assert!(!dir.path().join("x.xml").exists());
    let empty = message(
        export
            .apply(&context, json!({"path": "x.xml", "select": {}}))
            .await,
    )?;
    assert!(empty.contains("names no entity"), "{empty}");
    let refused = message(
        export
            .apply(
                &context_with(&twin, false, "wrong"),
                json!({"path": dir.path().join("y.xml")}),
            )
            .await,
    )?;
    assert!(refused.contains("401"), "{refused}");
    assert!(refused.contains("credentials"), "{refused}");
    assert!(!refused.contains("wrong"), "{refused}");
    Ok(())
}

#[tokio::test]
async fn export_by_folder_and_policy_names() -> TestResult {
    let twin = twin().await?;
    seed_source(&twin).await?;
    let dir = tempfile::tempdir()?;
    let path = export_to(
        "restman",
        &twin,
        dir.path(),
        "f.xml",
        json!({"folders": ["/apis"], "policies": ["auth-fragment"], "services": ["billing"]}),
    )
    .await?;
    let bundle = Bundle::parse(&std::fs::read_to_string(path)?)?;
    assert!(bundle.item("FOLDER", APIS).is_some());
    assert!(
        bundle.item("SERVICE", ORDERS).is_some(),
        "the folder's contents"
    );
    assert!(bundle.item("SERVICE", BILLING).is_some());
    assert!(bundle.item("POLICY", FRAGMENT).is_some());
    assert!(bundle.item("CLUSTER_PROPERTY", FEATURE).is_none());
    Ok(())
}

/// A source twin, a target twin and the source's export of `/orders`,
/// `/billing` and `feature.x` in a temporary directory.
struct Migration {
    target: Layer7Twin,
    dir: tempfile::TempDir,
    _source: Layer7Twin,
}

impl Migration {
    async fn start() -> TestResult<Self> {
        let source = twin().await?;
        seed_source(&source).await?;
        let target = twin().await?;
        seed_target(&target).await?;
        let dir = tempfile::tempdir()?;
        export_to(
            "restman",
            &source,
            dir.path(),
            "bundle.xml",
            json!({"services": ["/orders", "/billing"], "cluster_properties": ["feature.x"]}),
        )
        .await?;
        Ok(Self {
            target,
            dir,
            _source: source,
        })
    }

    fn context(&self, dry_run: bool) -> StepContext {
        context_in(&self.target, dry_run, self.dir.path())
    }

    /// Import arguments; `feature.x` is mapped by name (it has another id on the target).
    fn arguments(&self) -> Value {
        json!({
            "bundle": "bundle.xml",
            "mappings": [{"kind": "CLUSTER_PROPERTY", "source": "feature.x", "action": "new_or_update", "map_by": "name"}],
            "comment": "CRQ-1"
        })
    }
}

#[tokio::test]
async fn import_plan_is_the_gateways_test_mode_per_entity_with_a_normalised_diff() -> TestResult {
    let migration = Migration::start().await?;
    let seeded = writes(&migration.target).await?;
    let change = Layer7Import::new()
        .plan(&migration.context(true), migration.arguments())
        .await?;
    let summary = &change.summary;
    assert!(summary.starts_with("import bundle "), "{summary}");
    assert!(
        summary
            .contains("1 to create, 3 to update (2 with changes), 0 to delete, 1 used as they are"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("~ SERVICE `orders` ({ORDERS}): UpdatedExisting")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("+ SERVICE `billing` ({BILLING}): CreatedNew")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "~ CLUSTER_PROPERTY `feature.x` ({FEATURE}): UpdatedExisting (target c0000000000000000000000000000009)"
        )),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("= FOLDER `apis` ({APIS})")),
        "{summary}"
    );
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
    assert!(before.contains("<l7:Value>off</l7:Value>"), "{before}");
    assert!(after.contains("<l7:Value>on</l7:Value>"), "{after}");
    assert!(!before.contains("TimeStamp"), "normalised: {before}");
    // A second plan of the same state is the same text (saved plans compare).
    let again = Layer7Import::new()
        .plan(&migration.context(true), migration.arguments())
        .await?;
    assert_eq!(again, change);
    assert_eq!(
        writes(&migration.target).await?,
        seeded,
        "a plan writes nothing"
    );
    Ok(())
}

#[tokio::test]
async fn import_applies_and_undo_restores_the_normalised_pre_state() -> TestResult {
    let migration = Migration::start().await?;
    let target = &migration.target;
    let pre = normalised_state(target).await?;
    let import = Layer7Import::new();
    let context = migration.context(false);
    assert_eq!(
        import.effect_for(&migration.arguments()).kind,
        EffectKind::Write
    );
    let applied = import.apply(&context, migration.arguments()).await?;
    assert_eq!(applied.outputs["created"], json!(1));
    assert_eq!(applied.outputs["updated"], json!(3));
    assert_eq!(applied.outputs["used_existing"], json!(1));
    assert_eq!(applied.outputs["deleted"], json!(0));
    let results = applied.outputs["results"].as_array().ok_or("no results")?;
    let billing = results
        .iter()
        .find(|result| result["name"] == json!("billing"))
        .ok_or("no billing result")?;
    assert_eq!(billing["action_taken"], json!("CreatedNew"));
    assert_eq!(billing["target_id"], json!(BILLING));
    let imported = normalised_state(target).await?;
    assert_ne!(imported, pre);
    assert!(imported.contains("orders v2"));
    let undo = applied.undo.clone().ok_or("no undo record")?;
    assert!(
        undo["pre_state"]
            .as_str()
            .is_some_and(|xml| xml.contains("orders v1"))
    );
    assert_eq!(undo["created"][0]["id"], json!(BILLING));
    import.undo(&context, migration.arguments(), undo).await?;
    assert_eq!(
        normalised_state(target).await?,
        pre,
        "undo restores the pre-state"
    );
    Ok(())
}

#[tokio::test]
async fn test_mode_import_is_a_read_that_reports_per_entity_results() -> TestResult {
    let migration = Migration::start().await?;
    let import = Layer7Import::new();
    let seeded = writes(&migration.target).await?;
    let mut arguments = migration.arguments();
    arguments["test"] = json!(true);
    assert_eq!(import.effect_for(&arguments).kind, EffectKind::Read);
    let applied = import.apply(&migration.context(true), arguments).await?;
    assert_eq!(applied.outputs["test"], json!(true));
    assert_eq!(applied.outputs["created"], json!(1));
    assert!(applied.undo.is_none());
    assert_eq!(writes(&migration.target).await?, seeded);
    Ok(())
}

#[tokio::test]
async fn a_409_names_the_failing_mapping_and_changes_nothing() -> TestResult {
    let migration = Migration::start().await?;
    let target = &migration.target;
    // Another service already answers /billing on the target: a unique key conflict.
    put(
        target,
        "services/5e000000000000000000000000000099",
        service("billing-old", "/billing", "old", ROOT),
    )
    .await?;
    let before = writes(target).await?;
    let pre = normalised_state(target).await?;
    let import = Layer7Import::new();
    let planned = message(
        import
            .plan(&migration.context(true), migration.arguments())
            .await,
    )?;
    for part in [
        "test import of",
        "SERVICE `billing`",
        BILLING,
        "UniqueKeyConflict",
    ] {
        assert!(planned.contains(part), "{part}: {planned}");
    }
    let applied = message(
        import
            .apply(&migration.context(false), migration.arguments())
            .await,
    )?;
    assert!(applied.contains("UniqueKeyConflict"), "{applied}");
    assert!(applied.contains("SERVICE `billing`"), "{applied}");
    assert_eq!(writes(target).await?, before);
    assert_eq!(normalised_state(target).await?, pre);
    Ok(())
}

#[tokio::test]
async fn unreadable_bundles_and_bad_mappings_are_refused_naming_the_file() -> TestResult {
    let migration = Migration::start().await?;
    let import = Layer7Import::new();
    let context = migration.context(true);
    let missing = message(import.plan(&context, json!({"bundle": "nope.xml"})).await)?;
    assert!(
        missing.contains("cannot read bundle") && missing.contains("nope.xml"),
        "{missing}"
    );
    std::fs::write(
        migration.dir.path().join("bad.xml"),
        "<l7:Bundle><l7:References>",
    )?;
    let malformed = message(import.plan(&context, json!({"bundle": "bad.xml"})).await)?;
    assert!(
        malformed.contains("bad.xml") && malformed.contains("not a restman bundle"),
        "{malformed}"
    );
    let typo = message(
        import
            .plan(
                &context,
                json!({"bundle": "bundle.xml", "mappings": [{"kind": "SERVICE", "source": "ordres", "action": "ignore"}]}),
            )
            .await,
    )?;
    assert!(
        typo.contains("`ordres`") && typo.contains("matches no mapping"),
        "{typo}"
    );
    let graphman = message(
        import
            .plan(&context, json!({"bundle": "bundle.xml", "api": "graphman"}))
            .await,
    )?;
    assert!(
        graphman.contains("bundle.xml is a restman (XML) bundle")
            && graphman.contains("`api: restman`"),
        "{graphman}"
    );
    let mut refused_context = context_with(&migration.target, true, "wrong");
    refused_context.base_dir = migration.dir.path().to_owned();
    let refused = message(import.plan(&refused_context, migration.arguments()).await)?;
    assert!(
        refused.contains("401") && refused.contains("credentials"),
        "{refused}"
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
            let refused = message(import.undo(&context, migration.arguments(), undo).await)?;
            assert!(refused.contains("restore it by hand"), "{refused}");
        }
        other => return Err(format!("expected Done, got {other:?}").into()),
    }
    Ok(())
}

#[tokio::test]
async fn undo_puts_back_what_a_delete_mapping_removed() -> TestResult {
    let migration = Migration::start().await?;
    let target = &migration.target;
    let pre = normalised_state(target).await?;
    let import = Layer7Import::new();
    let context = migration.context(false);
    let arguments = json!({
        "bundle": "bundle.xml",
        "mappings": [
            {"kind": "SERVICE", "source": "orders", "action": "delete"},
            {"kind": "SERVICE", "source": "billing", "action": "ignore"},
            {"kind": "CLUSTER_PROPERTY", "action": "ignore"}
        ]
    });
    let applied = import.apply(&context, arguments.clone()).await?;
    assert_eq!(applied.outputs["deleted"], json!(1));
    let gateway = Layer7Gateway::for_step(&context).await?;
    let gone = gateway.restman.get::<super::restman::Service>(ORDERS).await;
    assert!(
        matches!(gone, Err(Layer7Error::NotFound { .. })),
        "{gone:?}"
    );
    import
        .undo(&context, arguments, applied.undo.ok_or("no undo")?)
        .await?;
    assert_eq!(normalised_state(target).await?, pre);
    Ok(())
}

#[tokio::test]
async fn a_test_import_after_the_import_finds_nothing_left_to_change() -> TestResult {
    let migration = Migration::start().await?;
    let import = Layer7Import::new();
    let context = migration.context(false);
    let mut test = migration.arguments();
    test["test"] = json!(true);
    let before = import.apply(&context, test.clone()).await?;
    assert!(
        before.outputs["changed"].as_u64() > Some(0) || before.outputs["created"] != json!(0),
        "{:?}",
        before.outputs
    );
    import.apply(&context, migration.arguments()).await?;
    let after = import.apply(&context, test).await?;
    for count in ["created", "changed", "deleted"] {
        assert_eq!(
            after.outputs[count],
            json!(0),
            "{count}: {:?}",
            after.outputs
        );
    }
    let touched = |outputs: &serde_json::Map<String, serde_json::Value>| {
        outputs["created"].as_u64().unwrap_or(0) + outputs["updated"].as_u64().unwrap_or(0)
    };
    assert_eq!(touched(&after.outputs), touched(&before.outputs));
    Ok(())
}

#[tokio::test]
async fn a_selection_of_hundreds_is_resolved_with_one_list_and_exported_in_parts() -> TestResult {
    let twin = twin().await?;
    let mut items = String::new();
    let mut mappings = String::new();
    let names: Vec<String> = (0..250).map(|n| format!("many.{n}")).collect();
    for (n, name) in names.iter().enumerate() {
        let id = format!("d{n:031x}");
        items.push_str(&format!(
            r#"<l7:Item><l7:Name>{name}</l7:Name><l7:Id>{id}</l7:Id><l7:Type>CLUSTER_PROPERTY</l7:Type><l7:Resource><l7:ClusterProperty id="{id}"><l7:Name>{name}</l7:Name><l7:Value>{n}</l7:Value></l7:ClusterProperty></l7:Resource></l7:Item>"#
        ));
        mappings.push_str(&format!(
            r#"<l7:Mapping action="NewOrUpdate" srcId="{id}" type="CLUSTER_PROPERTY"/>"#
        ));
    }
    twin.seed_bundle(&format!(
        r#"<l7:Bundle xmlns:l7="{NAMESPACE}"><l7:References>{items}</l7:References><l7:Mappings>{mappings}</l7:Mappings></l7:Bundle>"#
    ))?;
    let dir = tempfile::tempdir()?;
    let mut context = context(&twin, false);
    context.base_dir = dir.path().to_owned();
    let applied = Layer7Export::new()
        .apply(
            &context,
            json!({"path": "many.xml", "select": {"cluster_properties": names}}),
        )
        .await?;
    assert_eq!(applied.outputs["entities"], json!(250));
    let bundle = Bundle::parse(&std::fs::read_to_string(dir.path().join("many.xml"))?)?;
    assert_eq!(bundle.items.len(), 250);
    assert_eq!(bundle.mappings.len(), 250);
    let counters =
        super::twin_support::control(&twin, reqwest::Method::GET, "/_twin/counters", None).await?;
    let requests = counters["requests"].as_object().ok_or("no requests")?;
    let count = |prefix: &str| -> u64 {
        requests
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .filter_map(|(_, count)| count.as_u64())
            .sum()
    };
    assert_eq!(
        count("GET /restman/1.0/clusterProperties"),
        1,
        "{requests:?}"
    );
    assert_eq!(count("GET /restman/1.0/bundle"), 3, "{requests:?}");
    Ok(())
}

#[tokio::test]
async fn an_import_the_gateway_answers_too_late_is_partly_applied_not_failed() -> TestResult {
    let migration = Migration::start().await?;
    let target = &migration.target;
    control(
        target,
        reqwest::Method::POST,
        "/_twin/faults",
        Some(json!({"delay_nth_write": 1, "delay_ms": 800})),
    )
    .await?;
    let context = waiting(migration.context(false), std::time::Duration::from_millis(200));
    let error = Layer7Import::new()
        .apply(&context, migration.arguments())
        .await
        .err()
        .ok_or("the import succeeded")?;
    let runsheet_engine::ActionError::PartiallyApplied { message, changes_left } = &error else {
        return Err(format!("not partly applied: {error:?}").into());
    };
    assert!(message.contains("no answer within 200ms"), "{message}");
    assert_eq!(changes_left.len(), 1, "{changes_left:?}");
    assert!(changes_left[0].contains("may still take effect"), "{changes_left:?}");
    // It does land, as the message warned.
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    assert!(normalised_state(target).await?.contains("orders v2"));
    Ok(())
}
