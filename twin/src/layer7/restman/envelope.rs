//! restman's envelopes (reference §1.2): `l7:Item`, `l7:List` and `l7:Error`, with self
//! links built from the request's base URL.

use super::xml::Element;

/// restman's timestamp format, e.g. `2020-08-17T23:28:23.524Z`.
pub fn timestamp_of(millis: i64) -> String {
    jiff::Timestamp::from_millisecond(millis)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The current time in restman's format.
pub fn now() -> String {
    timestamp_of(jiff::Timestamp::now().as_millisecond())
}

/// What an `l7:Item` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemHead {
    /// `l7:Name`.
    pub name: String,
    /// `l7:Id`.
    pub id: String,
    /// `l7:Type` (`SERVICE`, ...).
    pub kind: String,
    /// The self link's URI.
    pub link: String,
}

/// An `l7:Item` with an optional `l7:Resource`.
pub fn item(head: &ItemHead, resource: Option<Element>) -> Element {
    Element::new("l7:Item")
        .child(Element::text("l7:Name", &head.name))
        .child(Element::text("l7:Id", &head.id))
        .child(Element::text("l7:Type", &head.kind))
        .child(Element::text("l7:TimeStamp", now()))
        .child(
            Element::new("l7:Link")
                .attr("rel", "self")
                .attr("uri", &head.link),
        )
        .child_opt(resource.map(|resource| Element::new("l7:Resource").child(resource)))
}

/// An `l7:List` of `items` of type `kind`, linking to `link`.
pub fn list(kind: &str, link: &str, items: Vec<Element>) -> Element {
    Element::new("l7:List")
        .child(Element::text("l7:Name", format!("{kind} List")))
        .child(Element::text("l7:Type", "List"))
        .child(Element::text("l7:TimeStamp", now()))
        .child(
            Element::new("l7:Link")
                .attr("rel", "self")
                .attr("uri", link),
        )
        .children(items)
}

/// An `l7:Error` of `kind` with `detail`, for the request at `link`.
pub fn error(kind: &str, link: &str, detail: &str) -> Element {
    Element::new("l7:Error")
        .child(Element::text("l7:Type", kind))
        .child(Element::text("l7:TimeStamp", now()))
        .child(
            Element::new("l7:Link")
                .attr("rel", "self")
                .attr("uri", link),
        )
        .child(Element::text("l7:Detail", detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds_and_a_z() {
        assert_eq!(timestamp_of(1_597_706_903_524), "2020-08-17T23:28:23.524Z");
        assert_eq!(now().len(), 24);
    }

    #[test]
    fn an_item_carries_its_head_and_resource() {
        let head = ItemHead {
            name: "a".to_owned(),
            id: "1".to_owned(),
            kind: "CLUSTER_PROPERTY".to_owned(),
            link: "http://h/restman/1.0/clusterProperties/1".to_owned(),
        };
        let element = item(&head, Some(Element::new("l7:ClusterProperty")));
        assert_eq!(element.child_text("Type"), Some("CLUSTER_PROPERTY"));
        assert_eq!(
            element.find("Link").and_then(|link| link.attribute("uri")),
            Some(head.link.as_str())
        );
        assert!(
            element
                .find("Resource")
                .and_then(|r| r.find("ClusterProperty"))
                .is_some()
        );
        assert!(item(&head, None).find("Resource").is_none());
    }
}
