//! The dashboard's pages over HTTP, without a browser: sign-in and the
//! session cookie, roles and scope, the language switch, the CSV and Excel
//! downloads, and the access record of a person's history.

use crate::support;

use std::io::Read as _;

use serde_json::json;
use support::{nomination, Ledger};
use tledger::access::Role;
use tledger::web::dashboard::view::encode;

const VIEW: &str = "unit=dai-loc&as_of=2011-12-31";

/// A ledger with Quảng Nam, Đại Lộc (one commune), Điện Bàn, one person
/// and one training place enrolled in 2008, funded by the district.
async fn ledger() -> Ledger {
    let ledger = support::spawn_app().await;
    ledger.seed().await;
    for (name, body) in [
        ("nominate", nomination("e-1", "2008-08-01")),
        (
            "enroll",
            json!({"enrollment_id": "e-1", "effective_date": "2008-09-01"}),
        ),
    ] {
        let (status, answer) = ledger.post(name, &body).await;
        assert_eq!(status, 201, "{name}: {answer}");
    }
    ledger.projected().await;
    ledger
}

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

struct Page {
    status: u16,
    location: Option<String>,
    set_cookie: Option<String>,
    content_type: String,
    body: Vec<u8>,
}

impl Page {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn get(ledger: &Ledger, path: &str, auth: Option<(&str, &str)>) -> Page {
    let mut request = client().get(format!("{}{path}", ledger.base));
    if let Some((name, value)) = auth {
        request = request.header(name, value);
    }
    page(request.send().await.expect("HTTP")).await
}

async fn page(response: reqwest::Response) -> Page {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Page {
        status: response.status().as_u16(),
        location: header("location"),
        set_cookie: header("set-cookie"),
        content_type: header("content-type").unwrap_or_default(),
        body: response.bytes().await.expect("body").to_vec(),
    }
}

/// An HTML form's body (`application/x-www-form-urlencoded`).
fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn it_should_send_a_page_without_a_valid_token_to_the_sign_in_form() {
    let ledger = ledger().await;
    let page = get(&ledger, &format!("/?{VIEW}&lang=vi"), None).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some("/sign-in?lang=vi&next=%2F%3Funit%3Ddai-loc%26as_of%3D2011-12-31%26lang%3Dvi")
    );
    let export = get(&ledger, "/exports/standards.csv", None).await;
    assert_eq!(export.status, 303);
    let revoked = get(
        &ledger,
        "/people/o-1",
        Some(("cookie", "tledger_session=tl_not_a_token")),
    )
    .await;
    assert_eq!(revoked.status, 303);
    let form = get(&ledger, "/sign-in?lang=vi&next=%2Fpeople%2Fo-1", None).await;
    assert_eq!(form.status, 200);
    assert!(form.text().contains("name=\"next\" value=\"/people/o-1\""));
    assert!(form.text().contains("Mã truy cập"));
}

#[tokio::test]
async fn an_inspector_signs_in_with_the_form_and_reads_the_district_s_figures() {
    let ledger = ledger().await;
    let inspector = ledger.token(Role::Inspector, None).await;

    let refused = page(
        client()
            .post(format!("{}/sign-in", ledger.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", &ledger.base)
            .body(form(&[
                ("token", "tl_wrong"),
                ("next", "/"),
                ("lang", "en"),
            ]))
            .send()
            .await
            .expect("HTTP"),
    )
    .await;
    assert_eq!(refused.status, 401);
    assert!(refused.text().contains("id=\"sign-in-refused\""));
    assert!(refused.set_cookie.is_none());

    let signed_in = sign_in(&ledger, &inspector, &format!("/?{VIEW}")).await;
    assert_eq!(signed_in.status, 303);
    assert_eq!(
        signed_in.location.as_deref(),
        Some("/?unit=dai-loc&as_of=2011-12-31")
    );
    let cookie = signed_in.set_cookie.expect("a session cookie");
    // The cookie names a session of the server's, never the token itself.
    let session = cookie.split(';').next().expect("the pair").to_owned();
    assert!(!cookie.contains(&inspector), "{cookie}");
    assert!(
        cookie.ends_with("; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=28800"),
        "{cookie}"
    );

    let page = get(&ledger, &format!("/?{VIEW}"), Some(("cookie", &session))).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.content_type.starts_with("text/html"));
    let html = page.text();
    assert!(
        html.contains("<span class=\"big\" id=\"meets-all-rate\">0.00%</span>"),
        "{html}"
    );
    assert!(html.contains("meet all three standards (0 / 1)"));
    assert!(html.contains("<span class=\"big\" id=\"volume-total\">1</span>"));
    assert!(html.contains("<td class=\"n\">4,500,000</td>"));
    assert!(html.contains("<td>2008</td><td>Professional</td><td class=\"n\">1</td>"));
    assert!(
        html.contains("data-unit=\"dai-loc-dai-an\""),
        "the communes below"
    );
    assert!(html.contains("Signed in as inspector-token (inspector)"));
    // An inspector reads: the page offers no command.
    assert!(!html.contains("/v1/commands"));

    let out = page_after_sign_out(&ledger, &session).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/sign-in?lang=en"));
    assert!(out.set_cookie.expect("cleared").contains("Max-Age=0"));
    // Signing out ends the session on the server too: the old cookie no
    // longer opens a page.
    let after = get(&ledger, &format!("/?{VIEW}"), Some(("cookie", &session))).await;
    assert_eq!(after.status, 303);
}

async fn page_after_sign_out(ledger: &Ledger, session: &str) -> Page {
    page(
        client()
            .post(format!("{}/sign-out", ledger.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", &ledger.base)
            .header("cookie", session)
            .body(form(&[("lang", "en")]))
            .send()
            .await
            .expect("HTTP"),
    )
    .await
}

/// The sign-in form sent as a browser sends it from the sign-in page.
async fn sign_in(ledger: &Ledger, token: &str, next: &str) -> Page {
    page(
        client()
            .post(format!("{}/sign-in", ledger.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", &ledger.base)
            .body(form(&[("token", token), ("next", next), ("lang", "en")]))
            .send()
            .await
            .expect("HTTP"),
    )
    .await
}

/// The `tledger_session=<id>` pair of a sign-in's cookie.
async fn session_of(ledger: &Ledger, token: &str) -> String {
    let signed_in = sign_in(ledger, token, "/").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text());
    signed_in
        .set_cookie
        .expect("a session cookie")
        .split(';')
        .next()
        .expect("the pair")
        .to_owned()
}

#[tokio::test]
async fn it_should_send_no_one_to_another_site_after_signing_in() {
    let ledger = ledger().await;
    let inspector = ledger.token(Role::Inspector, None).await;
    for next in [
        // A tab (and CR, LF) is dropped by browsers: `/\t/host` is `//host`.
        "/\t/evil.example",
        "/\r\n/evil.example",
        "/%09/evil.example",
        "/%0a/evil.example",
        "//evil.example",
        "/\\evil.example",
        "/%5Cevil.example",
        "/%2F/evil.example",
        "https://evil.example",
        "javascript:alert(1)",
        "evil.example",
        "",
    ] {
        let signed_in = sign_in(&ledger, &inspector, next).await;
        assert_eq!(signed_in.status, 303, "{next:?}: {}", signed_in.text());
        assert_eq!(signed_in.location.as_deref(), Some("/"), "{next:?}");
        let form = get(&ledger, &format!("/sign-in?next={}", encode(next)), None).await;
        assert!(
            form.text().contains("name=\"next\" value=\"/\""),
            "{next:?}: {}",
            form.text()
        );
    }
    // A path of this site is kept, query and all.
    let signed_in = sign_in(&ledger, &inspector, "/people/o-1?lang=vi").await;
    assert_eq!(signed_in.location.as_deref(), Some("/people/o-1?lang=vi"));
}

#[tokio::test]
async fn a_form_sent_from_another_site_signs_no_one_in_or_out() {
    let ledger = ledger().await;
    let inspector = ledger.token(Role::Inspector, None).await;
    let post = |path: &str, origin: Option<(&str, &str)>, body: String| {
        let mut request = client()
            .post(format!("{}{path}", ledger.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((name, value)) = origin {
            request = request.header(name, value);
        }
        async move { page(request.send().await.expect("HTTP")).await }
    };
    let fields = form(&[("token", &inspector), ("next", "/"), ("lang", "en")]);
    for origin in [
        Some(("origin", "http://evil.example")),
        Some(("origin", "null")),
        Some(("referer", "http://evil.example/sign-in")),
        // Neither: refused (a browser always sends one of them with a form).
        None,
    ] {
        let refused = post("/sign-in", origin, fields.clone()).await;
        assert_eq!(refused.status, 403, "{origin:?}: {}", refused.text());
        assert!(refused.set_cookie.is_none(), "{origin:?}");
        assert!(refused.text().contains("id=\"error\""), "{origin:?}");
    }
    let session = session_of(&ledger, &inspector).await;
    // A cross-site sign-out neither clears the cookie nor ends the session.
    let signed_out = post(
        "/sign-out",
        Some(("origin", "http://evil.example")),
        form(&[("lang", "en")]),
    )
    .await;
    assert_eq!(signed_out.status, 403);
    assert!(signed_out.set_cookie.is_none());
    // The page's own Referer (no Origin) is accepted.
    let referer = format!("{}/sign-in?lang=en", ledger.base);
    let accepted = post("/sign-in", Some(("referer", &referer)), fields).await;
    assert_eq!(accepted.status, 303, "{}", accepted.text());
    let still = get(&ledger, "/", Some(("cookie", &session))).await;
    assert_eq!(still.status, 200);
}

#[tokio::test]
async fn the_session_cookie_is_a_server_session_that_expires_and_ends_with_its_token() {
    let ledger = ledger().await;
    let inspector = ledger.token(Role::Inspector, None).await;
    let session = session_of(&ledger, &inspector).await;
    let id = session
        .strip_prefix("tledger_session=")
        .expect("the cookie's name");
    assert_ne!(id, inspector);
    assert_eq!(id.len(), 64, "32 random bytes in hex: {id}");
    assert_eq!(
        get(&ledger, "/", Some(("cookie", &session))).await.status,
        200
    );
    // The raw token in the cookie, or an id the server never gave, is no
    // session.
    for forged in [
        format!("tledger_session={inspector}"),
        format!("tledger_session={}", "ab".repeat(32)),
    ] {
        let page = get(&ledger, "/", Some(("cookie", &forged))).await;
        assert_eq!(page.status, 303, "{forged}");
    }
    // The database keeps only a hash of the id, with its expiry.
    let (stored, hours): (i64, f64) = sqlx::query_as(
        "SELECT count(*), max(EXTRACT(EPOCH FROM expires_at - created_at))::float8 / 3600 \
         FROM dashboard_sessions",
    )
    .fetch_one(ledger.store.pool())
    .await
    .expect("sessions");
    assert_eq!((stored, hours), (1, 8.0));
    let raw: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dashboard_sessions WHERE encode(session_hash, 'hex') = $1",
    )
    .bind(id)
    .fetch_one(ledger.store.pool())
    .await
    .expect("sessions");
    assert_eq!(raw, 0, "the id itself is not stored");

    // A session opened 8 hours and a second ago has expired.
    sqlx::query(
        "UPDATE dashboard_sessions SET created_at = created_at - interval '8 hours 1 second', \
         expires_at = expires_at - interval '8 hours 1 second'",
    )
    .execute(ledger.store.pool())
    .await
    .expect("expire");
    assert_eq!(
        get(&ledger, "/", Some(("cookie", &session))).await.status,
        303
    );

    // Revoking the token ends its sessions.
    let fresh = session_of(&ledger, &inspector).await;
    assert_eq!(
        get(&ledger, "/", Some(("cookie", &fresh))).await.status,
        200
    );
    tledger::access::Access::new(ledger.store.clone())
        .revoke("inspector-token")
        .await
        .expect("revoke");
    assert_eq!(
        get(&ledger, "/", Some(("cookie", &fresh))).await.status,
        303
    );
}

#[tokio::test]
async fn pages_and_personal_answers_are_never_framed_or_cached() {
    let ledger = ledger().await;
    let admin = bearer(&ledger.admin);
    let auth = Some(("authorization", admin.as_str()));
    for path in [
        format!("/?{VIEW}"),
        "/people/o-1".to_owned(),
        "/sign-in".to_owned(),
        format!("/exports/standards.csv?{VIEW}"),
        "/v1/officials/o-1/history".to_owned(),
        "/v1/enrollments/e-1/history".to_owned(),
        "/v1/reports/standards?unit=dai-loc&as_of=2011-12-31".to_owned(),
        "/v1/access-log".to_owned(),
        "/v1/quarantine".to_owned(),
        "/v1/receipts?source=%2Fs&id=1".to_owned(),
    ] {
        let response = client()
            .get(format!("{}{path}", ledger.base))
            .header("authorization", &admin)
            .send()
            .await
            .expect("HTTP");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("cache-control"), "no-store", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        let policy = header("content-security-policy");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
    }
    let page = get(&ledger, &format!("/?{VIEW}"), auth).await;
    assert_eq!(page.status, 200);
    let response = client()
        .get(format!("{}/?{VIEW}", ledger.base))
        .header("authorization", &admin)
        .send()
        .await
        .expect("HTTP");
    let policy = response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(policy.starts_with("default-src 'self'; "), "{policy}");
    assert!(policy.contains("script-src 'none'"), "{policy}");
    // The page's one style block is allowed by its hash, nothing inline else.
    assert!(policy.contains("style-src 'sha256-"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let html = response.text().await.expect("HTML");
    assert!(!html.contains(" style=\""), "no style attributes");
}

#[tokio::test]
async fn a_unit_officer_sees_its_own_subtree_and_a_403_page_outside_it() {
    let ledger = ledger().await;
    let dien_ban = ledger.token(Role::UnitOfficer, Some("dien-ban")).await;
    let auth = bearer(&dien_ban);

    let outside = get(
        &ledger,
        &format!("/?{VIEW}"),
        Some(("authorization", &auth)),
    )
    .await;
    assert_eq!(outside.status, 403);
    assert!(outside.text().contains("Not allowed"));
    assert!(outside
        .text()
        .contains("outside this token&#39;s scope (dien-ban)"));
    let person = get(&ledger, "/people/o-1", Some(("authorization", &auth))).await;
    assert_eq!(person.status, 403);
    let export = get(
        &ledger,
        &format!("/exports/alignment.csv?{VIEW}"),
        Some(("authorization", &auth)),
    )
    .await;
    assert_eq!(export.status, 403);

    // Without a unit the officer starts at its own, and cannot go above it.
    let own = get(
        &ledger,
        "/?as_of=2011-12-31",
        Some(("authorization", &auth)),
    )
    .await;
    assert_eq!(own.status, 200);
    let html = own.text();
    assert!(
        html.contains("<li class=\"current\"><a data-unit=\"dien-ban\""),
        "{html}"
    );
    assert!(!html.contains("data-unit=\"quang-nam\""));
    assert!(!html.contains("Whole country"));

    let dai_loc = ledger.token(Role::UnitOfficer, Some("dai-loc")).await;
    let inside = get(
        &ledger,
        "/people/o-1",
        Some(("authorization", &bearer(&dai_loc))),
    )
    .await;
    assert_eq!(inside.status, 200);

    let publisher = ledger.token(Role::Publisher, None).await;
    let refused = get(&ledger, "/", Some(("authorization", &bearer(&publisher)))).await;
    assert_eq!(refused.status, 403);
}

#[tokio::test]
async fn the_language_switch_gives_vietnamese_words_numbers_and_dates() {
    let ledger = ledger().await;
    let admin = bearer(&ledger.admin);
    let en = get(
        &ledger,
        &format!("/?{VIEW}"),
        Some(("authorization", &admin)),
    )
    .await;
    let html = en.text();
    assert!(html.contains("<html lang=\"en\">"));
    let switch = "id=\"switch-language\" href=\"/?unit=dai-loc&amp;as_of=2011-12-31&amp;from=2007-01-01&amp;to=2011-12-31&amp;lang=vi\"";
    assert!(html.contains(switch), "{html}");

    let vi = get(
        &ledger,
        "/?unit=dai-loc&as_of=2011-12-31&from=2007-01-01&to=2011-12-31&lang=vi",
        Some(("authorization", &admin)),
    )
    .await;
    assert_eq!(vi.status, 200);
    let html = vi.text();
    assert!(html.contains("<html lang=\"vi\">"));
    assert!(html.contains("Đạt chuẩn tính đến 31/12/2011"));
    assert!(html.contains(
        "<td>Đạt chuẩn cả ba tiêu chuẩn</td><td class=\"n\">0 / 1</td><td class=\"n\">0,00%</td>"
    ));
    assert!(html.contains("<td>Huyện</td><td class=\"n\">4.500.000</td>"));
    assert!(html.contains("Lượt đào tạo, bồi dưỡng 01/01/2007 – 31/12/2011"));
    assert!(!html.contains("Meet all three standards"));
    // The links keep the language.
    assert!(html.contains("/exports/standards.csv?unit=dai-loc&amp;as_of=2011-12-31&amp;from=2007-01-01&amp;to=2011-12-31&amp;lang=vi"));
}

#[tokio::test]
async fn every_table_downloads_as_csv_and_as_an_excel_workbook_with_its_figures() {
    let ledger = ledger().await;
    let admin = bearer(&ledger.admin);
    let auth = Some(("authorization", admin.as_str()));

    let standards = get(&ledger, &format!("/exports/standards.csv?{VIEW}"), auth).await;
    assert_eq!(standards.status, 200);
    assert_eq!(standards.content_type, "text/csv; charset=utf-8");
    assert_eq!(
        standards.text(),
        "figure,count,of,rate\nmeets_all_standards,0,1,0.0\nprofessional_college_plus,0,1,0.0\n\
         key_leaders_college_plus,0,1,0.0\npolitical_theory_intermediate_plus,0,1,0.0\n"
    );
    let volume = get(&ledger, &format!("/exports/volume.csv?{VIEW}"), auth)
        .await
        .text();
    assert!(volume.starts_with("year,track,count\n"));
    assert!(volume.contains("\n2008,professional,1\n"));
    assert!(volume.contains("\n2009,professional,0\n"));
    let funding = get(&ledger, &format!("/exports/funding.csv?{VIEW}"), auth)
        .await
        .text();
    assert_eq!(
        funding,
        "source,amount_vnd\nprovince,0\ndistrict,4500000\nagency,0\nself,0\nother,0\n"
    );
    let trend = get(&ledger, &format!("/exports/trend.csv?{VIEW}"), auth)
        .await
        .text();
    assert!(trend.contains("\n2006-12-31,0,1,0.0\n"), "{trend}");
    assert!(trend.contains("\n2011-12-31,0,1,0.0\n"));
    let alignment = get(&ledger, &format!("/exports/alignment.csv?{VIEW}"), auth)
        .await
        .text();
    assert_eq!(
        alignment,
        "list,enrollment_id,official_id,post,program_specialty,planned_specialty,specialty,reason\n\
         training_outside_plan,e-1,o-1,,public_admin,,,not_in_plan\n"
    );

    let workbook = get(
        &ledger,
        &format!("/exports/funding.xlsx?{VIEW}&lang=vi"),
        auth,
    )
    .await;
    assert_eq!(workbook.status, 200);
    assert_eq!(
        workbook.content_type,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(workbook.body)).expect("an xlsx is a zip");
    let mut sheet = String::new();
    archive
        .by_name("xl/worksheets/sheet1.xml")
        .expect("the sheet")
        .read_to_string(&mut sheet)
        .expect("XML");
    assert!(sheet.contains("<v>4500000</v>"), "{sheet}");
    let mut strings = String::new();
    archive
        .by_name("xl/sharedStrings.xml")
        .expect("the strings")
        .read_to_string(&mut strings)
        .expect("XML");
    assert!(
        strings.contains("Số tiền (đồng)"),
        "the labels in the page's language"
    );
    assert!(strings.contains("Huyện"));

    let history = get(&ledger, "/people/o-1/history.csv", auth).await.text();
    assert!(history.starts_with(
        "position,effective_date,enrollment_id,type,actor,publisher,recorded_at,retracted_at_position,data\n"
    ));
    assert!(history.contains(",2005-01-01,,official.registered.v1,admin,/commands/admin,"));
    assert!(history.contains(",2008-09-01,e-1,training.enrolled.v1,admin,/commands/admin,"));

    let unknown = get(&ledger, "/exports/salaries.csv", auth).await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn each_view_of_a_person_s_history_is_an_access_record() {
    let ledger = ledger().await;
    let inspector = ledger.token(Role::Inspector, None).await;
    let path = "/people/o-1?unit=dai-loc&as_of=2011-12-31&lang=en";
    let session = session_of(&ledger, &inspector).await;
    let page = get(&ledger, path, Some(("cookie", &session))).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("History of Nguyễn Văn A (o-1)"));
    assert!(html.contains("Registered"));
    assert!(
        html.contains("Nominated for training"),
        "the person's training places too"
    );
    assert!(html.contains("(training place e-1)"));
    assert!(html.contains("by admin through /commands/admin"));

    let records: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT role, path, official_id FROM access_log WHERE official_id IS NOT NULL ORDER BY access_id",
    )
    .fetch_all(ledger.store.pool())
    .await
    .expect("access log");
    assert_eq!(
        records,
        vec![(
            "inspector".to_owned(),
            path.to_owned(),
            Some("o-1".to_owned())
        )]
    );

    let missing = get(
        &ledger,
        "/people/o-404",
        Some(("authorization", &bearer(&inspector))),
    )
    .await;
    assert_eq!(missing.status, 404);
}
