//! A small XML tree for restman documents: [`Element`] parsed from text with quick-xml
//! (namespace prefixes dropped, so `l7:Name` and `Name` read alike) and written back with
//! the prefixes the caller gives, escaping text and attributes.

use std::fmt::Write as _;

use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// The restman namespace (prefix `l7`).
pub const NAMESPACE: &str = "http://ns.l7tech.com/2010/04/gateway-management";

/// Deepest nesting read (a policy inside a bundle is text, so real documents stay shallow).
const MAX_DEPTH: usize = 64;

/// One element: its name, attributes, child elements and the text directly inside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Name: the local name when parsed, the written name (`l7:Name`) when built.
    pub name: String,
    /// Attributes in document order (namespace declarations left out when parsed).
    pub attributes: Vec<(String, String)>,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// Text and CDATA directly inside, concatenated.
    pub text: String,
}

/// Why a document could not be read: the parser's message and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl Element {
    /// An element named `name` with nothing inside.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// An element holding `text`.
    pub fn text(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
            ..Self::default()
        }
    }

    /// Adds an attribute.
    pub fn attr(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.push((name.into(), value.into()));
        self
    }

    /// Adds a child.
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(child);
        self
    }

    /// Adds a child when there is one.
    pub fn child_opt(mut self, child: Option<Element>) -> Self {
        self.children.extend(child);
        self
    }

    /// Adds children.
    pub fn children(mut self, children: impl IntoIterator<Item = Element>) -> Self {
        self.children.extend(children);
        self
    }

    /// The local part of the name (after any prefix).
    pub fn local_name(&self) -> &str {
        local(&self.name)
    }

    /// The value of attribute `name` (local name).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| local(key) == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first child named `name` (local name).
    pub fn find(&self, name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|child| child.local_name() == name)
    }

    /// Every child named `name` (local name).
    pub fn find_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |child| child.local_name() == name)
    }

    /// The trimmed text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.find(name).map(|child| child.text.trim())
    }

    /// The document as text, with an XML declaration and the `l7` namespace on the root
    /// when the root's name has the `l7:` prefix and no declaration yet.
    pub fn to_document(&self) -> String {
        let mut root = self.clone();
        if root.name.starts_with("l7:") && root.attribute("l7").is_none() {
            root.attributes
                .insert(0, ("xmlns:l7".to_owned(), NAMESPACE.to_owned()));
        }
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        root.write(&mut out, 0);
        out.push('\n');
        out
    }

    /// Writes the element indented by `depth` levels.
    fn write(&self, out: &mut String, depth: usize) {
        let indent = "    ".repeat(depth);
        out.push_str(&indent);
        out.push('<');
        out.push_str(&self.name);
        for (name, value) in &self.attributes {
            let _ = write!(out, " {name}=\"{}\"", escape(value.as_str()));
        }
        if self.children.is_empty() && self.text.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        if self.children.is_empty() {
            out.push_str(&escape(self.text.as_str()));
        } else {
            out.push('\n');
            if !self.text.trim().is_empty() {
                out.push_str(&indent);
                out.push_str("    ");
                out.push_str(&escape(self.text.trim()));
                out.push('\n');
            }
            for child in &self.children {
                child.write(out, depth + 1);
                out.push('\n');
            }
            out.push_str(&indent);
        }
        let _ = write!(out, "</{}>", self.name);
    }
}

/// The part of `name` after its prefix.
fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, local)| local)
}

/// Parses a whole document into its root element.
pub fn parse(text: &str) -> Result<Element, ParseError> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let position = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader
            .read_event()
            .map_err(|error| located(text, position, error.to_string()))?;
        match event {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(located(text, position, "elements nested too deeply"));
                }
                let element = opened(&start).map_err(|message| located(text, position, message))?;
                if root.is_some() && stack.is_empty() {
                    return Err(located(text, position, "content after the root element"));
                }
                stack.push(element);
            }
            Event::Empty(start) => {
                let element = opened(&start).map_err(|message| located(text, position, message))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None if root.is_none() => root = Some(element),
                    None => return Err(located(text, position, "content after the root element")),
                }
            }
            Event::End(_) => {
                let Some(element) = stack.pop() else {
                    return Err(located(text, position, "unexpected closing tag"));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(content) => {
                let decoded = content
                    .decode()
                    .map_err(|error| located(text, position, error.to_string()))?;
                match stack.last_mut() {
                    Some(element) => element.text.push_str(&decoded),
                    None if decoded.trim().is_empty() => {}
                    None => return Err(located(text, position, "text outside the root element")),
                }
            }
            Event::CData(content) => {
                let decoded = content
                    .decode()
                    .map_err(|error| located(text, position, error.to_string()))?;
                if let Some(element) = stack.last_mut() {
                    element.text.push_str(&decoded);
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference
                    .resolve_char_ref()
                    .map_err(|error| located(text, position, error.to_string()))?
                {
                    Some(character) => character.to_string(),
                    None => {
                        let name = reference
                            .decode()
                            .map_err(|error| located(text, position, error.to_string()))?;
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| {
                                located(text, position, format!("unknown entity &{name};"))
                            })?
                            .to_owned()
                    }
                };
                if let Some(element) = stack.last_mut() {
                    element.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(located(text, text.len(), "unexpected end of document"));
    }
    root.ok_or_else(|| located(text, 0, "no root element"))
}

/// An element from its start tag (namespace declarations left out).
fn opened(start: &BytesStart<'_>) -> Result<Element, String> {
    let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    let mut element = Element::new(local(&name));
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|error| error.to_string())?;
        let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let value = attribute
            .unescape_value()
            .map_err(|error| error.to_string())?
            .into_owned();
        element.attributes.push((local(&key).to_owned(), value));
    }
    Ok(element)
}

/// A parse error at byte `position` of `text`.
fn located(text: &str, position: usize, message: impl Into<String>) -> ParseError {
    let before = &text[..floor_char_boundary(text, position.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, tail)| tail)
        .chars()
        .count()
        + 1;
    ParseError {
        line,
        column,
        message: message.into(),
    }
}

/// The largest char boundary of `text` at or below `index`.
fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixed_elements_entities_and_cdata() -> Result<(), ParseError> {
        let root = parse(
            r#"<?xml version="1.0"?>
<l7:Item xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management" id="a&amp;b">
  <l7:Name>one &lt;two&gt; &#51;</l7:Name>
  <l7:Resource type="policy"><![CDATA[<wsp:Policy/>]]></l7:Resource>
  <l7:Empty/>
</l7:Item>"#,
        )?;
        assert_eq!(root.name, "Item");
        assert_eq!(root.attribute("id"), Some("a&b"));
        assert_eq!(root.attributes.len(), 1, "xmlns is left out");
        assert_eq!(root.child_text("Name"), Some("one <two> 3"));
        assert_eq!(root.child_text("Resource"), Some("<wsp:Policy/>"));
        assert!(root.find("Empty").is_some());
        Ok(())
    }

    #[test]
    fn written_documents_read_back_the_same() -> Result<(), ParseError> {
        let policy = "<wsp:Policy xmlns:wsp=\"x\">\n  <L7p:A v=\"&quot;\"/>\n</wsp:Policy>";
        let built = Element::new("l7:Service")
            .attr("id", "1\"2")
            .child(Element::text("l7:Name", "a & b"))
            .child(Element::text("l7:Resource", policy));
        let read = parse(&built.to_document())?;
        assert_eq!(read.attribute("id"), Some("1\"2"));
        assert_eq!(read.child_text("Name"), Some("a & b"));
        assert_eq!(read.find("Resource").map(|r| r.text.as_str()), Some(policy));
        Ok(())
    }

    #[test]
    fn malformed_documents_name_the_line() {
        let error = parse("<l7:Item>\n  <l7:Name>x</l7:Nam>\n</l7:Item>").err();
        let Some(error) = error else {
            unreachable!("a mismatched end tag must not parse");
        };
        assert_eq!(error.line, 2, "{error}");
        assert!(parse("").is_err());
        assert!(parse("<a/><b/>").is_err());
        assert!(parse("<a>").is_err());
    }
}
