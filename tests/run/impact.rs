//! Proof of zero customer impact: the real binary runs Kong playbooks against a
//! standalone twin (`runsheet twin kong`) whose proxy carries authenticated traffic to
//! real loopback upstreams (`runsheet twin node`), while a load generator sends
//! requests throughout and counts every failure. Also: a plan of every Kong action
//! writes nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::kong_nodes::{assert_hidden, indent, self_signed, snapshot, targets};
use crate::lab::{KvServer, Lab, TestResult};
use crate::traffic::{
    Load, NodeProcess, Outcome, Tally, TwinProcess, assert_rotation_seen, request, switching_keys,
};

/// Customers of the proxy during a change.
const CLIENTS: usize = 4;

/// The key every customer holds before a change.
const OLD_KEY: &str = "old-key-7f3a9c2e";

/// A lab with three upstream nodes behind upstream `core`, service `orders` on route
/// `/orders` protected by key-auth, consumer `alice` holding [`OLD_KEY`] (and `carol`),
/// a certificate for `shop.test`, a standalone twin serving it, and `env.yaml` pointing
/// gateway `kong` at the twin and host `me` at this machine.
///
/// The service does not retry a failed request on another target (`retries: 0`), so a
/// request sent to a stopped node fails, as the control experiment shows.
struct Shop {
    // Fields drop in this order: the nodes are stopped through the PID files in the lab's
    // directory, so they go before the lab (and its directory) does.
    nodes: Vec<NodeProcess>,
    twin: TwinProcess,
    lab: Lab,
}

impl Shop {
    fn open() -> Outcome<Shop> {
        let lab = Lab::new()?;
        let nodes = (1..=3)
            .map(|n| NodeProcess::start(&lab, &format!("dp{n}")))
            .collect::<Outcome<Vec<_>>>()?;
        let targets = targets(&nodes);
        let (cert, key) = self_signed("shop.test")?;
        let (cert, key) = (indent(&cert), indent(&key));
        lab.write(
            "kong.yaml",
            &format!(
                "_format_version: '3.0'
services:
  - name: orders
    host: core
    protocol: http
    retries: 0
    routes:
      - {{name: orders, paths: [/orders]}}
    plugins:
      - {{name: key-auth}}
consumers:
  - username: alice
    keyauth_credentials:
      - {{key: {OLD_KEY}}}
  - username: carol
upstreams:
  - name: core
    targets:
{targets}certificates:
  - cert: |
{cert}    key: |
{key}    snis:
      - {{name: shop.test}}
"
            ),
        )?;
        let twin = TwinProcess::start(&lab, "kong.yaml")?;
        lab.write(
            "env.yaml",
            &format!(
                "runsheet: 1
name: shop
gateways:
  kong: {}
hosts:
  me: {{transport: local}}
",
                twin.gateway()
            ),
        )?;
        let shop = Shop { lab, twin, nodes };
        let (status, body) = request(&shop.orders(), &[("apikey", OLD_KEY)])?;
        if status != 200 {
            return Err(format!("the shop is not open: {status} {body}").into());
        }
        Ok(shop)
    }

    /// The customers' URL.
    fn orders(&self) -> String {
        format!("{}/orders", self.twin.proxy_url)
    }
}

/// Every node, one at a time: drain its target, stop it, leave it down 300 ms, start it
/// again, wait until it is ready, put its weight back. What a rolling restart of
/// data-plane nodes does.
fn rolling_restart(shop: &Shop) -> String {
    let items: String = shop
        .nodes
        .iter()
        .map(|node| {
            format!(
                "      - {{address: '{}', stop: '{}', start: '{}'}}\n",
                node.address,
                NodeProcess::stop_command(&node.dir).replace('\'', "''"),
                format!(
                    "echo restarted >> {log}; {start}",
                    log = shop.lab.path().join("restarts.log").display(),
                    start = NodeProcess::start_command(
                        &node.address,
                        &node.dir,
                        &shop.lab.path().join("nodes.log")
                    )
                )
                .replace('\'', "''"),
            )
        })
        .collect();
    format!(
        r#"runsheet: 1
name: rolling-restart
vars:
  nodes:
{items}steps:
  - id: roll
    for_each: "{{{{ vars.nodes }}}}"
    as: node
    batch: 1
    steps:
      - id: drain
        action: kong.target
        on: kong
        with: {{upstream: core, target: "{{{{ node.address }}}}", weight: 0}}
      - id: stop
        action: host.exec
        on: me
        with: {{command: "{{{{ node.stop }}}}"}}
      - id: down
        action: sleep
        with: {{duration: 300ms}}
      - id: start
        action: host.exec
        on: me
        with: {{command: "{{{{ node.start }}}}"}}
      - id: ready
        action: http
        retries: 100
        retry_delay: 50ms
        with: {{url: "http://{{{{ node.address }}}}/status/ready", expect_status: 200}}
      - id: undrain
        action: kong.target
        on: kong
        with: {{upstream: core, target: "{{{{ node.address }}}}", weight: 100}}
"#
    )
}

#[test]
fn a_rolling_restart_behind_drained_targets_fails_no_customer_request() -> TestResult {
    let shop = Shop::open()?;
    shop.lab.write("roll.yaml", &rolling_restart(&shop))?;
    let plan = shop.lab.run(&["plan", "roll.yaml", "--env", "env.yaml"])?;
    assert_eq!(plan.code, Some(0), "{}", plan.all());
    assert!(plan.stdout.contains("weight 100 -> 0"), "{}", plan.all());
    assert_eq!(shop.twin.writes()?, 0, "a plan writes nothing");
    let load = Load::with_key(&shop.orders(), CLIENTS, OLD_KEY);
    let run = shop.lab.run(&["run", "roll.yaml", "--env", "env.yaml"])?;
    let tally = Tally::sum(&load.finish());
    assert_eq!(run.code, Some(0), "{}", run.all());
    // Every node really went down and came back during the run.
    let restarts =
        std::fs::read_to_string(shop.lab.path().join("restarts.log")).unwrap_or_default();
    assert_eq!(restarts.matches("restarted").count(), 3, "{restarts}");
    println!(
        "rolling restart of 3 nodes: {} requests, {} failed",
        tally.sent(),
        tally.failed()
    );
    assert!(
        tally.ok > 100,
        "too little traffic to prove anything: {tally:?}"
    );
    assert_eq!(tally.failed(), 0, "{:?}", tally.failures);
    Ok(())
}

#[test]
fn the_same_restart_without_drains_fails_customer_requests() -> TestResult {
    // The control experiment: the load generator does see failures when nodes stop
    // while they still take traffic, so the zero above means something.
    let shop = Shop::open()?;
    let playbook = rolling_restart(&shop).replace("weight: 0}", "weight: 100}");
    shop.lab.write("roll.yaml", &playbook)?;
    let load = Load::with_key(&shop.orders(), CLIENTS, OLD_KEY);
    let run = shop.lab.run(&["run", "roll.yaml", "--env", "env.yaml"])?;
    let tally = Tally::sum(&load.finish());
    assert_eq!(run.code, Some(0), "{}", run.all());
    println!(
        "rolling restart of 3 nodes without drains: {} requests, {} failed",
        tally.sent(),
        tally.failed()
    );
    assert!(tally.failed() > 0, "{tally:?}");
    Ok(())
}

/// How long both keys stay valid in the rotation proof.
const OVERLAP_MS: u64 = 3000;

#[test]
fn a_key_rotation_fails_no_request_from_clients_switching_inside_the_overlap() -> TestResult {
    let shop = Shop::open()?;
    let store = Arc::new(KvServer::start()?);
    shop.lab.write(
        "rotate.yaml",
        &format!(
            r#"runsheet: 1
name: rotate-alice
steps:
  - id: rotate
    action: kong.key_rotate
    on: kong
    with: {{consumer: alice, generate: true, overlap: {OVERLAP_MS}ms, verify: {{path: /orders}}}}
  - id: publish
    action: http
    with:
      method: PUT
      url: "{store}/kv/alice"
      body: "{{{{ steps.rotate.outputs.key }}}}"
      expect_status: 200
"#,
            store = store.url
        ),
    )?;
    let plan = shop
        .lab
        .run(&["plan", "rotate.yaml", "--env", "env.yaml"])?;
    assert_eq!(plan.code, Some(0), "{}", plan.all());
    assert_eq!(shop.twin.writes()?, 0, "a plan writes nothing");

    // Clients 0-3 switch to the new key at a moment of their own inside the overlap,
    // once it is published; clients 4-5 keep the old key throughout.
    let choice = switching_keys(Arc::clone(&store), "alice", OLD_KEY, 4, |client| {
        Duration::from_millis(OVERLAP_MS * client as u64 / 5)
    });
    let started = Instant::now();
    let load = Load::start(&shop.orders(), 6, choice);
    let run = shop.lab.run(&["run", "rotate.yaml", "--env", "env.yaml"])?;
    // Past the overlap: the old key has been revoked by then.
    std::thread::sleep(Duration::from_millis(OVERLAP_MS + 700).saturating_sub(started.elapsed()));
    let tallies = load.finish();
    assert_eq!(run.code, Some(0), "{}", run.all());
    let new_key = store
        .state()
        .values
        .get("alice")
        .cloned()
        .ok_or("the key was not published")?;
    let journaled = assert_hidden(&shop.lab, &run, &new_key)?;
    assert!(
        journaled
            .iter()
            .any(|(path, _)| path.ends_with("journal.jsonl"))
    );

    // The old key worked until the overlap ended (it started no earlier than the run),
    // and was revoked then.
    assert_rotation_seen(
        "key rotation",
        &tallies,
        4,
        (OLD_KEY, &new_key),
        started + Duration::from_millis(OVERLAP_MS),
        50,
    );
    let (status, _) = request(&shop.orders(), &[("apikey", OLD_KEY)])?;
    assert_eq!(status, 401);
    let (status, _) = request(&shop.orders(), &[("apikey", &new_key)])?;
    assert_eq!(status, 200);
    Ok(())
}

/// The desired state of the sync proofs: `orders` retuned, a new `billing` service with a
/// route and a plugin, a new consumer with a key, and (with `delete: true`) the removal of
/// carol and of the certificate with its SNI; more than three writes, in dependency order.
fn desired(shop: &Shop) -> String {
    let targets = targets(&shop.nodes);
    format!(
        "_format_version: '3.0'
services:
  - name: orders
    host: core
    protocol: http
    retries: 0
    read_timeout: 5000
    routes:
      - {{name: orders, paths: [/orders]}}
    plugins:
      - {{name: key-auth}}
  - name: billing
    url: http://billing.internal:8080
    routes:
      - {{name: billing, paths: [/billing]}}
    plugins:
      - {{name: rate-limiting, config: {{minute: 100}}}}
consumers:
  - username: alice
    keyauth_credentials:
      - {{key: old-key-7f3a9c2e}}
  - username: bob
    keyauth_credentials:
      - {{key: bob-key-51c0ffee}}
upstreams:
  - name: core
    targets:
{targets}"
    )
}

#[test]
fn a_sync_that_fails_half_way_leaves_the_gateway_as_its_snapshot() -> TestResult {
    let shop = Shop::open()?;
    shop.lab.write("desired.yaml", &desired(&shop))?;
    let before = snapshot(&shop.lab, "before.yaml")?;
    // A 400 is never retried; a dropped connection is retried for PUT and DELETE, so it
    // drops the three tries of one write. Kong may have applied a write whose connection
    // closed: the sync restores the gateway, and the run names that write for a person
    // (exit 2) rather than saying "rolled back".
    for (fault, code) in [
        ("{fail_nth_write: 3, status: 400}", 1),
        ("{drop_nth_write: 4, probability: 1.0, times: 3}", 2),
    ] {
        shop.lab.write(
            "sync.yaml",
            &format!(
                r#"runsheet: 1
name: sync-with-fault
steps:
  - id: fault
    action: http
    rollback: none
    with:
      method: POST
      url: "{{{{ env.gateways.kong.admin_url }}}}/_twin/faults"
      json: {fault}
  - id: sync
    action: kong.sync
    on: kong
    with: {{state: desired.yaml, delete: true}}
"#
            ),
        )?;
        let load = Load::with_key(&shop.orders(), 2, OLD_KEY);
        let run = shop.lab.run(&["run", "sync.yaml", "--env", "env.yaml"])?;
        let tally = Tally::sum(&load.finish());
        assert_eq!(run.code, Some(code), "{fault}: {}", run.all());
        assert!(run.all().contains("restored"), "{}", run.all());
        if code == 2 {
            assert!(run.all().contains("Kong may still apply"), "{}", run.all());
        }
        let after = snapshot(&shop.lab, "after.yaml")?;
        assert_eq!(
            after, before,
            "{fault}: the gateway is back to its snapshot"
        );
        println!(
            "sync failing with {fault}: restored; {} requests during it, {} failed",
            tally.sent(),
            tally.failed()
        );
        assert_eq!(tally.failed(), 0, "{:?}", tally.failures);
    }
    Ok(())
}

#[test]
fn a_sync_undone_by_a_later_failure_leaves_the_gateway_as_its_snapshot() -> TestResult {
    let shop = Shop::open()?;
    shop.lab.write("desired.yaml", &desired(&shop))?;
    let before = snapshot(&shop.lab, "before.yaml")?;
    shop.lab.write(
        "sync.yaml",
        r#"runsheet: 1
name: sync-then-fail
steps:
  - id: sync
    action: kong.sync
    on: kong
    with: {state: desired.yaml, delete: true}
  - id: smoke
    action: http
    with: {url: "{{ env.gateways.kong.proxy_url }}/billing", expect_status: 200}
"#,
    )?;
    let plan = shop.lab.run(&["plan", "sync.yaml", "--env", "env.yaml"])?;
    assert!(
        plan.stdout
            .contains("5 to create, 1 to update, 3 to delete"),
        "{}",
        plan.all()
    );
    assert_eq!(shop.twin.writes()?, 0, "a plan writes nothing");
    let run = shop.lab.run(&["run", "sync.yaml", "--env", "env.yaml"])?;
    // billing.internal does not resolve: the smoke test fails and the sync is undone.
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        shop.twin.writes()? > 3,
        "the sync wrote before it was undone"
    );
    let after = snapshot(&shop.lab, "after.yaml")?;
    assert_eq!(after, before);
    Ok(())
}

#[test]
fn a_plan_of_every_kong_action_writes_nothing() -> TestResult {
    let shop = Shop::open()?;
    shop.lab.write("desired.yaml", &desired(&shop))?;
    let (cert, key) = self_signed("shop.test")?;
    shop.lab.write("new.pem", &cert)?;
    shop.lab.write("new-key.pem", &key)?;
    shop.lab.write(
        "all.yaml",
        &format!(
            r#"runsheet: 1
name: every-kong-action
steps:
  - {{id: status, action: kong.status, on: kong}}
  - {{id: entity, action: kong.entity, on: kong, with: {{kind: service, match: {{name: orders}}, spec: {{retries: 2}}}}}}
  - {{id: drain, action: kong.target, on: kong, with: {{upstream: core, target: "{node}", weight: 0}}}}
  - {{id: healthy, action: kong.wait_healthy, on: kong, with: {{upstream: core, timeout: 5s}}}}
  - {{id: snapshot, action: kong.snapshot, on: kong, with: {{path: planned.yaml}}}}
  - {{id: sync, action: kong.sync, on: kong, with: {{state: desired.yaml, delete: true}}}}
  - {{id: rotate, action: kong.key_rotate, on: kong, with: {{consumer: alice, generate: true, overlap: 1m, verify: {{path: /orders}}}}}}
  - {{id: cert, action: kong.cert_rotate, on: kong, with: {{certificate: shop.test, cert: new.pem, key: new-key.pem}}}}
"#,
            node = shop.nodes[0].address
        ),
    )?;
    let plan = shop.lab.run(&["plan", "all.yaml", "--env", "env.yaml"])?;
    assert_eq!(plan.code, Some(0), "{}", plan.all());
    for step in ["entity", "drain", "sync", "rotate", "cert"] {
        assert!(
            plan.stdout.contains(&format!("plan  ~ {step} (kong.")),
            "{step} planned: {}",
            plan.all()
        );
    }
    assert!(plan.stdout.contains("retries"), "{}", plan.all());
    assert_eq!(
        shop.twin.writes()?,
        0,
        "a plan writes nothing: {}",
        plan.all()
    );
    assert!(
        !shop.lab.path().join("planned.yaml").exists(),
        "a plan writes no snapshot file"
    );
    Ok(())
}

/// Alice's key-auth keys.
fn alice_keys(shop: &Shop) -> Outcome<Vec<String>> {
    Ok(shop
        .twin
        .key_auth("alice")?
        .into_iter()
        .map(|(key, _)| key)
        .collect())
}

/// How many key-auth keys alice has.
fn key_count(shop: &Shop) -> Outcome<usize> {
    Ok(alice_keys(shop)?.len())
}

/// Alice's keys that authenticate through the proxy now.
fn working_keys(shop: &Shop) -> Outcome<Vec<String>> {
    let mut working = Vec::new();
    for key in alice_keys(shop)? {
        if request(&shop.orders(), &[("apikey", &key)])?.0 == 200 {
            working.push(key);
        }
    }
    Ok(working)
}

#[test]
fn a_key_rotation_killed_at_any_moment_leaves_a_working_key() -> TestResult {
    let shop = Shop::open()?;
    shop.lab.write(
        "rotate.yaml",
        "runsheet: 1
name: rotate-alice
steps:
  - id: rotate
    action: kong.key_rotate
    on: kong
    with: {consumer: alice, generate: true, verify: {path: /orders}}
",
    )?;
    // Every write takes 250 ms, so that a kill lands inside the rotation.
    shop.twin
        .fault(r#"{"latency_ms": 250, "probability": 1.0, "writes_only": true}"#)?;
    // The first kill lands as soon as the new key exists (between its creation and the
    // old key's removal, whatever the machine's speed); the others at fixed moments.
    let moments = [
        None,
        Some(100u64),
        Some(300),
        Some(500),
        Some(700),
        Some(900),
    ];
    for (attempt, after_ms) in moments.into_iter().enumerate() {
        let keys_before = key_count(&shop)?;
        let state = format!("state-{attempt}");
        let mut child = shop.lab.spawn(&[
            "run",
            "rotate.yaml",
            "--env",
            "env.yaml",
            "--state-dir",
            &state,
        ])?;
        let moment = match after_ms {
            Some(after_ms) => {
                std::thread::sleep(Duration::from_millis(after_ms));
                format!("after {after_ms} ms")
            }
            None => {
                let deadline = Instant::now() + Duration::from_secs(20);
                while key_count(&shop)? <= keys_before && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                assert!(
                    key_count(&shop)? > keys_before,
                    "the rotation never added its key"
                );
                "once the new key existed".to_owned()
            }
        };
        child.kill()?;
        child.wait()?;
        let working = working_keys(&shop)?;
        assert!(
            !working.is_empty(),
            "killed {moment}: alice has no working key"
        );
        println!(
            "key rotation killed {moment}: {} working keys",
            working.len()
        );
    }
    // Uninterrupted, the rotation leaves exactly the new key.
    let run = shop.lab.run(&[
        "run",
        "rotate.yaml",
        "--env",
        "env.yaml",
        "--state-dir",
        "state-last",
    ])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(working_keys(&shop)?.len(), 1);
    Ok(())
}
