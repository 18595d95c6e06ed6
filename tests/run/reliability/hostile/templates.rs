//! Templates are not a way in: an input full of shell metacharacters reaches
//! `host.exec` (and `host.file`) as its literal bytes when the playbook passes
//! it through `shell_quote`, argv, `env` or `stdin`, on the local transport;
//! and a template can read no file (`include`, `import`, `extends`) and no
//! environment variable except through `secret()`.

use crate::lab::{Lab, TestResult};
use crate::reliability::report;

/// Values that would run `touch pwned` if they reached a shell unquoted.
const PAYLOADS: &[&str] = &[
    "$(touch pwned)",
    "`touch pwned`",
    "x; touch pwned",
    "x && touch pwned || touch pwned",
    "a\ntouch pwned\n",
    "'; touch pwned; '",
    "\"; touch pwned; \"",
    "$(touch pwned)'\"`touch pwned`|&><*?~{}[]!#%\\ \t$HOME ${PATH}",
    "-n",
    "--help",
    "",
];

/// Each way a value reaches a command: the file it ends in, and the step.
const STEPS: &str = r#"runsheet: 1
name: injection
inputs:
  payload: {type: string, required: true}
steps:
  - id: quoted
    action: host.exec
    on: me
    with: {cwd: "{{ env.data }}", command: "printf '%s' {{ inputs.payload | shell_quote }} > quoted.out"}
  - id: argv
    action: host.exec
    on: me
    with: {cwd: "{{ env.data }}", argv: [sh, -c, 'printf "%s" "$1" > argv.out', sh, "{{ inputs.payload }}"]}
  - id: env_var
    action: host.exec
    on: me
    with: {cwd: "{{ env.data }}", command: 'printf "%s" "$PAYLOAD" > env.out', env: {PAYLOAD: "{{ inputs.payload }}"}}
  - id: stdin
    action: host.exec
    on: me
    with: {cwd: "{{ env.data }}", command: "cat > stdin.out", stdin: "{{ inputs.payload }}"}
  - id: file
    action: host.file
    on: me
    with: {path: "{{ env.data }}/file.out", content: "{{ inputs.payload }}"}
"#;

#[test]
fn shell_metacharacters_in_an_input_are_inert() -> TestResult {
    let lab = Lab::with_data()?;
    lab.write("injection.yaml", STEPS)?;
    let mut rows = Vec::new();
    for payload in PAYLOADS {
        for entry in std::fs::read_dir(lab.data())? {
            std::fs::remove_file(entry?.path())?;
        }
        let vars = serde_json::json!({ "payload": payload }).to_string();
        lab.write("payload.yaml", &vars)?;
        let run = lab.run(&[
            "run",
            "injection.yaml",
            "--env",
            "env.yaml",
            "--vars-file",
            "payload.yaml",
            "--yes",
        ])?;
        assert_eq!(run.code, Some(0), "{payload:?}: {}", run.all());
        for name in ["quoted.out", "argv.out", "env.out", "stdin.out", "file.out"] {
            let arrived = std::fs::read(lab.data().join(name))?;
            assert_eq!(arrived, payload.as_bytes(), "{payload:?} via {name}");
        }
        for place in [lab.data(), lab.path().to_path_buf()] {
            assert!(
                !place.join("pwned").exists(),
                "{payload:?} ran `touch pwned` in {}",
                place.display()
            );
        }
        rows.push(vec![
            format!("`{}`", payload.escape_debug()),
            "literal bytes via shell_quote, argv, env, stdin, host.file; no file created"
                .to_owned(),
        ]);
    }
    report(
        "Hostile input: shell metacharacters in an input (local transport)",
        &["payload", "outcome"],
        &rows,
    );
    Ok(())
}

/// Templates that try to read a file or the process environment.
const READERS: &[(&str, &str)] = &[
    ("include", "{% include '/etc/passwd' %}"),
    ("import", "{% import '/etc/passwd' as p %}{{ p }}"),
    ("from import", "{% from '/etc/passwd' import x %}{{ x }}"),
    ("extends", "{% extends '/etc/passwd' %}"),
    (
        "a variable named like an environment variable",
        "{{ HOME }}",
    ),
    (
        "env is the environment file's, not the process's",
        "{{ env.HOME }}",
    ),
    ("env.vars", "{{ env.vars.PATH }}"),
];

#[test]
fn a_template_cannot_read_files_or_the_process_environment() -> TestResult {
    let lab = Lab::new()?;
    let mut rows = Vec::new();
    for (what, template) in READERS {
        let playbook = format!(
            "runsheet: 1\nname: reader\nsteps:\n  - id: read\n    action: log\n    with: {{message: {}}}\n",
            serde_json::to_string(template)?
        );
        lab.write("reader.yaml", &playbook)?;
        let validate = lab.run(&["validate", "reader.yaml", "--env", "env.yaml"])?;
        let run = lab.run(&["run", "reader.yaml", "--env", "env.yaml", "--yes"])?;
        let said = format!("{}{}", validate.all(), run.all());
        assert!(
            !said.contains("root:x:0:0"),
            "{what}: /etc/passwd was read: {said}"
        );
        if let Ok(home) = std::env::var("HOME") {
            assert!(
                !run.stdout.contains(&format!("message: {home}")),
                "{what}: $HOME was read: {said}"
            );
        }
        assert_ne!(run.code, Some(0), "{what}: {said}");
        let refused = [validate.code, run.code].contains(&Some(3));
        assert!(refused || run.code == Some(1), "{what}: {said}");
        let reason = said
            .lines()
            .find(|line| line.trim_start().starts_with('×'))
            .or_else(|| said.lines().find(|line| line.contains("FAILED")))
            .filter(|line| {
                [
                    "template",
                    "undefined",
                    "not found",
                    "unknown",
                    "not defined",
                ]
                .iter()
                .any(|w| line.contains(w))
            })
            .unwrap_or_default()
            .trim()
            .to_owned();
        assert!(!reason.is_empty(), "{what}: no clear reason: {said}");
        rows.push(vec![
            what.to_string(),
            format!("`{template}`"),
            format!(
                "validate exit {}, run exit {}",
                validate.code.unwrap_or(-1),
                run.code.unwrap_or(-1)
            ),
            format!("`{}`", reason.chars().take(100).collect::<String>()),
        ]);
    }
    report(
        "Hostile input: templates that try to read files or the environment",
        &["attempt", "template", "exit", "message"],
        &rows,
    );
    Ok(())
}
