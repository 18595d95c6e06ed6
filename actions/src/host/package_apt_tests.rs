//! End-to-end tests of `host.package` with real apt-get, dpkg and dpkg-query,
//! kept inside an [`AptLab`] so this machine's apt and dpkg state is untouched.

use runsheet_engine::{Action, ActionError, Applied, Probe};
use serde_json::{Value, json};

use super::apt_lab::{AptLab, PACKAGE, machine_apt_state};
use super::package::{
    HostPackage, UndoRecord, apply_kept, apply_with, plan_with, probe_with, undo_with,
};
use super::testing::{WithEnv, local_step};
use super::transport::{DryRunGuard, Transport};
use super::{HostPackageArguments, LocalTransport, PackageManager};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The arguments for the lab's package at `version` (or the newest), the manager left to detection.
fn wanted(version: Option<&str>) -> HostPackageArguments {
    HostPackageArguments {
        name: PACKAGE.to_owned(),
        version: version.map(str::to_owned),
        manager: None,
    }
}

/// A local transport whose commands see the lab's apt and dpkg.
fn lab_transport(lab: &AptLab) -> WithEnv<LocalTransport> {
    WithEnv::new(LocalTransport::new(), lab.env())
}

/// The undo record of an apply that changed something.
fn undo_record(applied: &Applied) -> Result<UndoRecord, Box<dyn std::error::Error>> {
    let undo = applied
        .undo
        .clone()
        .ok_or("a change without an undo record")?;
    Ok(serde_json::from_value(undo)?)
}

#[tokio::test]
async fn installs_upgrades_and_undoes_with_real_apt() -> TestResult {
    let machine_before = machine_apt_state()?;
    let lab = AptLab::new()?;
    let transport = lab_transport(&lab);

    let install = apply_with(&transport, &wanted(Some("1.0")), None).await?;
    assert_eq!(install.outputs["changed"], json!(true));
    assert_eq!(install.outputs["version"], json!("1.0"));
    assert_eq!(install.outputs["previous_version"], Value::Null);
    let first_undo = undo_record(&install)?;
    assert_eq!(
        first_undo,
        UndoRecord {
            manager: PackageManager::Apt,
            previous_version: None
        }
    );
    assert_eq!(lab.installed_version()?.as_deref(), Some("1.0"));
    assert_eq!(lab.content().as_deref(), Some("version 1.0\n"));

    let upgrade = apply_with(&transport, &wanted(Some("2.0")), None).await?;
    assert_eq!(upgrade.outputs["changed"], json!(true));
    assert_eq!(upgrade.outputs["version"], json!("2.0"));
    assert_eq!(upgrade.outputs["previous_version"], json!("1.0"));
    let second_undo = undo_record(&upgrade)?;
    assert_eq!(second_undo.previous_version.as_deref(), Some("1.0"));
    assert_eq!(lab.installed_version()?.as_deref(), Some("2.0"));
    assert_eq!(lab.content().as_deref(), Some("version 2.0\n"));

    let again = apply_with(&transport, &wanted(Some("2.0")), None).await?;
    assert_eq!(again.outputs["changed"], json!(false));
    assert_eq!(again.outputs["previous_version"], json!("2.0"));
    assert!(again.undo.is_none(), "no change, nothing to undo");
    let newest = apply_with(&transport, &wanted(None), None).await?;
    assert_eq!(newest.outputs["changed"], json!(false), "2.0 is the newest");

    let done = probe_with(&transport, &wanted(Some("2.0")), None).await?;
    assert!(matches!(done, Probe::Done(_)), "{done:?}");
    let not_done = probe_with(&transport, &wanted(Some("1.0")), None).await?;
    assert!(matches!(not_done, Probe::NotDone), "{not_done:?}");

    undo_with(&transport, &wanted(Some("2.0")), &second_undo, None).await?;
    assert_eq!(lab.installed_version()?.as_deref(), Some("1.0"));
    assert_eq!(lab.content().as_deref(), Some("version 1.0\n"));

    undo_with(&transport, &wanted(Some("1.0")), &first_undo, None).await?;
    assert_eq!(lab.installed_version()?, None);
    assert_eq!(lab.content(), None, "removing the package removes its file");

    let from_absent = apply_with(&transport, &wanted(None), None).await?;
    assert_eq!(from_absent.outputs["changed"], json!(true));
    assert_eq!(from_absent.outputs["version"], json!("2.0"), "the newest");
    assert_eq!(lab.installed_version()?.as_deref(), Some("2.0"));

    assert!(
        machine_apt_state()? == machine_before,
        "the machine's apt or dpkg state changed"
    );
    Ok(())
}

#[tokio::test]
async fn an_upgrade_run_again_after_a_crash_undoes_to_the_version_it_replaced() -> TestResult {
    let lab = AptLab::new()?;
    let transport = lab_transport(&lab);
    apply_with(&transport, &wanted(Some("1.0")), None).await?;
    // The first attempt keeps the version it replaces, upgrades, and is killed before
    // its end record.
    let detached = || runsheet_engine::StepContext::detached("upgrade", false);
    let (first, kept) = crate::test_support::keeping(detached(), None);
    apply_kept(&transport, &wanted(Some("2.0")), None, &first.prepared).await?;
    let state = kept.lock().map_err(|_| "poisoned")?.first().cloned().ok_or("nothing kept")?;
    assert_eq!(state["previous_version"], json!("1.0"));
    // Run again on resume, 2.0 is already there: the undo still goes back to 1.0.
    let (again, _) = crate::test_support::keeping(detached(), Some(state));
    let applied = apply_kept(&transport, &wanted(Some("2.0")), None, &again.prepared).await?;
    assert_eq!(applied.outputs["changed"], json!(true));
    assert_eq!(applied.outputs["previous_version"], json!("1.0"));
    undo_with(&transport, &wanted(Some("2.0")), &undo_record(&applied)?, None).await?;
    assert_eq!(lab.installed_version()?.as_deref(), Some("1.0"));
    Ok(())
}

#[tokio::test]
async fn a_missing_version_is_a_clear_error_and_changes_nothing() -> TestResult {
    let machine_before = machine_apt_state()?;
    let lab = AptLab::new()?;
    let transport = lab_transport(&lab);
    apply_with(&transport, &wanted(Some("1.0")), None).await?;

    let outcome = apply_with(&transport, &wanted(Some("3.0")), None).await;
    let message = match outcome {
        Err(ActionError::Failed { message }) => message,
        other => return Err(format!("expected a failure, got {other:?}").into()),
    };
    assert!(
        message.starts_with("version 3.0 of package runsheet-fixture is not available"),
        "{message}"
    );
    assert!(
        message.contains("Version '3.0' for 'runsheet-fixture' was not found"),
        "{message}"
    );
    assert_eq!(lab.installed_version()?.as_deref(), Some("1.0"));
    assert_eq!(lab.content().as_deref(), Some("version 1.0\n"));
    assert!(machine_apt_state()? == machine_before);
    Ok(())
}

#[tokio::test]
async fn a_dry_run_plans_with_reads_only_and_cannot_apply() -> TestResult {
    let machine_before = machine_apt_state()?;
    let lab = AptLab::new()?;
    apply_with(&lab_transport(&lab), &wanted(Some("1.0")), None).await?;
    let guarded = WithEnv::recording(DryRunGuard::new(lab_transport(&lab)));

    let upgrade = plan_with(&guarded, &wanted(Some("2.0")), None).await?;
    assert_eq!(upgrade.summary, "runsheet-fixture 1.0 → 2.0");
    assert_eq!(upgrade.changes, Some(true));
    let newest = plan_with(&guarded, &wanted(None), None).await?;
    assert_eq!(
        newest.summary, "runsheet-fixture 1.0 → 2.0",
        "apt's candidate"
    );
    let same = plan_with(&guarded, &wanted(Some("1.0")), None).await?;
    assert_eq!(same.changes, Some(false));
    assert_eq!(same.summary, "runsheet-fixture 1.0 is installed");
    let requests = guarded.requests();
    assert!(
        requests.len() >= 3,
        "the plans asked for nothing: {requests:?}"
    );
    assert!(
        requests.iter().all(|request| request.read_only),
        "{requests:?}"
    );

    let outcome = apply_with(&guarded, &wanted(Some("2.0")), None).await;
    assert!(
        matches!(&outcome, Err(ActionError::DryRunWrite { what }) if what.contains("apt-get install")),
        "{outcome:?}"
    );
    let outcome = undo_with(
        &guarded,
        &wanted(Some("1.0")),
        &UndoRecord {
            manager: PackageManager::Apt,
            previous_version: None,
        },
        None,
    )
    .await;
    assert!(
        matches!(&outcome, Err(ActionError::DryRunWrite { what }) if what.contains("apt-get remove")),
        "{outcome:?}"
    );
    assert_eq!(lab.installed_version()?.as_deref(), Some("1.0"));
    assert_eq!(guarded.name(), "local");
    assert!(machine_apt_state()? == machine_before);
    Ok(())
}

#[tokio::test]
async fn the_action_in_a_dry_run_is_refused_before_it_writes() -> TestResult {
    let machine_before = machine_apt_state()?;
    let arguments = json!({"name": PACKAGE, "version": "1.0", "manager": "apt"});
    let outcome = HostPackage::new()
        .apply(&local_step(true), arguments.clone())
        .await;
    assert!(
        matches!(&outcome, Err(ActionError::DryRunWrite { what }) if what.contains("apt-get install")),
        "{outcome:?}"
    );
    let change = HostPackage::new()
        .plan(&local_step(true), arguments)
        .await?;
    assert_eq!(change.summary, "runsheet-fixture not installed → 1.0");
    assert!(machine_apt_state()? == machine_before);
    Ok(())
}

#[tokio::test]
async fn a_package_left_unpacked_by_an_interrupted_upgrade_is_installed_not_skipped() -> TestResult
{
    let machine_before = machine_apt_state()?;
    let lab = AptLab::new()?;
    let transport = lab_transport(&lab);
    apply_with(&transport, &wanted(Some("1.0")), None).await?;
    lab.unpack_only("2.0")?;
    assert_eq!(
        lab.installed_version()?,
        None,
        "dpkg should hold 2.0 unpacked only"
    );

    let plan = plan_with(&transport, &wanted(Some("2.0")), None).await?;
    assert_eq!(plan.changes, Some(true), "{}", plan.summary);
    assert!(
        plan.summary.contains("not completely installed"),
        "{}",
        plan.summary
    );
    let probe = probe_with(&transport, &wanted(Some("2.0")), None).await?;
    assert!(matches!(probe, Probe::NotDone), "{probe:?}");

    let applied = apply_with(&transport, &wanted(Some("2.0")), None).await?;
    assert_eq!(applied.outputs["changed"], json!(true));
    assert_eq!(lab.installed_version()?.as_deref(), Some("2.0"));
    // The undo goes back to the version that was present, never to "absent".
    assert_eq!(
        undo_record(&applied)?.previous_version.as_deref(),
        Some("2.0")
    );
    assert_eq!(
        machine_apt_state()?,
        machine_before,
        "the machine's apt or dpkg state changed"
    );
    Ok(())
}
