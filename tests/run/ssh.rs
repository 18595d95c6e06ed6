//! Hosts over SSH, end to end: real sshd servers on loopback (tests/support/sshd.rs),
//! the real binary, playbooks that fan out over `hosts(group)`.

use std::time::{Duration, Instant};

use crate::lab::{Lab, TestResult};
use crate::sshd::{SshLab, silent_listener};

/// A lab whose environment `env.yaml` lists `count` SSH servers as `node1..` in group `dp`.
fn ssh_lab(count: usize) -> Result<(Lab, SshLab), Box<dyn std::error::Error>> {
    let servers = SshLab::start(count)?;
    let lab = Lab::new()?;
    lab.write("env.yaml", &servers.environment_yaml("sshlab", "dp"))?;
    Ok((lab, servers))
}

/// Writes `name` in the data directory.
fn put(lab: &Lab, name: &str, text: &str) -> std::io::Result<()> {
    std::fs::write(lab.data().join(name), text)
}

/// The text of `name` in the data directory ("" when absent).
fn get(lab: &Lab, name: &str) -> String {
    std::fs::read_to_string(lab.data().join(name)).unwrap_or_default()
}

/// Polls `check` for up to ten seconds (CI machines are small and busy).
fn eventually(check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

#[test]
fn commands_files_and_services_run_on_every_host_of_a_group() -> TestResult {
    let (lab, servers) = ssh_lab(3)?;
    let data = lab.data();
    lab.write("p.yaml", &format!(r#"runsheet: 1
name: p
steps:
  - id: each
    for_each: "{{{{ hosts('dp') }}}}"
    as: host
    steps:
      - id: who
        action: host.exec
        on: "{{{{ host }}}}"
        with: {{command: 'echo "$HOME" && printf "%s" "$GREETING"', env: {{GREETING: "it's {{{{ host.name }}}}"}}, read_only: true}}
      - id: conf
        action: host.file
        on: "{{{{ host }}}}"
        with: {{path: "{data}/{{{{ host.name }}}}.conf", content: "port {{{{ host.port }}}}\n", mode: "0640"}}
      - id: svc
        action: host.service
        on: "{{{{ host }}}}"
        with: {{name: fake, state: started, manager: command,
               status: "test -f {data}/{{{{ host.name }}}}.running",
               start: "touch {data}/{{{{ host.name }}}}.running",
               stop: "rm -f {data}/{{{{ host.name }}}}.running"}}
"#, data = data.display()))?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--report", "json=report.json"])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    let tree = lab.tree()?;
    for (index, server) in servers.servers.iter().enumerate() {
        let node = format!("node{}", index + 1);
        let (content, mode) = tree.get(&format!("{node}.conf")).ok_or("no conf written")?;
        assert_eq!(String::from_utf8_lossy(content), format!("port {}\n", server.port));
        assert_eq!(*mode, 0o640);
        assert!(tree.contains_key(&format!("{node}.running")), "{node}: service not started");
        assert!(!servers.commands(index).is_empty(), "{node} ran nothing over ssh");
    }
    let report = std::fs::read_to_string(lab.path().join("report.json"))?;
    let home = servers.home().display().to_string();
    assert!(report.contains(&format!("{home}\\nit's node2")), "{report}");
    // The masters closed with the run.
    for server in &servers.servers {
        assert!(eventually(|| server.connections() == 0), "a connection to port {} stayed open", server.port);
    }
    Ok(())
}

#[test]
fn one_connection_per_host_serves_every_step() -> TestResult {
    let (lab, servers) = ssh_lab(1)?;
    let mut steps = String::new();
    for n in 0..8 {
        steps.push_str(&format!("  - {{id: s{n}, action: host.exec, on: node1, with: {{argv: [sleep, '0.3']}}}}\n"));
    }
    lab.write("p.yaml", &format!("runsheet: 1\nname: p\nconcurrency: 8\nsteps:\n{steps}"))?;
    let log = lab.path().join("sshd-connections");
    let mut child = lab.spawn(&["run", "p.yaml", "--env", "env.yaml"])?;
    let mut most = 0;
    while child.try_wait()?.is_none() {
        most = most.max(servers.servers[0].connections());
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output()?;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    std::fs::write(log, most.to_string())?;
    assert_eq!(most, 1, "parallel steps opened more than one SSH connection");
    assert_eq!(servers.commands(0).len(), 8);
    Ok(())
}

#[test]
fn a_failure_in_batch_two_rolls_back_batch_one_and_never_starts_batch_three() -> TestResult {
    let (lab, servers) = ssh_lab(6)?;
    for n in 1..=6 {
        put(&lab, &format!("node{n}.conf"), "old\n")?;
    }
    let data = lab.data();
    lab.write("p.yaml", &format!(r#"runsheet: 1
name: rolling
steps:
  - id: upgrade
    for_each: "{{{{ hosts('dp') }}}}"
    as: host
    batch: 2
    steps:
      - id: conf
        action: host.file
        on: "{{{{ host }}}}"
        with: {{path: "{data}/{{{{ host.name }}}}.conf", content: "new\n"}}
      - id: check
        action: host.exec
        on: "{{{{ host }}}}"
        needs: [conf]
        with: {{command: "test {{{{ host.name }}}} != node3", read_only: true}}
"#, data = data.display()))?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    for n in 1..=4 {
        assert_eq!(get(&lab, &format!("node{n}.conf")), "old\n", "node{n} was not rolled back\n{}", run.all());
    }
    for index in [4, 5] {
        assert!(servers.commands(index).is_empty(), "batch 3 started on node{}: {:?}", index + 1, servers.commands(index));
        assert_eq!(get(&lab, &format!("node{}.conf", index + 1)), "old\n");
    }
    assert!(run.stdout.contains("node3"), "{}", run.all());
    Ok(())
}

#[test]
fn a_dry_run_sends_only_read_only_commands() -> TestResult {
    let (lab, servers) = ssh_lab(2)?;
    put(&lab, "node1.conf", "old\n")?;
    let data = lab.data();
    lab.write("p.yaml", &format!(r#"runsheet: 1
name: p
steps:
  - id: each
    for_each: "{{{{ hosts('dp') }}}}"
    as: host
    steps:
      - {{id: look, action: host.exec, on: "{{{{ host }}}}", with: {{argv: [uname, -r], read_only: true}}}}
      - {{id: facts, action: host.facts, on: "{{{{ host }}}}"}}
      - {{id: conf, action: host.file, on: "{{{{ host }}}}", with: {{path: "{data}/{{{{ host.name }}}}.conf", content: "new\n"}}}}
      - {{id: touch, action: host.exec, on: "{{{{ host }}}}", with: {{command: "touch {data}/touched"}}}}
      - {{id: svc, action: host.service, on: "{{{{ host }}}}",
          with: {{name: x, state: restarted, manager: command, status: "true", start: "touch {data}/started", stop: "true"}}}}
"#, data = data.display()))?;
    let before = lab.tree()?;
    for args in [&["plan", "p.yaml", "--env", "env.yaml"][..], &["run", "p.yaml", "--env", "env.yaml", "--dry-run"]] {
        servers.clear_commands()?;
        let run = lab.run(args)?;
        assert_eq!(run.code, Some(0), "{args:?}\n{}", run.all());
        assert!(run.stdout.contains("update") && run.stdout.contains("node1.conf (content"), "{}", run.all());
        assert_eq!(lab.tree()?, before, "{args:?} changed a file");
        for index in 0..2 {
            let commands = servers.commands(index);
            assert!(commands.iter().any(|c| c.contains("exec '\\''uname'\\'' '\\''-r'\\''")), "{args:?}: the read-only command did not run: {commands:?}");
            for command in &commands {
                for write in ["touch", "mktemp", "mv -f", "rm -f", "chmod", "chown", "apt-get", "systemctl", "kill"] {
                    assert!(!command.contains(write), "{args:?} sent a write to node{}: {command}", index + 1);
                }
            }
        }
    }
    Ok(())
}

#[test]
fn connection_failures_name_the_host_and_the_cause() -> TestResult {
    let (lab, mut servers) = ssh_lab(1)?;
    let port = servers.servers[0].port;
    let (_silent, silent_port) = silent_listener()?;
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let other_key = lab.path().join("other_key");
    std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", ""]).arg("-f").arg(&other_key).status()?;
    let empty_known_hosts = lab.write("empty_known_hosts", "")?;
    let user = servers.user();
    let key = servers.client_key();
    let known = servers.known_hosts();
    lab.write("env.yaml", &format!(r#"runsheet: 1
name: failing
hosts:
  closed: {{address: 127.0.0.1, port: {closed_port}, user: {user}}}
  silent: {{address: 127.0.0.1, port: {silent_port}, user: {user}, ssh: {{connect_timeout: 1s}}}}
  wrongkey: {{address: 127.0.0.1, port: {port}, user: {user}, ssh: {{identity: "{other}"}}}}
  stranger: {{address: 127.0.0.1, port: {port}, user: {user}, ssh: {{known_hosts: "{empty}"}}}}
  node1: {{address: 127.0.0.1, port: {port}, user: {user}}}
ssh: {{identity: "{key}", known_hosts: "{known}"}}
"#, other = other_key.display(), empty = empty_known_hosts.display(), key = key.display(), known = known.display()))?;
    let fingerprint = servers.servers[0].fingerprint()?;
    let cases = [
        ("closed", format!("host `closed` refused the connection to {user}@127.0.0.1:{closed_port}")),
        ("silent", "cannot reach host `silent`".to_owned()),
        ("wrongkey", "host `wrongkey` refused the login".to_owned()),
        ("stranger", format!("host `stranger` ({user}@127.0.0.1:{port}) is not in {}", empty_known_hosts.display())),
        ("stranger", format!("it offers ED25519 {fingerprint}")),
    ];
    for (host, expected) in &cases {
        lab.write("p.yaml", &format!("runsheet: 1\nname: p\nsteps:\n  - {{id: x, action: host.exec, on: {host}, with: {{argv: ['true']}}}}\n"))?;
        let started = Instant::now();
        let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
        assert_eq!(run.code, Some(1), "{host}: {}", run.all());
        assert!(run.all().contains(expected.as_str()), "{host}: wanted {expected:?} in\n{}", run.all());
        assert!(started.elapsed() < Duration::from_secs(20), "{host} took {:?}", started.elapsed());
    }

    servers.servers[0].restart_with_new_host_key()?;
    let new_fingerprint = servers.servers[0].fingerprint()?;
    lab.write("p.yaml", "runsheet: 1\nname: p\nsteps:\n  - {id: x, action: host.exec, on: node1, with: {argv: ['true']}}\n")?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.all().contains("the host key of `node1`"), "{}", run.all());
    assert!(run.all().contains("has CHANGED"), "{}", run.all());
    assert!(run.all().contains(&new_fingerprint), "{}", run.all());
    assert!(run.all().contains(&format!("{}:1", known.display())), "{}", run.all());
    Ok(())
}

#[test]
fn a_command_past_its_timeout_is_killed_on_the_host() -> TestResult {
    let (lab, _servers) = ssh_lab(1)?;
    let pid_file = lab.data().join("pid");
    lab.write("p.yaml", &format!(
        "runsheet: 1\nname: p\nsteps:\n  - {{id: slow, action: host.exec, on: node1, timeout: 1s, with: {{command: 'echo $$ > {}; sleep 60; echo late'}}}}\n",
        pid_file.display()
    ))?;
    let started = Instant::now();
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    // A write cut off by its timeout did an unknown part of its work: a person looks.
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert!(run.all().contains("timed out"), "{}", run.all());
    assert!(
        run.stdout.contains("slow: failed partway and could not put back its own changes; left changed: stopped after 1s partway through its writes: what it changed is not known"),
        "{}",
        run.all()
    );
    let pid = std::fs::read_to_string(&pid_file)?.trim().to_owned();
    assert!(!pid.is_empty());
    assert!(eventually(|| !std::path::Path::new(&format!("/proc/{pid}")).exists()), "the remote command {pid} still runs");
    Ok(())
}

#[test]
fn a_connection_lost_mid_command_fails_the_step_and_rolls_back() -> TestResult {
    let (lab, mut servers) = ssh_lab(2)?;
    put(&lab, "before.conf", "old\n")?;
    let data = lab.data();
    let started_marker = data.join("started");
    lab.write("p.yaml", &format!(r#"runsheet: 1
name: p
steps:
  - {{id: conf, action: host.file, on: node2, with: {{path: "{data}/before.conf", content: "new\n"}}}}
  - {{id: long, action: host.exec, on: node1, needs: [conf], with: {{command: "touch {marker}; sleep 20"}}}}
"#, data = data.display(), marker = started_marker.display()))?;
    let child = lab.spawn(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert!(eventually(|| started_marker.exists()), "the long command never started");
    servers.servers[0].kill();
    let started = Instant::now();
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(15), "the lost connection took {:?} to notice", started.elapsed());
    assert!(stdout.contains("the connection to host `node1` was lost"), "{stdout}");
    assert_eq!(get(&lab, "before.conf"), "old\n", "the write on node2 was not rolled back\n{stdout}");
    Ok(())
}

#[test]
fn files_from_src_and_template_are_written_and_undone_with_mode_and_owner() -> TestResult {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let (lab, _servers) = ssh_lab(1)?;
    let data = lab.data();
    put(&lab, "copied.conf", "old copy\n")?;
    std::fs::set_permissions(data.join("copied.conf"), std::fs::Permissions::from_mode(0o600))?;
    lab.write("source.conf", "copied from this machine\n")?;
    lab.write("kong.conf.j2", "node = {{ host.name }}\nport = {{ host.port }}\n")?;
    // The template reads `host` from the step's context: one item per host of the group.
    let text = format!(r#"runsheet: 1
name: p
steps:
  - id: copy
    action: host.file
    on: node1
    with: {{path: "{data}/copied.conf", src: source.conf, mode: "0644", owner: nobody}}
  - id: render
    for_each: "{{{{ hosts('dp') }}}}"
    as: host
    needs: [copy]
    steps:
      - id: write
        action: host.file
        on: "{{{{ host }}}}"
        with: {{path: "{data}/rendered.conf", template: kong.conf.j2}}
  - {{id: fail, action: fail, needs: [render], with: {{message: "stop here"}}}}
"#, data = data.display());
    lab.write("p.yaml", &text)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml", "--report", "json=report.json"])?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    let report = std::fs::read_to_string(lab.path().join("report.json"))?;
    // Before the rollback both files were as asked: the journal's step records say so.
    assert!(report.contains("copy"), "{report}");
    let copied = std::fs::metadata(data.join("copied.conf"))?;
    assert_eq!(get(&lab, "copied.conf"), "old copy\n", "{}", run.all());
    assert_eq!(copied.permissions().mode() & 0o7777, 0o600);
    assert_eq!(copied.uid(), 0, "the owner was not restored");
    assert!(!data.join("rendered.conf").exists(), "a created file was not removed by the undo");

    // Without the failure both stay, rendered with the host's values.
    let text = text.replace("  - {id: fail, action: fail, needs: [render], with: {message: \"stop here\"}}\n", "");
    assert!(!text.contains("stop here"));
    lab.write("p.yaml", &text)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(get(&lab, "copied.conf"), "copied from this machine\n");
    let copied = std::fs::metadata(data.join("copied.conf"))?;
    assert_eq!(copied.permissions().mode() & 0o7777, 0o644);
    assert_ne!(copied.uid(), 0, "the owner was not set");
    let port = _servers.servers[0].port;
    assert_eq!(get(&lab, "rendered.conf"), format!("node = node1\nport = {port}\n"));
    Ok(())
}

#[test]
fn a_host_behind_a_jump_host_is_reached_through_it() -> TestResult {
    let (lab, servers) = ssh_lab(2)?;
    let jump_port = servers.servers[0].port;
    let text = std::fs::read_to_string(lab.path().join("env.yaml"))?.replace(
        &format!("port: {}, user: {}, groups: [dp]}}", servers.servers[1].port, servers.user()),
        &format!(
            "port: {}, user: {}, groups: [dp], ssh: {{jump_host: \"{}@127.0.0.1:{jump_port}\"}}}}",
            servers.servers[1].port,
            servers.user(),
            servers.user()
        ),
    );
    assert!(text.contains("jump_host"), "{text}");
    lab.write("env.yaml", &text)?;
    lab.write("p.yaml", "runsheet: 1\nname: p\nsteps:\n  - {id: x, action: host.exec, on: node2, with: {argv: [hostname], read_only: true}}\n")?;
    let before = servers.servers[0].log().matches("Accepted publickey").count();
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(servers.commands(1).len(), 1, "node2 did not run the command");
    assert!(servers.commands(0).is_empty(), "the jump host ran a command");
    let after = servers.servers[0].log().matches("Accepted publickey").count();
    assert_eq!(after, before + 1, "no login went through the jump host:\n{}", servers.servers[0].log());
    Ok(())
}

#[test]
fn host_wait_checks_ports_and_urls_from_the_host() -> TestResult {
    let (lab, servers) = ssh_lab(1)?;
    let kv = crate::lab::KvServer::start()?;
    let ssh_port = servers.servers[0].port;
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    lab.write("p.yaml", &format!(r#"runsheet: 1
name: p
steps:
  - {{id: port, action: host.wait, on: node1, with: {{port: {ssh_port}, timeout: 5s}}}}
  - {{id: closed, action: host.wait, on: node1, with: {{port: {closed_port}, state: stopped, timeout: 5s}}}}
  - {{id: url, action: host.wait, on: node1, with: {{url: "{url}/kv", timeout: 5s}}}}
  - {{id: never, action: host.wait, on: node1, needs: [port, closed, url], with: {{port: {closed_port}, timeout: 1s}}}}
"#, url = kv.url))?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    for step in ["port", "closed", "url"] {
        assert!(run.stdout.contains(&format!("ok      {step}")), "{step}:\n{}", run.all());
    }
    assert!(run.stdout.contains(&format!("FAILED  never: timed out after 1000ms waiting for port 127.0.0.1:{closed_port}")), "{}", run.all());
    assert!(kv.state().methods.get("GET").copied().unwrap_or(0) >= 1, "the URL was never asked");
    Ok(())
}

#[test]
fn turning_host_key_checking_off_is_possible_in_the_environment_and_announced() -> TestResult {
    let (lab, servers) = ssh_lab(1)?;
    let empty = lab.write("empty_known_hosts", "")?;
    let text = std::fs::read_to_string(lab.path().join("env.yaml"))?.replace(
        "groups: [dp]}",
        &format!("groups: [dp], ssh: {{known_hosts: \"{}\", strict_host_key_checking: false}}}}", empty.display()),
    );
    lab.write("env.yaml", &text)?;
    lab.write("p.yaml", "runsheet: 1\nname: p\nsteps:\n  - {id: x, action: host.exec, on: node1, with: {argv: ['true']}}\n")?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.stdout.contains("SSH host-key checking is OFF for `node1`"), "{}", run.all());
    assert_eq!(servers.commands(0).len(), 1);
    assert_eq!(std::fs::read_to_string(&empty)?, "", "an unchecked key was recorded in known_hosts");
    Ok(())
}

#[test]
fn packages_are_upgraded_over_ssh_and_undone_to_the_previous_version() -> TestResult {
    let apt = crate::apt_lab::AptLab::new()?;
    let environment = apt.env();
    let pairs: Vec<(&str, &str)> = environment.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let servers = SshLab::start_with(1, &pairs)?;
    let lab = Lab::new()?;
    lab.write("env.yaml", &servers.environment_yaml("sshlab", "dp"))?;
    apt.run(&["apt-get", "install", "-y", "runsheet-fixture=1.0"])?;
    assert_eq!(apt.installed_version()?.as_deref(), Some("1.0"));
    let playbook = "runsheet: 1\nname: p\nsteps:\n  - {id: upgrade, action: host.package, on: node1, with: {name: runsheet-fixture, version: '2.0'}}\n";
    lab.write("p.yaml", playbook)?;
    let plan = lab.run(&["plan", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(plan.code, Some(0), "{}", plan.all());
    assert!(plan.stdout.contains("runsheet-fixture 1.0 → 2.0"), "{}", plan.all());
    assert!(!plan.stdout.contains("cannot reinstall"), "{}", plan.all());
    assert_eq!(apt.installed_version()?.as_deref(), Some("1.0"), "the plan changed the package");

    lab.write("p.yaml", &format!("{playbook}  - {{id: fail, action: fail, needs: [upgrade], with: {{message: stop}}}}\n"))?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("undone  upgrade"), "{}", run.all());
    assert_eq!(apt.installed_version()?.as_deref(), Some("1.0"), "the undo did not go back to 1.0");
    assert_eq!(apt.content().as_deref(), Some("version 1.0\n"));

    // A vendor repository that keeps only the newest version: the plan warns that the undo cannot work.
    apt.drop_version("1.0")?;
    lab.write("p.yaml", playbook)?;
    let plan = lab.run(&["plan", "p.yaml", "--env", "env.yaml"])?;
    assert!(plan.stdout.contains("the undo cannot reinstall 1.0"), "{}", plan.all());

    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(apt.installed_version()?.as_deref(), Some("2.0"));
    assert_eq!(apt.content().as_deref(), Some("version 2.0\n"));
    Ok(())
}

#[test]
fn systemd_services_on_a_host_without_systemd_fail_with_what_to_do() -> TestResult {
    if std::path::Path::new("/run/systemd/system").exists() {
        // The sshd "hosts" are this machine, which runs systemd: nothing to refuse here.
        return Ok(());
    }
    let (lab, servers) = ssh_lab(1)?;
    lab.write("p.yaml", "runsheet: 1\nname: p\nsteps:\n  - {id: restart, action: host.service, on: node1, with: {name: kong, state: restarted}}\n")?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("host `node1` does not run systemd"), "{}", run.all());
    assert!(run.stdout.contains("manager: command"), "{}", run.all());
    assert!(servers.commands(0).iter().all(|c| !c.contains("systemctl")), "systemctl ran: {:?}", servers.commands(0));
    Ok(())
}

#[test]
fn a_login_shell_that_prints_a_banner_changes_no_output_and_timeouts_still_kill() -> TestResult {
    let (lab, servers) = ssh_lab(1)?;
    // Debian's bash reads ~/.bashrc for commands run over ssh; many fleets print a banner there.
    std::fs::write(servers.home().join(".bashrc"), "echo 'Welcome to node1 (managed by puppet)'\nprintf 'no newline'\n")?;
    let data = lab.data();
    put(&lab, "a.conf", "old\n")?;
    let pid_file = data.join("pid");
    lab.write("p.yaml", &format!(r#"runsheet: 1
name: p
steps:
  - {{id: say, action: host.exec, on: node1, with: {{argv: [printf, hello], read_only: true}}}}
  - {{id: check, action: assert, needs: [say], with: {{that: "steps.say.outputs.stdout == 'hello'", message: "stdout was {{{{ steps.say.outputs.stdout }}}}"}}}}
  - {{id: conf, action: host.file, on: node1, needs: [check], with: {{path: "{data}/a.conf", content: "new\n"}}}}
  - {{id: slow, action: host.exec, on: node1, needs: [conf], timeout: 3s, with: {{command: 'echo $$ > {pid}; sleep 60'}}}}
"#, data = data.display(), pid = pid_file.display()))?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(2), "a write cut off by its timeout needs a person: {}", run.all());
    assert!(run.stdout.contains("ok      check"), "{}", run.all());
    assert!(run.stdout.contains("ok      conf"), "{}", run.all());
    assert!(run.stdout.contains("FAILED  slow") && run.stdout.contains("timed out"), "{}", run.all());
    assert!(run.stdout.contains("undone  conf"), "{}", run.all());
    assert_eq!(get(&lab, "a.conf"), "old\n");
    let pid = std::fs::read_to_string(&pid_file)?.trim().to_owned();
    assert!(eventually(|| !std::path::Path::new(&format!("/proc/{pid}")).exists()), "the remote command {pid} still runs");
    Ok(())
}

#[test]
fn files_owned_by_an_id_without_a_name_are_written_and_restored() -> TestResult {
    use std::os::unix::fs::MetadataExt as _;
    let (lab, _servers) = ssh_lab(1)?;
    let data = lab.data();
    put(&lab, "numeric.conf", "old\n")?;
    std::os::unix::fs::chown(data.join("numeric.conf"), Some(54321), Some(54321))?;
    lab.write("p.yaml", &format!(r#"runsheet: 1
name: p
steps:
  - {{id: conf, action: host.file, on: node1, with: {{path: "{data}/numeric.conf", content: "new\n"}}}}
  - {{id: fail, action: fail, needs: [conf], with: {{message: stop}}}}
"#, data = data.display()))?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("ok      conf"), "{}", run.all());
    assert!(run.stdout.contains("undone  conf"), "{}", run.all());
    let meta = std::fs::metadata(data.join("numeric.conf"))?;
    assert_eq!((meta.uid(), meta.gid()), (54321, 54321));
    assert_eq!(get(&lab, "numeric.conf"), "old\n");
    Ok(())
}

#[test]
fn an_aborted_run_stops_the_remote_command_and_closes_every_connection() -> TestResult {
    let (lab, servers) = ssh_lab(2)?;
    let data = lab.data();
    let pid_file = data.join("pid");
    lab.write("p.yaml", &format!(r#"runsheet: 1
name: p
steps:
  - {{id: other, action: host.exec, on: node2, with: {{argv: ['true']}}}}
  - {{id: long, action: host.exec, on: node1, needs: [other], with: {{command: 'echo $$ > {pid}; sleep 60'}}}}
"#, pid = pid_file.display()))?;
    let child = lab.spawn(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert!(eventually(|| pid_file.exists()), "the long command never started");
    std::thread::sleep(Duration::from_millis(200));
    let pid = child.id().to_string();
    for _ in 0..2 {
        assert!(std::process::Command::new("kill").args(["-INT", &pid]).status()?.success());
        std::thread::sleep(Duration::from_millis(300));
    }
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stdout}");
    let remote = std::fs::read_to_string(&pid_file)?.trim().to_owned();
    assert!(eventually(|| !std::path::Path::new(&format!("/proc/{remote}")).exists()), "the remote command {remote} still runs");
    for server in &servers.servers {
        assert!(eventually(|| server.connections() == 0), "a connection to port {} stayed open after the abort", server.port);
    }
    Ok(())
}

#[test]
fn a_command_that_cannot_be_stopped_on_a_hung_host_is_reported() -> TestResult {
    let (lab, servers) = ssh_lab(1)?;
    let pid_file = lab.data().join("pid");
    lab.write("p.yaml", &format!(
        "runsheet: 1\nname: p\nsteps:\n  - {{id: slow, action: host.exec, on: node1, timeout: 3s, with: {{command: 'echo $$ > {}; sleep 60'}}}}\n",
        pid_file.display()
    ))?;
    let child = lab.spawn(&["run", "p.yaml", "--env", "env.yaml"])?;
    assert!(eventually(|| pid_file.exists()), "the command never started");
    // The host hangs: the kill sent at the timeout cannot get through.
    servers.servers[0].signal_all("STOP")?;
    let output = child.wait_with_output();
    servers.servers[0].signal_all("CONT")?;
    let output = output?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("on host `node1` could not be stopped when its step ended") && stdout.contains("may still be running"),
        "{stdout}"
    );
    Ok(())
}

#[test]
fn a_twin_node_is_drained_stopped_upgraded_and_restarted_over_ssh() -> TestResult {
    let (lab, _servers) = ssh_lab(1)?;
    crate::twin::upgrade_a_twin_node(&lab, "node1")
}

#[test]
fn large_outputs_arrive_whole_and_a_background_process_does_not_hold_the_step() -> TestResult {
    let (lab, _servers) = ssh_lab(1)?;
    // openssh's `wait` closes the streams when the exit status arrives: output still
    // in flight was lost without a word (a step saw 892,928 of 900,000 bytes).
    let mut text = String::from("runsheet: 1\nname: p\nconcurrency: 8\nsteps:\n");
    for i in 0..16 {
        text.push_str(&format!(
            "  - {{id: r{i}, action: host.exec, on: node1, with: {{command: \"head -c 900000 /dev/zero | tr '\\\\0' a\", read_only: true}}}}\n\
             \x20 - {{id: c{i}, action: assert, needs: [r{i}], with: {{that: \"steps.r{i}.outputs.stdout | length == 900000\", message: \"r{i} got {{{{ steps.r{i}.outputs.stdout | length }}}} bytes\"}}}}\n"
        ));
    }
    // These run after the large outputs, alone: the daemon step's 2 s are its own.
    let every_check: Vec<String> = (0..16).map(|i| format!("c{i}")).collect();
    let daemon = lab.data().join("daemon");
    text.push_str(&format!(
        "  - {{id: warn, action: host.exec, on: node1, needs: [{checks}], with: {{command: 'printf \"warning: old\\n\" >&2; printf \"no newline\" >&2', read_only: true}}}}\n\
         \x20 - {{id: quiet, action: assert, needs: [warn], with: {{that: \"steps.warn.outputs.stderr == 'warning: old\\nno newline'\", message: \"stderr was {{{{ steps.warn.outputs.stderr }}}}\"}}}}\n\
         \x20 - {{id: daemon, action: host.exec, on: node1, needs: [quiet], timeout: 2s, with: {{command: 'sleep 60 & echo $! > {daemon}; echo started', read_only: true}}}}\n\
         \x20 - {{id: started, action: assert, needs: [daemon], with: {{that: \"steps.daemon.outputs.stdout == 'started\\n'\", message: \"stdout was {{{{ steps.daemon.outputs.stdout }}}}\"}}}}\n",
        daemon = daemon.display(),
        checks = every_check.join(", ")
    ));
    lab.write("p.yaml", &text)?;
    let run = lab.run(&["run", "p.yaml", "--env", "env.yaml"])?;
    // The step's timeout bounds the command, not the grace its streams get after it
    // ended: the background process it started is its own and still runs.
    let pid = std::fs::read_to_string(&daemon).unwrap_or_default().trim().to_owned();
    let survived = !pid.is_empty() && std::path::Path::new(&format!("/proc/{pid}")).exists();
    if !pid.is_empty() {
        let _stopped = std::process::Command::new("kill").arg(&pid).status();
    }
    let failed: Vec<&str> = run.stdout.lines().filter(|line| line.contains("FAILED")).collect();
    assert_eq!(run.code, Some(0), "{failed:#?}");
    assert!(run.stdout.contains("ok      c15") && run.stdout.contains("ok      started"), "{}", run.all());
    assert!(survived, "the background process {pid:?} was stopped with its step");
    Ok(())
}
