//! The REST management API ("restman", `/restman/1.0`, XML): the typed client
//! ([`RestmanClient`]), its envelopes ([`xml`]), the entity resources the
//! actions use ([`entities`], [`policy_entities`], [`properties`]), bundles
//! ([`bundle`], [`mapping`]) and their comparison ([`compare`]).

pub mod bundle;
pub mod client;
pub mod compare;
pub mod entities;
pub mod mapping;
pub mod policy_entities;
pub mod properties;
pub mod xml;

pub use bundle::{Bundle, BundleItem, ExportQuery, ImportOptions, ItemHeader};
pub use client::{RestmanClient, WriteOptions};
pub use compare::{BundleDiff, ChangedEntity, diff};
pub use entities::{
    ClusterProperty, Folder, ListenPort, PolicyVersion, PrivateKey, PrivateKeyCreationContext,
    TrustedCertificate,
};
pub use mapping::{ActionTaken, Mapping, MappingFailure, MappingResult, RestmanAction};
pub use policy_entities::{Policy, Service};
pub use properties::{Properties, PropertyValue};
pub use xml::{Item, Reference, RestmanEntity};
