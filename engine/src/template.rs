//! Templating with minijinja in strict mode: the functions and filters of the
//! playbook language, static analysis of the names a template reads, and
//! rendering that keeps the type of a lone expression.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine as _;
use minijinja::value::Value;
use minijinja::{Environment, ErrorKind, UndefinedBehavior};

/// Names minijinja and runsheet provide to every template.
pub const GLOBAL_FUNCTIONS: &[&str] = &[
    "secret",
    "hosts",
    "now",
    "range",
    "dict",
    "namespace",
    "debug",
    "lipsum",
    "cycler",
    "joiner",
];

/// Looks up secrets and host groups while rendering.
pub trait TemplateHost: Send + Sync {
    /// The value of a secret, or why it cannot be had.
    fn secret(&self, name: &str) -> Result<String, String>;
    /// The hosts of a group, as template objects.
    fn hosts(&self, group: &str) -> Result<Vec<serde_json::Value>, String>;
}

/// What [`Templates::analyze`] finds: the names a text reads, or why it does not compile.
pub type Analysis = Result<Arc<TemplateReads>, TemplateSyntaxError>;

/// A compiled template environment with runsheet's functions and filters.
pub struct Templates {
    env: Environment<'static>,
    /// Analyses by template text: validation and planning read the same texts.
    analyses: std::sync::Mutex<std::collections::HashMap<String, Analysis>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

/// A compiled template text: a lone expression (keeps its type) or a text template.
pub enum Compiled<'t> {
    /// `{{ expression }}` alone; the expression as written.
    Expression(minijinja::Expression<'t, 't>, &'t str),
    /// Text with template parts.
    Template(minijinja::Template<'t, 't>),
}

impl Compiled<'_> {
    /// Renders against a context converted with [`Templates::context`].
    pub fn render(&self, context: &Value) -> Result<serde_json::Value, RenderError> {
        let value = match self {
            Compiled::Expression(compiled, expression) => {
                let value = compiled.eval(context).map_err(render_error)?;
                if value.is_undefined() {
                    return Err(RenderError {
                        message: format!("undefined value: `{}` is not defined", expression.trim()),
                    });
                }
                value
            }
            Compiled::Template(template) => {
                Value::from(template.render(context).map_err(render_error)?)
            }
        };
        serde_json::to_value(&value).map_err(|e| RenderError {
            message: format!("template result cannot be used as data: {e}"),
        })
    }
}

/// A template that failed to compile, with the byte range inside its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSyntaxError {
    /// What is wrong.
    pub message: String,
    /// Byte range inside the template text, when known.
    pub range: Option<std::ops::Range<usize>>,
}

/// A template that failed while rendering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    /// What went wrong.
    pub message: String,
}

/// The names a template reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateReads {
    /// Dotted paths of free variables (`inputs.x`, `steps.drain.outputs.y`, `host`).
    pub paths: BTreeSet<String>,
    /// Step ids read with a subscript (`steps['pre-check']`).
    pub subscripted_steps: BTreeSet<String>,
    /// Literal group names passed to `hosts(...)`.
    pub host_groups: BTreeSet<String>,
}

impl TemplateReads {
    /// First segment of every path (`inputs`, `steps`, `host`...).
    pub fn roots(&self) -> impl Iterator<Item = &str> {
        self.paths.iter().map(|p| p.split('.').next().unwrap_or(p))
    }

    /// The second segment of paths under `root` (`inputs.x` gives `x`).
    pub fn members_of<'a>(&'a self, root: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.paths.iter().filter_map(move |p| {
            let rest = p.strip_prefix(root)?.strip_prefix('.')?;
            Some(rest.split('.').next().unwrap_or(rest))
        })
    }

    /// Every step id the template reads.
    pub fn step_ids(&self) -> BTreeSet<&str> {
        self.members_of("steps")
            .chain(self.subscripted_steps.iter().map(String::as_str))
            .collect()
    }
}

/// The inner expression of a string that is exactly one `{{ expression }}`.
pub fn lone_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%")).then_some(inner)
}

impl Templates {
    /// An environment whose `secret()` and `hosts()` ask `host`.
    pub fn new(host: Arc<dyn TemplateHost>) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // A file's content ends with its newline: rendering must not eat it.
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        let secrets = Arc::clone(&host);
        env.add_function(
            "secret",
            move |name: String| -> Result<String, minijinja::Error> {
                secrets
                    .secret(&name)
                    .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e))
            },
        );
        let inventory = host;
        env.add_function(
            "hosts",
            move |group: String| -> Result<Value, minijinja::Error> {
                inventory
                    .hosts(&group)
                    .map(|hosts| Value::from(minijinja::value::Serde(hosts)))
                    .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e))
            },
        );
        env.add_function("now", now);
        env.add_filter("shell_quote", shell_quote);
        env.add_filter("to_json", to_json);
        env.add_filter("b64encode", b64encode);
        env.add_filter("timestamp", timestamp);
        env.add_filter("seconds", seconds);
        Self {
            env,
            analyses: std::sync::Mutex::default(),
        }
    }

    /// Compiles a template text and lists the names it reads.
    pub fn analyze(&self, text: &str) -> Analysis {
        if let Some(known) = self
            .analyses
            .lock()
            .ok()
            .and_then(|cache| cache.get(text).cloned())
        {
            return known;
        }
        let analysis = self.analyze_uncached(text).map(Arc::new);
        if let Ok(mut cache) = self.analyses.lock() {
            cache.insert(text.to_owned(), analysis.clone());
        }
        analysis
    }

    fn analyze_uncached(&self, text: &str) -> Result<TemplateReads, TemplateSyntaxError> {
        let paths = match lone_expression(text) {
            Some(expression) => {
                let offset = text.find(expression).unwrap_or(0);
                self.env
                    .compile_expression(expression)
                    .map_err(|e| syntax_error(&e, offset))?
                    .undeclared_variables(true)
            }
            None => self
                .env
                .template_from_str(text)
                .map_err(|e| syntax_error(&e, 0))?
                .undeclared_variables(true),
        };
        Ok(TemplateReads {
            paths: paths.into_iter().collect(),
            subscripted_steps: string_arguments(text, "steps["),
            host_groups: string_arguments(text, "hosts("),
        })
    }

    /// Renders a template text; a lone expression keeps its type.
    pub fn render(
        &self,
        text: &str,
        context: &serde_json::Value,
    ) -> Result<serde_json::Value, RenderError> {
        self.render_in(text, &Self::context(context))
    }

    /// Converts a JSON context once, for many [`Templates::render_in`] calls.
    pub fn context(context: &serde_json::Value) -> Value {
        Value::from(minijinja::value::Serde(context))
    }

    /// Renders a template text against a converted context; a lone expression keeps its type.
    pub fn render_in(&self, text: &str, context: &Value) -> Result<serde_json::Value, RenderError> {
        self.compile(text)?.render(context)
    }

    /// Renders a whole text as a template (a file's content), always to text.
    pub fn render_text(&self, text: &str, context: &Value) -> Result<String, RenderError> {
        self.env
            .template_from_str(text)
            .and_then(|template| template.render(context))
            .map_err(render_error)
    }

    /// Compiles a template text once, for rendering against many contexts.
    pub fn compile<'t>(&'t self, text: &'t str) -> Result<Compiled<'t>, RenderError> {
        match lone_expression(text) {
            Some(expression) => self
                .env
                .compile_expression(expression)
                .map(|compiled| Compiled::Expression(compiled, expression))
                .map_err(render_error),
            None => self
                .env
                .template_from_str(text)
                .map(Compiled::Template)
                .map_err(render_error),
        }
    }

    /// Renders every templated string inside a JSON value.
    pub fn render_value(
        &self,
        value: &serde_json::Value,
        context: &serde_json::Value,
    ) -> Result<serde_json::Value, RenderError> {
        use serde_json::Value as Json;
        Ok(match value {
            Json::String(text) if crate::model::is_templated(text) => self.render(text, context)?,
            Json::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|item| self.render_value(item, context))
                    .collect::<Result<_, _>>()?,
            ),
            Json::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_value(v, context)?)))
                    .collect::<Result<_, RenderError>>()?,
            ),
            other => other.clone(),
        })
    }
}

fn syntax_error(error: &minijinja::Error, offset: usize) -> TemplateSyntaxError {
    TemplateSyntaxError {
        message: error.detail().map_or_else(
            || error.kind().to_string(),
            |d| format!("template syntax error: {d}"),
        ),
        range: error.range().map(|r| r.start + offset..r.end + offset),
    }
}

fn render_error(error: minijinja::Error) -> RenderError {
    let mut message = match error.kind() {
        ErrorKind::UndefinedError => "undefined value".to_owned(),
        kind => kind.to_string(),
    };
    if let Some(detail) = error.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    RenderError { message }
}

/// Literal string arguments following `prefix` (`hosts('dp')` gives `dp`).
fn string_arguments(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        rest = &rest[at + prefix.len()..];
        let trimmed = rest.trim_start();
        let Some(quote) = trimmed.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        let body = &trimmed[1..];
        if let Some(end) = body.find(quote) {
            found.insert(body[..end].to_owned());
        }
    }
    found
}

fn now() -> String {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(elapsed.as_secs())
}

/// Formats seconds since the epoch as an RFC 3339 UTC timestamp.
pub fn format_rfc3339(seconds: u64) -> String {
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        (rest % 3600) / 60,
        rest % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn shell_quote(value: Value) -> String {
    let text = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned);
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        return text;
    }
    format!("'{}'", text.replace('\'', r#"'\''"#))
}

fn to_json(value: Value) -> Result<String, minijinja::Error> {
    serde_json::to_string(&value).map_err(|e| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot write as JSON: {e}"),
        )
    })
}

fn b64encode(value: Value) -> String {
    let text = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned);
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// An RFC 3339 time (`2026-11-24T22:00:00Z`, `2026-11-25T00:00:00+02:00`) as Unix
/// seconds, so that times written with different offsets compare and subtract.
fn timestamp(value: String) -> Result<i64, minijinja::Error> {
    value
        .trim()
        .parse::<jiff::Timestamp>()
        .map(|time| time.as_second())
        .map_err(|error| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("timestamp: `{value}` is not an RFC 3339 time ({error})"),
            )
        })
}

/// A duration (`90s`, `1h30m`, `500ms`) as whole seconds (rounded down), so that a
/// duration input compares with a difference of [`timestamp`]s.
fn seconds(value: String) -> Result<u64, minijinja::Error> {
    value
        .parse::<crate::model::Duration>()
        .map(|duration| duration.0.as_secs())
        .map_err(|error| {
            minijinja::Error::new(ErrorKind::InvalidOperation, format!("seconds: {error}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct NoHost;
    impl TemplateHost for NoHost {
        fn secret(&self, name: &str) -> Result<String, String> {
            Ok(format!("value-of-{name}"))
        }
        fn hosts(&self, group: &str) -> Result<Vec<serde_json::Value>, String> {
            Ok(vec![json!({"name": format!("{group}1")})])
        }
    }

    fn templates() -> Templates {
        Templates::new(Arc::new(NoHost))
    }

    #[test]
    fn lone_expression_keeps_type() -> Result<(), RenderError> {
        let ctx = json!({"inputs": {"n": 3, "flag": true}});
        assert_eq!(templates().render("{{ inputs.n }}", &ctx)?, json!(3));
        assert_eq!(
            templates().render(" {{ inputs.flag }} ", &ctx)?,
            json!(true)
        );
        assert_eq!(templates().render("n={{ inputs.n }}", &ctx)?, json!("n=3"));
        Ok(())
    }

    #[test]
    fn a_trailing_newline_is_kept() -> Result<(), RenderError> {
        let ctx = json!({"inputs": {"n": 3}});
        assert_eq!(
            templates().render("port = {{ inputs.n }}\n", &ctx)?,
            json!("port = 3\n")
        );
        Ok(())
    }

    #[test]
    fn undefined_names_are_errors() {
        let err = templates().render("{{ inputs.missing }}", &json!({"inputs": {}}));
        assert!(err.is_err());
        let err = templates().render("x {{ nothing }}", &json!({}));
        assert!(err.is_err());
    }

    #[test]
    fn filters_and_functions() -> Result<(), RenderError> {
        let t = templates();
        assert_eq!(
            t.render("{{ \"it's\" | shell_quote }}", &json!({}))?,
            json!("'it'\\''s'")
        );
        assert_eq!(
            t.render("{{ 'plain' | shell_quote }}", &json!({}))?,
            json!("plain")
        );
        assert_eq!(
            t.render("{{ 'abc' | b64encode }}", &json!({}))?,
            json!("YWJj")
        );
        assert_eq!(
            t.render("{{ '2026-11-25T00:00:00+02:00' | timestamp }}", &json!({}))?,
            json!(1_795_557_600)
        );
        assert_eq!(
            t.render("{{ '1970-01-01T00:01:00Z' | timestamp }}", &json!({}))?,
            json!(60)
        );
        assert!(t.render("{{ 'tomorrow' | timestamp }}", &json!({})).is_err());
        assert_eq!(t.render("{{ '1h30m' | seconds }}", &json!({}))?, json!(5400));
        assert!(t.render("{{ 'soon' | seconds }}", &json!({})).is_err());
        assert_eq!(
            t.render("{{ {'a': 1} | to_json }}", &json!({}))?,
            json!("{\"a\":1}")
        );
        assert_eq!(
            t.render("{{ secret('TOKEN') }}", &json!({}))?,
            json!("value-of-TOKEN")
        );
        assert_eq!(
            t.render("{{ hosts('dp')[0].name }}", &json!({}))?,
            json!("dp1")
        );
        Ok(())
    }

    #[test]
    fn analysis_finds_paths_steps_and_groups() -> Result<(), TemplateSyntaxError> {
        let reads = templates().analyze(
            "{{ steps.drain.outputs.x }} {{ steps['pre-check'] }} {{ hosts('dataplane') }}",
        )?;
        assert_eq!(
            reads.step_ids().into_iter().collect::<Vec<_>>(),
            vec!["drain", "pre-check"]
        );
        assert!(reads.host_groups.contains("dataplane"));
        Ok(())
    }

    #[test]
    fn syntax_error_has_range() {
        let err = templates().analyze("ab {{ foo( }}").err();
        assert_eq!(err.and_then(|e| e.range).map(|r| r.start), Some(11));
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_795_651_200), "2026-11-26T00:00:00Z");
    }
}
