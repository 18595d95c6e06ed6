//! Proof of zero customer impact: the real binary runs Kong playbooks against a
//! standalone twin (`runsheet twin kong`) whose proxy carries authenticated traffic to
//! real loopback upstreams (`runsheet twin node`), while a load generator sends
//! requests throughout and counts every failure.

use std::sync::Arc;

use crate::lab::{Lab, TestResult};
use crate::traffic::{Load, NodeProcess, Outcome, TwinProcess, request};

/// Customers of the proxy during a change.
const CLIENTS: usize = 4;

/// The key every customer holds before a change.
const OLD_KEY: &str = "old-key-7f3a9c2e";

/// The service does not retry a failed request on another target (`retries: 0`), so a
/// request sent to a stopped node fails, as the control experiment shows.
///
/// A lab with three upstream nodes behind upstream `core`, service `orders` on route
/// `/orders` protected by key-auth, consumer `alice` holding [`OLD_KEY`], a standalone
/// twin serving it, and `env.yaml` pointing gateway `kong` at the twin and host `me`
/// at this machine.
struct Shop {
    lab: Lab,
    twin: TwinProcess,
    nodes: Vec<NodeProcess>,
}

impl Shop {
    fn open() -> Outcome<Shop> {
        let lab = Lab::new()?;
        let nodes = (1..=3)
            .map(|n| NodeProcess::start(&lab, &format!("dp{n}")))
            .collect::<Outcome<Vec<_>>>()?;
        let targets: String = nodes
            .iter()
            .map(|node| format!("      - {{target: '{}', weight: 100}}\n", node.address))
            .collect();
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
upstreams:
  - name: core
    targets:
{targets}"
            ),
        )?;
        let twin = TwinProcess::start(&lab, "kong.yaml")?;
        lab.write(
            "env.yaml",
            &format!(
                "runsheet: 1
name: shop
gateways:
  kong: {{type: kong, admin_url: '{}', proxy_url: '{}', status_url: '{}'}}
hosts:
  me: {{transport: local}}
",
                twin.admin_url, twin.proxy_url, twin.status_url
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

/// Every node, one at a time: drain its target, stop it, leave it down 300 ms, start it again, wait until it
/// is ready, put its weight back. What a rolling restart of data-plane nodes does.
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
    let load = Load::start(
        &shop.orders(),
        CLIENTS,
        Arc::new(|_| Some(OLD_KEY.to_owned())),
    );
    let run = shop.lab.run(&["run", "roll.yaml", "--env", "env.yaml"])?;
    let tally = load.finish();
    assert_eq!(run.code, Some(0), "{}", run.all());
    // Every node really went down and came back during the run.
    let restarts =
        std::fs::read_to_string(shop.lab.path().join("restarts.log")).unwrap_or_default();
    assert_eq!(restarts.matches("restarted").count(), 3, "{restarts}");
    println!(
        "rolling restart of 3 nodes: {} requests, {} failed",
        tally.ok + tally.failed,
        tally.failed
    );
    assert!(
        tally.ok > 100,
        "too little traffic to prove anything: {tally:?}"
    );
    assert_eq!(tally.failed, 0, "{:?}", tally.failures);
    Ok(())
}

#[test]
fn the_same_restart_without_drains_fails_customer_requests() -> TestResult {
    // The control experiment: the load generator does see failures when nodes stop
    // while they still take traffic, so the zero above means something.
    let shop = Shop::open()?;
    let playbook = rolling_restart(&shop).replace("weight: 0}", "weight: 100}");
    shop.lab.write("roll.yaml", &playbook)?;
    let load = Load::start(
        &shop.orders(),
        CLIENTS,
        Arc::new(|_| Some(OLD_KEY.to_owned())),
    );
    let run = shop.lab.run(&["run", "roll.yaml", "--env", "env.yaml"])?;
    let tally = load.finish();
    assert_eq!(run.code, Some(0), "{}", run.all());
    println!(
        "rolling restart of 3 nodes without drains: {} requests, {} failed",
        tally.ok + tally.failed,
        tally.failed
    );
    assert!(tally.failed > 0, "{tally:?}");
    Ok(())
}
