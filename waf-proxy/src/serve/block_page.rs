//! What a client sees when the proxy answers by itself: the block page (HTML from a template, or
//! JSON when the client asks for it) and the small pages for 413, 421 and 431.

use std::path::Path;

use anyhow::{ensure, Context};

/// The built-in block page. Placeholders: `{{status}}`, `{{request_id}}`, `{{host}}`.
const BUILTIN: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Request blocked</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 36em; margin: 4em auto; padding: 0 1em">
<h1>Request blocked</h1>
<p>This request to {{host}} was blocked by the web application firewall (status {{status}}).
If you think this is a mistake, contact the site's support and quote the request id.</p>
<p>Request id: <code>{{request_id}}</code></p>
</body></html>
"#;

/// A block-page template.
#[derive(Debug, Clone)]
pub struct BlockPage {
    template: String,
}

impl Default for BlockPage {
    fn default() -> BlockPage {
        BlockPage {
            template: BUILTIN.to_string(),
        }
    }
}

impl BlockPage {
    /// Reads a template; it must show the request id, so a user can quote it.
    pub fn load(path: &Path) -> anyhow::Result<BlockPage> {
        let template = std::fs::read_to_string(path)
            .with_context(|| format!("reading the block page {}", path.display()))?;
        ensure!(
            template.contains("{{request_id}}"),
            "the block page {} has no {{{{request_id}}}} placeholder",
            path.display()
        );
        Ok(BlockPage { template })
    }

    /// The page for one request; every substituted value is HTML-escaped.
    pub fn render(&self, status: u16, request_id: &str, host: &str) -> String {
        self.template
            .replace("{{status}}", &status.to_string())
            .replace("{{request_id}}", &escape_html(request_id))
            .replace("{{host}}", &escape_html(host))
    }
}

/// A page the proxy writes itself: status, content type and body.
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Page {
    /// The block page, or its JSON form.
    pub fn blocked(
        template: &BlockPage,
        json: bool,
        status: u16,
        request_id: &str,
        host: &str,
    ) -> Page {
        if json {
            return Page::json(status, "request blocked", request_id);
        }
        Page {
            status,
            content_type: "text/html; charset=utf-8",
            body: template.render(status, request_id, host),
        }
    }

    /// A short page for the proxy's own refusals (413, 421, 431, 502...).
    pub fn refusal(json: bool, status: u16, title: &str, text: &str, request_id: &str) -> Page {
        if json {
            return Page::json(status, &title.to_ascii_lowercase(), request_id);
        }
        let (title, text, id) = (
            escape_html(title),
            escape_html(text),
            escape_html(request_id),
        );
        Page {
            status,
            content_type: "text/html; charset=utf-8",
            body: format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
                 <body><h1>{title}</h1><p>{text}</p><p>Request id: <code>{id}</code></p></body></html>\n"
            ),
        }
    }

    fn json(status: u16, error: &str, request_id: &str) -> Page {
        let v = serde_json::json!({ "status": status, "error": error, "request_id": request_id });
        Page {
            status,
            content_type: "application/json",
            body: v.to_string(),
        }
    }
}

/// Whether an Accept header prefers JSON over HTML (`q` values honoured; HTML wins ties).
pub fn prefers_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let (mut json, mut html) = (0.0f32, 0.0f32);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in parts {
            if let Some(v) = p.trim().strip_prefix("q=") {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        match media.as_str() {
            "application/json" | "application/problem+json" => json = json.max(q),
            "text/html" | "text/*" | "*/*" => html = html.max(q),
            _ => {}
        }
    }
    json > 0.0 && json > html
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert!(prefers_json(Some("application/json")));
        assert!(prefers_json(Some(
            "application/json, text/plain, */*;q=0.5"
        )));
        assert!(!prefers_json(Some(
            "text/html,application/xhtml+xml,application/json;q=0.9"
        )));
        assert!(!prefers_json(Some("*/*")));
        assert!(!prefers_json(None));
    }

    #[test]
    fn templates_escape_what_they_substitute() {
        let page = BlockPage::default().render(403, "abc", "<script>.example");
        assert!(page.contains("Request id: <code>abc</code>"));
        assert!(page.contains("&lt;script&gt;.example"));
        assert!(page.contains("status 403"));
    }

    #[test]
    fn a_template_without_the_request_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("page.html");
        std::fs::write(&path, "<h1>No</h1>").unwrap();
        let e = BlockPage::load(&path).unwrap_err().to_string();
        assert!(e.contains("{{request_id}}"), "{e}");
    }
}
