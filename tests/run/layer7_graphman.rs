//! `layer7.export` and `layer7.import` with `api: graphman` from the binary, between two
//! embedded Layer7 twins seeded with Graphman JSON bundles: a failing step after the
//! import rolls the target back, and the target's Graphman export taken in `finally`
//! is byte for byte the one taken before the import.

use crate::lab::{Lab, TestResult};

/// Services of the seeds: `/orders` answering `body`, in folder `/apis`.
fn orders(body: &str) -> String {
    format!(
        r#"{{"name": "orders", "resolutionPath": "/orders", "serviceType": "WEB_API", "folderPath": "/apis", "enabled": true, "methodsAllowed": ["GET"], "policy": {{"xml": "<policy>{body}</policy>"}}}}"#
    )
}

/// The source: a newer `/orders`, a new `/billing`, `feature.x` on.
fn uat() -> String {
    format!(
        r#"{{"folders": [{{"name": "apis", "folderPath": "/apis"}}],
  "clusterProperties": [{{"name": "feature.x", "value": "on"}}],
  "services": [{}, {{"name": "billing", "resolutionPath": "/billing", "serviceType": "WEB_API", "folderPath": "/", "policy": {{"xml": "<policy>billing</policy>"}}}}]}}"#,
        orders("v2")
    )
}

/// The target: an older `/orders`, `feature.x` off.
fn prod() -> String {
    format!(
        r#"{{"folders": [{{"name": "apis", "folderPath": "/apis"}}],
  "clusterProperties": [{{"name": "feature.x", "value": "off"}}],
  "services": [{}]}}"#,
        orders("v1")
    )
}

const ENVIRONMENT: &str = "runsheet: 1
name: l7pair
gateways:
  uat: {type: layer7, twin: {seed: uat.json}}
  prod: {type: layer7, twin: {seed: prod.json}}
";

const PLAYBOOK: &str = r#"runsheet: 1
name: l7-graphman-migration
steps:
  - id: before
    action: layer7.export
    on: prod
    with: {path: out/before.json, api: graphman}
  - id: export
    action: layer7.export
    on: uat
    with:
      path: out/bundle.json
      api: graphman
      select: {services: [/orders, /billing], cluster_properties: [feature.x]}
  - id: import
    action: layer7.import
    on: prod
    with: {bundle: out/bundle.json, api: graphman, comment: CRQ-42}
  - id: during
    action: layer7.export
    on: prod
    with: {path: out/during.json, api: graphman}
  - id: smoke
    action: fail
    with: {message: "smoke test failed"}
finally:
  - id: after
    action: layer7.export
    on: prod
    with: {path: out/after.json, api: graphman}
"#;

#[test]
fn a_failed_graphman_migration_rolls_the_target_back_to_its_export() -> TestResult {
    let lab = Lab::new()?;
    lab.write("env.yaml", ENVIRONMENT)?;
    lab.write("uat.json", &uat())?;
    lab.write("prod.json", &prod())?;
    lab.write("p.yaml", PLAYBOOK)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(1), "failed, rolled back:\n{}", run.all());
    let read = |name: &str| std::fs::read_to_string(lab.path().join("out").join(name));
    let before = read("before.json")?;
    let during = read("during.json")?;
    let after = read("after.json")?;
    assert!(before.contains("<policy>v1</policy>"), "{before}");
    assert!(
        during.contains("<policy>v2</policy>") && during.contains("/billing"),
        "the import took effect: {during}"
    );
    assert_eq!(after, before, "the rollback restored the target");
    Ok(())
}
