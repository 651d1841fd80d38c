//! A repository over HTTP(S) (`baseurl = "https://…/repo"`), read with
//! ureq (blocking, rustls with ring; the webpki roots unless
//! [`HttpOptions::ca_certs`] names the CAs to trust instead, like dnf's
//! `sslcacert`; no proxy unless [`HttpOptions::proxy`] names one, no
//! content decoding).
//!
//! Every GET:
//! - is capped at `max` bytes: a `Content-Length` above it is refused at
//!   once, and the body is read through a `max + 1` byte window whatever
//!   the header said, so a longer body is refused too ([`HttpError::TooLarge`]);
//! - has a connect timeout, a stall timeout (no byte for that long) and a
//!   total timeout that covers redirects and the whole body;
//! - follows at most [`HttpOptions::max_redirects`] redirects (301, 302,
//!   303, 307, 308), each to `http://` or `https://` only (an `https` base
//!   may be redirected to `http`: integrity comes from the checksums and
//!   signatures, not from TLS);
//! - accepts only `200 OK`; any other status is an error that carries it.
//!
//! Redirects are followed here rather than inside ureq so that the scheme
//! rule and the count are this module's and every hop is named in errors.
use super::{Source, SourceError};
use std::io::Read;
use std::time::{Duration, Instant};

/// Timeouts, redirects and proxy of an [`Http`] source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// To establish a connection (DNS, TCP, TLS).
    pub connect_timeout: Duration,
    /// With no byte received for this long, the GET fails.
    pub stall_timeout: Duration,
    /// One GET from the first byte sent to the last body byte, redirects
    /// included.
    pub timeout: Duration,
    /// Redirects followed per GET.
    pub max_redirects: u32,
    /// `http://host:port` of a proxy; `None` connects directly (the
    /// environment's `*_proxy` variables are not read).
    pub proxy: Option<String>,
    /// PEM certificates of the only CAs trusted for `https://` (dnf's
    /// `sslcacert`); `None` trusts the webpki (Mozilla) roots.
    pub ca_certs: Option<Vec<u8>>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(60),
            timeout: Duration::from_secs(30 * 60),
            max_redirects: 5,
            proxy: None,
            ca_certs: None,
        }
    }
}

/// Why a GET failed (the URL is in [`SourceError::Http`]).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("`{0}` is not an http:// or https:// URL with a host")]
    BadUrl(String),
    #[error("sslcacert: {0}")]
    CaCerts(String),
    #[error("proxy `{proxy}`: {err}")]
    Proxy { proxy: String, err: String },
    #[error("the server answered {status}{}", via_text(via))]
    Status { status: u16, via: Option<String> },
    #[error(
        "larger than the {max} bytes allowed for this file ({how}){}",
        via_text(via)
    )]
    TooLarge {
        max: u64,
        how: &'static str,
        via: Option<String>,
    },
    #[error("more than {max} redirects (last to `{last}`)")]
    Redirects { max: u32, last: String },
    #[error("redirected to `{location}`, which is not http:// or https://")]
    RedirectScheme { location: String },
    #[error("answered {status} without a usable Location header")]
    BadRedirect { status: u16 },
    #[error("timed out ({phase}){}", via_text(via))]
    Timeout { phase: String, via: Option<String> },
    #[error("{err}{}", via_text(via))]
    Transport { err: String, via: Option<String> },
    #[error("reading the body: {err}{}", via_text(via))]
    Body {
        err: std::io::Error,
        via: Option<String>,
    },
}

/// The certificates of a PEM bundle; at least one, and nothing unreadable.
fn ca_roots(pem: &[u8]) -> Result<ureq::tls::RootCerts, String> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item.map_err(|e| format!("not a readable PEM file: {e}"))? {
            ureq::tls::PemItem::Certificate(c) => certs.push(c),
            _ => return Err("holds something other than certificates".into()),
        }
    }
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

fn via_text(via: &Option<String>) -> String {
    match via {
        Some(u) => format!(" (redirected to {u})"),
        None => String::new(),
    }
}

/// A repository at an `http://` or `https://` base URL.
#[derive(Debug, Clone)]
pub struct Http {
    base: String,
    agent: ureq::Agent,
    options: HttpOptions,
}

impl Http {
    /// `base` with the default [`HttpOptions`].
    pub fn new(base: &str) -> Result<Http, SourceError> {
        Http::with_options(base, HttpOptions::default())
    }

    pub fn with_options(base: &str, options: HttpOptions) -> Result<Http, SourceError> {
        let bad = |err| SourceError::Http {
            url: base.to_string(),
            err,
        };
        if split(base).is_none() {
            return Err(bad(HttpError::BadUrl(base.to_string())));
        }
        let proxy = match &options.proxy {
            None => None,
            Some(p) => Some(ureq::Proxy::new(p).map_err(|e| {
                bad(HttpError::Proxy {
                    proxy: p.clone(),
                    err: e.to_string(),
                })
            })?),
        };
        let roots = match &options.ca_certs {
            None => ureq::tls::RootCerts::WebPki,
            Some(pem) => ca_roots(pem).map_err(|e| bad(HttpError::CaCerts(e)))?,
        };
        let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(proxy)
            .accept_encoding("identity")
            .timeout_connect(Some(options.connect_timeout))
            .timeout_per_read(Some(options.stall_timeout))
            .build();
        Ok(Http {
            base: base.trim_end_matches('/').to_string(),
            agent: ureq::Agent::new_with_config(config),
            options,
        })
    }

    /// One GET of `url` and its redirects, at most `max` bytes.
    fn fetch(&self, url: &str, max: u64) -> Result<Vec<u8>, HttpError> {
        let deadline = Instant::now() + self.options.timeout;
        let mut current = url.to_string();
        let mut hops = 0u32;
        loop {
            let via = (hops > 0).then(|| current.clone());
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(HttpError::Timeout {
                    phase: "total".into(),
                    via,
                });
            }
            let response = self
                .agent
                .get(&current)
                .config()
                .timeout_global(Some(left))
                .build()
                .call()
                .map_err(|e| transport(e, via.clone()))?;
            let status = response.status().as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or(HttpError::BadRedirect { status })?;
                let next = resolve(&current, location)?;
                hops += 1;
                if hops > self.options.max_redirects {
                    return Err(HttpError::Redirects {
                        max: self.options.max_redirects,
                        last: next,
                    });
                }
                current = next;
                continue;
            }
            if status != 200 {
                return Err(HttpError::Status { status, via });
            }
            let body = response.into_body();
            if body.content_length().is_some_and(|n| n > max) {
                return Err(HttpError::TooLarge {
                    max,
                    how: "Content-Length",
                    via,
                });
            }
            let mut out = Vec::new();
            body.into_reader()
                .take(max.saturating_add(1))
                .read_to_end(&mut out)
                .map_err(|err| HttpError::Body {
                    err,
                    via: via.clone(),
                })?;
            if out.len() as u64 > max {
                return Err(HttpError::TooLarge {
                    max,
                    how: "body",
                    via,
                });
            }
            return Ok(out);
        }
    }
}

impl Source for Http {
    fn url(&self) -> String {
        self.base.clone()
    }

    fn get(&self, href: &str, max: u64) -> Result<Vec<u8>, SourceError> {
        let url = format!("{}/{href}", self.base);
        self.fetch(&url, max)
            .map_err(|err| SourceError::Http { url, err })
    }
}

fn transport(e: ureq::Error, via: Option<String>) -> HttpError {
    match e {
        ureq::Error::Timeout(t) => HttpError::Timeout {
            phase: t.to_string(),
            via,
        },
        other => HttpError::Transport {
            err: other.to_string(),
            via,
        },
    }
}

/// `(scheme, authority, path-and-query)` of an absolute http(s) URL with a
/// non-empty authority.
fn split(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() || authority.contains(char::is_whitespace) {
        return None;
    }
    Some((scheme, authority, path))
}

/// The scheme of `s` if it starts with one (`scheme:`, RFC 3986).
fn scheme_of(s: &str) -> Option<&str> {
    let colon = s.find(':')?;
    let scheme = s.get(..colon)?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// The URL a `Location` header sends `base` to: absolute (http/https
/// only), scheme-relative, host-relative or relative to `base`'s directory.
fn resolve(base: &str, location: &str) -> Result<String, HttpError> {
    let location = location.trim();
    let refused = || HttpError::RedirectScheme {
        location: location.to_string(),
    };
    let next = if let Some(scheme) = scheme_of(location) {
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(refused());
        }
        location.to_string()
    } else {
        let (scheme, authority, path) = split(base).ok_or_else(refused)?;
        if location.starts_with("//") {
            format!("{scheme}:{location}")
        } else if location.starts_with('/') {
            format!("{scheme}://{authority}{location}")
        } else {
            let path = path.split(['?', '#']).next().unwrap_or("");
            let dir = path.rfind('/').and_then(|i| path.get(..=i)).unwrap_or("/");
            format!("{scheme}://{authority}{dir}{location}")
        }
    };
    if split(&next).is_none() {
        return Err(refused());
    }
    Ok(next)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_and_only_to_http() {
        let b = "http://h:1/repo/repodata/repomd.xml";
        assert_eq!(resolve(b, "https://m/r/x").unwrap(), "https://m/r/x");
        assert_eq!(resolve(b, "//m/x").unwrap(), "http://m/x");
        assert_eq!(resolve(b, "/other/x").unwrap(), "http://h:1/other/x");
        assert_eq!(
            resolve(b, "y.xml").unwrap(),
            "http://h:1/repo/repodata/y.xml"
        );
        assert_eq!(
            resolve("http://h?q=/a", "z").unwrap(),
            "http://h/z",
            "a query is not a path"
        );
        for bad in [
            "ftp://m/x",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "HTTP:",
            "http://",
            "//",
        ] {
            assert!(
                matches!(resolve(b, bad), Err(HttpError::RedirectScheme { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn base_urls() {
        assert!(Http::new("http://127.0.0.1:1/r/").is_ok());
        assert_eq!(Http::new("https://h/r///").unwrap().url(), "https://h/r");
        for bad in ["http://", "http:///x", "ftp://h/x", "https//h"] {
            let e = Http::new(bad).unwrap_err();
            assert!(
                matches!(&e, SourceError::Http { url, err: HttpError::BadUrl(_) } if url == bad),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_closed_port_is_a_transport_error_naming_the_url() {
        // Bind then drop: the port is (almost surely) closed afterwards.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let h = Http::new(&format!("http://127.0.0.1:{port}/r")).unwrap();
        let e = h.get("repodata/repomd.xml", 10).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("http://127.0.0.1:{port}/r/repodata/repomd.xml: ")),
            "{e}"
        );
        assert!(
            matches!(
                e,
                SourceError::Http {
                    err: HttpError::Transport { .. },
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn a_server_that_never_answers_times_out() {
        // Accepts and reads, never writes; the listener lives for the test.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = std::io::Read::read(&mut c, &mut buf);
            std::thread::sleep(Duration::from_secs(2));
        });
        let opts = HttpOptions {
            timeout: Duration::from_millis(300),
            ..HttpOptions::default()
        };
        let h = Http::with_options(&format!("http://127.0.0.1:{port}/r"), opts).unwrap();
        let start = Instant::now();
        let e = h.get("x", 10).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2), "{e}");
        assert!(
            matches!(
                e,
                SourceError::Http {
                    err: HttpError::Timeout { .. },
                    ..
                }
            ),
            "{e}"
        );
        t.join().unwrap();
    }
}
