//! What every HTTP answer tells a browser, whichever handler made it.
//!
//! Most answers hold personal data (histories, reports for a unit, the
//! access log, receipts, the quarantine, the dashboard's pages and
//! downloads), so no answer is kept by a cache (`Cache-Control: no-store`)
//! unless its handler said otherwise; none may be shown inside another
//! site's frame (`X-Frame-Options: DENY` and `frame-ancestors 'none'`), be
//! sniffed into another type (`X-Content-Type-Options: nosniff`), or give
//! its URL (which can name a person) to another site (`Referrer-Policy:
//! same-origin`, which also keeps the `Origin` of the dashboard's own forms,
//! see [`crate::web::dashboard::session::sent_from_this_site`]). An answer
//! without a `Content-Security-Policy` of its own (everything but the
//! dashboard's pages, [`crate::web::dashboard::pages::content_security_policy`])
//! gets one that allows nothing.

use axum::http::{header, HeaderValue};
use axum::response::Response;

/// The policy of answers that are not pages: nothing may load or frame them.
const NOTHING: &str = "default-src 'none'; frame-ancestors 'none'";

/// Adds the headers above to `response`, keeping any its handler set.
pub async fn apply(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CONTENT_SECURITY_POLICY, NOTHING),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}
