//! What a new gateway holds (reference §5): the root folder, the default SSL key `ssl` in
//! the software keystore, and the four default listen ports.

use super::Store;
use super::entities::{
    ClientAuth, DEFAULT_KEYSTORE_ID, ListenPort, ListenPortTls, PrivateKey, Properties,
};
use crate::layer7::keys::{self, KeyError, KeyRequest};

/// Feature: published services answer here.
const MESSAGE_INPUT: &str = "Published service message input";

/// The default listen ports: goid (the port number in hex), name, protocol, port, features.
const LISTEN_PORTS: [(&str, &str, &str, u16, &[&str]); 4] = [
    (
        "00000000000000000000000000001f90",
        "Default HTTP (8080)",
        "HTTP",
        8080,
        &[MESSAGE_INPUT],
    ),
    (
        "000000000000000000000000000020fb",
        "Default HTTPS (8443)",
        "HTTPS",
        8443,
        &[
            MESSAGE_INPUT,
            "Administrative access",
            "Browser-based administration",
            "Built-in services",
        ],
    ),
    (
        "000000000000000000000000000024e3",
        "Default HTTPS (9443)",
        "HTTPS",
        9443,
        &[
            MESSAGE_INPUT,
            "Administrative access",
            "Browser-based administration",
            "Built-in services",
        ],
    ),
    (
        "0000000000000000000000000000084c",
        "Node HTTPS (2124)",
        "HTTPS",
        2124,
        &["Inter-Node Communication"],
    ),
];

/// Why the defaults could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DefaultsError {
    /// The SSL key could not be generated.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl Store {
    /// A new gateway's store: root folder, SSL key `ssl` (a fresh self-signed ECDSA key
    /// for `localhost`), default listen ports.
    pub fn with_defaults() -> Result<Self, DefaultsError> {
        let mut store = Self::empty();
        let generated = keys::self_signed(&KeyRequest {
            dn: "CN=localhost".to_owned(),
            curve: None,
            days: 5 * 365,
            ca: false,
        })?;
        let key = PrivateKey {
            keystore_id: DEFAULT_KEYSTORE_ID.to_owned(),
            alias: "ssl".to_owned(),
            chain: generated.chain,
            key_pem: generated.key_pem,
            algorithm: generated.algorithm,
            special_purposes: vec!["SSL".to_owned()],
        };
        store.private_keys.put(key.id(), 0, key);
        for (goid, name, protocol, port, features) in LISTEN_PORTS {
            let tls = (protocol == "HTTPS").then(|| ListenPortTls {
                client_auth: ClientAuth::Optional,
                keystore_id: Some(DEFAULT_KEYSTORE_ID.to_owned()),
                key_alias: Some("ssl".to_owned()),
                versions: vec!["TLSv1.2".to_owned(), "TLSv1.3".to_owned()],
                cipher_suites: Vec::new(),
                use_cipher_suites_order: true,
            });
            store.listen_ports.put(
                goid.to_owned(),
                0,
                ListenPort {
                    name: name.to_owned(),
                    enabled: true,
                    protocol: protocol.to_owned(),
                    port,
                    features: features
                        .iter()
                        .map(|feature| (*feature).to_owned())
                        .collect(),
                    tls,
                    properties: Properties::new(),
                },
            );
        }
        Ok(store)
    }
}
