//! The data model: playbooks, steps, inputs and environments.

mod duration;
mod environment;
mod playbook;
mod template_text;

pub use duration::{Duration, DurationError};
pub use environment::{
    ChangeSettings, Environment, EnvironmentDoc, Gateway, Host, HostDoc, HostSsh, KongGatewayDoc,
    HostTwinSettings, Layer7GatewayDoc, SshSettings, Target, TlsSettings, Transport, TwinNode,
    TwinSettings,
};
pub use playbook::{
    DEFAULT_CONCURRENCY, FORMAT_VERSION, InputSpec, InputType, Needs, Playbook, PlaybookDoc,
    RollbackPolicy, Step, StepDoc, StepKind, StepRollback, WindowEndPolicy,
};
pub use template_text::{Setting, TemplateText, is_templated};
