//! Text that may hold template expressions, and settings that may be templated.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::de::Spanned;
use crate::source::Span;

/// A string from the playbook that may contain `{{ ... }}` or `{% ... %}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct TemplateText {
    /// The text as written (booleans and numbers are kept as their YAML text).
    pub source: String,
    /// Where it was written.
    #[serde(skip)]
    pub span: Span,
}

impl TemplateText {
    /// Whether the text holds any template syntax.
    pub fn is_templated(&self) -> bool {
        is_templated(&self.source)
    }
}

/// Whether a string holds template syntax.
pub fn is_templated(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

impl<'de> Deserialize<'de> for TemplateText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<ScalarText>::deserialize(deserializer)?;
        Ok(TemplateText {
            source: spanned.value.0,
            span: spanned.span,
        })
    }
}

impl JsonSchema for TemplateText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Template".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "boolean", "number"],
            "description": "A value or a template such as \"{{ inputs.x > 0 }}\"."
        })
    }
}

/// A scalar read as text: a string, or a boolean or number spelled as written.
struct ScalarText(String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a template")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// A setting given either as a literal value or as a template evaluated at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting<T> {
    /// A value written directly.
    Literal(Spanned<T>),
    /// A template whose result is read as `T` when the step runs.
    Template(TemplateText),
}

impl<T> Setting<T> {
    /// Where the setting was written.
    pub fn span(&self) -> Span {
        match self {
            Setting::Literal(value) => value.span,
            Setting::Template(text) => text.span,
        }
    }

    /// The literal value, when it is not templated.
    pub fn literal(&self) -> Option<&T> {
        match self {
            Setting::Literal(value) => Some(&value.value),
            Setting::Template(_) => None,
        }
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Setting<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Read the node once, then decide: templated strings stay templates.
        let node = crate::node::Node::deserialize(deserializer)?;
        match node.as_str() {
            Some(text) if is_templated(text) => Ok(Setting::Template(TemplateText {
                source: text.to_owned(),
                span: node.span,
            })),
            _ => {
                let value =
                    crate::de::from_node::<T>(&node).map_err(|e| de::Error::custom(e.message))?;
                Ok(Setting::Literal(Spanned::new(value, node.span)))
            }
        }
    }
}

impl<T: JsonSchema> JsonSchema for Setting<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("SettingOf{}", T::schema_name()).into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let literal = generator.subschema_for::<T>();
        schemars::json_schema!({
            "anyOf": [literal, {"type": "string", "pattern": "\\{\\{.*\\}\\}"}]
        })
    }
}
