//! The core family: actions that need no host or gateway — `log`, `sleep`,
//! `fail`, `assert`, `set`, `approval` — and the inspection tools `tls.inspect`
//! and `jwt.inspect`. Each has its argument struct here.

use std::borrow::Cow;

use runsheet_engine::model::Duration;
use runsheet_engine::{ActionSpec, DuplicateAction, Effect, Registry};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use runsheet_engine::{Action, ActionError, Applied, Decision, StepContext};
use serde_json::{Map, Value, json};

use crate::arguments::{OneOrMany, parse};
use crate::jwt_inspect::{self, JwtInspect};
use crate::tls_inspect::{self, TlsInspect};

/// The family name of these actions.
pub const FAMILY: &str = "core";


/// Arguments of `log`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogArguments {
    /// Text written to the run's log and reports.
    pub message: String,
}

/// Arguments of `sleep`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepArguments {
    /// How long to wait (`30s`, `5m`).
    pub duration: Duration,
}

/// Arguments of `fail`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailArguments {
    /// Why the step fails; shown as the step's error.
    pub message: String,
}

/// Arguments of `assert`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertArguments {
    /// Condition or list of conditions that must all hold: expressions, or templates rendered to booleans.
    pub that: OneOrMany<Condition>,
    /// Error shown when a condition fails (default: the condition that failed).
    #[serde(default)]
    pub message: Option<String>,
}

/// One condition of `assert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// An expression `assert` evaluates in the step's context (`steps.health.outputs.status == 200`).
    Expression(String),
    /// The value a template (`"{{ ... }}"`) rendered to.
    Value(bool),
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConditionVisitor;
        impl Visitor<'_> for ConditionVisitor {
            type Value = Condition;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an expression or a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Condition, E> {
                Ok(Condition::Value(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Condition, E> {
                if v.trim().is_empty() {
                    return Err(E::custom("an empty condition"));
                }
                Ok(Condition::Expression(v.to_owned()))
            }
        }
        deserializer.deserialize_any(ConditionVisitor)
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Condition::Expression(expression) => serializer.serialize_str(expression),
            Condition::Value(value) => serializer.serialize_bool(*value),
        }
    }
}

impl JsonSchema for Condition {
    fn schema_name() -> Cow<'static, str> {
        "Condition".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An expression evaluated in the step's context, or a boolean a template rendered to.",
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "boolean"}
            ]
        })
    }
}

/// Arguments of `set`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetArguments {
    /// Named values; each becomes an output of the step (`steps.<id>.outputs.<name>`).
    pub values: serde_json::Map<String, serde_json::Value>,
}

/// Arguments of `approval`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalArguments {
    /// Question shown to the approver.
    pub prompt: String,
    /// Gate name for `runsheet resume RUN --approve GATE` (default: the step's id).
    #[serde(default)]
    pub gate: Option<String>,
}

/// Arguments of `tls.inspect`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsInspectArguments {
    /// Host name or address to connect to.
    pub host: String,
    /// TCP port (default 443).
    #[serde(default = "https_port")]
    #[schemars(range(min = 1))]
    pub port: u16,
    /// Name sent as SNI and verified against the certificate (default: `host`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// CA bundle (PEM) to verify the chain against (default: the system's trust store).
    #[serde(default)]
    pub ca: Option<String>,
}

/// The HTTPS port, 443.
fn https_port() -> u16 {
    443
}

/// Arguments of `jwt.inspect`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtInspectArguments {
    /// The JWT in compact form (`header.claims.signature`); the signature is never shown.
    pub token: String,
}

/// Registers the core actions.
pub fn register(registry: &mut Registry) -> Result<(), DuplicateAction> {
    registry.register(Log::new())?;
    registry.register(Sleep::new())?;
    registry.register(Fail::new())?;
    registry.register(Assert::new())?;
    registry.register(Set::new())?;
    registry.register(Approval::new())?;
    registry.register(TlsInspect::new(
        ActionSpec::new::<TlsInspectArguments>(
            "tls.inspect",
            FAMILY,
            "Performs a TLS handshake and reports the chain, names, expiry, protocol and cipher.",
            Effect::READ,
        )
        .outputs(tls_inspect::OUTPUTS),
    ))?;
    registry.register(JwtInspect::new(
        ActionSpec::new::<JwtInspectArguments>(
            "jwt.inspect",
            FAMILY,
            "Decodes a JWT's header and claims (never the signature) and checks exp and nbf.",
            Effect::READ,
        )
        .outputs(jwt_inspect::OUTPUTS),
    ))?;
    Ok(())
}

/// Declares an action type whose spec is built once.
macro_rules! core_action {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $name {
            spec: ActionSpec,
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}

core_action!(Log, "`log`: writes a message to the run's log.");
core_action!(Sleep, "`sleep`: waits.");
core_action!(Fail, "`fail`: always fails.");
core_action!(Assert, "`assert`: fails unless every condition holds.");
core_action!(Set, "`set`: publishes values as outputs.");
core_action!(Approval, "`approval`: a gate a person must pass.");

impl Log {
    /// The `log` action type.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<LogArguments>(
                "log",
                FAMILY,
                "Writes a message to the run's log.",
                Effect::READ,
            )
            .outputs(&["message"])
            .checks_nothing(),
        }
    }
}

#[async_trait::async_trait]
impl Action for Log {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, _: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: LogArguments = parse("log", arguments)?;
        Ok(outputs(json!({"message": arguments.message})))
    }
}

impl Sleep {
    /// The `sleep` action type.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<SleepArguments>(
                "sleep",
                FAMILY,
                "Waits for a duration.",
                Effect::READ,
            )
            .checks_nothing(),
        }
    }
}

#[async_trait::async_trait]
impl Action for Sleep {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, _: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: SleepArguments = parse("sleep", arguments)?;
        tokio::time::sleep(arguments.duration.0).await;
        Ok(Applied::default())
    }
}

impl Fail {
    /// The `fail` action type.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<FailArguments>(
                "fail",
                FAMILY,
                "Fails the step with a message, always.",
                Effect::READ,
            )
            .checks_nothing(),
        }
    }
}

#[async_trait::async_trait]
impl Action for Fail {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, _: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: FailArguments = parse("fail", arguments)?;
        Err(ActionError::failed(arguments.message))
    }
}

impl Assert {
    /// The `assert` action type.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<AssertArguments>(
                "assert",
                FAMILY,
                "Fails the step unless every condition holds.",
                Effect::READ,
            ),
        }
    }
}

#[async_trait::async_trait]
impl Action for Assert {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: AssertArguments = parse("assert", arguments)?;
        for (index, condition) in arguments.that.as_slice().iter().enumerate() {
            let (holds, shown) = match condition {
                Condition::Value(value) => (*value, format!("condition {}", index + 1)),
                Condition::Expression(expression) => {
                    let value = context
                        .evaluator
                        .evaluate(expression)
                        .map_err(|e| ActionError::failed(format!("`{expression}`: {e}")))?;
                    (runsheet_engine::run::executor::truthy(&value), format!("`{expression}`"))
                }
            };
            if !holds {
                return Err(ActionError::failed(
                    arguments
                        .message
                        .unwrap_or_else(|| format!("assertion failed: {shown} is false")),
                ));
            }
        }
        Ok(Applied::default())
    }
}

impl Set {
    /// The `set` action type.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<SetArguments>(
                "set",
                FAMILY,
                "Publishes derived values as the step's outputs.",
                Effect::READ,
            )
            .checks_nothing(),
        }
    }
}

#[async_trait::async_trait]
impl Action for Set {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, _: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: SetArguments = parse("set", arguments)?;
        Ok(Applied {
            outputs: arguments.values,
            ..Applied::default()
        })
    }
}

impl Approval {
    /// The `approval` action type.
    pub fn new() -> Self {
        Self {
            spec: ActionSpec::new::<ApprovalArguments>(
                "approval",
                FAMILY,
                "A gate: asks at a terminal, otherwise pauses the run until resumed with --approve.",
                Effect::READ,
            )
            .outputs(&["approved_by", "approved_at"])
            .checks_nothing(),
        }
    }
}

#[async_trait::async_trait]
impl Action for Approval {
    fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    async fn apply(&self, context: &StepContext, arguments: Value) -> Result<Applied, ActionError> {
        let arguments: ApprovalArguments = parse("approval", arguments)?;
        let gate = arguments.gate.unwrap_or_else(|| gate_of(&context.step_id));
        match context.approver.decide(&gate, &arguments.prompt).await {
            Decision::Approved(by) => Ok(outputs(json!({
                "approved_by": by,
                "approved_at": jiff::Timestamp::now().to_string(),
            }))),
            Decision::Refused(by) => Err(ActionError::failed(format!(
                "approval refused at gate `{gate}` by {by}"
            ))),
            Decision::Pending => Err(ActionError::Paused {
                gate,
                prompt: arguments.prompt,
            }),
        }
    }
}

/// The default gate name: the step's id without its scope (`upgrade[dp1].go` gives `go`).
fn gate_of(step_id: &str) -> String {
    step_id.rsplit('.').next().unwrap_or(step_id).to_owned()
}

fn outputs(value: Value) -> Applied {
    let outputs: Map<String, Value> = match value {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Applied {
        outputs,
        ..Applied::default()
    }
}


#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn assert_takes_one_condition_or_a_list() -> Result<(), serde_json::Error> {
        let one: AssertArguments = serde_json::from_value(json!({"that": "x == 1"}))?;
        assert_eq!(
            one.that.as_slice(),
            &[Condition::Expression("x == 1".to_owned())]
        );
        let many: AssertArguments =
            serde_json::from_value(json!({"that": [true, "y"], "message": "m"}))?;
        assert_eq!(
            many.that.as_slice(),
            &[
                Condition::Value(true),
                Condition::Expression("y".to_owned())
            ]
        );
        assert!(serde_json::from_value::<AssertArguments>(json!({"that": []})).is_err());
        assert!(serde_json::from_value::<AssertArguments>(json!({"that": 3})).is_err());
        Ok(())
    }

    #[test]
    fn tls_inspect_defaults_to_port_443() -> Result<(), serde_json::Error> {
        let arguments: TlsInspectArguments =
            serde_json::from_value(json!({"host": "kong.example"}))?;
        assert_eq!(arguments.port, 443);
        Ok(())
    }

    #[test]
    fn sleep_needs_a_unit() {
        assert!(serde_json::from_value::<SleepArguments>(json!({"duration": "30s"})).is_ok());
        assert!(serde_json::from_value::<SleepArguments>(json!({"duration": "30"})).is_err());
    }
}
