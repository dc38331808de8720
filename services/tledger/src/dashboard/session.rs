//! Who is looking at the dashboard: the API's tokens and roles.
//!
//! A request carries its token as `Authorization: Bearer <token>` (tools,
//! tests) or in the session cookie the sign-in form sets (people). The
//! cookie holds the token itself, `HttpOnly` (no script reads it), `Secure`
//! (sent over HTTPS only; browsers treat loopback as secure, so a local
//! service works), `SameSite=Strict` (no other site's page can make the
//! browser send it, which is what keeps the sign-out and sign-in forms safe
//! from cross-site requests) and `Path=/`. Signing out clears it; revoking
//! the token (`tledger tokens revoke`) ends every session that uses it.

use axum::http::{header, HeaderMap};

use super::view::encode;
use crate::http::bearer;

/// The session cookie's name.
pub const COOKIE: &str = "tledger_session";

/// The token of a request: the bearer header first, else the cookie.
pub fn token_of(headers: &HeaderMap) -> Option<String> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    bearer(authorization)
        .filter(|t| !t.is_empty())
        .or_else(|| cookie(headers, COOKIE))
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

/// The `Set-Cookie` value that keeps `token` for the session.
pub fn session_cookie(token: &str) -> String {
    format!(
        "{COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/",
        encode(token)
    )
}

/// The `Set-Cookie` value that ends the session.
pub fn cleared_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
}

/// Where to go after signing in: a path on this site, never another site
/// (`//host` or `https://…` would make the form an open redirect).
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn decode(text: &str) -> String {
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
            (b'+', _) => {
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
            HeaderValue::from_static("theme=dark; tledger_session=tl_cookie"),
        );
        assert_eq!(token_of(&headers).as_deref(), Some("tl_cookie"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tl_header"),
        );
        assert_eq!(token_of(&headers).as_deref(), Some("tl_header"));
    }

    #[test]
    fn a_token_survives_the_cookie_round_trip() {
        let cookie_line = session_cookie("odd token;=%");
        assert!(cookie_line.ends_with("; HttpOnly; Secure; SameSite=Strict; Path=/"));
        let value = cookie_line.split(';').next().expect("pair").to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&value).expect("ascii"),
        );
        assert_eq!(token_of(&headers).as_deref(), Some("odd token;=%"));
    }

    #[test]
    fn it_should_not_send_anyone_to_another_site_after_signing_in() {
        assert_eq!(local_path(Some("/?unit=dai-loc")), "/?unit=dai-loc");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(None), "/");
    }
}
