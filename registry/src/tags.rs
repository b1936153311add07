//! `GET /v2/<repo>/tags/list`, paginated, on our own client: each page is a bounded read, the listing
//! as a whole is capped in pages and bytes, and pagination must advance. A registry that ignores
//! `last=` and sends the same page forever (issue 11) is caught on its second page instead of growing
//! lamina's memory without end.

use reqwest::header::LINK;

use super::bounded::{self, MAX_TAG_PAGE, MAX_TAG_PAGES, MAX_TAG_TOTAL};
use super::client::{RegistryClient, status_error};
use super::{RegistryError, auth};

/// Tags asked for per page (registries may send fewer and a `Link` to the next page).
const PAGE_SIZE: usize = 1000;

#[derive(serde::Deserialize)]
struct Page {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl RegistryClient {
    /// All tags of a repository, in the registry's (lexical) order.
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>, RegistryError> {
        let repository = format!("{}/{repo}", self.inner.registry);
        let first = format!("{}/v2/{repo}/tags/list?n={PAGE_SIZE}", self.inner.base);
        let mut out: Vec<String> = Vec::new();
        let mut next = Some(first);
        let mut previous: Option<String> = None;
        let mut total = 0u64;
        let mut pages = 0usize;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_TAG_PAGES {
                return Err(RegistryError::TooManyTagPages {
                    repository,
                    limit: MAX_TAG_PAGES,
                });
            }
            let mut r = self.retrier(format!("list tags of {repository}"));
            let (body, link) = loop {
                match self.tag_page(repo, &url).await {
                    Ok(v) => break v,
                    Err(e) => r.check(e).await?,
                }
            };
            total += body.len() as u64;
            if total > MAX_TAG_TOTAL {
                return Err(RegistryError::TagListTooLarge {
                    repository,
                    limit: MAX_TAG_TOTAL,
                });
            }
            let page: Page = serde_json::from_slice(&body).map_err(|source| RegistryError::BadTagList {
                repository: repository.clone(),
                url: url.clone(),
                source,
            })?;
            let tags = page.tags.unwrap_or_default();
            let Some(last) = tags.last().cloned() else {
                break;
            };
            // Tags come in lexical order (distribution spec), so each page must end past the last
            // one: a repeated or rewound page means the registry ignores `last=`.
            if let Some(prev) = &previous
                && last.as_str() <= prev.as_str()
            {
                return Err(RegistryError::PaginationStalled {
                    repository,
                    previous: prev.clone(),
                    last,
                });
            }
            let more = link.is_some() || tags.len() >= PAGE_SIZE;
            out.extend(tags);
            if more {
                next = Some(self.next_page_url(repo, link.as_deref(), &last));
            }
            previous = Some(last);
        }
        Ok(out)
    }

    async fn tag_page(&self, repo: &str, url: &str) -> Result<(Vec<u8>, Option<String>), RegistryError> {
        let req = self.inner.http.get(url);
        let req = self
            .inner
            .auth
            .apply(req, repo, &auth::scopes(repo, false, None))
            .await?;
        let res = req.send().await.map_err(RegistryError::http("GET", url))?;
        let status = res.status().as_u16();
        if status != 200 {
            let message = bounded::read_prefix(res).await;
            return Err(status_error(url, &self.inner.registry, repo, status, message));
        }
        let link = next_link_of(&res);
        let body = bounded::read_body(res, MAX_TAG_PAGE, "tag list").await?;
        Ok((body, link))
    }

    /// The registry's `Link` when it stays on the registry (credentials are attached to tag requests,
    /// so a link to another host is not followed); otherwise `last=` after this page's last tag.
    fn next_page_url(&self, repo: &str, link: Option<&str>, last: &str) -> String {
        let base = reqwest::Url::parse(&self.inner.base).ok();
        let linked = link.and_then(|l| base.as_ref()?.join(l).ok()).filter(|u| {
            base.as_ref()
                .is_some_and(|b| u.origin() == b.origin() && u.path() == format!("/v2/{repo}/tags/list"))
        });
        match linked {
            Some(u) => u.to_string(),
            None => {
                let mut u = format!("{}/v2/{repo}/tags/list", self.inner.base);
                let q: String = url_query(&[("n", &PAGE_SIZE.to_string()), ("last", last)]);
                u.push('?');
                u.push_str(&q);
                u
            }
        }
    }
}

/// The `rel="next"` target of a response's `Link` header (tag lists and referrers page alike).
pub(super) fn next_link_of(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get(LINK)
        .and_then(|v| v.to_str().ok())
        .and_then(next_link)
        .map(str::to_owned)
}

/// The target of `rel="next"` in a `Link` header (`<url>; rel="next"`).
fn next_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        is_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>'))
    })
}

pub(super) fn url_query(pairs: &[(&str, &str)]) -> String {
    let mut u = reqwest::Url::parse("http://x/").expect("constant URL parses");
    u.query_pairs_mut().extend_pairs(pairs);
    u.query().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn next_link_is_found_among_others() {
        assert_eq!(
            next_link(r#"</v2/r/tags/list?n=2&last=b>; rel="next""#),
            Some("/v2/r/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://x/a>; rel="prev", </b>; rel="next""#),
            Some("/b")
        );
        assert_eq!(next_link(r#"</a>; rel="prev""#), None);
    }
}
