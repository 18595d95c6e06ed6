//! A Layer7 twin with a Basic-auth client, and XML helpers.
#![allow(dead_code, reason = "each test module uses a different subset")]

use reqwest::Method;
use runsheet_twin::layer7::restman::xml::{self, Element};
use runsheet_twin::layer7::{Layer7Config, Layer7Twin};

/// What a test returns.
pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A twin (with `/_twin`) and a client for it.
pub struct Gateway {
    /// The twin.
    pub twin: Layer7Twin,
    /// HTTP client.
    pub http: reqwest::Client,
}

/// Status, body text and the body parsed (when XML).
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub text: String,
    /// The body as XML (an empty element when not XML).
    pub xml: Element,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
}

impl Gateway {
    /// A twin with the control endpoint.
    pub async fn start() -> Result<Self, Box<dyn std::error::Error>> {
        let twin = Layer7Twin::start(Layer7Config {
            control: true,
            ..Layer7Config::default()
        })
        .await?;
        Ok(Self {
            twin,
            http: reqwest::Client::new(),
        })
    }

    /// `<twin url>/restman/1.0`.
    pub fn restman(&self) -> String {
        format!("{}/restman/1.0", self.twin.url())
    }

    /// Sends `method` to `path` (under `/restman/1.0` when it does not start with `/`)
    /// with admin credentials and an optional XML body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<Answer, Box<dyn std::error::Error>> {
        let url = if path.starts_with('/') {
            format!("{}{path}", self.twin.url())
        } else {
            format!("{}/{path}", self.restman())
        };
        let mut request = self
            .http
            .request(method, url)
            .basic_auth("admin", Some("password"));
        if let Some(body) = body {
            request = request.header("content-type", "application/xml").body(body);
        }
        answer(request.send().await?).await
    }

    /// `GET`.
    pub async fn get(&self, path: &str) -> Result<Answer, Box<dyn std::error::Error>> {
        self.call(Method::GET, path, None).await
    }

    /// `PUT` with an XML body.
    pub async fn put(
        &self,
        path: &str,
        body: String,
    ) -> Result<Answer, Box<dyn std::error::Error>> {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// `POST` with an XML body.
    pub async fn post(
        &self,
        path: &str,
        body: String,
    ) -> Result<Answer, Box<dyn std::error::Error>> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `DELETE`.
    pub async fn delete(&self, path: &str) -> Result<Answer, Box<dyn std::error::Error>> {
        self.call(Method::DELETE, path, None).await
    }

    /// `POST /_twin/...` with a JSON body.
    pub async fn control(
        &self,
        path: &str,
        json: serde_json::Value,
    ) -> Result<Answer, Box<dyn std::error::Error>> {
        let response = self
            .http
            .post(format!("{}{path}", self.twin.url()))
            .basic_auth("admin", Some("password"))
            .json(&json)
            .send()
            .await?;
        answer(response).await
    }

    /// `GET /_twin/...` as JSON.
    pub async fn control_get(
        &self,
        path: &str,
    ) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let text = self
            .http
            .get(format!("{}{path}", self.twin.url()))
            .basic_auth("admin", Some("password"))
            .send()
            .await?
            .text()
            .await?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The write counter.
    pub async fn writes(&self) -> Result<u64, Box<dyn std::error::Error>> {
        Ok(self.control_get("/_twin/counters").await?["writes"]
            .as_u64()
            .unwrap_or(u64::MAX))
    }

    /// The store's snapshot (`GET /_twin/snapshot`).
    pub async fn snapshot(&self) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        self.control_get("/_twin/snapshot").await
    }

    /// Creates `body` in `collection`, expecting 201; the new id.
    pub async fn create(
        &self,
        collection: &str,
        body: String,
    ) -> Result<String, Box<dyn std::error::Error>> {
        let created = self.post(collection, body).await?;
        if created.status != 201 {
            return Err(format!("POST {collection}: {} {}", created.status, created.text).into());
        }
        Ok(created
            .xml
            .child_text("Id")
            .ok_or("no l7:Id in the answer")?
            .to_owned())
    }
}

/// Reads a response.
pub async fn answer(response: reqwest::Response) -> Result<Answer, Box<dyn std::error::Error>> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await?;
    let xml = xml::parse(&text).unwrap_or_default();
    Ok(Answer {
        status,
        text,
        xml,
        headers,
    })
}

/// The resource element inside an Item answer.
pub fn resource(item: &Element) -> Option<&Element> {
    item.find("Resource")?.children.first()
}

/// A cluster property document.
pub fn cluster_property(name: &str, value: &str) -> String {
    format!(
        r#"<l7:ClusterProperty xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:Name>{name}</l7:Name><l7:Value>{value}</l7:Value></l7:ClusterProperty>"#
    )
}

/// A policy whose only assertion answers `status` with `body` (text/plain).
pub fn hardcoded_policy(status: u16, body: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    format!(
        r#"<wsp:Policy xmlns:L7p="http://www.layer7tech.com/ws/policy" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy"><wsp:All wsp:Usage="Required"><L7p:HardcodedResponse><L7p:Base64ResponseBody stringValue="{encoded}"/><L7p:ResponseContentType stringValue="text/plain; charset=UTF-8"/><L7p:ResponseStatus intValue="{status}"/></L7p:HardcodedResponse></wsp:All></wsp:Policy>"#
    )
}

/// A service document at `path` (GET and POST) whose policy is `policy`, in `folder`.
pub fn service(name: &str, path: &str, policy: &str, folder: Option<&str>) -> String {
    let folder = folder.unwrap_or("0000000000000000ffffffffffffec76");
    let policy = escape(policy);
    format!(
        r#"<l7:Service xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management"><l7:ServiceDetail folderId="{folder}"><l7:Name>{name}</l7:Name><l7:Enabled>true</l7:Enabled><l7:ServiceMappings><l7:HttpMapping><l7:UrlPattern>{path}</l7:UrlPattern><l7:Verbs><l7:Verb>GET</l7:Verb><l7:Verb>POST</l7:Verb></l7:Verbs></l7:HttpMapping></l7:ServiceMappings></l7:ServiceDetail><l7:Resources><l7:ResourceSet tag="policy"><l7:Resource type="policy">{policy}</l7:Resource></l7:ResourceSet></l7:Resources></l7:Service>"#
    )
}

/// A folder document under `parent`.
pub fn folder(name: &str, parent: &str) -> String {
    format!(
        r#"<l7:Folder xmlns:l7="http://ns.l7tech.com/2010/04/gateway-management" folderId="{parent}"><l7:Name>{name}</l7:Name></l7:Folder>"#
    )
}

/// XML-escapes text.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The id of the root folder.
pub const ROOT: &str = "0000000000000000ffffffffffffec76";
