//! The dashboard's HTML: plain server-rendered pages, a little inline CSS,
//! inline SVG charts, forms for the choices. Every word comes from the
//! message catalogues ([`super::i18n`]); every link carries the view
//! ([`super::view`]).

use std::fmt::Write as _;

use tledger_domain::ErrorCode;
use tledger_events::chain::format_instant;
use tledger_events::checkpoint::Checkpoint;
use tledger_events::unit_tree::UnitTree;
use tledger_projections::reports::{AlignmentReport, StandardsReport};

use super::charts::{trend_chart, volume_chart};
use super::exports::{self, Cell, Table};
use super::figures::{headline, Trend, Volume};
use super::i18n::{code, Lang, Words};
use super::timeline::Timeline;
use super::verification::Snapshot;
use super::view::{encode, View};
use crate::access::Caller;

/// Escapes text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#f6f7f9}\
header{display:flex;gap:1em;align-items:center;justify-content:space-between;background:#123;color:#fff;padding:.6em 1em}\
header a,header button{color:#fff}header form{display:inline}header button{background:none;border:1px solid #fff;border-radius:3px;cursor:pointer}\
main{display:grid;grid-template-columns:16em 1fr;gap:1em;padding:1em}\
section,nav.picker{background:#fff;border:1px solid #dde;border-radius:6px;padding:.8em 1em;margin-bottom:1em}\
h1{font-size:1.2em;margin:0}h2{font-size:1.05em;margin:.2em 0 .6em}\
table{border-collapse:collapse;width:100%;font-size:.9em}th,td{border-bottom:1px solid #eee;padding:.25em .4em;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
.big{font-size:2.2em;font-weight:bold;color:#1f77b4}.muted{color:#667;font-size:.85em}\
.chart{width:100%;max-width:640px;height:auto}.downloads a{margin-right:.6em;font-size:.85em}\
ol.path,ul.children{padding-left:1.1em;margin:.3em 0}ol.path li.current{font-weight:bold}\
ol.timeline{list-style:none;padding:0}ol.timeline li{border-left:3px solid #1f77b4;padding:.2em .8em;margin:.5em 0}\
ol.timeline li.retracted{border-color:#d62728;opacity:.75}code{font-size:.8em;word-break:break-all}\
.ok{color:#1a7f37;font-weight:bold}.bad{color:#d62728;font-weight:bold}label{display:block;margin:.3em 0}\
main.single{display:block}main.narrow{max-width:30em}main.medium{max-width:40em}";

/// The pages' `Content-Security-Policy`: nothing from elsewhere, no script,
/// no frame around them (`frame-ancestors 'none'`), forms posted only here,
/// and of inline styles only [`STYLE`] (by its hash; the pages have no
/// `style` attributes). Inline SVG charts need nothing more.
pub fn content_security_policy() -> &'static str {
    static POLICY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE));
        format!(
            "default-src 'self'; script-src 'none'; style-src 'sha256-{hash}'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
    })
}

/// The page around a body: header with the language switch and sign-out.
fn layout(
    words: &Words,
    title: &str,
    caller: Option<&Caller>,
    switch_href: Option<&str>,
    body: &str,
) -> String {
    let mut out = String::with_capacity(body.len() + 4096);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><header><h1>{}</h1><div>",
        code(words.lang),
        esc(title),
        esc(&words.t("page.title"))
    );
    if let Some(caller) = caller {
        let _ = write!(
            out,
            "<span class=\"who\">{}</span> ",
            esc(&words.f(
                "nav.signed_in",
                &[
                    ("name", &caller.name),
                    ("role", &words.code("role", caller.role.as_str()))
                ]
            ))
        );
    }
    if let Some(href) = switch_href {
        let _ = write!(
            out,
            "<a id=\"switch-language\" href=\"{}\">{}</a> ",
            esc(href),
            esc(&words.t("nav.other_language"))
        );
    }
    if caller.is_some() {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/sign-out\"><input type=\"hidden\" name=\"lang\" value=\"{}\">\
             <button id=\"sign-out\" type=\"submit\">{}</button></form>",
            code(words.lang),
            esc(&words.t("nav.sign_out"))
        );
    }
    out.push_str("</div></header>");
    out.push_str(body);
    out.push_str("</body></html>");
    out
}

fn other(lang: Lang) -> Lang {
    match lang {
        Lang::En => Lang::Vi,
        Lang::Vi => Lang::En,
    }
}

/// The unit picker: the path from the top to the chosen unit, and the
/// units directly below it.
#[derive(Clone, Debug, Default)]
pub struct Picker {
    /// (id, name) from the top down; the last is the chosen unit.
    pub path: Vec<(String, String)>,
    pub children: Vec<(String, String)>,
    /// A unit officer cannot go above its own unit.
    pub whole_country: bool,
}

impl Picker {
    pub fn new(hierarchy: &UnitTree, view: &View, root: Option<&str>) -> Self {
        let date = view.as_of;
        let named = |u: &str| {
            (
                u.to_owned(),
                hierarchy.name_on(u, date).unwrap_or(u).to_owned(),
            )
        };
        let mut path: Vec<&str> = view
            .unit
            .as_deref()
            .map(|u| hierarchy.path_on(u, date))
            .unwrap_or_default();
        if let Some(root) = root {
            // Above the officer's own unit is not theirs to open.
            if let Some(at) = path.iter().position(|u| *u == root) {
                path.drain(..at);
            }
        }
        Self {
            path: path.into_iter().map(named).collect(),
            children: hierarchy
                .children_on(view.unit.as_deref(), date)
                .into_iter()
                .map(named)
                .collect(),
            whole_country: root.is_none(),
        }
    }
}

/// The ledger's head, latest checkpoint and verification.
#[derive(Clone, Debug)]
pub struct LedgerStatus {
    pub head: u64,
    pub checkpoint: Option<Checkpoint>,
    pub verification: Snapshot,
}

/// Everything the dashboard page shows.
pub struct Dashboard<'a> {
    pub words: Words,
    pub view: &'a View,
    pub caller: &'a Caller,
    pub picker: Picker,
    pub cut: u64,
    pub standards: &'a StandardsReport,
    pub trend: &'a Trend,
    pub volume: &'a Volume,
    pub alignment: &'a AlignmentReport,
    pub ledger: LedgerStatus,
}

fn downloads(out: &mut String, words: &Words, view: &View, table: &str) {
    let query = view.query();
    let _ = write!(
        out,
        "<p class=\"downloads\"><a id=\"{table}-csv\" href=\"/exports/{table}.csv?{q}\" download>{}</a>\
         <a id=\"{table}-xlsx\" href=\"/exports/{table}.xlsx?{q}\" download>{}</a></p>",
        esc(&words.t("export.csv")),
        esc(&words.t("export.xlsx")),
        q = esc(&query)
    );
}

/// A table as HTML; a person cell links to the person's timeline.
fn html_table(out: &mut String, words: &Words, view: &View, table: &Table) {
    let _ = write!(out, "<table id=\"table-{}\"><thead><tr>", table.name);
    for column in &table.columns {
        let _ = write!(out, "<th>{}</th>", esc(&Table::label(words, column)));
    }
    out.push_str("</tr></thead><tbody>");
    for row in &table.rows {
        out.push_str("<tr>");
        for cell in row {
            match cell {
                Cell::Person(id) => {
                    let _ = write!(
                        out,
                        "<td><a class=\"person\" href=\"{}\">{}</a></td>",
                        esc(&view.href(&format!("/people/{}", encode(id)))),
                        esc(id)
                    );
                }
                Cell::Count(_) | Cell::Money(_) | Cell::Rate(_) => {
                    let _ = write!(out, "<td class=\"n\">{}</td>", esc(&cell.shown(words)));
                }
                other => {
                    let _ = write!(out, "<td>{}</td>", esc(&other.shown(words)));
                }
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn picker(out: &mut String, d: &Dashboard<'_>) {
    let words = &d.words;
    let view = d.view;
    let _ = write!(
        out,
        "<nav class=\"picker\"><h2>{}</h2><ol class=\"path\">",
        esc(&words.t("picker.heading"))
    );
    if d.picker.whole_country {
        let current = if view.unit.is_none() {
            " class=\"current\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<li{current}><a data-unit=\"\" href=\"{}\">{}</a></li>",
            esc(&view.with_unit(None).href("/")),
            esc(&words.t("picker.whole_country"))
        );
    }
    let last = d.picker.path.len().saturating_sub(1);
    for (i, (id, name)) in d.picker.path.iter().enumerate() {
        let current = if i == last { " class=\"current\"" } else { "" };
        let _ = write!(
            out,
            "<li{current}><a data-unit=\"{}\" href=\"{}\">{}</a></li>",
            esc(id),
            esc(&view.with_unit(Some(id)).href("/")),
            esc(name)
        );
    }
    out.push_str("</ol>");
    if !d.picker.children.is_empty() {
        let _ = write!(
            out,
            "<p class=\"muted\">{}</p><ul class=\"children\">",
            esc(&words.t("picker.below"))
        );
        for (id, name) in &d.picker.children {
            let _ = write!(
                out,
                "<li><a data-unit=\"{}\" href=\"{}\">{}</a></li>",
                esc(id),
                esc(&view.with_unit(Some(id)).href("/")),
                esc(name)
            );
        }
        out.push_str("</ul>");
    }
    let _ = write!(
        out,
        "<form method=\"get\" action=\"/\">{}<input type=\"hidden\" name=\"lang\" value=\"{}\">\
         <label>{} <input type=\"date\" name=\"as_of\" value=\"{}\"></label>\
         <label>{} <input type=\"date\" name=\"from\" value=\"{}\"></label>\
         <label>{} <input type=\"date\" name=\"to\" value=\"{}\"></label>\
         <button type=\"submit\">{}</button></form></nav>",
        view.unit.as_deref().map_or(String::new(), |u| format!(
            "<input type=\"hidden\" name=\"unit\" value=\"{}\">",
            esc(u)
        )),
        code(view.lang),
        esc(&words.t("picker.as_of")),
        view.as_of,
        esc(&words.t("picker.from")),
        view.from,
        esc(&words.t("picker.to")),
        view.to,
        esc(&words.t("picker.show")),
    );
}

fn standards_panel(out: &mut String, d: &Dashboard<'_>) {
    let words = &d.words;
    let s = d.standards;
    let meets = s.meets_all_standards;
    let _ = write!(
        out,
        "<section id=\"standards\"><h2>{}</h2><p><span class=\"big\" id=\"meets-all-rate\">{}</span> \
         <span id=\"meets-all-count\">{}</span></p><p class=\"muted\">{} · {}</p>",
        esc(&words.f("standards.heading", &[("date", &words.date(s.as_of))])),
        esc(&words.percent(meets.rate())),
        esc(&words.f(
            "standards.meets_all",
            &[
                ("count", &words.number(meets.count)),
                ("of", &words.number(meets.of))
            ]
        )),
        esc(&words.f("standards.population", &[("n", &words.number(s.population))])),
        esc(&words.f("standards.ruleset", &[("name", &s.ruleset)])),
    );
    let _ = write!(
        out,
        "<table id=\"table-standards\"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(&Table::label(words, "figure")),
        esc(&Table::label(words, "count_of")),
        esc(&Table::label(words, "rate"))
    );
    for (name, figure) in s.figures() {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{} / {}</td><td class=\"n\">{}</td></tr>",
            esc(&words.code("figure", name)),
            words.number(figure.count),
            words.number(figure.of),
            esc(&words.percent(figure.rate()))
        );
    }
    out.push_str("</tbody></table>");
    downloads(out, words, d.view, "standards");
    out.push_str("</section>");
}

fn trend_panel(out: &mut String, d: &Dashboard<'_>) {
    let words = &d.words;
    let (first, last) = (
        d.trend.first().map(|(date, _)| *date),
        d.trend.last().map(|(date, _)| *date),
    );
    let heading = match (first, last) {
        (Some(first), Some(last)) => words.f(
            "trend.heading",
            &[("from", &words.date(first)), ("to", &words.date(last))],
        ),
        _ => words.t("trend.heading_empty"),
    };
    let _ = write!(out, "<section id=\"trend\"><h2>{}</h2>", esc(&heading));
    out.push_str(&trend_chart(d.trend, words, &heading));
    let _ = write!(
        out,
        "<details><summary>{}</summary>",
        esc(&words.t("details.table"))
    );
    html_table(out, words, d.view, &exports::trend_table(d.trend));
    out.push_str("</details>");
    downloads(out, words, d.view, "trend");
    out.push_str("</section>");
}

fn volume_panel(out: &mut String, d: &Dashboard<'_>) {
    let words = &d.words;
    let window = &d.volume.window;
    let heading = words.f(
        "volume.heading",
        &[
            ("from", &words.date(window.from)),
            ("to", &words.date(window.to)),
        ],
    );
    let parts: Vec<String> = headline(window)
        .iter()
        .map(|(key, n)| {
            words.f(
                "volume.part",
                &[
                    ("n", &words.number(*n)),
                    ("what", &words.t(&format!("headline.{key}"))),
                ],
            )
        })
        .collect();
    let _ = write!(
        out,
        "<section id=\"volume\"><h2>{}</h2><p><span class=\"big\" id=\"volume-total\">{}</span> {}</p><p class=\"muted\">= {}</p>",
        esc(&heading),
        words.number(window.total()),
        esc(&words.t("volume.total")),
        esc(&parts.join(" + ")),
    );
    out.push_str(&volume_chart(d.volume, words, &heading));
    let _ = write!(
        out,
        "<details><summary>{}</summary>",
        esc(&words.t("details.table"))
    );
    html_table(out, words, d.view, &exports::volume_table(d.volume));
    out.push_str("</details>");
    downloads(out, words, d.view, "volume");
    let _ = write!(out, "<h2>{}</h2>", esc(&words.t("funding.heading")));
    html_table(out, words, d.view, &exports::funding_table(d.volume));
    downloads(out, words, d.view, "funding");
    out.push_str("</section>");
}

fn alignment_panel(out: &mut String, d: &Dashboard<'_>) {
    let words = &d.words;
    let a = d.alignment;
    let _ = write!(
        out,
        "<section id=\"alignment\"><h2>{}</h2><p class=\"muted\">{}</p>",
        esc(&words.f("alignment.heading", &[("date", &words.date(a.as_of))])),
        esc(&words.f(
            "alignment.counts",
            &[
                (
                    "outside",
                    &words.number(a.training_outside_plan.len() as u64)
                ),
                ("misassigned", &words.number(a.misassigned.len() as u64)),
            ]
        ))
    );
    html_table(out, words, d.view, &exports::alignment_table(a));
    downloads(out, words, d.view, "alignment");
    out.push_str("</section>");
}

fn ledger_panel(out: &mut String, d: &Dashboard<'_>) {
    let words = &d.words;
    let l = &d.ledger;
    let _ = write!(
        out,
        "<section id=\"ledger\"><h2>{}</h2><p>{}</p>",
        esc(&words.t("ledger.heading")),
        esc(&words.f(
            "ledger.head",
            &[
                ("head", &words.number(l.head)),
                ("cut", &words.number(d.cut))
            ]
        ))
    );
    let checkpoint = match &l.checkpoint {
        Some(c) => words.f(
            "ledger.checkpoint",
            &[
                ("position", &words.number(c.position)),
                ("time", &c.time),
                ("key", &c.key_id),
            ],
        ),
        None => words.t("ledger.no_checkpoint"),
    };
    let _ = write!(out, "<p id=\"checkpoint\">{}</p>", esc(&checkpoint));
    let v = &l.verification;
    let (class, text) = match (&v.last, v.has_key) {
        (_, false) => ("muted", words.t("ledger.no_key")),
        (None, true) => ("muted", words.t("ledger.running")),
        (Some(checked), true) => {
            let at = words.instant(checked.at);
            match &checked.outcome {
                Ok(found) => match &found.first_bad {
                    None => (
                        "ok",
                        words.f(
                            "ledger.passed",
                            &[
                                ("time", &at),
                                ("events", &words.number(found.events)),
                                ("checkpoints", &words.number(found.checkpoints)),
                            ],
                        ),
                    ),
                    Some(bad) => (
                        "bad",
                        words.f(
                            "ledger.failed",
                            &[
                                ("time", &at),
                                ("position", &words.number(bad.position)),
                                ("reason", &bad.reason),
                            ],
                        ),
                    ),
                },
                Err(reason) => (
                    "bad",
                    words.f("ledger.error", &[("time", &at), ("reason", reason)]),
                ),
            }
        }
    };
    let _ = write!(
        out,
        "<p id=\"verification\" class=\"{class}\">{}</p><p class=\"muted\">{}</p></section>",
        esc(&text),
        esc(&words.t("ledger.how"))
    );
}

pub fn dashboard_page(d: &Dashboard<'_>) -> String {
    let words = &d.words;
    let mut body = String::with_capacity(64 * 1024);
    body.push_str("<main>");
    picker(&mut body, d);
    body.push_str("<div>");
    standards_panel(&mut body, d);
    trend_panel(&mut body, d);
    volume_panel(&mut body, d);
    alignment_panel(&mut body, d);
    ledger_panel(&mut body, d);
    body.push_str("</div></main>");
    let unit_name = d
        .picker
        .path
        .last()
        .map_or_else(|| words.t("picker.whole_country"), |(_, name)| name.clone());
    let title = words.f("page.unit_title", &[("unit", &unit_name)]);
    let switch = d.view.with_lang(other(words.lang)).href("/");
    layout(words, &title, Some(d.caller), Some(&switch), &body)
}

pub fn person_page(words: &Words, view: &View, caller: &Caller, timeline: &Timeline) -> String {
    let history = &timeline.person;
    let name = timeline.name().unwrap_or_else(|| history.id.clone());
    let heading = words.f("person.heading", &[("name", &name), ("id", &history.id)]);
    let mut body = String::with_capacity(16 * 1024);
    let path = format!("/people/{}", encode(&history.id));
    let _ = write!(
        body,
        "<main class=\"single\"><section id=\"person\"><p><a id=\"back\" href=\"{}\">{}</a></p><h2>{}</h2>\
         <p class=\"muted\">{}</p><p class=\"downloads\"><a id=\"history-csv\" href=\"{path}/history.csv?{q}\" download>{}</a>\
         <a id=\"history-xlsx\" href=\"{path}/history.xlsx?{q}\" download>{}</a></p><ol class=\"timeline\">",
        esc(&view.href("/")),
        esc(&words.t("person.back")),
        esc(&heading),
        esc(&words.t("person.logged")),
        esc(&words.t("export.csv")),
        esc(&words.t("export.xlsx")),
        q = esc(&view.query()),
    );
    for moment in timeline.moments() {
        let entry = moment.entry;
        let f = &entry.fact;
        let about = moment.enrollment_id.map_or(String::new(), |id| {
            format!(
                " <span class=\"muted\">({})</span>",
                esc(&words.f("person.place", &[("id", id)]))
            )
        });
        let class = if entry.retracted_by.is_some() {
            " class=\"retracted\""
        } else {
            ""
        };
        let _ = write!(
            body,
            "<li{class}><strong>{}</strong> — {}{about}<br><span class=\"muted\">{}</span><br><code>{}</code>",
            esc(&words.date(f.effective_date.into())),
            esc(&words.code("fact", &f.event_type)),
            esc(&words.f(
                "person.recorded",
                &[
                    ("time", &words.instant(f.recorded_at)),
                    ("actor", &f.actor),
                    ("publisher", &f.publisher),
                    ("position", &words.number(f.position)),
                ]
            )),
            esc(&f.data.to_string()),
        );
        if let Some(r) = &entry.retracted_by {
            let _ = write!(
                body,
                "<br><span class=\"bad\">{}</span>",
                esc(&words.f(
                    "person.retracted",
                    &[
                        ("position", &words.number(r.position)),
                        ("actor", &r.actor),
                        ("time", &format_instant(r.recorded_at)),
                        ("reason", &r.reason),
                    ]
                ))
            );
        }
        body.push_str("</li>");
    }
    body.push_str("</ol></section></main>");
    let switch = view.with_lang(other(words.lang)).href(&path);
    layout(words, &heading, Some(caller), Some(&switch), &body)
}

pub fn sign_in_page(words: &Words, next: &str, refused: bool) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<main class=\"single narrow\"><section><h2>{}</h2>",
        esc(&words.t("signin.heading"))
    );
    if refused {
        let _ = write!(
            body,
            "<p class=\"bad\" id=\"sign-in-refused\">{}</p>",
            esc(&words.t("signin.invalid"))
        );
    }
    let _ = write!(
        body,
        "<p class=\"muted\">{}</p><form method=\"post\" action=\"/sign-in\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\"><input type=\"hidden\" name=\"lang\" value=\"{}\">\
         <label>{} <input id=\"token\" type=\"password\" name=\"token\" autocomplete=\"off\" required></label>\
         <button id=\"sign-in\" type=\"submit\">{}</button></form></section></main>",
        esc(&words.t("signin.hint")),
        esc(next),
        code(words.lang),
        esc(&words.t("signin.token")),
        esc(&words.t("signin.submit")),
    );
    let switch = format!(
        "/sign-in?lang={}&next={}",
        code(other(words.lang)),
        encode(next)
    );
    layout(
        words,
        &words.t("signin.heading"),
        None,
        Some(&switch),
        &body,
    )
}

pub fn error_page(words: &Words, code: ErrorCode, detail: &str) -> String {
    let heading = words.code("error", code.as_str());
    let body = format!(
        "<main class=\"single medium\"><section id=\"error\"><h2>{}</h2><p>{}</p>\
         <p class=\"muted\">{}</p><p><a href=\"/?lang={}\">{}</a></p></section></main>",
        esc(&heading),
        esc(&words.code("error_hint", code.as_str())),
        esc(detail),
        super::i18n::code(words.lang),
        esc(&words.t("error.back"))
    );
    layout(words, &heading, None, None, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_the_style_block_the_pages_carry() {
        let page = error_page(&Words::new(Lang::En), ErrorCode::NotFound, "x");
        let block = page
            .split_once("<style>")
            .and_then(|(_, rest)| rest.split_once("</style>"))
            .map(|(style, _)| style)
            .expect("a style block");
        assert_eq!(block, STYLE);
        assert!(!page.contains(" style=\""));
        assert!(content_security_policy().contains("style-src 'sha256-"));
    }

    #[test]
    fn text_is_escaped_for_content_and_attributes() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
