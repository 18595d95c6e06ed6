//! `layer7.trusted_cert` against a real Layer7 twin over loopback HTTP: create,
//! replace (trust settings kept), no change, absent, undo of each, probe, the
//! thumbprint held under another name, bad PEM, expiry and 401.

use runsheet_engine::{Action, Probe};
use runsheet_twin::layer7::Layer7Twin;
use serde_json::{Value, json};

use super::{CertificateFacts, Layer7TrustedCert};
use crate::layer7::gateway::Layer7Gateway;
use crate::layer7::restman::{PropertyValue, TrustedCertificate, WriteOptions};
use crate::layer7::twin_support::{context, context_with, twin, writes};
use crate::test_support::TestResult;

const DAY: i64 = 86_400;

/// Now, Unix seconds.
fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A self-signed certificate for `cn` valid from yesterday for `days` days.
fn certificate(cn: &str, days: i64) -> TestResult<String> {
    Ok(super::tests::certificate(
        cn,
        now() - DAY,
        now() + days * DAY,
    )?)
}

/// The entry named `name` on the twin, if any.
async fn entry(twin: &Layer7Twin, name: &str) -> TestResult<Option<TrustedCertificate>> {
    let gateway = Layer7Gateway::for_step(&context(twin, true)).await?;
    Ok(gateway
        .restman
        .find_by_name::<TrustedCertificate>(name)
        .await?)
}

/// The SHA-1 thumbprint of the entry named `name`.
async fn thumbprint(twin: &Layer7Twin, name: &str) -> TestResult<Option<String>> {
    let Some(entry) = entry(twin, name).await? else {
        return Ok(None);
    };
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD.decode(
        entry
            .certificate
            .encoded
            .split_whitespace()
            .collect::<String>(),
    )?;
    Ok(Some(CertificateFacts::from_der(der)?.thumbprint_sha1))
}

/// The trust flag `key` of the entry named `name`.
async fn flag(twin: &Layer7Twin, name: &str, key: &str) -> TestResult<Option<bool>> {
    Ok(entry(twin, name).await?.and_then(|entry| {
        entry
            .properties
            .as_ref()
            .and_then(|p| p.get(key))
            .and_then(PropertyValue::as_bool)
    }))
}

fn text(error: impl std::fmt::Display) -> String {
    error.to_string()
}

#[tokio::test]
async fn creates_replaces_keeping_trust_and_undoes_each() -> TestResult {
    let twin = twin().await?;
    let action = Layer7TrustedCert::new();
    let first = certificate("partner.example", 365)?;
    let first_thumbprint = CertificateFacts::from_pem(&first)?.thumbprint_sha1;
    let create = json!({"name": "partner", "pem": first});

    let plan = action.plan(&context(&twin, true), create.clone()).await?;
    assert!(
        plan.summary
            .starts_with("create trusted certificate `partner` holding CN=partner.example (sha1 "),
        "{}",
        plan.summary
    );
    let after = plan.after.clone().unwrap_or_default();
    assert!(after.contains("subject: CN=partner.example\n"), "{after}");
    assert!(after.contains("issuer: CN=partner.example\n"), "{after}");
    assert!(
        after.contains(&format!("thumbprint_sha1: {first_thumbprint}\n")),
        "{after}"
    );
    assert!(after.contains("not_after: "), "{after}");
    assert_eq!(writes(&twin).await?, 0, "a plan only reads");

    let created = action.apply(&context(&twin, false), create.clone()).await?;
    assert_eq!(created.outputs["changed"], json!(true));
    assert_eq!(created.outputs["thumbprint_sha1"], json!(first_thumbprint));
    assert_eq!(created.outputs["warnings"], json!([]));
    let id = created.outputs["id"].as_str().ok_or("no id")?.to_owned();
    assert_eq!(
        thumbprint(&twin, "partner").await?,
        Some(first_thumbprint.clone())
    );
    assert_eq!(flag(&twin, "partner", "trustedForSsl").await?, Some(true));
    assert_eq!(flag(&twin, "partner", "trustAnchor").await?, Some(false));
    assert_eq!(writes(&twin).await?, 1);

    // Again: nothing written.
    let again = action.apply(&context(&twin, false), create.clone()).await?;
    assert_eq!(again.outputs["changed"], json!(false));
    assert_eq!(again.outputs["id"], json!(id));
    assert_eq!(writes(&twin).await?, 1);
    assert!(matches!(
        action.probe(&context(&twin, true), create.clone()).await?,
        Probe::Done(_)
    ));

    // An operator marks it a trust anchor; a replacement keeps that.
    let gateway = Layer7Gateway::for_step(&context(&twin, false)).await?;
    let mut current: TrustedCertificate = gateway.restman.get(&id).await?;
    current
        .properties
        .get_or_insert_with(Default::default)
        .set("trustAnchor", PropertyValue::Boolean(true));
    gateway
        .restman
        .put(&id, &current, &WriteOptions::default())
        .await?;
    let writes_before = writes(&twin).await?;

    let second = certificate("partner-2027.example", 365)?;
    let second_thumbprint = CertificateFacts::from_pem(&second)?.thumbprint_sha1;
    let replace = json!({"name": "partner", "pem": second});
    assert!(matches!(
        action.probe(&context(&twin, true), replace.clone()).await?,
        Probe::NotDone
    ));
    let plan = action.plan(&context(&twin, true), replace.clone()).await?;
    assert!(
        plan.summary.contains("replace CN=partner.example"),
        "{}",
        plan.summary
    );
    assert!(
        plan.summary.contains("with CN=partner-2027.example"),
        "{}",
        plan.summary
    );
    let before = plan.before.clone().unwrap_or_default();
    assert!(before.contains(&first_thumbprint), "{before}");
    assert!(
        plan.after
            .clone()
            .unwrap_or_default()
            .contains(&second_thumbprint)
    );
    let replaced = action
        .apply(&context(&twin, false), replace.clone())
        .await?;
    assert_eq!(replaced.outputs["id"], json!(id));
    assert_eq!(thumbprint(&twin, "partner").await?, Some(second_thumbprint));
    assert_eq!(flag(&twin, "partner", "trustAnchor").await?, Some(true));
    assert_eq!(writes(&twin).await?, writes_before + 1);

    action
        .undo(
            &context(&twin, false),
            replace,
            replaced.undo.ok_or("no undo record")?,
        )
        .await?;
    assert_eq!(thumbprint(&twin, "partner").await?, Some(first_thumbprint));
    assert_eq!(flag(&twin, "partner", "trustAnchor").await?, Some(true));
    action
        .undo(
            &context(&twin, false),
            create,
            created.undo.ok_or("no undo record")?,
        )
        .await?;
    assert!(entry(&twin, "partner").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn absent_deletes_by_name_and_undo_recreates_it_as_it_was() -> TestResult {
    let twin = twin().await?;
    let action = Layer7TrustedCert::new();
    let pem = certificate("old-partner.example", 365)?;
    let created = action
        .apply(&context(&twin, false), json!({"name": "old", "pem": pem}))
        .await?;
    let id = created.outputs["id"].clone();
    let absent = json!({"name": "old", "state": "absent"});
    assert!(matches!(
        action.probe(&context(&twin, true), absent.clone()).await?,
        Probe::NotDone
    ));
    let plan = action.plan(&context(&twin, true), absent.clone()).await?;
    assert!(
        plan.summary
            .starts_with("delete trusted certificate `old` (CN=old-partner.example"),
        "{}",
        plan.summary
    );
    assert_eq!(plan.changes, Some(true));
    let writes_before = writes(&twin).await?;
    let deleted = action.apply(&context(&twin, false), absent.clone()).await?;
    assert_eq!(deleted.outputs["changed"], json!(true));
    assert_eq!(deleted.outputs["id"], id);
    assert!(entry(&twin, "old").await?.is_none());
    assert_eq!(writes(&twin).await?, writes_before + 1);

    let again = action.apply(&context(&twin, false), absent.clone()).await?;
    assert_eq!(again.outputs["changed"], json!(false));
    assert_eq!(again.outputs["id"], Value::Null);
    assert_eq!(writes(&twin).await?, writes_before + 1);
    assert!(matches!(
        action.probe(&context(&twin, true), absent.clone()).await?,
        Probe::Done(_)
    ));
    let none = action.plan(&context(&twin, true), absent.clone()).await?;
    assert_eq!(none.summary, "trusted certificate `old`: absent, no change");

    action
        .undo(
            &context(&twin, false),
            absent,
            deleted.undo.ok_or("no undo record")?,
        )
        .await?;
    let back = entry(&twin, "old").await?.ok_or("not re-created")?;
    assert_eq!(back.id.map(Value::from), Some(id));
    assert_eq!(flag(&twin, "old", "trustedForSsl").await?, Some(true));
    Ok(())
}

#[tokio::test]
async fn the_same_certificate_under_another_name_is_refused_naming_it() -> TestResult {
    let twin = twin().await?;
    let action = Layer7TrustedCert::new();
    let pem = certificate("shared.example", 365)?;
    let created = action
        .apply(&context(&twin, false), json!({"name": "first", "pem": pem}))
        .await?;
    let id = created.outputs["id"].as_str().ok_or("no id")?.to_owned();
    let writes_before = writes(&twin).await?;
    let other = certificate("other.example", 365)?;
    action
        .apply(
            &context(&twin, false),
            json!({"name": "second", "pem": other}),
        )
        .await?;
    for arguments in [
        json!({"name": "third", "pem": pem}),
        // Replacing `second`'s certificate with `first`'s is refused too.
        json!({"name": "second", "pem": pem}),
    ] {
        let plan = action
            .plan(&context(&twin, true), arguments.clone())
            .await
            .map(|_| ())
            .err()
            .map(text)
            .unwrap_or_default();
        assert!(plan.contains("trusted certificate `first`"), "{plan}");
        assert!(plan.contains(&id), "{plan}");
        assert!(plan.contains("thumbprints must be unique"), "{plan}");
        let apply = action
            .apply(&context(&twin, false), arguments)
            .await
            .map(|_| ())
            .err()
            .map(text)
            .unwrap_or_default();
        assert_eq!(apply, plan);
    }
    assert_eq!(writes(&twin).await?, writes_before + 1);
    Ok(())
}

#[tokio::test]
async fn bad_pem_and_expired_certificates_are_refused_before_any_request() -> TestResult {
    let twin = twin().await?;
    let action = Layer7TrustedCert::new();
    let bad = action
        .plan(
            &context(&twin, true),
            json!({"name": "x", "pem": "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"}),
        )
        .await
        .map(|_| ())
        .err()
        .map(text)
        .unwrap_or_default();
    assert!(
        bad.contains("invalid arguments for `layer7.trusted_cert`"),
        "{bad}"
    );
    assert!(bad.contains("`pem`"), "{bad}");

    let expired = super::tests::certificate("gone.example", now() - 400 * DAY, now() - DAY)?;
    let error = action
        .apply(
            &context(&twin, false),
            json!({"name": "gone", "pem": expired}),
        )
        .await
        .map(|_| ())
        .err()
        .map(text)
        .unwrap_or_default();
    assert!(
        error.contains("refusing to trust an expired certificate"),
        "{error}"
    );
    assert!(error.contains("CN=gone.example"), "{error}");
    assert_eq!(writes(&twin).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_certificate_expiring_soon_is_written_with_a_warning() -> TestResult {
    let twin = twin().await?;
    let pem = certificate("soon.example", 10)?;
    let applied = Layer7TrustedCert::new()
        .apply(&context(&twin, false), json!({"name": "soon", "pem": pem}))
        .await?;
    assert_eq!(applied.outputs["changed"], json!(true));
    let warnings = applied.outputs["warnings"]
        .as_array()
        .ok_or("no warnings")?;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = warnings[0].as_str().unwrap_or_default();
    assert!(warning.contains("CN=soon.example expires on"), "{warning}");
    assert!(warning.contains("days"), "{warning}");
    Ok(())
}

#[tokio::test]
async fn wrong_credentials_say_to_check_them() -> TestResult {
    let twin = twin().await?;
    let error = Layer7TrustedCert::new()
        .plan(
            &context_with(&twin, true, "nope"),
            json!({"name": "x", "state": "absent"}),
        )
        .await
        .map(|_| ())
        .err()
        .map(text)
        .unwrap_or_default();
    assert!(error.contains("401"), "{error}");
    assert!(error.contains("refused the credentials"), "{error}");
    Ok(())
}
