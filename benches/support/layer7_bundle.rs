//! The big Layer7 bundle the benchmarks seed a source twin with: 1,000 services at
//! `/api/N`, each with its own hard-coded-response policy, and 1,000 cluster properties.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Services in the bundle (each with its own hard-coded-response policy).
pub const SERVICES: usize = 1_000;

/// Cluster properties in the bundle.
pub const PROPERTIES: usize = 1_000;

/// The root folder's id.
const ROOT: &str = "0000000000000000ffffffffffffec76";

/// The bundle that seeds the source: services at `/api/N` answering a fixed body, and
/// cluster properties `bench.property.N`, all mapped NewOrUpdate.
pub fn big_bundle() -> String {
    let mut items = String::new();
    let mut mappings = String::new();
    for n in 0..PROPERTIES {
        let id = format!("{n:032x}");
        let id = format!("a{}", &id[1..]);
        items.push_str(&format!(
            r#"<l7:Item><l7:Name>bench.property.{n}</l7:Name><l7:Id>{id}</l7:Id><l7:Type>CLUSTER_PROPERTY</l7:Type><l7:Resource><l7:ClusterProperty id="{id}"><l7:Name>bench.property.{n}</l7:Name><l7:Value>value {n}</l7:Value></l7:ClusterProperty></l7:Resource></l7:Item>"#
        ));
        mappings.push_str(&format!(
            r#"<l7:Mapping action="NewOrUpdate" srcId="{id}" type="CLUSTER_PROPERTY"/>"#
        ));
    }
    for n in 0..SERVICES {
        let id = format!("{n:032x}");
        let id = format!("b{}", &id[1..]);
        let body = STANDARD.encode(format!("service {n}"));
        let policy = escape(&format!(
            r#"<wsp:Policy xmlns:L7p="http://www.layer7tech.com/ws/policy" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy"><wsp:All wsp:Usage="Required"><L7p:HardcodedResponse><L7p:Base64ResponseBody stringValue="{body}"/><L7p:ResponseContentType stringValue="text/plain; charset=UTF-8"/><L7p:ResponseStatus intValue="200"/></L7p:HardcodedResponse></wsp:All></wsp:Policy>"#
        ));
        items.push_str(&format!(
            r#"<l7:Item><l7:Name>api-{n}</l7:Name><l7:Id>{id}</l7:Id><l7:Type>SERVICE</l7:Type><l7:Resource><l7:Service id="{id}"><l7:ServiceDetail folderId="{ROOT}" id="{id}"><l7:Name>api-{n}</l7:Name><l7:Enabled>true</l7:Enabled><l7:ServiceMappings><l7:HttpMapping><l7:UrlPattern>/api/{n}</l7:UrlPattern><l7:Verbs><l7:Verb>GET</l7:Verb><l7:Verb>POST</l7:Verb></l7:Verbs></l7:HttpMapping></l7:ServiceMappings></l7:ServiceDetail><l7:Resources><l7:ResourceSet tag="policy"><l7:Resource type="policy">{policy}</l7:Resource></l7:ResourceSet></l7:Resources></l7:Service></l7:Resource></l7:Item>"#
        ));
        mappings.push_str(&format!(
            r#"<l7:Mapping action="NewOrUpdate" srcId="{id}" type="SERVICE"/>"#
        ));
    }
    format!(
        r#"<l7:Bundle xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:References>{items}</l7:References><l7:Mappings>{mappings}</l7:Mappings></l7:Bundle>"#
    )
}

/// XML-escapes text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
