//! Workspaces (reference §1.3) on an Enterprise twin, over real HTTP.
#![expect(
    clippy::unwrap_used,
    reason = "a request that cannot be sent or parsed fails the test"
)]

use runsheet_twin::kong::TwinConfig;
use serde_json::json;

mod support;
use support::Admin;

/// An Enterprise twin (four-part version).
async fn enterprise() -> Admin {
    Admin::start_with(TwinConfig::with_version("3.10.0.2")).await
}

#[tokio::test]
async fn workspaces_are_served_by_enterprise_twins_only() {
    let community = Admin::start().await;
    assert_eq!(community.get("/workspaces").await.status, 404);
    let admin = enterprise().await;
    assert_eq!(admin.get("/").await.body["edition"], "enterprise");
    let list = admin.get("/workspaces").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["data"][0]["name"], "default");
    assert_eq!(admin.get("/workspaces/default").await.status, 200);
}

#[tokio::test]
async fn entities_live_in_their_workspace_and_unprefixed_paths_act_on_default() {
    let admin = enterprise().await;
    let created = admin
        .post(
            "/workspaces",
            json!({"name": "team-a", "comment": "payments"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["config"], json!({}));
    let in_a = admin
        .post(
            "/team-a/services",
            json!({"name": "billing", "host": "a.internal"}),
        )
        .await;
    assert_eq!(in_a.status, 201, "{}", in_a.body);
    // The same name in default does not clash; each workspace sees only its own.
    let in_default = admin
        .post(
            "/services",
            json!({"name": "billing", "host": "d.internal"}),
        )
        .await;
    assert_eq!(in_default.status, 201, "{}", in_default.body);
    assert_eq!(
        admin.get("/team-a/services/billing").await.body["host"],
        "a.internal"
    );
    assert_eq!(
        admin.get("/default/services/billing").await.body["host"],
        "d.internal"
    );
    assert_eq!(
        admin.get("/services/billing").await.body["host"],
        "d.internal"
    );
    let duplicate = admin
        .post("/team-a/services", json!({"name": "billing", "host": "x"}))
        .await;
    assert_eq!(duplicate.status, 409);
    // An unknown workspace prefix is an unknown path.
    assert_eq!(admin.get("/team-b/services").await.status, 404);
}

#[tokio::test]
async fn workspace_names_are_checked_and_unique() {
    let admin = enterprise().await;
    assert_eq!(
        admin
            .post("/workspaces", json!({"name": "ops"}))
            .await
            .status,
        201
    );
    let again = admin.post("/workspaces", json!({"name": "ops"})).await;
    assert_eq!(again.status, 409);
    assert_eq!(
        again.body["message"],
        "UNIQUE violation detected on '{name=\"ops\"}'"
    );
    let reserved = admin.post("/workspaces", json!({"name": "services"})).await;
    assert_eq!(reserved.status, 400);
    assert_eq!(reserved.body["code"], 2);
    assert!(
        reserved.body["fields"]["name"]
            .as_str()
            .unwrap()
            .starts_with("must not be one of")
    );
    let missing = admin.post("/workspaces", json!({"comment": "x"})).await;
    assert_eq!(
        missing.body["fields"],
        json!({"name": "required field missing"})
    );
    let unknown = admin
        .post("/workspaces", json!({"name": "x", "colour": "red"}))
        .await;
    assert_eq!(unknown.body["fields"], json!({"colour": "unknown field"}));
}

#[tokio::test]
async fn workspaces_patch_and_delete_follow_kong() {
    let admin = enterprise().await;
    admin.post("/workspaces", json!({"name": "team-a"})).await;
    let patched = admin
        .patch("/workspaces/team-a", json!({"comment": "now"}))
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.body["comment"], "now");
    let renamed = admin
        .patch("/workspaces/team-a", json!({"name": "team-b"}))
        .await;
    assert_eq!(renamed.status, 400);
    admin
        .post("/team-a/services", json!({"name": "s", "host": "h"}))
        .await;
    let busy = admin.delete("/workspaces/team-a").await;
    assert_eq!(busy.status, 400);
    assert_eq!(busy.body, json!({"message": "Workspace is not empty"}));
    admin.delete("/team-a/services/s").await;
    assert_eq!(admin.delete("/workspaces/team-a").await.status, 204);
    assert_eq!(admin.get("/workspaces/team-a").await.status, 404);
    assert_eq!(admin.delete("/workspaces/team-a").await.status, 204);
    let default = admin.delete("/workspaces/default").await;
    assert_eq!(default.status, 400);
}

#[tokio::test]
async fn the_rbac_token_guards_workspaces_too() {
    let admin = Admin::start_with(TwinConfig {
        admin_token: Some("t".into()),
        ..TwinConfig::with_version("3.10.0.2")
    })
    .await;
    assert_eq!(admin.get("/workspaces").await.status, 401);
    assert_eq!(admin.get("/default/services").await.status, 401);
}

#[tokio::test]
async fn writes_inside_a_workspace_are_counted_and_faulted_like_any_other() {
    let admin = Admin::start_with(TwinConfig {
        control: true,
        ..TwinConfig::with_version("3.10.0.2")
    })
    .await;
    admin.post("/workspaces", json!({"name": "team-a"})).await;
    let fault = admin
        .post("/_twin/faults", json!({"fail_nth_write": 1, "status": 500}))
        .await;
    assert!(fault.status < 300, "{}", fault.body);
    let failed = admin
        .post("/team-a/services", json!({"name": "s", "host": "h"}))
        .await;
    assert_eq!(failed.status, 500);
    assert_eq!(admin.get("/team-a/services/s").await.status, 404);
    let counters = admin.get("/_twin/counters").await.body;
    assert_eq!(counters["writes"], 2, "{counters}");
}
