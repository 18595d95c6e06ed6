//! Reading playbooks and environment files: bytes → YAML tree → typed model.
//!
//! The loader reports structural problems (syntax, unknown keys, wrong types,
//! step shapes) for the whole file at once; semantic checks live in
//! [`crate::validation`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;

use crate::de::{DeError, DeErrorKind, Spanned, from_node};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{
    DEFAULT_CONCURRENCY, Duration, Environment, EnvironmentDoc, FORMAT_VERSION, Gateway, Host,
    HostDoc, HostSsh, InputSpec, KongGatewayDoc, Layer7GatewayDoc, Needs, Playbook, PlaybookDoc,
    RollbackPolicy, SshSettings, Step, StepDoc, StepKind, Transport,
};
use crate::node::{self, MAX_FILE_BYTES, Node, NodeValue};
use crate::source::{SourceFile, Span};

/// Reads a file as UTF-8 text, refusing oversized or binary files before parsing.
pub fn read_source(path: &Path) -> Result<Arc<SourceFile>, Diagnostic> {
    let name = SourceFile::display_name(path);
    let fail = |code, message: String| Diagnostic::error(code, format!("{name}: {message}"));
    let metadata = std::fs::metadata(path)
        .map_err(|e| fail("file::unreadable", format!("cannot read: {e}")))?;
    if metadata.is_dir() {
        return Err(fail(
            "file::unreadable",
            "is a directory, not a YAML file".into(),
        ));
    }
    if metadata.len() > MAX_FILE_BYTES as u64 {
        return Err(fail(
            "yaml::too-large",
            format!(
                "file is {} bytes, more than the {MAX_FILE_BYTES} bytes a playbook may have",
                metadata.len()
            ),
        )
        .with_help("split the playbook, or generate its steps with for_each"));
    }
    let bytes =
        std::fs::read(path).map_err(|e| fail("file::unreadable", format!("cannot read: {e}")))?;
    source_from_bytes(name, bytes)
}

/// Wraps bytes as a source file, refusing text that is not UTF-8.
pub fn source_from_bytes(name: String, bytes: Vec<u8>) -> Result<Arc<SourceFile>, Diagnostic> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(name, text)),
        Err(error) => {
            let valid = error.utf8_error().valid_up_to();
            let bytes = error.into_bytes();
            // Show the valid text before the bad byte, so the position can be rendered.
            let prefix = String::from_utf8_lossy(&bytes[..valid]).into_owned();
            let file = SourceFile::new(name, prefix);
            let (line, column) = file.line_col(valid);
            Err(Diagnostic::error(
                "yaml::encoding",
                format!("file is not UTF-8: invalid byte 0x{:02x} at byte offset {valid} (line {line}, column {column})", bytes[valid]),
            )
            .at(&file, Span::new(valid, 0))
            .with_help("save the file as UTF-8"))
        }
    }
}

/// Parses the YAML tree of a file, as one diagnostic on failure.
///
/// `first_keys` names the keys such a file starts with, for the help line.
fn parse_tree(file: &Arc<SourceFile>, first_keys: &str) -> Result<Node, Diagnostic> {
    let root = node::parse(file).map_err(|e| {
        let diagnostic = Diagnostic::error(e.code, e.message).with_optional_help(e.help);
        match e.span {
            Some(span) => diagnostic.at(file, span),
            None => diagnostic.in_file(file),
        }
    })?;
    match &root.value {
        NodeValue::Map(_) => Ok(root),
        NodeValue::Null => Err(Diagnostic::error("yaml::empty", "file is empty")
            .in_file(file)
            .with_help(format!("the file starts with {first_keys}"))),
        other => Err(Diagnostic::error(
            "yaml::not-a-mapping",
            format!(
                "expected a mapping at the top of the file, found {}",
                other.kind()
            ),
        )
        .at(file, root.span)
        .with_help(format!(
            "the file's top level holds keys such as {first_keys}"
        ))),
    }
}

/// Parses a file and reads its document with `build`, collecting every problem.
fn load<T, D: DeserializeOwned>(
    file: &Arc<SourceFile>,
    first_keys: &str,
    build: impl FnOnce(&mut Reader<'_>, D) -> T,
) -> (Option<T>, Diagnostics) {
    let mut reader = Reader::new(file);
    let loaded = match parse_tree(file, first_keys) {
        Ok(root) => {
            reader.check_numbers(&root);
            reader.read::<D>(&root).map(|doc| build(&mut reader, doc))
        }
        Err(diagnostic) => {
            reader.push(diagnostic);
            None
        }
    };
    (loaded, reader.diagnostics)
}

/// Loads a playbook from a file, reporting every structural problem.
pub fn load_playbook(file: &Arc<SourceFile>) -> (Option<Playbook>, Diagnostics) {
    load(
        file,
        "`runsheet: 1`, `name:` and `steps:`",
        |reader, doc: PlaybookDoc| reader.playbook(doc),
    )
}

/// Loads an environment from a file, reporting every structural problem.
pub fn load_environment(file: &Arc<SourceFile>) -> (Option<Environment>, Diagnostics) {
    load(
        file,
        "`runsheet: 1`, `name:` and `hosts:` or `gateways:`",
        |reader, doc: EnvironmentDoc| reader.environment(doc),
    )
}

/// Whether a name is a valid playbook name: `[a-z0-9][a-z0-9_-]*`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Whether a name is a valid step id: letters, digits, `_` and `-`, not starting with `-`.
pub fn is_valid_step_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

struct Reader<'f> {
    file: &'f Arc<SourceFile>,
    diagnostics: Diagnostics,
}

impl<'f> Reader<'f> {
    fn new(file: &'f Arc<SourceFile>) -> Self {
        Self {
            file,
            diagnostics: Diagnostics::new(),
        }
    }

    fn error(&self, code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(code, message).at(self.file, span)
    }

    /// Records a problem, unless one was already reported at the same place:
    /// a second error there is a consequence of the first (a huge integer is
    /// also of the wrong type).
    fn push(&mut self, diagnostic: Diagnostic) {
        let same_place =
            diagnostic.span.is_some() && self.diagnostics.iter().any(|d| d.span == diagnostic.span);
        if !same_place {
            self.diagnostics.push(diagnostic);
        }
    }

    /// Flags integers too large for 64 bits, which YAML silently turns into floats.
    fn check_numbers(&mut self, root: &Node) {
        let text = &self.file.text;
        let mut too_large = Vec::new();
        root.walk(&mut |node| {
            if let NodeValue::Float(_) = node.value {
                let written = text
                    .get(node.span.offset..node.span.offset + node.span.len)
                    .unwrap_or("");
                let digits = written.strip_prefix(['-', '+']).unwrap_or(written);
                if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
                    too_large.push(node.span);
                }
            }
        });
        for span in too_large {
            self.push(
                self.error("yaml::number-too-large", span, "integer is too large")
                    .with_help("integers must fit in 64 bits (at most 9223372036854775807)"),
            );
        }
    }

    /// Reads a typed document from a mapping, reporting every bad key before giving up.
    ///
    /// Serde stops at the first problem; to report them all, the offending entry
    /// is dropped and the mapping read again, until it reads or nothing can be dropped.
    fn read<T: DeserializeOwned>(&mut self, node: &Node) -> Option<T> {
        self.read_lossy(node).map(|(value, _)| value)
    }

    /// Like [`Reader::read`], also telling whether entries had to be dropped.
    fn read_lossy<T: DeserializeOwned>(&mut self, node: &Node) -> Option<(T, bool)> {
        // The usual case reads cleanly from the borrowed tree; only a bad mapping is copied.
        if let Ok(value) = from_node::<T>(node) {
            return Some((value, false));
        }
        let mut node = node.clone();
        let mut dropped: Vec<String> = Vec::new();
        loop {
            let error = match from_node::<T>(&node) {
                Ok(value) => return Some((value, !dropped.is_empty())),
                Err(error) => error,
            };
            if error.kind == DeErrorKind::MissingKey {
                // A key missing because its entry was dropped was reported with that entry.
                let cascade = dropped
                    .iter()
                    .any(|k| error.message.contains(&format!("`{k}`")));
                if !cascade {
                    self.push_de_error(&error, node.span);
                }
                return None;
            }
            self.push_de_error(&error, node.span);
            let index = error.span.and_then(|span| entry_containing(&node, span))?;
            if let NodeValue::Map(entries) = &mut node.value {
                let (key, _) = entries.remove(index);
                dropped.push(key.key_text());
            }
        }
    }

    fn push_de_error(&mut self, error: &DeError, fallback: Span) {
        let code = match error.kind {
            DeErrorKind::UnknownKey => "key::unknown",
            DeErrorKind::MissingKey => "key::missing",
            DeErrorKind::WrongType => "value::wrong-type",
            DeErrorKind::InvalidValue => "value::invalid",
        };
        let span = error.span.unwrap_or(fallback);
        let diagnostic = self
            .error(code, span, error.message.clone())
            .with_optional_help(error.help.clone());
        self.push(diagnostic);
    }

    fn playbook(&mut self, doc: PlaybookDoc) -> Playbook {
        self.check_version(&doc.runsheet);
        if !is_valid_name(&doc.name) {
            self.push(self.error("playbook::bad-name", doc.name.span, format!("invalid playbook name `{}`", doc.name.value)).with_help("a name is lowercase letters, digits, `-` and `_`, starting with a letter or digit"));
        }
        let concurrency = match &doc.concurrency {
            Some(c) if c.value == 0 => {
                self.push(self.error(
                    "playbook::bad-concurrency",
                    c.span,
                    "concurrency must be at least 1",
                ));
                DEFAULT_CONCURRENCY
            }
            Some(c) => c.value,
            None => DEFAULT_CONCURRENCY,
        };
        if doc.steps.value.is_empty() {
            self.push(self.error(
                "playbook::no-steps",
                doc.steps.span,
                "a playbook needs at least one step",
            ));
        }
        let mut inputs = IndexMap::new();
        let mut unreadable_inputs = Vec::new();
        for (name, node) in &doc.inputs {
            match self.read::<InputSpec>(node) {
                Some(spec) => {
                    inputs.insert(name.clone(), spec);
                }
                None => unreadable_inputs.push(name.value.clone()),
            }
        }
        let steps = self.steps(&doc.steps.value, "");
        let finally = doc
            .finally
            .as_ref()
            .map(|f| self.steps(&f.value, "finally."))
            .unwrap_or_default();
        Playbook {
            version: doc.runsheet,
            name: doc.name,
            description: doc.description,
            inputs,
            unreadable_inputs,
            vars: doc.vars,
            concurrency,
            rollback: doc.rollback.map_or(RollbackPolicy::default(), |r| r.value),
            window_end: doc.window_end.map(|w| w.value).unwrap_or_default(),
            steps,
            finally,
            outputs: doc.outputs,
        }
    }

    fn check_version(&mut self, version: &Spanned<u32>) {
        if version.value != FORMAT_VERSION {
            self.push(
                self.error(
                    "format::version",
                    version.span,
                    format!("unsupported format version {}", version.value),
                )
                .with_help(format!("this build reads `runsheet: {FORMAT_VERSION}`")),
            );
        }
    }

    fn steps(&mut self, nodes: &[Node], prefix: &str) -> Vec<Step> {
        let mut steps = Vec::with_capacity(nodes.len());
        for node in nodes {
            if node.as_map().is_none() {
                self.push(self.error(
                    "step::not-a-mapping",
                    node.span,
                    format!(
                        "expected a step (a mapping with `id:`), found {}",
                        node.value.kind()
                    ),
                ));
                continue;
            }
            if let Some((doc, lossy)) = self.read_lossy::<StepDoc>(node)
                && let Some(step) = self.step(doc, node, prefix, lossy)
            {
                steps.push(step);
            }
        }
        steps
    }

    fn step(&mut self, doc: StepDoc, node: &Node, prefix: &str, lossy: bool) -> Option<Step> {
        let span = node
            .as_map()
            .and_then(|m| m.first())
            .map_or(node.span, |(k, _)| k.span);
        if !is_valid_step_id(&doc.id) {
            self.push(
                self.error(
                    "step::bad-id",
                    doc.id.span,
                    format!("invalid step id `{}`", doc.id.value),
                )
                .with_help(
                    "a step id is letters, digits, `_` and `-` (no dots, brackets or spaces)",
                ),
            );
        }
        let path = format!("{prefix}{}", doc.id.value);
        let kind = self.step_kind(&doc, node, &path, span, lossy)?;
        Some(Step {
            path,
            name: doc.name,
            kind,
            needs: doc.needs.map_or(Needs::Previous, Needs::Explicit),
            when: doc.when,
            on: doc.on,
            timeout: doc.timeout,
            retries: doc.retries,
            retry_delay: doc.retry_delay,
            until: doc.until,
            checkpoint: doc.checkpoint.is_some_and(|c| c.value),
            rollback: doc.rollback,
            continue_on_error: doc.continue_on_error.is_some_and(|c| c.value),
            sensitive: doc.sensitive.is_some_and(|c| c.value),
            id: doc.id,
            span,
        })
    }

    fn step_kind(
        &mut self,
        doc: &StepDoc,
        node: &Node,
        path: &str,
        span: Span,
        lossy: bool,
    ) -> Option<StepKind> {
        let fan_out_keys = [
            ("as", doc.as_name.as_ref().map(|a| a.span)),
            ("batch", doc.batch.as_ref().map(|b| b.span())),
            ("max_failures", doc.max_failures.as_ref().map(|m| m.span())),
        ];
        match (&doc.action, &doc.steps) {
            (Some(action), Some(steps)) => {
                self.push(
                    self.error(
                        "step::action-and-steps",
                        node.key_span("steps").unwrap_or(steps.span),
                        "a step has either `action` or `steps`, not both",
                    )
                    .with_related(action.span, "action given here")
                    .with_help("move the body into a step of its own, or drop `action`"),
                );
                None
            }
            (None, None) if lossy => None,
            (None, None) => {
                self.push(
                    self.error(
                        "step::no-action",
                        span,
                        format!("step `{}` has neither `action` nor `steps`", doc.id.value),
                    )
                    .with_help(
                        "add `action: <type>` (see `runsheet actions`), or `steps:` for a group",
                    ),
                );
                None
            }
            (Some(action), None) => {
                if let Some(for_each) = &doc.for_each {
                    self.push(
                        self.error(
                            "step::for-each-without-body",
                            for_each.span,
                            "`for_each` needs a body in `steps`",
                        )
                        .with_help("put the action in `steps:` under the for_each step"),
                    );
                }
                for (key, key_span) in fan_out_keys {
                    if let Some(key_span) = key_span {
                        self.push(self.error(
                            "step::fan-out-key",
                            key_span,
                            format!("`{key}` only applies to a `for_each` step"),
                        ));
                    }
                }
                Some(StepKind::Action {
                    action: action.clone(),
                    with: doc.with.clone(),
                })
            }
            (None, Some(body)) => {
                if let Some(with) = &doc.with {
                    self.push(self.error(
                        "step::with-on-group",
                        with.span,
                        "`with` only applies to a step with an `action`",
                    ));
                }
                if body.value.is_empty() {
                    self.push(self.error("step::empty-body", body.span, "`steps` is empty"));
                }
                let steps = self.steps(&body.value, &format!("{path}."));
                match &doc.for_each {
                    Some(items) => Some(StepKind::ForEach {
                        items: items.clone(),
                        as_name: doc
                            .as_name
                            .clone()
                            .unwrap_or_else(|| Spanned::new("item".into(), items.span)),
                        batch: doc.batch.clone(),
                        max_failures: doc.max_failures.clone(),
                        steps,
                    }),
                    None => {
                        for (key, key_span) in fan_out_keys {
                            if let Some(key_span) = key_span {
                                self.push(self.error(
                                    "step::fan-out-key",
                                    key_span,
                                    format!("`{key}` only applies to a `for_each` step"),
                                ));
                            }
                        }
                        Some(StepKind::Group { steps })
                    }
                }
            }
        }
    }

    fn environment(&mut self, doc: EnvironmentDoc) -> Environment {
        self.check_version(&doc.runsheet);
        if !is_valid_name(&doc.name) {
            self.push(
                self.error(
                    "environment::bad-name",
                    doc.name.span,
                    format!("invalid environment name `{}`", doc.name.value),
                )
                .with_help("a name is lowercase letters, digits, `-` and `_`"),
            );
        }
        let mut unreadable = Vec::new();
        let mut gateways = IndexMap::new();
        for (name, node) in &doc.gateways {
            match self.gateway(name, node) {
                Some(gateway) => {
                    gateways.insert(name.clone(), gateway);
                }
                None => unreadable.push(name.value.clone()),
            }
        }
        let defaults = doc.ssh.clone().unwrap_or_default();
        let mut hosts = Vec::with_capacity(doc.hosts.len());
        for (name, node) in &doc.hosts {
            // A host read with an entry dropped is incomplete: its problems are reported, build nothing.
            let complete = self.read_lossy::<HostDoc>(node).filter(|(_, lossy)| !lossy);
            match complete.and_then(|(host, _)| self.host(name, &host, &defaults)) {
                Some(host) => hosts.push(host),
                None => unreadable.push(name.value.clone()),
            }
        }
        for (name, _) in &doc.hosts {
            if let Some((other, _)) = gateways.get_key_value(name.value.as_str()) {
                let clash = self
                    .error(
                        "environment::name-clash",
                        name.span,
                        format!("`{}` names both a host and a gateway", name.value),
                    )
                    .with_related(other.span, "gateway of the same name")
                    .with_help("`on:` takes a host or gateway name; give them different names");
                self.push(clash);
            }
        }
        Environment {
            name: doc.name,
            vars: doc.vars,
            gateways,
            hosts,
            unreadable,
            ssh: defaults,
            change: doc.change.unwrap_or_default(),
        }
    }

    fn gateway(&mut self, name: &Spanned<String>, node: &Node) -> Option<Gateway> {
        if node.as_map().is_none() {
            self.push(self.error(
                "gateway::not-a-mapping",
                node.span,
                format!("gateway `{}` must be a mapping with a `type`", name.value),
            ));
            return None;
        }
        let Some(kind) = node.get("type") else {
            self.push(
                self.error(
                    "gateway::missing-type",
                    name.span,
                    format!("gateway `{}` has no `type`", name.value),
                )
                .with_help("add `type: kong` or `type: layer7`"),
            );
            return None;
        };
        let gateway = match kind.as_str() {
            Some("kong") => Gateway::Kong(self.read::<KongGatewayDoc>(node)?),
            Some("layer7") => Gateway::Layer7(self.read::<Layer7GatewayDoc>(node)?),
            other => {
                let written = other.map_or_else(|| kind.key_text(), str::to_owned);
                self.push(
                    self.error(
                        "gateway::unknown-type",
                        kind.span,
                        format!("unknown gateway type `{written}`"),
                    )
                    .with_help(
                        crate::suggest::did_you_mean(&written, ["kong", "layer7"])
                            .unwrap_or_else(|| "gateway types are `kong` and `layer7`".into()),
                    ),
                );
                return None;
            }
        };
        let (url, twin) = match &gateway {
            Gateway::Kong(k) => (k.admin_url.is_some(), k.twin.is_some()),
            Gateway::Layer7(l) => (l.url.is_some(), l.twin.is_some()),
        };
        if !url && !twin {
            let key = if matches!(gateway, Gateway::Kong(_)) {
                "admin_url"
            } else {
                "url"
            };
            self.push(
                self.error(
                    "gateway::no-address",
                    name.span,
                    format!("gateway `{}` has neither `{key}` nor `twin`", name.value),
                )
                .with_help(format!(
                    "give the gateway's `{key}`, or `twin: {{}}` to rehearse against an emulator"
                )),
            );
        }
        Some(gateway)
    }

    fn host(
        &mut self,
        name: &Spanned<String>,
        doc: &HostDoc,
        defaults: &SshSettings,
    ) -> Option<Host> {
        let transport = doc.transport.as_ref().map_or(Transport::Ssh, |t| t.value);
        let address = match (&doc.address, transport) {
            (Some(address), _) => address.value.clone(),
            (None, Transport::Local) => "127.0.0.1".to_owned(),
            (None, Transport::Ssh) => {
                self.push(
                    self.error(
                        "host::no-address",
                        name.span,
                        format!("host `{}` has no `address`", name.value),
                    )
                    .with_help("give its `address:`, or `transport: local` for this machine"),
                );
                return None;
            }
        };
        let own = doc.ssh.clone().unwrap_or_default();
        let port = doc
            .port
            .as_ref()
            .or(own.port.as_ref())
            .or(defaults.port.as_ref())
            .map_or(22, |p| p.value);
        let user = doc
            .user
            .as_ref()
            .or(own.user.as_ref())
            .or(defaults.user.as_ref())
            .map(|u| u.value.clone());
        let base = Path::new(&self.file.name)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let path = |own: &Option<Spanned<String>>, default: &Option<Spanned<String>>| {
            own.as_ref()
                .or(default.as_ref())
                .map(|p| base.join(expand_home(&p.value)))
        };
        let duration = |own: &Option<Spanned<Duration>>, default: &Option<Spanned<Duration>>| {
            own.as_ref().or(default.as_ref()).map(|d| d.value.0)
        };
        let ssh = Arc::new(HostSsh {
            identity: path(&own.identity, &defaults.identity),
            known_hosts: path(&own.known_hosts, &defaults.known_hosts),
            jump_host: own
                .jump_host
                .as_ref()
                .or(defaults.jump_host.as_ref())
                .map(|j| j.value.clone()),
            connect_timeout: duration(&own.connect_timeout, &defaults.connect_timeout),
            keepalive: duration(&own.keepalive, &defaults.keepalive),
            strict_host_key_checking: own
                .strict_host_key_checking
                .as_ref()
                .or(defaults.strict_host_key_checking.as_ref())
                .is_none_or(|s| s.value),
        });
        Some(Host {
            name: name.value.clone(),
            address,
            port,
            user,
            transport,
            groups: doc.groups.iter().map(|g| g.value.clone()).collect(),
            vars: doc
                .vars
                .iter()
                .map(|(k, v)| (k.value.clone(), v.to_json()))
                .collect(),
            ssh,
            twin_node: doc.twin.as_ref().map(|twin| Box::new(twin.node.clone())),
        })
    }
}

/// A path with a leading `~/` turned into the user's home directory.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Index of the mapping entry whose key or value contains the span.
fn entry_containing(node: &Node, span: Span) -> Option<usize> {
    let entries = node.as_map()?;
    entries
        .iter()
        .position(|(key, value)| key.span == span || contains(value, span))
}

fn contains(node: &Node, span: Span) -> bool {
    let mut found = false;
    node.walk(&mut |n| found |= n.span == span);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Option<Playbook>, Vec<String>) {
        let file = SourceFile::new("p.yaml", text);
        let (playbook, diagnostics) = load_playbook(&file);
        let messages = diagnostics
            .iter()
            .map(|d| format!("{}:{}", d.code, d.message))
            .collect();
        (playbook, messages)
    }

    #[test]
    fn reads_a_minimal_playbook() {
        let (playbook, messages) = load(
            "runsheet: 1\nname: demo\nsteps:\n  - id: hello\n    action: log\n    with: {message: hi}\n",
        );
        assert_eq!(messages, Vec::<String>::new());
        let steps = playbook.map(|p| p.steps.iter().map(|s| s.path.clone()).collect::<Vec<_>>());
        assert_eq!(steps, Some(vec!["hello".to_owned()]));
    }

    #[test]
    fn reports_every_unknown_key_at_once() {
        let (_, messages) = load(
            "runsheet: 1\nname: demo\nstpes: []\nsteps:\n  - id: a\n    acton: log\n  - id: b\n    action: log\n    neeeds: [a]\n",
        );
        assert_eq!(
            messages,
            vec![
                "key::unknown:unknown key `stpes`",
                "key::unknown:unknown key `acton`",
                "key::unknown:unknown key `neeeds`",
            ]
        );
    }

    #[test]
    fn body_ids_are_scoped() {
        let (playbook, messages) = load(
            "runsheet: 1\nname: demo\nsteps:\n  - id: upgrade\n    for_each: \"{{ hosts('dp') }}\"\n    as: host\n    batch: 2\n    steps:\n      - id: drain\n        action: log\n",
        );
        assert!(messages.is_empty(), "{messages:?}");
        let paths = playbook.map(|p| {
            p.all_steps()
                .iter()
                .map(|s| s.path.clone())
                .collect::<Vec<_>>()
        });
        assert_eq!(
            paths,
            Some(vec!["upgrade".to_owned(), "upgrade.drain".to_owned()])
        );
    }

    #[test]
    fn huge_integers_are_flagged() {
        let (_, messages) =
            load("runsheet: 1\nname: demo\nconcurrency: 99999999999999999999999\nsteps: []\n");
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("yaml::number-too-large")),
            "{messages:?}"
        );
    }

    #[test]
    fn invalid_utf8_names_the_position() {
        let err = source_from_bytes("x.yaml".into(), b"a: 1\nb: \xff\n".to_vec()).err();
        assert_eq!(err.and_then(|d| d.line_col()), Some((2, 4)));
    }
}
