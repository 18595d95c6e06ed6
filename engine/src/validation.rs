//! Semantic checks of a loaded playbook (and, when given, its environment):
//! the DAG, actions and their arguments, templates and the names they read,
//! inputs and their defaults. Every problem is reported; nothing stops early.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::TargetKind;
use crate::dag::{Dag, DagProblem, FINALLY_SCOPE, MAIN_SCOPE};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::inputs;
use crate::model::{Environment, Playbook, Setting, Step, StepKind, StepRollback, Target};
use crate::node::{Node, NodeValue};
use crate::registry::Registry;
use crate::schema_check::{self, ViolationKind};
use crate::source::{SourceFile, Span};
use crate::suggest::did_you_mean;
use crate::template::{GLOBAL_FUNCTIONS, TemplateReads, Templates};

mod outputs;

/// The environment a playbook is validated against.
#[derive(Debug, Clone, Copy)]
pub struct EnvironmentContext<'a> {
    /// The loaded environment.
    pub environment: &'a Environment,
    /// Its file, for positions.
    pub file: &'a Arc<SourceFile>,
}

/// Checks a loaded playbook; returns its DAG and every problem found.
pub fn validate(
    file: &Arc<SourceFile>,
    playbook: &Playbook,
    registry: &Registry,
    templates: &Templates,
    environment: Option<EnvironmentContext<'_>>,
) -> (Dag, Diagnostics) {
    let (dag, problems) = Dag::build(playbook);
    let mut validator = Validator {
        file,
        playbook,
        registry,
        templates,
        environment,
        dag: &dag,
        diagnostics: Diagnostics::new(),
    };
    for problem in problems {
        validator.dag_problem(problem);
    }
    validator.inputs();
    validator.vars();
    let mut chain = Vec::new();
    validator.steps(&playbook.steps, MAIN_SCOPE, &mut chain, &[]);
    validator.steps(&playbook.finally, FINALLY_SCOPE, &mut chain, &[]);
    validator.outputs();
    let mut diagnostics = validator.diagnostics;
    diagnostics.sort();
    (dag, diagnostics)
}

/// Where a template stands, which decides the names it may read.
#[derive(Debug, Clone, Default)]
struct NameScope {
    /// Step outputs are readable (not in vars).
    steps: bool,
    /// Number of leading vars visible (all when `None`).
    vars_visible: Option<usize>,
    /// Item variables of enclosing `for_each` bodies.
    items: Vec<String>,
    /// `host` is defined (the step runs on a host).
    host: bool,
    /// `result` is defined (inside `until`).
    result: bool,
    /// A playbook output: evaluated after every step, reading any top-level step.
    outputs: bool,
}

struct Validator<'a> {
    file: &'a Arc<SourceFile>,
    playbook: &'a Playbook,
    registry: &'a Registry,
    templates: &'a Templates,
    environment: Option<EnvironmentContext<'a>>,
    dag: &'a Dag,
    diagnostics: Diagnostics,
}

impl<'a> Validator<'a> {
    fn error(&self, code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(code, message).at(self.file, span)
    }

    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn dag_problem(&mut self, problem: DagProblem) {
        let diagnostic = match problem {
            DagProblem::DuplicateId { span, first, id } => self
                .error(
                    "step::duplicate-id",
                    span,
                    format!("duplicate step id `{id}`"),
                )
                .with_label("used again here")
                .with_related(first, "first used here")
                .with_help(
                    "ids must be unique among the steps of one list (bodies have their own scope)",
                ),
            DagProblem::UnknownNeed {
                span,
                name,
                siblings,
                outer,
            } => {
                let help = if outer {
                    Some("a step can only need steps of its own list; put the dependency on the enclosing group".to_owned())
                } else {
                    did_you_mean(&name, siblings.iter().map(String::as_str))
                };
                self.error(
                    "needs::unknown",
                    span,
                    format!("`needs` names unknown step `{name}`"),
                )
                .with_optional_help(help)
            }
            DagProblem::SelfNeed { span } => {
                self.error("needs::self", span, "a step cannot need itself")
            }
            DagProblem::Cycle { ring, spans } => {
                let mut diagnostic = self
                    .error(
                        "needs::cycle",
                        spans.first().copied().unwrap_or_default(),
                        format!(
                            "steps depend on each other in a cycle: {}",
                            ring.join(" → ")
                        ),
                    )
                    .with_help("remove one of these `needs` so the steps can be ordered");
                for span in spans.iter().skip(1) {
                    diagnostic = diagnostic.with_related(*span, "part of the cycle");
                }
                diagnostic
            }
        };
        self.push(diagnostic);
    }

    fn inputs(&mut self) {
        for (name, spec) in &self.playbook.inputs {
            if !is_identifier(name) {
                let d = self
                    .error("input::bad-name", name.span, format!("invalid input name `{}`", name.value))
                    .with_help("input names are letters, digits and `_`, so templates can read `inputs.<name>`");
                self.push(d);
            }
            if let Some(pattern) = &spec.pattern
                && let Err(e) = regex::Regex::new(&pattern.value)
            {
                let d = self.error(
                    "input::bad-pattern",
                    pattern.span,
                    format!("invalid regular expression: {e}"),
                );
                self.push(d);
                continue;
            }
            if let (Some(min), Some(max)) = (&spec.minimum, &spec.maximum)
                && min.value > max.value
            {
                let d = self
                    .error(
                        "input::bad-range",
                        min.span,
                        "minimum is greater than maximum",
                    )
                    .with_related(max.span, "maximum");
                self.push(d);
            }
            if let Some(default) = &spec.default {
                if let Err(e) = inputs::from_node(spec, default) {
                    let d = self.error(
                        "input::bad-default",
                        default.span,
                        format!("default of `{}`: {e}", name.value),
                    );
                    self.push(d);
                }
                if spec.required {
                    let d = Diagnostic::warning(
                        "input::required-with-default",
                        format!("input `{}` is required but has a default", name.value),
                    )
                    .at(self.file, name.span)
                    .with_help("a default makes `required` meaningless; drop one of them");
                    self.push(d);
                }
            }
        }
    }

    fn vars(&mut self) {
        for (position, (name, value)) in self.playbook.vars.iter().enumerate() {
            if !is_identifier(name) {
                let d = self.error(
                    "var::bad-name",
                    name.span,
                    format!("invalid var name `{}`", name.value),
                );
                self.push(d);
            }
            let scope = NameScope {
                vars_visible: Some(position),
                ..NameScope::default()
            };
            self.node_templates(value, &scope, &[]);
        }
    }

    /// `chain` holds (scope key, sibling index) of the enclosing steps, outermost first.
    fn steps(
        &mut self,
        steps: &'a [Step],
        scope_key: &str,
        chain: &mut Vec<(String, usize)>,
        items: &[String],
    ) {
        for (index, step) in steps.iter().enumerate() {
            chain.push((scope_key.to_owned(), index));
            self.step(step, steps, chain, items);
            match &step.kind {
                StepKind::Group { steps: body } => {
                    self.steps(body, &format!("{}.", step.path), chain, items);
                }
                StepKind::ForEach {
                    steps: body,
                    as_name,
                    ..
                } => {
                    let mut inner = items.to_vec();
                    inner.push(as_name.value.clone());
                    self.steps(body, &format!("{}.", step.path), chain, &inner);
                }
                StepKind::Action { .. } => {}
            }
            chain.pop();
        }
    }

    fn step(
        &mut self,
        step: &'a Step,
        siblings: &[Step],
        chain: &[(String, usize)],
        items: &[String],
    ) {
        let host_step = step.on.is_some() || items.iter().any(|i| i == "host");
        let scope = NameScope {
            steps: true,
            items: items.to_vec(),
            host: host_step,
            ..NameScope::default()
        };
        let on_scope = NameScope {
            host: items.iter().any(|i| i == "host"),
            ..scope.clone()
        };
        for text in [&step.when].into_iter().flatten() {
            self.template(text.source.as_str(), text.span, &scope, chain);
        }
        if let Some(on) = &step.on {
            self.template(on.source.as_str(), on.span, &on_scope, chain);
        }
        self.setting(&step.timeout, &scope, chain);
        self.setting(&step.retries, &scope, chain);
        self.setting(&step.retry_delay, &scope, chain);
        if let Some(until) = &step.until {
            let until_scope = NameScope {
                result: true,
                ..scope.clone()
            };
            self.template(until.source.as_str(), until.span, &until_scope, chain);
            if step.action().is_none() {
                let d = self.error(
                    "step::until-on-group",
                    until.span,
                    "`until` only applies to a step with an `action`",
                );
                self.push(d);
            }
        }
        if let Some(rollback) = &step.rollback {
            self.rollback(step, rollback, siblings);
        }
        match &step.kind {
            StepKind::Action { action, with } => {
                self.action(step, action, with.as_ref(), &scope, chain)
            }
            StepKind::ForEach {
                items: list,
                as_name,
                batch,
                max_failures,
                ..
            } => {
                let outer_scope = NameScope {
                    host: false,
                    ..scope.clone()
                };
                self.template(list.source.as_str(), list.span, &outer_scope, chain);
                if !is_identifier(as_name) {
                    let d = self.error(
                        "step::bad-as",
                        as_name.span,
                        format!("`as` must be a variable name, found `{}`", as_name.value),
                    );
                    self.push(d);
                } else if is_reserved(&as_name.value) {
                    let d = self
                        .error(
                            "step::reserved-as",
                            as_name.span,
                            format!("`{}` is a name templates already use", as_name.value),
                        )
                        .with_help("choose another item name, such as `node` or `item`");
                    self.push(d);
                }
                for setting in [batch, max_failures] {
                    self.setting(setting, &outer_scope, chain);
                }
                if let Some(Setting::Literal(batch)) = batch
                    && batch.value == 0
                {
                    let d =
                        self.error("step::zero-batch", batch.span, "`batch` must be at least 1");
                    self.push(d);
                }
            }
            StepKind::Group { .. } => {}
        }
    }

    fn setting<T>(
        &mut self,
        setting: &Option<Setting<T>>,
        scope: &NameScope,
        chain: &[(String, usize)],
    ) {
        if let Some(Setting::Template(text)) = setting {
            self.template(text.source.as_str(), text.span, scope, chain);
        }
    }

    fn rollback(
        &mut self,
        step: &Step,
        rollback: &crate::de::Spanned<StepRollback>,
        siblings: &[Step],
    ) {
        if let StepRollback::Steps(ids) = &rollback.value {
            for id in ids {
                let span = if id.span == Span::default() {
                    rollback.span
                } else {
                    id.span
                };
                if id.value == step.id.value {
                    let d = self.error("rollback::self", span, "a step cannot be its own rollback");
                    self.push(d);
                } else if !siblings.iter().any(|s| s.id.value == id.value) {
                    let d = self
                        .error(
                            "rollback::unknown",
                            span,
                            format!("`rollback` names unknown step `{}`", id.value),
                        )
                        .with_optional_help(
                            did_you_mean(&id.value, siblings.iter().map(|s| s.id.value.as_str()))
                                .or_else(|| {
                                    Some(
                                        "write `auto`, `none`, or ids of steps in the same list"
                                            .into(),
                                    )
                                }),
                        );
                    self.push(d);
                }
            }
        }
    }

    fn action(
        &mut self,
        step: &Step,
        action: &crate::de::Spanned<String>,
        with: Option<&Node>,
        scope: &NameScope,
        chain: &[(String, usize)],
    ) {
        if let Some(with) = with {
            self.node_templates(with, scope, chain);
        }
        let Some(registered) = self.registry.get(&action.value) else {
            let help = self
                .registry
                .suggest(&action.value)
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| "`runsheet actions` lists every action type".into());
            let d = self
                .error(
                    "step::unknown-action",
                    action.span,
                    format!("unknown action type `{}`", action.value),
                )
                .with_help(help);
            self.push(d);
            return;
        };
        let spec = registered.spec();
        let empty = Node {
            value: NodeValue::Map(Vec::new()),
            span: action.span,
        };
        let arguments = match with {
            Some(node) if matches!(node.value, NodeValue::Null) => &empty,
            Some(node) => node,
            None => &empty,
        };
        if !matches!(arguments.value, NodeValue::Map(_)) {
            let d = self.error(
                "with::not-a-mapping",
                arguments.span,
                format!(
                    "`with` must be a mapping of arguments, found {}",
                    arguments.value.kind()
                ),
            );
            self.push(d);
            return;
        }
        for violation in schema_check::check(&spec.arguments, arguments) {
            let code = match violation.kind {
                ViolationKind::Unknown => "with::unknown-argument",
                ViolationKind::Missing => "with::missing-argument",
                ViolationKind::WrongType => "with::wrong-type",
                ViolationKind::Invalid => "with::invalid-value",
            };
            let span = if with.is_none() {
                action.span
            } else {
                violation.span
            };
            let d = self
                .error(
                    code,
                    span,
                    format!("{} (action `{}`)", violation.message, spec.name),
                )
                .with_optional_help(violation.help);
            self.push(d);
        }
        self.target(step, spec.target, action);
    }

    fn target(&mut self, step: &Step, target: TargetKind, action: &crate::de::Spanned<String>) {
        let Some(context) = self.environment else {
            return;
        };
        let environment = context.environment;
        if !environment.unreadable.is_empty() {
            // A host or gateway could not be read (already reported): targets cannot be judged.
            return;
        }
        let literal = step.on.as_ref().filter(|on| !on.is_templated());
        if let Some(on) = literal {
            match (environment.target(&on.source), target) {
                (None, _) => {
                    let names = environment
                        .hosts
                        .iter()
                        .map(|h| h.name.as_str())
                        .chain(environment.gateways.keys().map(|k| k.value.as_str()));
                    let help = did_you_mean(&on.source, names);
                    let d = self
                        .error(
                            "on::unknown",
                            on.span,
                            format!(
                                "`on` names `{}`, which environment `{}` does not have",
                                on.source, environment.name.value
                            ),
                        )
                        .with_optional_help(help.or_else(|| {
                            Some("`on` takes a host or gateway name of the environment".into())
                        }));
                    self.push(d);
                }
                (Some(Target::Host(_)), TargetKind::Gateway(kind)) => {
                    let d = self.error(
                        "on::wrong-target",
                        on.span,
                        format!(
                            "`{}` is a host, but `{}` runs against a {kind} gateway",
                            on.source, action.value
                        ),
                    );
                    self.push(d);
                }
                (Some(Target::Gateway(gateway)), TargetKind::Gateway(kind))
                    if gateway.kind() != kind =>
                {
                    let d = self.error(
                        "on::wrong-target",
                        on.span,
                        format!(
                            "`{}` is a {} gateway, but `{}` runs against a {kind} gateway",
                            on.source,
                            gateway.kind(),
                            action.value
                        ),
                    );
                    self.push(d);
                }
                (Some(Target::Gateway(_)), TargetKind::Host) => {
                    let d = self.error(
                        "on::wrong-target",
                        on.span,
                        format!(
                            "`{}` is a gateway, but `{}` runs on a host",
                            on.source, action.value
                        ),
                    );
                    self.push(d);
                }
                _ => {}
            }
            return;
        }
        if step.on.is_some() {
            return; // Templated: resolved at run time.
        }
        match target {
            TargetKind::Gateway(kind) => {
                let count = environment
                    .gateways
                    .values()
                    .filter(|g| g.kind() == kind)
                    .count();
                if count != 1 {
                    let message = if count == 0 {
                        format!(
                            "`{}` needs a {kind} gateway, and environment `{}` has none",
                            action.value, environment.name.value
                        )
                    } else {
                        format!(
                            "environment `{}` has {count} {kind} gateways; say which with `on:`",
                            environment.name.value
                        )
                    };
                    let d = self.error("on::missing-gateway", action.span, message);
                    self.push(d);
                }
            }
            TargetKind::Host if environment.hosts.len() != 1 => {
                let d = self
                    .error("on::missing-host", action.span, format!("`{}` runs on a host; say which with `on:`", action.value))
                    .with_help("write `on: <host name>`, or run the step per host with `for_each: \"{{ hosts('group') }}\"` and `on: \"{{ host }}\"`");
                self.push(d);
            }
            _ => {}
        }
    }

    /// Checks every templated string inside a YAML value.
    fn node_templates(&mut self, node: &Node, scope: &NameScope, chain: &[(String, usize)]) {
        let mut strings = Vec::new();
        node.walk(&mut |n| {
            if let NodeValue::String(text) = &n.value
                && crate::model::is_templated(text)
            {
                strings.push((text.clone(), n.span));
            }
        });
        for (text, span) in strings {
            self.template(&text, span, scope, chain);
        }
    }

    fn template(&mut self, text: &str, span: Span, scope: &NameScope, chain: &[(String, usize)]) {
        if !crate::model::is_templated(text) {
            return;
        }
        let reads = match self.templates.analyze(text) {
            Ok(reads) => reads,
            Err(error) => {
                let at = error
                    .range
                    .map_or(span, |range| self.inner_span(span, text, range));
                let d = self
                    .error("template::syntax", at, error.message)
                    .with_label("here");
                self.push(d);
                return;
            }
        };
        self.names(&reads, span, scope, chain);
    }

    /// The span of a byte range inside a template, when the text is written verbatim.
    fn inner_span(&self, span: Span, text: &str, range: std::ops::Range<usize>) -> Span {
        let written = self
            .file
            .text
            .get(span.offset..span.offset + span.len)
            .unwrap_or("");
        let Some(start) = written.find(text) else {
            return span;
        };
        let text_start = span.offset + start;
        let begin = text_start + range.start;
        // Underline at least one whole character.
        let mut end = (text_start + range.end)
            .max(begin + 1)
            .min(self.file.text.len());
        while end < self.file.text.len() && !self.file.text.is_char_boundary(end) {
            end += 1;
        }
        Span::new(begin, end.saturating_sub(begin))
    }

    fn names(
        &mut self,
        reads: &TemplateReads,
        span: Span,
        scope: &NameScope,
        chain: &[(String, usize)],
    ) {
        let roots: BTreeSet<&str> = reads.roots().collect();
        for root in roots {
            let known = match root {
                "inputs" | "env" | "vars" => true,
                "steps" => scope.steps,
                "host" => scope.host,
                "result" => scope.result,
                other => {
                    GLOBAL_FUNCTIONS.contains(&other) || scope.items.iter().any(|i| i == other)
                }
            };
            if !known {
                let d = self
                    .error(
                        "template::undefined",
                        span,
                        format!("template reads `{root}`, which is not defined here"),
                    )
                    .with_help(undefined_help(root, scope));
                self.push(d);
            }
        }
        let declared_inputs: Vec<&str> = self
            .playbook
            .inputs
            .keys()
            .map(|k| k.value.as_str())
            .chain(self.playbook.unreadable_inputs.iter().map(String::as_str))
            .collect();
        for name in reads.members_of("inputs") {
            if !declared_inputs.contains(&name) {
                let d = self
                    .error(
                        "template::unknown-input",
                        span,
                        format!("template reads `inputs.{name}`, which is not declared"),
                    )
                    .with_optional_help(
                        did_you_mean(name, declared_inputs.iter().copied()).or_else(|| {
                            Some(format!(
                                "declare it under `inputs:` ({name}: {{type: string}})"
                            ))
                        }),
                    );
                self.push(d);
            }
        }
        let visible_vars: Vec<&str> = self
            .playbook
            .vars
            .keys()
            .take(scope.vars_visible.unwrap_or(usize::MAX))
            .map(|k| k.value.as_str())
            .collect();
        for name in reads.members_of("vars") {
            if !visible_vars.contains(&name) {
                let declared_later = self.playbook.vars.keys().any(|k| k.value == name);
                let help = if declared_later {
                    Some("a var can only read vars declared before it".to_owned())
                } else {
                    did_you_mean(name, visible_vars.iter().copied())
                };
                let d = self
                    .error(
                        "template::unknown-var",
                        span,
                        format!(
                            "template reads `vars.{name}`, which is not declared before this point"
                        ),
                    )
                    .with_optional_help(help);
                self.push(d);
            }
        }
        if scope.outputs {
            self.output_reads(reads, span);
        } else if scope.steps {
            for id in reads.step_ids() {
                self.step_reference(id, span, chain);
            }
        }
        if let Some(context) = self.environment {
            self.environment_names(reads, span, context);
        }
    }

    /// Checks that `steps.<id>` names a step that finishes before the reader starts.
    fn step_reference(&mut self, id: &str, span: Span, chain: &[(String, usize)]) {
        for (scope_key, index) in chain.iter().rev() {
            let Some(scope) = self.dag.scope(scope_key) else {
                continue;
            };
            let Some(position) = scope.position(id) else {
                continue;
            };
            if position == *index {
                let d = self
                    .error(
                        "template::own-outputs",
                        span,
                        format!("step `{id}` reads its own outputs"),
                    )
                    .with_help("inside `until`, read the current attempt as `result`");
                self.push(d);
            } else if !scope.is_ancestor(position, *index) && !scope.order().is_empty() {
                let d = self
                    .error(
                        "template::not-an-ancestor",
                        span,
                        format!("template reads `steps.{id}`, but `{id}` is not guaranteed to finish before this step"),
                    )
                    .with_help(format!("add `{id}` to this step's `needs` (directly or through a step it needs)"));
                self.push(d);
            }
            return;
        }
        // Finally steps may read any main step: they run after all of them.
        let in_finally = chain.first().is_some_and(|(k, _)| k == FINALLY_SCOPE);
        if in_finally
            && self
                .dag
                .scope(MAIN_SCOPE)
                .and_then(|s| s.position(id))
                .is_some()
        {
            return;
        }
        let mut scopes: Vec<&str> = chain.iter().map(|(key, _)| key.as_str()).collect();
        if in_finally {
            scopes.push(MAIN_SCOPE);
        }
        let visible: Vec<String> = scopes
            .into_iter()
            .flat_map(|key| self.ids_in_scope(key))
            .collect();
        let d = self
            .error(
                "template::unknown-step",
                span,
                format!("template reads `steps.{id}`, but there is no step `{id}` here"),
            )
            .with_optional_help(did_you_mean(id, visible.iter().map(String::as_str)));
        self.push(d);
    }

    fn ids_in_scope(&self, key: &str) -> Vec<String> {
        let steps: Vec<&Step> = self.playbook.all_steps();
        steps
            .into_iter()
            .filter(|s| s.path.strip_suffix(s.id.value.as_str()) == Some(key))
            .map(|s| s.id.value.clone())
            .collect()
    }

    fn environment_names(
        &mut self,
        reads: &TemplateReads,
        span: Span,
        context: EnvironmentContext<'_>,
    ) {
        let environment = context.environment;
        for group in &reads.host_groups {
            // With an unreadable host (already reported) the group may be its own.
            if !environment.has_group(group) && environment.unreadable.is_empty() {
                let groups = environment.groups();
                let d = self
                    .error(
                        "env::unknown-group",
                        span,
                        format!(
                            "`hosts('{group}')`: environment `{}` has no host group `{group}`",
                            environment.name.value
                        ),
                    )
                    .with_optional_help(did_you_mean(group, groups.iter().copied()).or_else(
                        || {
                            Some(format!(
                                "groups in {}: {}",
                                context.file.name,
                                if groups.is_empty() {
                                    "none".into()
                                } else {
                                    groups.join(", ")
                                }
                            ))
                        },
                    ));
                self.push(d);
            }
        }
        for name in reads.members_of("env") {
            let known =
                matches!(name, "name" | "vars" | "gateways")
                    || environment.vars.keys().any(|k| k.value == name);
            if !known {
                let d = self
                    .error(
                        "env::unknown-var",
                        span,
                        format!(
                            "template reads `env.{name}`, which environment `{}` does not define",
                            environment.name.value
                        ),
                    )
                    .with_help("`env` holds `name`, `vars`, `gateways` (type and URLs of each gateway), and each var of the environment file");
                self.push(d);
            }
        }
    }
}

fn undefined_help(root: &str, scope: &NameScope) -> String {
    match root {
        "steps" => "vars are evaluated before any step runs; read step outputs in steps".into(),
        "host" => "`host` is defined on steps with `on:` or inside `for_each ... as: host`".into(),
        "result" => "`result` is only defined inside `until`".into(),
        _ => {
            let mut names = vec!["inputs", "vars", "env", "steps"];
            names.extend(scope.items.iter().map(String::as_str));
            did_you_mean(root, names.iter().copied())
                .unwrap_or_else(|| format!("templates can read {}", names.join(", ")))
        }
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_reserved(name: &str) -> bool {
    matches!(name, "inputs" | "vars" | "env" | "steps" | "result")
        || GLOBAL_FUNCTIONS.contains(&name)
}
