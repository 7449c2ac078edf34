//! A plain DAV client for scenarios: edits and reads the back end directly, as a
//! user of the corporate server would.

use anyhow::{Result, bail};
use reqwest::{Client, Method, StatusCode};

/// A client for one server and account.
#[derive(Debug, Clone)]
pub struct Dav {
    http: Client,
    base: String,
    user: String,
    password: String,
}

impl Dav {
    /// For `base` with Basic credentials (`user` empty for none).
    pub fn new(base: &str, user: &str, password: &str) -> Self {
        Dav {
            http: Client::new(),
            base: base.trim_end_matches('/').to_string(),
            user: user.into(),
            password: password.into(),
        }
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{}", self.base, path));
        if self.user.is_empty() {
            r
        } else {
            r.basic_auth(&self.user, Some(&self.password))
        }
    }

    /// PUT an item (no precondition); returns the status.
    pub async fn put(&self, path: &str, body: &[u8], ctype: &str) -> Result<StatusCode> {
        Ok(self
            .req(Method::PUT, path)
            .header("Content-Type", ctype)
            .body(body.to_vec())
            .send()
            .await?
            .status())
    }

    /// DELETE an item; returns the status.
    pub async fn delete(&self, path: &str) -> Result<StatusCode> {
        Ok(self.req(Method::DELETE, path).send().await?.status())
    }

    /// GET an item: `None` when it does not exist.
    pub async fn get(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let r = self.req(Method::GET, path).send().await?;
        match r.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(r.bytes().await?.to_vec())),
            s => bail!("GET {path}: {s}"),
        }
    }

    /// The member hrefs of a collection, sub-collections left out (PROPFIND depth 1).
    pub async fn members(&self, collection: &str) -> Result<Vec<String>> {
        let r = self
            .req(Method::from_bytes(b"PROPFIND")?, collection)
            .header("Depth", "1")
            .header("Content-Type", "application/xml")
            .body(
                r#"<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/></prop></propfind>"#,
            )
            .send()
            .await?;
        if r.status().as_u16() != 207 {
            bail!("PROPFIND {collection}: {}", r.status());
        }
        let body = r.text().await?;
        Ok(hrefs(&body)
            .into_iter()
            .filter(|h| !h.ends_with('/'))
            .collect())
    }

    /// The collections below `home`, as (href, display name) (PROPFIND depth 1).
    pub async fn collections(&self, home: &str) -> Result<Vec<(String, String)>> {
        let body = self
            .req(Method::from_bytes(b"PROPFIND")?, home)
            .header("Depth", "1")
            .header("Content-Type", "application/xml")
            .body(r#"<propfind xmlns="DAV:"><prop><displayname/></prop></propfind>"#)
            .send()
            .await?
            .text()
            .await?;
        let root = postern_davxml::parse(body.as_bytes())?;
        Ok(root
            .children_named(postern_davxml::DAV, "response")
            .filter_map(|r| {
                let href = r.child(postern_davxml::DAV, "href")?.trimmed().to_string();
                let name = r
                    .find(postern_davxml::DAV, "displayname")
                    .map(|d| d.trimmed().to_string())
                    .unwrap_or_default();
                Some((href, name))
            })
            .filter(|(h, _)| h.trim_end_matches('/') != home.trim_end_matches('/'))
            .collect())
    }

    /// MKCALENDAR at `path`; returns the status.
    pub async fn mkcalendar(&self, path: &str) -> Result<StatusCode> {
        Ok(self
            .req(Method::from_bytes(b"MKCALENDAR")?, path)
            .send()
            .await?
            .status())
    }

    /// Every member's content.
    pub async fn contents(&self, collection: &str) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for h in self.members(collection).await? {
            let path = h.strip_prefix(&self.base).unwrap_or(&h).to_string();
            if let Some(b) = self.get(&path).await? {
                out.push(b);
            }
        }
        Ok(out)
    }
}

/// The text of every opening `<href>` (any prefix) in a multistatus body.
fn hrefs(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in body.match_indices("href>") {
        let Some(open) = body[..i].rfind('<') else {
            continue;
        };
        let tag = &body[open + 1..i];
        if tag.starts_with('/') || tag.contains(' ') || tag.contains('>') {
            continue;
        }
        let rest = &body[i + 5..];
        out.push(
            rest[..rest.find('<').unwrap_or(rest.len())]
                .trim()
                .to_string(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_hrefs_with_any_prefix() {
        let b = r#"<D:multistatus><D:response><D:href>/a/</D:href></D:response><response><href>/a/b.ics</href></response></D:multistatus>"#;
        assert_eq!(
            super::hrefs(b),
            vec!["/a/".to_string(), "/a/b.ics".to_string()]
        );
    }
}
