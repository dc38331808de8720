//! Who is looking at the dashboard: the API's tokens and roles.
//!
//! A request carries its token as `Authorization: Bearer <token>` (tools,
//! tests) or the session cookie the sign-in form sets (people). The cookie
//! holds a session id, never the token: 32 random bytes in hex, of which the
//! ledger keeps only the SHA-256 (`dashboard_sessions`), with the token it
//! was opened with and its end, [`SESSION_LIFETIME`] after sign-in. A
//! session ends when it expires, when its person signs out (the row is
//! deleted) or when its token is revoked (`tledger tokens revoke`: the
//! lookup asks for a token not revoked, at every page).
//!
//! The cookie is `HttpOnly` (no script reads it), `Secure` (sent over HTTPS
//! only; browsers treat loopback as secure, so a local service works, and a
//! service behind a TLS proxy is what `Secure` is for), `SameSite=Strict`
//! (no other site's page makes the browser send it; the sign-in redirect is
//! a same-site navigation, so Strict costs nothing there), `Path=/` and
//! `Max-Age` the session's lifetime.
//!
//! Every dashboard form (`POST /sign-in`, `POST /sign-out`) must come from
//! this site's own pages ([`sent_from_this_site`]): a form posted from
//! another site could otherwise sign a victim in with the attacker's token
//! (login CSRF), which `SameSite` cannot prevent since that request carries
//! no cookie.

use std::time::Duration;

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use tledger_store::{Store, StoreError};

use super::view::encode;
use crate::access::{caller_from, AccessError, Caller};
use crate::web::state::bearer;

/// The session cookie's name.
pub const COOKIE: &str = "tledger_session";

/// How long a session lasts from sign-in: a working day. The contract is
/// silent; after it the browser is sent to the sign-in form again.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// How a request says who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// The session cookie's id.
    Session(String),
}

/// The credential of a request: the bearer header first, else the cookie.
pub fn credential_of(headers: &HeaderMap) -> Option<Credential> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    bearer(authorization)
        .filter(|t| !t.is_empty())
        .map(Credential::Bearer)
        .or_else(|| cookie(headers, COOKIE).map(Credential::Session))
}

/// The value of cookie `name`, percent-decoded.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| decode(v))
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that keeps session `id`.
pub fn session_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        encode(id),
        SESSION_LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that ends the session.
pub fn cleared_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
}

/// The sessions kept in the ledger's database.
#[derive(Clone, Debug)]
pub struct Sessions {
    store: Store,
}

/// A session id as the cookie has it: 32 bytes in lower-case hex.
fn is_session_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn session_hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn database(context: &'static str) -> impl FnOnce(sqlx::Error) -> AccessError {
    move |source| AccessError::Store(StoreError::Database { context, source })
}

impl Sessions {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Opens a session for `caller` and returns its id (for the cookie
    /// only: the ledger keeps its hash). Sessions that have ended are
    /// removed on the way.
    pub async fn open(&self, caller: &Caller) -> Result<String, AccessError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| AccessError::Random(e.to_string()))?;
        let id = hex::encode(bytes);
        sqlx::query(
            "DELETE FROM dashboard_sessions s USING tokens t \
             WHERE s.token_id = t.token_id AND (s.expires_at <= now() OR t.revoked_at IS NOT NULL)",
        )
        .execute(self.store.pool())
        .await
        .map_err(database("removing ended dashboard sessions"))?;
        let lifetime = i64::try_from(SESSION_LIFETIME.as_secs()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO dashboard_sessions (session_hash, token_id, created_at, expires_at) \
             VALUES ($1, $2, now(), now() + $3 * interval '1 second')",
        )
        .bind(session_hash(&id).as_slice())
        .bind(caller.token_id)
        .bind(lifetime)
        .execute(self.store.pool())
        .await
        .map_err(database("opening a dashboard session"))?;
        Ok(id)
    }

    /// The caller of session `id`, if it is a session that has not ended
    /// (unknown, expired, or its token revoked: `None`).
    pub async fn caller(&self, id: &str) -> Result<Option<Caller>, AccessError> {
        if !is_session_id(id) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT t.token_id, t.name, t.role, t.unit_id, t.publisher_id \
             FROM dashboard_sessions s JOIN tokens t ON t.token_id = s.token_id \
             WHERE s.session_hash = $1 AND s.expires_at > now() AND t.revoked_at IS NULL",
        )
        .bind(session_hash(id).as_slice())
        .fetch_optional(self.store.pool())
        .await
        .map_err(database("reading a dashboard session"))?;
        row.as_ref().map(caller_from).transpose()
    }

    /// Ends session `id` (nothing when there is none).
    pub async fn close(&self, id: &str) -> Result<(), AccessError> {
        if !is_session_id(id) {
            return Ok(());
        }
        sqlx::query("DELETE FROM dashboard_sessions WHERE session_hash = $1")
            .bind(session_hash(id).as_slice())
            .execute(self.store.pool())
            .await
            .map_err(database("ending a dashboard session"))?;
        Ok(())
    }
}

/// Why a dashboard form was refused as sent from another site.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForeignForm {
    #[error("the form was sent from {0}, not from this site's pages")]
    OtherSite(String),
    #[error("the form came without Origin or Referer, so it cannot be told from another site's")]
    Unknown,
}

/// Whether a form request was sent from one of this site's pages: its
/// `Origin` (or, when a browser sends none, its `Referer`) names this
/// site's host, as the request's `Host` (or a proxy's `X-Forwarded-Host`)
/// does. A request with neither header is refused: every browser sends one
/// with a form, and one that sends neither cannot be told from a forgery.
/// `Origin: null` (a sandboxed or privacy-stripped page) is another site.
pub fn sent_from_this_site(headers: &HeaderMap) -> Result<(), ForeignForm> {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let source = text(header::ORIGIN)
        .or_else(|| text(header::REFERER))
        .ok_or(ForeignForm::Unknown)?;
    let hosts: Vec<&str> = text(header::HOST)
        .into_iter()
        .chain(
            text(header::HeaderName::from_static("x-forwarded-host"))
                .into_iter()
                .flat_map(|v| v.split(','))
                .map(str::trim),
        )
        .collect();
    let authority = source
        .strip_prefix("https://")
        .or_else(|| source.strip_prefix("http://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
    match authority {
        Some(authority)
            if !authority.is_empty() && hosts.iter().any(|h| h.eq_ignore_ascii_case(authority)) =>
        {
            Ok(())
        }
        _ => Err(ForeignForm::OtherSite(source.to_owned())),
    }
}

/// Where to go after signing in: a path on this site, never another site.
/// Anything else is `/`: the path must be printable ASCII, start with one
/// `/` (not `//` or `/\`, which browsers read as another host), and hold no
/// backslash; so must its percent-decoded form, with no control character
/// either (a browser drops a tab or newline from a URL, so `/%09/host`
/// would become `//host`).
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path) if is_local_path(path) => path.to_owned(),
        _ => "/".to_owned(),
    }
}

fn is_local_path(path: &str) -> bool {
    let on_this_site = |p: &str| {
        p.starts_with('/')
            && !p.starts_with("//")
            && !p.contains('\\')
            && !p.chars().any(char::is_control)
    };
    path.bytes().all(|b| b.is_ascii_graphic())
        && on_this_site(path)
        && on_this_site(&percent_decoded(path))
}

/// `text` with its `%XX` escapes decoded (a `+` stays a `+`).
fn percent_decoded(text: &str) -> String {
    decode_with(text, false)
}

fn decode(text: &str) -> String {
    decode_with(text, true)
}

fn decode_with(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_bearer_header_wins_over_the_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; tledger_session=abc"),
        );
        assert_eq!(
            credential_of(&headers),
            Some(Credential::Session("abc".to_owned()))
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tl_header"),
        );
        assert_eq!(
            credential_of(&headers),
            Some(Credential::Bearer("tl_header".to_owned()))
        );
    }

    #[test]
    fn a_session_id_survives_the_cookie_round_trip() {
        let id = "0123456789abcdef".repeat(4);
        let cookie_line = session_cookie(&id);
        assert!(cookie_line.ends_with("; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=28800"));
        let value = cookie_line.split(';').next().expect("pair").to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&value).expect("ascii"),
        );
        assert_eq!(credential_of(&headers), Some(Credential::Session(id)));
    }

    #[test]
    fn only_ids_the_server_could_have_made_are_looked_up() {
        assert!(is_session_id(&"ab".repeat(32)));
        assert!(!is_session_id(&"AB".repeat(32)));
        assert!(!is_session_id(&"ab".repeat(31)));
        assert!(!is_session_id("tl_0123"));
    }

    #[test]
    fn it_should_not_send_anyone_to_another_site_after_signing_in() {
        assert_eq!(local_path(Some("/?unit=dai-loc")), "/?unit=dai-loc");
        assert_eq!(
            local_path(Some("/people/o-1?lang=vi")),
            "/people/o-1?lang=vi"
        );
        for other in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "/\t/evil.example",
            "/%09/evil.example",
            "/%0D%0A/evil.example",
            "/%2f/evil.example",
            "/%5cevil.example",
            "/ a",
            "/ô",
            "evil.example",
            "",
        ] {
            assert_eq!(local_path(Some(other)), "/", "{other:?}");
        }
        assert_eq!(local_path(None), "/");
    }

    fn form_headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn a_form_is_accepted_only_from_this_site_s_pages() {
        let ours = [
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
            ][..],
            &[
                ("host", "ledger.example"),
                ("origin", "https://LEDGER.example"),
            ],
            &[
                ("host", "127.0.0.1:8080"),
                ("referer", "http://127.0.0.1:8080/sign-in?next=%2F"),
            ],
            &[
                ("host", "127.0.0.1:8080"),
                ("x-forwarded-host", "ledger.example"),
                ("origin", "https://ledger.example"),
            ],
        ];
        for pairs in ours {
            assert_eq!(
                sent_from_this_site(&form_headers(pairs)),
                Ok(()),
                "{pairs:?}"
            );
        }
        let theirs = [
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example"),
            ][..],
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:9090"),
            ],
            &[("host", "127.0.0.1:8080"), ("origin", "null")],
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080.evil.example"),
            ],
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example"),
                ("referer", "http://127.0.0.1:8080/"),
            ],
            &[
                ("host", "127.0.0.1:8080"),
                ("referer", "http://evil.example/"),
            ],
        ];
        for pairs in theirs {
            assert!(
                matches!(
                    sent_from_this_site(&form_headers(pairs)),
                    Err(ForeignForm::OtherSite(_))
                ),
                "{pairs:?}"
            );
        }
        assert_eq!(
            sent_from_this_site(&form_headers(&[("host", "127.0.0.1:8080")])),
            Err(ForeignForm::Unknown)
        );
    }
}
