//! The inspectors' dashboard: web pages served by `tledger serve` at `/`.
//!
//! Server-rendered HTML with inline SVG charts and a few lines of inline
//! CSS: nothing to build, nothing fetched from the network, no script (ADR
//! 11). The figures come from the same functions as `GET
//! /v1/reports/<name>` ([`tledger_projections::reports::ReadModels`]) and
//! the audit trail from [`crate::audit_trail`], in-process and at one cut per
//! page.
//!
//! - `GET /?unit=&as_of=&from=&to=&lang=`: the unit picker (the hierarchy
//!   one level at a time), the standards panel, the meets-all trend, the
//!   training volume by track and year with funding by source, the
//!   alignment lists linking each person, and the ledger's verification
//!   status. `as_of` defaults to today in Việt Nam, `to` to `as_of`, `from`
//!   to 1 January four years before `to`; `lang` is `en` (default) or `vi`.
//! - `GET /people/<official_id>?…`: a person's timeline (their facts and
//!   their training places') with who recorded each fact; each view is an
//!   access record.
//! - `GET /exports/<table>.csv|.xlsx?…` (`standards`, `trend`, `volume`,
//!   `funding`, `alignment`) and `GET /people/<id>/history.csv|.xlsx`.
//! - `GET /sign-in`, `POST /sign-in` (a form that opens a session: the
//!   cookie names it, the token stays on the server), `POST /sign-out`
//!   (ends it). Both forms are refused (403) unless sent from this site's
//!   pages ([`session::sent_from_this_site`]).
//!
//! Access is the API's ([`session`]): a token of any role but publisher
//! reads; a unit officer reads only its subtree (a unit outside it is a 403
//! page); a page without a valid token or session sends the browser to the
//! sign-in form. A view of a unit's figures is recorded in the access log
//! like a report read for a unit, and a person's history like a trail read.
//! Every page carries a content security policy that allows nothing but
//! its own style block ([`pages::content_security_policy`]).

pub(crate) mod charts;
pub(crate) mod exports;
pub(crate) mod figures;
pub mod i18n;
pub(crate) mod pages;
pub(crate) mod session;
pub(crate) mod timeline;
pub(crate) mod verification;
pub mod view;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use tledger_domain::ErrorCode;
use tledger_events::unit_tree::UnitTree;
use tledger_projections::reports::ReportError;
use tledger_store::StoreError;

use crate::access::{AccessError, Caller, Role};
use crate::access_log::{self, Read};
use crate::audit_trail::{History, Trail};
use crate::commands::Refusal;
use crate::web::state::WebState;
use exports::Table;
use i18n::{lang_of, Lang, Words};
use session::{Credential, Sessions};
use timeline::Timeline;
// Defined beside the verification it holds, so that the web state can
// hold it without importing the dashboard's pages.
pub use verification::DashboardState;
use view::{encode, View, ViewError};

/// Why a page is not shown.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("not signed in")]
    SignedOut,
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("{}", .0.message)]
    Refused(Refusal),
    #[error("the workbook could not be written: {0}")]
    Workbook(#[from] rust_xlsxwriter::XlsxError),
    #[error("unknown download {0:?}")]
    UnknownExport(String),
}

impl From<Refusal> for DashboardError {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<ReportError> for DashboardError {
    fn from(error: ReportError) -> Self {
        Self::Refused(error.into())
    }
}

impl From<StoreError> for DashboardError {
    fn from(error: StoreError) -> Self {
        Self::Refused(error.into())
    }
}

impl From<AccessError> for DashboardError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Missing | AccessError::Invalid => Self::SignedOut,
            other => Self::Refused(other.into()),
        }
    }
}

pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/", get(home))
        .route("/people/{id}", get(person))
        .route("/people/{id}/{file}", get(person_export))
        .route("/exports/{file}", get(unit_export))
        .route("/sign-in", get(sign_in_form).post(sign_in))
        .route("/sign-out", post(sign_out))
}

type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The query's pairs and the page's language (read first, so that even an
/// error page speaks it).
fn pairs(params: Params) -> (Vec<(String, String)>, Lang) {
    let pairs = params.map(|Query(p)| p).unwrap_or_default();
    let lang = lang_of(
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == "lang")
            .map(|(_, v)| v.as_str()),
    );
    (pairs, lang)
}

fn path_of(uri: &Uri) -> &str {
    uri.path_and_query().map_or(uri.path(), |p| p.as_str())
}

fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Personal data: never kept by a shared cache.
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                pages::content_security_policy(),
            ),
        ],
        body,
    )
        .into_response()
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The page for an error, or the way to the sign-in form.
fn failure(error: DashboardError, lang: Lang, uri: &Uri) -> Response {
    let words = Words::new(lang);
    match error {
        DashboardError::SignedOut => see_other(&format!(
            "/sign-in?lang={}&next={}",
            i18n::code(lang),
            encode(path_of(uri))
        )),
        DashboardError::View(e) => html(
            StatusCode::BAD_REQUEST,
            pages::error_page(&words, ErrorCode::Malformed, &e.to_string()),
        ),
        DashboardError::Refused(refusal) => html(
            status_of(refusal.code),
            pages::error_page(&words, refusal.code, &refusal.message),
        ),
        DashboardError::UnknownExport(_) => html(
            StatusCode::NOT_FOUND,
            pages::error_page(&words, ErrorCode::NotFound, &error.to_string()),
        ),
        DashboardError::Workbook(_) => {
            tracing::error!(%error, "dashboard export");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::error_page(&words, ErrorCode::NotReady, &error.to_string()),
            )
        }
    }
}

/// The caller, if the request carries a valid token (header) or session
/// (cookie); publishers read no figures.
async fn signed_in(state: &WebState, headers: &HeaderMap) -> Result<Caller, DashboardError> {
    let caller = match session::credential_of(headers) {
        Some(Credential::Bearer(token)) => {
            state.commands.access().authenticate(Some(&token)).await?
        }
        Some(Credential::Session(id)) => Sessions::new(state.store.clone())
            .caller(&id)
            .await?
            .ok_or(DashboardError::SignedOut)?,
        None => return Err(DashboardError::SignedOut),
    };
    if caller.role == Role::Publisher {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            "a publisher token reads only its own receipts and quarantine",
        )
        .into());
    }
    Ok(caller)
}

/// The root of a unit officer's scope.
fn scope_root(caller: &Caller) -> Option<String> {
    (caller.role == Role::UnitOfficer).then(|| {
        caller
            .unit_id
            .as_ref()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default()
    })
}

/// The view as the caller may see it: a unit officer starts at its own
/// unit and sees nothing outside its subtree (as the reports API decides).
fn scoped(view: View, caller: &Caller, hierarchy: &UnitTree) -> Result<View, DashboardError> {
    if let Some(unit) = &view.unit {
        if !hierarchy.contains(unit) {
            return Err(ReportError::UnknownUnit(unit.clone()).into());
        }
    }
    let Some(root) = scope_root(caller) else {
        return Ok(view);
    };
    let view = match view.unit {
        Some(_) => view,
        None => view.with_unit(Some(&root)),
    };
    let unit = view.unit.as_deref().unwrap_or_default();
    if !hierarchy.within(unit, &root, view.as_of) {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            format!("unit {unit} is outside this token's scope ({root})"),
        )
        .into());
    }
    Ok(view)
}

/// The figures are about people: a view of a unit is recorded first.
async fn record_unit_read(
    state: &WebState,
    caller: &Caller,
    view: &View,
    uri: &Uri,
) -> Result<(), DashboardError> {
    if let Some(unit) = view.unit.as_deref() {
        let read = Read {
            path: path_of(uri),
            unit_id: Some(unit),
            ..Read::default()
        };
        access_log::record_or_refuse(&state.store, caller, &read).await?;
    }
    Ok(())
}

async fn home(
    State(state): State<WebState>,
    params: Params,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (pairs, lang) = pairs(params);
    match home_page(&state, &pairs, &uri, &headers).await {
        Ok(page) => html(StatusCode::OK, page),
        Err(error) => failure(error, lang, &uri),
    }
}

async fn home_page(
    state: &WebState,
    pairs: &[(String, String)],
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<String, DashboardError> {
    let caller = signed_in(state, headers).await?;
    let view = View::parse(pairs)?;
    let models = state.read_models.clone();
    let cut = models.position().await?;
    let hierarchy = models.unit_tree(cut).await?;
    let view = scoped(view, &caller, &hierarchy)?;
    let (standards, trend, volume, alignment) = tokio::try_join!(
        figures::standards(&models, &view, cut),
        figures::trend(&models, &view, cut),
        figures::volume(&models, &view, cut),
        figures::alignment(&models, &view, cut),
    )?;
    state.dashboard.verification.refresh(&state.store);
    let ledger = pages::LedgerStatus {
        head: state.store.head().await?,
        checkpoint: state.store.latest_checkpoint().await?,
        verification: state.dashboard.verification.snapshot(),
    };
    record_unit_read(state, &caller, &view, uri).await?;
    Ok(pages::dashboard_page(&pages::Dashboard {
        words: Words::new(view.lang),
        picker: pages::Picker::new(&hierarchy, &view, scope_root(&caller).as_deref()),
        view: &view,
        caller: &caller,
        cut,
        standards: &standards,
        trend: &trend,
        volume: &volume,
        alignment: &alignment,
        ledger,
    }))
}

async fn person(
    State(state): State<WebState>,
    Path(id): Path<String>,
    params: Params,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (pairs, lang) = pairs(params);
    let page = async {
        let caller = signed_in(&state, &headers).await?;
        let view = View::parse(&pairs)?;
        let timeline = readable_timeline(&state, &caller, &id, &uri).await?;
        Ok::<_, DashboardError>(pages::person_page(
            &Words::new(view.lang),
            &view,
            &caller,
            &timeline,
        ))
    };
    match page.await {
        Ok(page) => html(StatusCode::OK, page),
        Err(error) => failure(error, lang, &uri),
    }
}

/// A person's timeline if the caller may read it, recorded in the access
/// log before it is shown (as `GET /v1/officials/<id>/history` does). A
/// unit officer sees the person's training places nominated within its
/// subtree, as the enrollment trails of the API decide.
async fn readable_timeline(
    state: &WebState,
    caller: &Caller,
    id: &str,
    uri: &Uri,
) -> Result<Timeline, DashboardError> {
    let person = History::load(&state.store, Trail::Official, id)
        .await?
        .ok_or_else(|| {
            Refusal::new(
                ErrorCode::NotFound,
                format!("no official {id:?} in the ledger"),
            )
        })?;
    let scope = match scope_root(caller) {
        Some(root) => Some((state.commands.unit_tree(&[]).await?, root)),
        None => None,
    };
    if let Some((hierarchy, root)) = &scope {
        if !person.within_scope(hierarchy, root) {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                format!(
                    "official {id} was never within this token's scope ({root} and the units below it)"
                ),
            )
            .into());
        }
    }
    let models = state.read_models.clone();
    let mut places = Vec::new();
    for enrollment in models.places_of(id).await? {
        if let Some(place) = History::load(&state.store, Trail::Enrollment, &enrollment).await? {
            let readable = scope
                .as_ref()
                .is_none_or(|(hierarchy, root)| place.within_scope(hierarchy, root));
            if readable {
                places.push(place);
            }
        }
    }
    let read = Read {
        path: path_of(uri),
        official_id: Some(id),
        ..Read::default()
    };
    access_log::record_or_refuse(&state.store, caller, &read).await?;
    Ok(Timeline { person, places })
}

/// A download's file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Xlsx,
}

fn split_file(file: &str) -> Result<(&str, Format), DashboardError> {
    match file.rsplit_once('.') {
        Some((name, "csv")) => Ok((name, Format::Csv)),
        Some((name, "xlsx")) => Ok((name, Format::Xlsx)),
        _ => Err(DashboardError::UnknownExport(file.to_owned())),
    }
}

fn download(
    table: &Table,
    format: Format,
    words: &Words,
    stem: &str,
) -> Result<Response, DashboardError> {
    let (content_type, body, extension) = match format {
        Format::Csv => (
            "text/csv; charset=utf-8",
            table.to_csv().into_bytes(),
            "csv",
        ),
        Format::Xlsx => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            table.to_xlsx(words)?,
            "xlsx",
        ),
    };
    // The file name is built from ids and dates only (no quotes).
    let disposition = format!("attachment; filename=\"{stem}.{extension}\"");
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

fn safe_stem(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

async fn unit_export(
    State(state): State<WebState>,
    Path(file): Path<String>,
    params: Params,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (pairs, lang) = pairs(params);
    let answer = async {
        let caller = signed_in(&state, &headers).await?;
        let (name, format) = split_file(&file)?;
        if !exports::UNIT_TABLES.contains(&name) {
            return Err(DashboardError::UnknownExport(file.clone()));
        }
        let view = View::parse(&pairs)?;
        let models = state.read_models.clone();
        let cut = models.position().await?;
        let hierarchy = models.unit_tree(cut).await?;
        let view = scoped(view, &caller, &hierarchy)?;
        let table = match name {
            "standards" => {
                exports::standards_table(&figures::standards(&models, &view, cut).await?)
            }
            "trend" => exports::trend_table(&figures::trend(&models, &view, cut).await?),
            "volume" => exports::volume_table(&figures::volume(&models, &view, cut).await?),
            "funding" => exports::funding_table(&figures::volume(&models, &view, cut).await?),
            _ => exports::alignment_table(&figures::alignment(&models, &view, cut).await?),
        };
        record_unit_read(&state, &caller, &view, &uri).await?;
        let stem = format!(
            "{name}-{}-{}",
            safe_stem(view.unit.as_deref().unwrap_or("all")),
            view.as_of
        );
        download(&table, format, &Words::new(view.lang), &stem)
    };
    answer
        .await
        .unwrap_or_else(|error| failure(error, lang, &uri))
}

async fn person_export(
    State(state): State<WebState>,
    Path((id, file)): Path<(String, String)>,
    params: Params,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (pairs, lang) = pairs(params);
    let answer = async {
        let caller = signed_in(&state, &headers).await?;
        let (name, format) = split_file(&file)?;
        if name != "history" {
            return Err(DashboardError::UnknownExport(file.clone()));
        }
        let view = View::parse(&pairs)?;
        let timeline = readable_timeline(&state, &caller, &id, &uri).await?;
        let stem = format!("history-{}", safe_stem(&id));
        download(
            &exports::history_table(&timeline),
            format,
            &Words::new(view.lang),
            &stem,
        )
    };
    answer
        .await
        .unwrap_or_else(|error| failure(error, lang, &uri))
}

async fn sign_in_form(params: Params) -> Response {
    let (pairs, lang) = pairs(params);
    let next = pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.as_str());
    html(
        StatusCode::OK,
        pages::sign_in_page(&Words::new(lang), &session::local_path(next), false),
    )
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    token: String,
    next: Option<String>,
    lang: Option<String>,
}

/// The 403 page for a form sent from another site.
fn foreign_form(words: &Words, refused: &session::ForeignForm) -> Response {
    html(
        StatusCode::FORBIDDEN,
        pages::error_page(words, ErrorCode::Forbidden, &refused.to_string()),
    )
}

fn refused_page(words: &Words, error: AccessError) -> Response {
    let refusal = Refusal::from(error);
    html(
        status_of(refusal.code),
        pages::error_page(words, refusal.code, &refusal.message),
    )
}

async fn sign_in(
    State(state): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let lang = lang_of(form.lang.as_deref());
    let words = Words::new(lang);
    // Before the token is looked at: another site's form signs no one in.
    if let Err(refused) = session::sent_from_this_site(&headers) {
        return foreign_form(&words, &refused);
    }
    let next = session::local_path(form.next.as_deref());
    let token = form.token.trim();
    let caller = match state.commands.access().authenticate(Some(token)).await {
        Ok(caller) => caller,
        Err(AccessError::Missing | AccessError::Invalid) => {
            return html(
                StatusCode::UNAUTHORIZED,
                pages::sign_in_page(&words, &next, true),
            )
        }
        Err(other) => return refused_page(&words, other),
    };
    let id = match Sessions::new(state.store.clone()).open(&caller).await {
        Ok(id) => id,
        Err(error) => return refused_page(&words, error),
    };
    let mut response = see_other(&next);
    if let Ok(cookie) = HeaderValue::from_str(&session::session_cookie(&id)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The sign-out form's field.
#[derive(Debug, Deserialize)]
pub struct SignOut {
    lang: Option<String>,
}

async fn sign_out(
    State(state): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<SignOut>,
) -> Response {
    let lang = lang_of(form.lang.as_deref());
    let words = Words::new(lang);
    if let Err(refused) = session::sent_from_this_site(&headers) {
        return foreign_form(&words, &refused);
    }
    if let Some(id) = session::cookie(&headers, session::COOKIE) {
        if let Err(error) = Sessions::new(state.store.clone()).close(&id).await {
            return refused_page(&words, error);
        }
    }
    let mut response = see_other(&format!("/sign-in?lang={}", i18n::code(lang)));
    if let Ok(cookie) = HeaderValue::from_str(&session::cleared_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}
