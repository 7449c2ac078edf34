//! A small transforming HTTP proxy in front of a real back end (Radicale), to play the
//! servers the tests have not met: one that sends calendar and address data inside
//! CDATA, and one that rewrites what it stores (a vCard 4.0 kept as 3.0, with its
//! own PRODID) and still answers the PUT with a strong ETag. Everything else passes
//! through unchanged.

use std::net::SocketAddr;

use anyhow::Result;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::Response;

/// What the proxy changes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rewrites {
    /// Multistatus answers carry calendar and address data in CDATA sections.
    pub cdata: bool,
    /// vCards PUT as 4.0 are stored as 3.0 (TYPE values upper-cased, a PRODID added).
    pub vcard_to_3: bool,
    /// MKCALENDAR and MKCOL wait this long before they reach the server (a create in
    /// flight that a scenario can overtake).
    pub slow_create: Option<std::time::Duration>,
}

#[derive(Clone)]
struct Upstream {
    base: String,
    http: reqwest::Client,
    rewrites: Rewrites,
    creates: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// A running proxy.
#[derive(Debug)]
pub struct Rewriter {
    /// Its base URL (`http://127.0.0.1:PORT/`).
    pub url: String,
    task: tokio::task::JoinHandle<()>,
    creates: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for Rewriter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Rewriter {
    /// Starts a proxy to `upstream` (a base URL) with `rewrites`.
    pub async fn start(upstream: &str, rewrites: Rewrites) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let creates = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let state = Upstream {
            base: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            rewrites,
            creates: creates.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Rewriter {
            url: format!("http://{addr}/"),
            task,
            creates,
        })
    }

    /// MKCALENDAR and MKCOL requests received so far (started, maybe still waiting).
    pub fn creates(&self) -> usize {
        self.creates.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// vCard 4.0 written as a 3.0 server would keep it.
pub fn as_vcard_3(body: &str) -> String {
    let mut out = String::new();
    for line in body.split("\r\n").filter(|l| !l.is_empty()) {
        if line.eq_ignore_ascii_case("VERSION:4.0") {
            out.push_str("VERSION:3.0\r\nPRODID:-//Rewriting Server//EN\r\n");
            continue;
        }
        // Parameter values in upper case: TYPE=work,voice -> TYPE=WORK,VOICE.
        match line.split_once(':') {
            Some((head, value)) if head.contains(';') => {
                out.push_str(&head.to_ascii_uppercase());
                out.push(':');
                out.push_str(value);
            }
            _ => out.push_str(line),
        }
        out.push_str("\r\n");
    }
    out
}

/// Multistatus data elements with their text moved into CDATA sections.
fn to_cdata(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    loop {
        let open = ["calendar-data", "address-data"]
            .iter()
            .filter_map(|name| {
                let i = rest
                    .find(&format!(":{name}>"))
                    .or_else(|| rest.find(&format!("<{name}>")))?;
                let end = rest[i..].find('>')? + i + 1;
                Some((end, *name))
            })
            .min();
        let Some((start, name)) = open else {
            out.push_str(rest);
            return out;
        };
        let Some(close) = rest[start..].find("</").map(|j| start + j) else {
            out.push_str(rest);
            return out;
        };
        let _ = name;
        out.push_str(&rest[..start]);
        let text = quick_unescape(&rest[start..close]);
        out.push_str("<![CDATA[");
        out.push_str(&text);
        out.push_str("]]>");
        rest = &rest[close..];
    }
}

fn quick_unescape(s: &str) -> String {
    s.replace("&#13;", "\r")
        .replace("&#xD;", "\r")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

async fn forward(State(up): State<Upstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if matches!(parts.method.as_str(), "MKCALENDAR" | "MKCOL") {
        up.creates.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    if let Some(wait) = up.rewrites.slow_create
        && matches!(parts.method.as_str(), "MKCALENDAR" | "MKCOL")
    {
        tokio::time::sleep(wait).await;
    }
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let is_vcard = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("vcard"));
    let body: Bytes = if up.rewrites.vcard_to_3 && parts.method == "PUT" && is_vcard {
        as_vcard_3(&String::from_utf8_lossy(&body)).into()
    } else {
        body
    };
    let url = format!(
        "{}{}",
        up.base,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut r = up.http.request(parts.method.clone(), url);
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            r = r.header(k, v);
        }
    }
    let answer = match r.body(body).send().await {
        Ok(a) => a,
        Err(e) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(e.to_string()))
                .unwrap_or_default();
        }
    };
    let status = answer.status();
    let headers: HeaderMap = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let bytes: Bytes = if up.rewrites.cdata && status.as_u16() == 207 {
        to_cdata(&String::from_utf8_lossy(&bytes)).into()
    } else {
        bytes
    };
    let mut out = Response::builder().status(status);
    for (k, v) in &headers {
        if k != "content-length" && k != HeaderName::from_static("transfer-encoding") {
            out = out.header(k, v);
        }
    }
    out.body(Body::from(bytes)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_as_described() {
        let v3 = as_vcard_3("BEGIN:VCARD\r\nVERSION:4.0\r\nTEL;TYPE=work:1\r\nEND:VCARD\r\n");
        assert_eq!(
            v3,
            "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Rewriting Server//EN\r\nTEL;TYPE=WORK:1\r\nEND:VCARD\r\n"
        );
        let xml = "<C:address-data>A&#13;\nB&amp;</C:address-data>";
        assert_eq!(
            to_cdata(xml),
            "<C:address-data><![CDATA[A\r\nB&]]></C:address-data>"
        );
    }
}
