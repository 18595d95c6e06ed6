//! Folders, cluster properties, encapsulated assertions and listen ports as restman shows
//! them.

use super::{
    Parsed, Resource, ResourceError, flag, id_of, properties, properties_element, required,
    string_values, string_values_element, take_text, version_of,
};
use crate::layer7::restman::xml::Element;
use crate::layer7::store::{
    ClientAuth, ClusterProperty, EncapsulatedAssertion, EncassArgument, EncassResult, Folder,
    ListenPort, ListenPortTls, PropertyValue, ROOT_FOLDER_ID, Store, Stored,
};

impl Resource for Folder {
    const ELEMENT: &'static str = "Folder";
    const TYPE: &'static str = "FOLDER";
    const COLLECTION: &'static str = "folders";
    const FILTERS: &'static [(&'static str, &'static str)] = &[("parentFolder.id", "parent")];

    fn to_xml(stored: &Stored<Self>, _store: &Store) -> Element {
        let mut element = Element::new("l7:Folder");
        if let Some(parent) = &stored.entity.parent_id {
            element = element.attr("folderId", parent);
        }
        element
            .attr("id", &stored.id)
            .attr("version", stored.version.to_string())
            .child(Element::text("l7:Name", &stored.entity.name))
    }

    fn from_xml(element: &Element, id: Option<&str>) -> Result<Parsed<Self>, ResourceError> {
        let id = id_of(element, id);
        let parent_id = match element.attribute("folderId") {
            Some(parent) => Some(parent.to_owned()),
            None if id.as_deref() == Some(ROOT_FOLDER_ID) => None,
            None => Some(ROOT_FOLDER_ID.to_owned()),
        };
        Ok(Parsed {
            version: version_of(element)?,
            id,
            entity: Folder {
                name: required(element, "Name")?.to_owned(),
                parent_id,
            },
        })
    }
}

impl Resource for ClusterProperty {
    const ELEMENT: &'static str = "ClusterProperty";
    const TYPE: &'static str = "CLUSTER_PROPERTY";
    const COLLECTION: &'static str = "clusterProperties";

    fn to_xml(stored: &Stored<Self>, _store: &Store) -> Element {
        let property = &stored.entity;
        Element::new("l7:ClusterProperty")
            .attr("id", &stored.id)
            .attr("version", stored.version.to_string())
            .child(Element::text("l7:Name", &property.name))
            .child(Element::text("l7:Value", &property.value))
            .child_opt(properties_element(
                property
                    .description
                    .iter()
                    .map(|text| ("description", PropertyValue::String(text.clone()))),
            ))
    }

    fn from_xml(element: &Element, id: Option<&str>) -> Result<Parsed<Self>, ResourceError> {
        let mut properties = properties(element)?;
        Ok(Parsed {
            version: version_of(element)?,
            id: id_of(element, id),
            entity: ClusterProperty {
                name: required(element, "Name")?.to_owned(),
                value: element
                    .find("Value")
                    .map(|value| value.text.clone())
                    .ok_or_else(|| {
                        ResourceError("l7:ClusterProperty is missing l7:Value".to_owned())
                    })?,
                description: take_text(&mut properties, "description"),
            },
        })
    }
}

impl Resource for EncapsulatedAssertion {
    const ELEMENT: &'static str = "EncapsulatedAssertion";
    const TYPE: &'static str = "ENCAPSULATED_ASSERTION";
    const COLLECTION: &'static str = "encapsulatedAssertions";
    const FILTERS: &'static [(&'static str, &'static str)] =
        &[("guid", "guid"), ("policy.id", "policy")];

    fn to_xml(stored: &Stored<Self>, store: &Store) -> Element {
        let encass = &stored.entity;
        let arguments = encass.arguments.iter().map(|argument| {
            Element::new("l7:EncapsulatedAssertionArgument")
                .child(Element::text("l7:Ordinal", argument.ordinal.to_string()))
                .child(Element::text("l7:ArgumentName", &argument.name))
                .child(Element::text("l7:ArgumentType", &argument.kind))
                .child_opt(
                    argument
                        .gui_label
                        .as_ref()
                        .map(|label| Element::text("l7:GuiLabel", label)),
                )
                .child(Element::text(
                    "l7:GuiPrompt",
                    argument.gui_prompt.to_string(),
                ))
        });
        let results = encass.results.iter().map(|result| {
            Element::new("l7:EncapsulatedAssertionResult")
                .child(Element::text("l7:ResultName", &result.name))
                .child(Element::text("l7:ResultType", &result.kind))
        });
        let policy_guid = store
            .get::<crate::layer7::store::Policy>(&encass.policy_id)
            .map(|policy| {
                (
                    "policyGuid",
                    PropertyValue::String(policy.entity.guid.clone()),
                )
            });
        let extra = encass
            .properties
            .iter()
            .filter(|(key, _)| key.as_str() != "policyGuid")
            .map(|(key, value)| (key.as_str(), value.clone()));
        Element::new("l7:EncapsulatedAssertion")
            .attr("id", &stored.id)
            .attr("version", stored.version.to_string())
            .child(Element::text("l7:Name", &encass.name))
            .child(Element::text("l7:Guid", &encass.guid))
            .child(Element::new("l7:PolicyReference").attr("id", &encass.policy_id))
            .child(Element::new("l7:EncapsulatedArguments").children(arguments))
            .child(Element::new("l7:EncapsulatedResults").children(results))
            .child_opt(properties_element(policy_guid.into_iter().chain(extra)))
    }

    fn from_xml(element: &Element, id: Option<&str>) -> Result<Parsed<Self>, ResourceError> {
        let id = id_of(element, id);
        let policy_id = element
            .find("PolicyReference")
            .and_then(|reference| reference.attribute("id"))
            .ok_or_else(|| {
                ResourceError(
                    "l7:EncapsulatedAssertion is missing l7:PolicyReference id".to_owned(),
                )
            })?
            .to_owned();
        let mut arguments = Vec::new();
        for argument in element
            .find("EncapsulatedArguments")
            .into_iter()
            .flat_map(|list| list.find_all("EncapsulatedAssertionArgument"))
        {
            let ordinal = required(argument, "Ordinal")?;
            arguments.push(EncassArgument {
                ordinal: ordinal.parse().map_err(|_| {
                    ResourceError(format!("l7:Ordinal: expected a number, got '{ordinal}'"))
                })?,
                name: required(argument, "ArgumentName")?.to_owned(),
                kind: argument
                    .child_text("ArgumentType")
                    .unwrap_or("string")
                    .to_owned(),
                gui_prompt: flag(argument, "GuiPrompt", false)?,
                gui_label: argument.child_text("GuiLabel").map(str::to_owned),
            });
        }
        let results = element
            .find("EncapsulatedResults")
            .into_iter()
            .flat_map(|list| list.find_all("EncapsulatedAssertionResult"))
            .map(|result| {
                Ok(EncassResult {
                    name: required(result, "ResultName")?.to_owned(),
                    kind: result
                        .child_text("ResultType")
                        .unwrap_or("string")
                        .to_owned(),
                })
            })
            .collect::<Result<Vec<_>, ResourceError>>()?;
        let mut properties = properties(element)?;
        properties.remove("policyGuid");
        Ok(Parsed {
            version: version_of(element)?,
            entity: EncapsulatedAssertion {
                name: required(element, "Name")?.to_owned(),
                guid: element.child_text("Guid").map_or_else(
                    || super::policies::derived_guid(id.as_deref()),
                    str::to_owned,
                ),
                policy_id,
                arguments,
                results,
                properties,
            },
            id,
        })
    }
}

/// The restman name of a client-authentication setting.
fn client_auth_name(auth: ClientAuth) -> &'static str {
    match auth {
        ClientAuth::None => "None",
        ClientAuth::Optional => "Optional",
        ClientAuth::Required => "Required",
    }
}

impl Resource for ListenPort {
    const ELEMENT: &'static str = "ListenPort";
    const TYPE: &'static str = "SSG_CONNECTOR";
    const COLLECTION: &'static str = "listenPorts";
    const FILTERS: &'static [(&'static str, &'static str)] =
        &[("port", "port"), ("protocol", "protocol")];

    fn to_xml(stored: &Stored<Self>, _store: &Store) -> Element {
        let port = &stored.entity;
        let tls =
            port.tls.as_ref().map(|tls| {
                let key = match (&tls.keystore_id, &tls.key_alias) {
                    (Some(keystore), Some(alias)) => Some(
                        Element::new("l7:PrivateKeyReference")
                            .attr("id", format!("{keystore}:{alias}"))
                            .attr(
                                "resourceUri",
                                "http://ns.l7tech.com/2010/04/gateway-management/privateKeys",
                            ),
                    ),
                    _ => None,
                };
                Element::new("l7:TlsSettings")
                    .child(Element::text(
                        "l7:ClientAuthentication",
                        client_auth_name(tls.client_auth),
                    ))
                    .child_opt(key)
                    .child(string_values_element("l7:EnabledVersions", &tls.versions))
                    .child_opt((!tls.cipher_suites.is_empty()).then(|| {
                        string_values_element("l7:EnabledCipherSuites", &tls.cipher_suites)
                    }))
                    .child(Element::text(
                        "l7:UseCipherSuitesOrder",
                        tls.use_cipher_suites_order.to_string(),
                    ))
            });
        Element::new("l7:ListenPort")
            .attr("id", &stored.id)
            .attr("version", stored.version.to_string())
            .child(Element::text("l7:Name", &port.name))
            .child(Element::text("l7:Enabled", port.enabled.to_string()))
            .child(Element::text("l7:Protocol", &port.protocol))
            .child(Element::text("l7:Port", port.port.to_string()))
            .child(string_values_element("l7:EnabledFeatures", &port.features))
            .child_opt(tls)
            .child_opt(properties_element(
                port.properties
                    .iter()
                    .map(|(key, value)| (key.as_str(), value.clone())),
            ))
    }

    fn from_xml(element: &Element, id: Option<&str>) -> Result<Parsed<Self>, ResourceError> {
        let port_text = required(element, "Port")?;
        let port = port_text.parse::<u16>().map_err(|_| {
            ResourceError(format!(
                "l7:Port: expected a port number, got '{port_text}'"
            ))
        })?;
        let tls = element
            .find("TlsSettings")
            .map(|tls| {
                let client_auth = match tls.child_text("ClientAuthentication").unwrap_or("None") {
                    "None" => ClientAuth::None,
                    "Optional" => ClientAuth::Optional,
                    "Required" => ClientAuth::Required,
                    other => {
                        return Err(ResourceError(format!(
                            "l7:ClientAuthentication: expected None, Optional or Required, got '{other}'"
                        )));
                    }
                };
                let key = tls
                    .find("PrivateKeyReference")
                    .and_then(|reference| reference.attribute("id"))
                    .map(|id| {
                        id.split_once(':').ok_or_else(|| {
                            ResourceError(format!(
                                "l7:PrivateKeyReference id '{id}': expected <keystoreId>:<alias>"
                            ))
                        })
                    })
                    .transpose()?;
                Ok(ListenPortTls {
                    client_auth,
                    keystore_id: key.map(|(keystore, _)| keystore.to_owned()),
                    key_alias: key.map(|(_, alias)| alias.to_owned()),
                    versions: string_values(tls, "EnabledVersions"),
                    cipher_suites: string_values(tls, "EnabledCipherSuites"),
                    use_cipher_suites_order: flag(tls, "UseCipherSuitesOrder", true)?,
                })
            })
            .transpose()?;
        Ok(Parsed {
            version: version_of(element)?,
            id: id_of(element, id),
            entity: ListenPort {
                name: required(element, "Name")?.to_owned(),
                enabled: flag(element, "Enabled", true)?,
                protocol: required(element, "Protocol")?.to_owned(),
                port,
                features: string_values(element, "EnabledFeatures"),
                tls,
                properties: properties(element)?,
            },
        })
    }
}
