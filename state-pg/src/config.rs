//! The state URL: `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?OPTIONS]`, its
//! TLS options, where the password comes from, and the URL as messages show it.

use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};

use crate::PgError;

/// Environment variable holding the database password, when the URL has none.
pub const PASSWORD_VARIABLE: &str = "RUNSHEET_STATE_PASSWORD";

/// How to reach the database.
#[derive(Clone)]
pub struct PgConfig {
    /// The driver's settings (password included).
    pub(crate) driver: tokio_postgres::Config,
    /// The URL without its password, for messages.
    pub place: String,
    /// The password, to mask it in any message a driver error carries.
    pub(crate) password: Option<String>,
    /// CA certificates (PEM) to trust instead of the public roots.
    pub ca_file: Option<PathBuf>,
    /// Certificates are not verified (announced on every use).
    pub insecure: bool,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("place", &self.place)
            .field("ca_file", &self.ca_file)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

/// Whether a `--state` value names a PostgreSQL database (the scheme in any case).
pub fn is_postgres_url(state: &str) -> bool {
    let lower = state.get(..13).unwrap_or(state).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Whether a `--state` value looks like a URL (a scheme, or `postgres:` without `//`):
/// one that is not a PostgreSQL URL is refused rather than taken for a directory name.
pub fn looks_like_url(state: &str) -> bool {
    let lower = state.to_ascii_lowercase();
    state.contains("://") || lower.starts_with("postgres:") || lower.starts_with("postgresql:")
}

impl PgConfig {
    /// Parses a state URL; the password comes from the URL, else
    /// `RUNSHEET_STATE_PASSWORD`, else `PGPASSWORD`.
    ///
    /// Options besides the driver's (`sslmode=disable|prefer|require|verify-full`,
    /// `connect_timeout`, `application_name`, ...): `sslrootcert=FILE` trusts that
    /// CA, `sslinsecure=true` turns verification off.
    pub fn parse(url: &str) -> Result<PgConfig, PgError> {
        // The driver knows the schemes in lower case only; `Postgres://` means the same.
        let url = match url.split_once("://") {
            Some((scheme, rest)) => format!("{}://{rest}", scheme.to_ascii_lowercase()),
            None => url.to_owned(),
        };
        let url = url.as_str();
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut ca_file = None;
        let mut insecure = false;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslrootcert" => ca_file = Some(PathBuf::from(value)),
                "sslinsecure" => insecure = matches!(value, "true" | "1" | "yes" | "on"),
                "sslmode" => {
                    let mode = match value {
                        "verify-full" | "verify-ca" | "require" => "require",
                        "prefer" | "allow" => "prefer",
                        "disable" => "disable",
                        other => {
                            return Err(PgError::Config(format!(
                                "sslmode `{other}` is not one of disable, prefer, require, verify-full"
                            )));
                        }
                    };
                    kept.push(format!("sslmode={mode}"));
                }
                _ => kept.push(pair.to_owned()),
            }
        }
        let driver_url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut driver = tokio_postgres::Config::from_str(&driver_url)
            .map_err(|e| PgError::Config(format!("{}: {e}", without_password(base))))?;
        if driver.get_password().is_none()
            && let Some(password) = [PASSWORD_VARIABLE, "PGPASSWORD"]
                .iter()
                .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        {
            driver.password(password);
        }
        if driver.get_connect_timeout().is_none() {
            driver.connect_timeout(Duration::from_secs(10));
        }
        driver.keepalives_idle(Duration::from_secs(30));
        if driver.get_application_name().is_none() {
            driver.application_name("runsheet");
        }
        let password = driver
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .filter(|p| !p.is_empty());
        if ca_file.is_some() || insecure {
            // A CA or `sslinsecure` asks for TLS: never fall back to plain text.
            if driver.get_ssl_mode() != SslMode::Require {
                driver.ssl_mode(SslMode::Require);
            }
        }
        Ok(PgConfig {
            place: describe(&driver, query),
            driver,
            password,
            ca_file,
            insecure,
        })
    }

    /// `text` with the password replaced by `***` wherever it appears.
    pub fn mask(&self, text: &str) -> String {
        match &self.password {
            Some(password) => text.replace(password.as_str(), "***"),
            None => text.to_owned(),
        }
    }

    /// The TLS connector for the driver.
    pub(crate) fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| PgError::Config(format!("TLS: {e}")))?;
        let config = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            match &self.ca_file {
                Some(path) => {
                    let text = std::fs::read(path).map_err(|e| {
                        PgError::Config(format!("sslrootcert {}: {e}", path.display()))
                    })?;
                    for cert in rustls_pemfile::certs(&mut text.as_slice()) {
                        let cert = cert.map_err(|e| {
                            PgError::Config(format!("sslrootcert {}: {e}", path.display()))
                        })?;
                        roots.add(cert).map_err(|e| {
                            PgError::Config(format!("sslrootcert {}: {e}", path.display()))
                        })?;
                    }
                    if roots.is_empty() {
                        return Err(PgError::Config(format!(
                            "sslrootcert {}: no PEM certificate in it",
                            path.display()
                        )));
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

/// The URL as messages show it: no password, no query but TLS options.
fn describe(driver: &tokio_postgres::Config, query: &str) -> String {
    let user = driver.get_user().unwrap_or("");
    let host = match driver.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = driver.get_ports().first().copied().unwrap_or(5432);
    let db = driver.get_dbname().unwrap_or(user);
    let tls: Vec<&str> = query
        .split('&')
        .filter(|p| p.starts_with("sslmode=") || p.starts_with("sslinsecure="))
        .collect();
    let mut place = format!("postgres://{user}@{host}:{port}/{db}");
    if !tls.is_empty() {
        place.push('?');
        place.push_str(&tls.join("&"));
    }
    place
}

/// Accepts any server certificate (`sslinsecure=true`), still checking signatures.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_place_never_shows_the_password_and_messages_are_masked() -> Result<(), PgError> {
        let config = PgConfig::parse(
            "postgres://ops:s3cr%21t-pw@db.example:6543/runsheet?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        )?;
        assert_eq!(
            config.place,
            "postgres://ops@db.example:6543/runsheet?sslmode=verify-full"
        );
        assert_eq!(config.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.driver.get_ssl_mode(), SslMode::Require);
        assert_eq!(
            config.mask("auth failed for s3cr!t-pw"),
            "auth failed for ***"
        );
        assert!(PgConfig::parse("postgres://ops@db/x?sslmode=sometimes").is_err());
        assert!(is_postgres_url("Postgres://ops@db/x") && PgConfig::parse("PostgreSQL://ops@db/x").is_ok());
        assert!(!is_postgres_url("pg://ops@db/x") && looks_like_url("pg://ops@db/x") && looks_like_url("postgres:/db"));
        assert!(!looks_like_url(".runsheet") && !looks_like_url("/var/lib/runsheet"));
        let bad = PgConfig::parse("postgres://ops:hunter2@db:notaport/x")
            .err()
            .map(|e| e.to_string());
        assert!(
            bad.as_deref().is_some_and(|m| !m.contains("hunter2")),
            "{bad:?}"
        );
        Ok(())
    }
}
