//! The certificate a TLS listener presents for a server name ([`served_leaf`]): one
//! handshake whose chain is accepted whatever it is, because the caller compares the
//! leaf's bytes with the certificate it expects (a stronger check than trust here).
//! The handshake's signature is still verified: the server holds the leaf's key.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use runsheet_engine::model::TlsSettings;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use crate::trust::{TlsMaterial, describe_tls_error};
use crate::web::error_chain;

/// The DNS names a certificate's subject alternative names list (none when it has no
/// such extension, or a malformed one).
pub fn dns_names(certificate: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    match certificate.subject_alternative_name() {
        Ok(Some(extension)) => extension
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The label put in front of a wildcard SNI to make a server name under it.
pub const WILDCARD_LABEL: &str = "runsheet-verify";

/// A TLS listener's address, from a URL (`https://kong:8443`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsEndpoint {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (443 when the URL names none).
    pub port: u16,
}

impl TlsEndpoint {
    /// Reads `https://host[:port]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let parsed =
            reqwest::Url::parse(url).map_err(|error| format!("`{url}` is not a URL: {error}"))?;
        let host = parsed
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| format!("`{url}` has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| format!("`{url}` has no port"))?;
        Ok(Self { host, port })
    }
}

/// The server name a handshake sends for an SNI: the SNI itself, or a name under a
/// wildcard (`*.example.com` → `runsheet-verify.example.com`; `api.*` → `api.example`).
pub fn server_name_for(sni: &str) -> String {
    if let Some(rest) = sni.strip_prefix("*.") {
        format!("{WILDCARD_LABEL}.{rest}")
    } else if let Some(head) = sni.strip_suffix(".*") {
        format!("{head}.example")
    } else if sni == "*" {
        format!("{WILDCARD_LABEL}.example")
    } else {
        sni.to_owned()
    }
}

/// The DER of the leaf certificate `endpoint` presents for `server_name`.
pub async fn served_leaf(
    endpoint: &TlsEndpoint,
    server_name: &str,
    base_dir: &Path,
    limit: Duration,
) -> Result<Vec<u8>, String> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|_| format!("`{server_name}` is not a valid TLS server name"))?;
    let settings = TlsSettings {
        insecure: true,
        ..TlsSettings::default()
    };
    let config = TlsMaterial::load(Some(&settings), base_dir)
        .await
        .and_then(|material| material.client_config())
        .map_err(|error| error_chain(&error))?;
    let address = format!("{}:{}", endpoint.host, endpoint.port);
    let exchange = async {
        let stream = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(|error| format!("cannot connect to {address}: {error}"))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tls = connector.connect(name, stream).await.map_err(|error| {
            let reason = error
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .map_or_else(|| error.to_string(), describe_tls_error);
            format!("TLS handshake with {address} (server name `{server_name}`) failed: {reason}")
        })?;
        tls.get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| leaf.to_vec())
            .ok_or_else(|| format!("{address} presented no certificate for `{server_name}`"))
    };
    tokio::time::timeout(limit, exchange).await.map_err(|_| {
        format!(
            "TLS handshake with {address}: no answer within {}s",
            limit.as_secs()
        )
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_server_names() -> Result<(), String> {
        assert_eq!(
            TlsEndpoint::parse("https://127.0.0.1:8443")?,
            TlsEndpoint {
                host: "127.0.0.1".to_owned(),
                port: 8443
            }
        );
        assert_eq!(TlsEndpoint::parse("https://kong")?.port, 443);
        assert_eq!(TlsEndpoint::parse("https://[::1]:9443")?.host, "::1");
        assert!(TlsEndpoint::parse("nope").is_err());
        assert_eq!(server_name_for("a.example.com"), "a.example.com");
        assert_eq!(
            server_name_for("*.example.com"),
            "runsheet-verify.example.com"
        );
        assert_eq!(server_name_for("api.*"), "api.example");
        Ok(())
    }
}
