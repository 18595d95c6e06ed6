//! `layer7.cluster_property` against a real Layer7 twin over loopback HTTP:
//! create, update, no change, undo, probe, masking of sensitive values, 401
//! and a stale version.

use std::time::Duration;

use runsheet_engine::{Action, Probe};
use runsheet_twin::layer7::Layer7Twin;
use runsheet_twin::layer7::store::{ClusterProperty as StoredProperty, RevisionOptions};
use serde_json::{Value, json};

use super::{Layer7ClusterProperty, MASK};
use crate::layer7::gateway::Layer7Gateway;
use crate::layer7::restman::{ClusterProperty, WriteOptions};
use crate::layer7::twin_support::{context, context_with, control, twin, writes};
use crate::test_support::TestResult;

/// The property's value on the twin now, if it exists.
async fn value_of(twin: &Layer7Twin, name: &str) -> TestResult<Option<String>> {
    let gateway = Layer7Gateway::for_step(&context(twin, true)).await?;
    let found = gateway
        .restman
        .find_by_name::<ClusterProperty>(name)
        .await?;
    Ok(found.map(|property| property.value))
}

/// Creates a property over restman (outside the action); its id.
async fn create(twin: &Layer7Twin, name: &str, value: &str) -> TestResult<String> {
    let gateway = Layer7Gateway::for_step(&context(twin, false)).await?;
    let created = gateway
        .restman
        .create(&ClusterProperty::new(name, value), &WriteOptions::default())
        .await?;
    Ok(created.id.ok_or("no id")?)
}

fn text(error: impl std::fmt::Display) -> String {
    error.to_string()
}

#[tokio::test]
async fn creates_updates_and_undoes_each() -> TestResult {
    let twin = twin().await?;
    let action = Layer7ClusterProperty::new();
    let fine = json!({"name": "log.level", "value": "FINE"});

    let plan = action.plan(&context(&twin, true), fine.clone()).await?;
    assert_eq!(
        plan.summary,
        "create cluster property `log.level` = \"FINE\""
    );
    assert_eq!(plan.changes, Some(true));
    assert_eq!(writes(&twin).await?, 0, "a plan only reads");

    let created = action.apply(&context(&twin, false), fine.clone()).await?;
    assert_eq!(created.outputs["changed"], json!(true));
    assert_eq!(created.outputs["previous_value"], Value::Null);
    let id = created.outputs["id"].as_str().ok_or("no id")?.to_owned();
    assert_eq!(value_of(&twin, "log.level").await?.as_deref(), Some("FINE"));
    assert_eq!(writes(&twin).await?, 1);

    // Again: nothing written.
    let again = action.apply(&context(&twin, false), fine.clone()).await?;
    assert_eq!(again.outputs["changed"], json!(false));
    assert_eq!(again.outputs["id"], json!(id));
    assert_eq!(again.outputs["previous_value"], json!("FINE"));
    assert_eq!(writes(&twin).await?, 1);
    let none = action.plan(&context(&twin, true), fine.clone()).await?;
    assert_eq!(none.changes, Some(false));
    assert!(matches!(
        action.probe(&context(&twin, true), fine.clone()).await?,
        Probe::Done(_)
    ));

    let finer = json!({"name": "log.level", "value": "FINER"});
    assert!(matches!(
        action.probe(&context(&twin, true), finer.clone()).await?,
        Probe::NotDone
    ));
    let plan = action.plan(&context(&twin, true), finer.clone()).await?;
    assert_eq!(
        plan.summary,
        "cluster property `log.level`: value \"FINE\" -> \"FINER\""
    );
    assert_eq!(plan.before.as_deref(), Some("value: FINE\n"));
    assert_eq!(plan.after.as_deref(), Some("value: FINER\n"));
    let updated = action.apply(&context(&twin, false), finer.clone()).await?;
    assert_eq!(updated.outputs["previous_value"], json!("FINE"));
    assert_eq!(updated.outputs["id"], json!(id));
    assert_eq!(
        value_of(&twin, "log.level").await?.as_deref(),
        Some("FINER")
    );
    assert_eq!(writes(&twin).await?, 2);

    let undo = updated.undo.ok_or("no undo record")?;
    action
        .undo(&context(&twin, false), finer.clone(), undo)
        .await?;
    assert_eq!(value_of(&twin, "log.level").await?.as_deref(), Some("FINE"));
    let undo = created.undo.ok_or("no undo record")?;
    action
        .undo(&context(&twin, false), fine.clone(), undo.clone())
        .await?;
    assert_eq!(value_of(&twin, "log.level").await?, None);
    // Undo twice: already gone.
    action.undo(&context(&twin, false), fine, undo).await?;
    assert_eq!(writes(&twin).await?, 4);
    Ok(())
}

#[tokio::test]
async fn undo_puts_back_a_property_deleted_since() -> TestResult {
    let twin = twin().await?;
    let id = create(&twin, "io.timeout", "30000").await?;
    let action = Layer7ClusterProperty::new();
    let arguments = json!({"name": "io.timeout", "value": "60000"});
    let applied = action
        .apply(&context(&twin, false), arguments.clone())
        .await?;
    let gateway = Layer7Gateway::for_step(&context(&twin, false)).await?;
    gateway.restman.delete::<ClusterProperty>(&id).await?;
    action
        .undo(
            &context(&twin, false),
            arguments,
            applied.undo.ok_or("no undo record")?,
        )
        .await?;
    let back: ClusterProperty = gateway.restman.get(&id).await?;
    assert_eq!(back.value, "30000");
    Ok(())
}

#[tokio::test]
async fn sensitive_values_are_masked_everywhere_but_the_gateway() -> TestResult {
    let twin = twin().await?;
    create(&twin, "db.password", "old-s3cret").await?;
    let action = Layer7ClusterProperty::new();
    let arguments = json!({"name": "db.password", "value": "new-s3cret"});
    let plan = action
        .plan(&context(&twin, true), arguments.clone())
        .await?;
    let shown = serde_json::to_string(&plan)?;
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains(MASK), "{shown}");
    assert_eq!(plan.changes, Some(true));
    let applied = action
        .apply(&context(&twin, false), arguments.clone())
        .await?;
    assert_eq!(applied.outputs["previous_value"], json!(MASK));
    let outputs = serde_json::to_string(&applied.outputs)?;
    assert!(!outputs.contains("s3cret"), "{outputs}");
    let change = serde_json::to_string(&applied.change)?;
    assert!(!change.contains("s3cret"), "{change}");
    // The undo record needs the old value: it is listed as a secret for the executor.
    assert!(applied.secrets.contains(&"old-s3cret".to_owned()));
    assert!(applied.secrets.contains(&"new-s3cret".to_owned()));
    assert_eq!(
        value_of(&twin, "db.password").await?.as_deref(),
        Some("new-s3cret")
    );
    action
        .undo(
            &context(&twin, false),
            arguments,
            applied.undo.ok_or("no undo record")?,
        )
        .await?;
    assert_eq!(
        value_of(&twin, "db.password").await?.as_deref(),
        Some("old-s3cret")
    );
    let create = action
        .plan(
            &context(&twin, true),
            json!({"name": "api.token", "value": "tok-123"}),
        )
        .await?;
    assert_eq!(
        create.summary,
        format!("create cluster property `api.token` = {MASK}")
    );
    Ok(())
}

#[tokio::test]
async fn wrong_credentials_say_to_check_them() -> TestResult {
    let twin = twin().await?;
    let error = Layer7ClusterProperty::new()
        .apply(
            &context_with(&twin, false, "nope"),
            json!({"name": "a", "value": "b"}),
        )
        .await
        .map(|_| ())
        .err()
        .map(text)
        .unwrap_or_default();
    assert!(error.contains("401"), "{error}");
    assert!(error.contains("refused the credentials"), "{error}");
    assert_eq!(writes(&twin).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_change_between_read_and_write_is_a_conflict() -> TestResult {
    let twin = twin().await?;
    let id = create(&twin, "log.level", "INFO").await?;
    control(
        &twin,
        reqwest::Method::POST,
        "/_twin/faults",
        Some(json!({"latency_ms": 400, "writes_only": true})),
    )
    .await?;
    let step = tokio::spawn({
        let context = context(&twin, false);
        async move {
            Layer7ClusterProperty::new()
                .apply(&context, json!({"name": "log.level", "value": "FINE"}))
                .await
        }
    });
    let put = format!("PUT /restman/1.0/clusterProperties/{id}");
    let mut seen = false;
    for _ in 0..200 {
        let counters = control(&twin, reqwest::Method::GET, "/_twin/counters", None).await?;
        if counters["requests"][&put].as_u64() == Some(1) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen, "the step's PUT never arrived");
    twin.with_store(|store| {
        let property = StoredProperty {
            name: "log.level".to_owned(),
            value: "WARNING".to_owned(),
            description: None,
        };
        store
            .save(Some(&id), property, None, &RevisionOptions::active())
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?;
    let error = step.await?.map(|_| ()).err().map(text).unwrap_or_default();
    assert!(
        error.contains("cluster property `log.level` was changed"),
        "{error}"
    );
    assert!(error.contains("re-run the step"), "{error}");
    assert_eq!(
        value_of(&twin, "log.level").await?.as_deref(),
        Some("WARNING")
    );
    Ok(())
}
