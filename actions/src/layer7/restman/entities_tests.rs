//! Tests of the restman entities.

use super::*;
use crate::layer7::restman::xml::{from_document, to_document};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A listen port as the layer7-operator writes the management port.
const LISTEN_PORT: &str = r#"<l7:ListenPort xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management" id="6ca3e07b1d653bba1de5d5599b47dc12" version="4">
    <l7:Name>Default HTTPS (8443)</l7:Name>
    <l7:Enabled>true</l7:Enabled>
    <l7:Protocol>HTTPS</l7:Protocol>
    <l7:Port>8443</l7:Port>
    <l7:EnabledFeatures>
        <l7:StringValue>Published service message input</l7:StringValue>
        <l7:StringValue>Administrative access</l7:StringValue>
    </l7:EnabledFeatures>
    <l7:TlsSettings>
        <l7:ClientAuthentication>Optional</l7:ClientAuthentication>
        <l7:PrivateKeyReference id="00000000000000000000000000000002:ssl" resourceUri="http://ns.l7tech.com/2010/04/gateway-management/privateKeys"/>
        <l7:EnabledVersions>
            <l7:StringValue>TLSv1.2</l7:StringValue>
            <l7:StringValue>TLSv1.3</l7:StringValue>
        </l7:EnabledVersions>
        <l7:UseCipherSuitesOrder>true</l7:UseCipherSuitesOrder>
    </l7:TlsSettings>
    <l7:Properties>
        <l7:Property key="bindAddress"><l7:StringValue>0.0.0.0</l7:StringValue></l7:Property>
    </l7:Properties>
</l7:ListenPort>"#;

#[test]
fn listen_port_switches_its_key_and_round_trips() -> TestResult {
    let mut port: ListenPort = from_document(LISTEN_PORT)?;
    assert_eq!(port.port, 8443);
    assert_eq!(port.key_alias(), Some("ssl"));
    assert_eq!(port.version, Some(4));
    assert!(port.set_key(crate::layer7::SOFTWARE_KEYSTORE, "ssl-2026"));
    let xml = to_document(ListenPort::ELEMENT, &port)?;
    assert!(
        xml.contains(
            r#"<l7:PrivateKeyReference id="00000000000000000000000000000002:ssl-2026" resourceUri="#
        ),
        "{xml}"
    );
    let back: ListenPort = from_document(&xml)?;
    assert_eq!(back, port);
    assert_eq!(back.key_alias(), Some("ssl-2026"));
    Ok(())
}

#[test]
fn plain_ports_have_no_key_to_switch() -> TestResult {
    let mut port: ListenPort = from_document(
        r#"<l7:ListenPort id="a" version="0"><l7:Name>Default HTTP (8080)</l7:Name><l7:Enabled>true</l7:Enabled><l7:Protocol>HTTP</l7:Protocol><l7:Port>8080</l7:Port></l7:ListenPort>"#,
    )?;
    assert_eq!(port.key_alias(), None);
    assert!(!port.set_key("k", "a"));
    Ok(())
}

#[test]
fn private_key_reads_its_chain() -> TestResult {
    let key: PrivateKey = from_document(
        r#"<l7:PrivateKey xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management" alias="ssl" keystoreId="00000000000000000000000000000002" id="00000000000000000000000000000002:ssl">
            <l7:CertificateChain>
                <l7:CertificateData>
                    <l7:IssuerName>CN=gw</l7:IssuerName>
                    <l7:SerialNumber>1234</l7:SerialNumber>
                    <l7:SubjectName>CN=gw</l7:SubjectName>
                    <l7:Encoded>MIIBszCCAVmgAwIBAgIU</l7:Encoded>
                </l7:CertificateData>
            </l7:CertificateChain>
            <l7:Properties>
                <l7:Property key="keyAlgorithm"><l7:StringValue>RSA</l7:StringValue></l7:Property>
                <l7:Property key="specialPurposes"><l7:StringValue>SSL</l7:StringValue></l7:Property>
            </l7:Properties>
        </l7:PrivateKey>"#,
    )?;
    assert_eq!(key.alias, "ssl");
    assert_eq!(key.certificate_chain.certificates.len(), 1);
    assert_eq!(
        key.certificate_chain.certificates[0]
            .subject_name
            .as_deref(),
        Some("CN=gw")
    );
    Ok(())
}

#[test]
fn key_creation_context_is_written_as_restman_reads_it() -> TestResult {
    let context = PrivateKeyCreationContext::rsa("CN=gw.example", 2048, 1825);
    let xml = to_document(PrivateKeyCreationContext::ELEMENT, &context)?;
    assert_eq!(
        xml,
        "<l7:PrivateKeyCreationContext xmlns:l7=\"http://ns.l7tech.com/2010/04/gateway-management\"><l7:Dn>CN=gw.example</l7:Dn><l7:Properties><l7:Property key=\"rsaKeySize\"><l7:IntegerValue>2048</l7:IntegerValue></l7:Property><l7:Property key=\"daysUntilExpiry\"><l7:IntegerValue>1825</l7:IntegerValue></l7:Property></l7:Properties></l7:PrivateKeyCreationContext>"
    );
    Ok(())
}

#[test]
fn trusted_certificate_round_trips() -> TestResult {
    let mut properties = Properties::default();
    properties.set(
        "trustedForSsl",
        crate::layer7::restman::properties::PropertyValue::Boolean(true),
    );
    let certificate = TrustedCertificate {
        id: None,
        version: None,
        name: "partner-ca".to_owned(),
        certificate: CertificateData {
            encoded: "MIIB".to_owned(),
            ..CertificateData::default()
        },
        properties: Some(properties),
    };
    let xml = to_document(TrustedCertificate::ELEMENT, &certificate)?;
    assert!(
        xml.contains("<l7:CertificateData><l7:Encoded>MIIB</l7:Encoded></l7:CertificateData>"),
        "{xml}"
    );
    let back: TrustedCertificate = from_document(&xml)?;
    assert_eq!(back, certificate);
    Ok(())
}
