//! `enrolled_by_day` (ADR 17): the places enrolled on each date, by track
//! and level, with their funding, counting every enrolled step no
//! retraction has taken back so far. It holds what the read models know at
//! their position only, so the country's training volume reads it for a
//! cut at or past the position (a few thousand rows for five years rather
//! than every place enrolled in them) and the places themselves otherwise.
//!
//! The projector adds a batch's enrolled steps and takes away the steps its
//! retractions take back for the first time, in the batch's transaction; a
//! date, track and level whose count falls to zero has no row. A rebuild
//! fills the table once, after its load.

use sqlx::{PgPool, Postgres};
use uuid::Uuid;

use crate::projector::ProjectionError;

fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> ProjectionError {
    move |source| ProjectionError::Database { context, source }
}

/// The sums one `SELECT … FROM {s}.enrolled_places e … GROUP BY` gives per
/// date, track and level, negated when `sign` is `-`.
fn totals(sign: &str) -> String {
    format!(
        "e.effective_date, e.track, COALESCE(e.level, ''), {sign}count(*), \
         {sign}sum(e.funding_province), {sign}sum(e.funding_district), \
         {sign}sum(e.funding_agency), {sign}sum(e.funding_self), {sign}sum(e.funding_other)"
    )
}

fn add_totals(s: &str, rows: &str) -> String {
    format!(
        "INSERT INTO {s}.enrolled_by_day (effective_date, track, level, places, funding_province, \
             funding_district, funding_agency, funding_self, funding_other) {rows} \
         ON CONFLICT (effective_date, track, level) DO UPDATE SET \
             places = {s}.enrolled_by_day.places + EXCLUDED.places, \
             funding_province = {s}.enrolled_by_day.funding_province + EXCLUDED.funding_province, \
             funding_district = {s}.enrolled_by_day.funding_district + EXCLUDED.funding_district, \
             funding_agency = {s}.enrolled_by_day.funding_agency + EXCLUDED.funding_agency, \
             funding_self = {s}.enrolled_by_day.funding_self + EXCLUDED.funding_self, \
             funding_other = {s}.enrolled_by_day.funding_other + EXCLUDED.funding_other"
    )
}

/// Adds the enrolled steps `enrolled` (event ids, already in
/// `enrolled_places`) and takes away those that `retracted` (each the
/// retracted event's id and the retraction's position, already in
/// `retractions`) takes back for the first time, in the batch's
/// transaction, after its rows.
pub(crate) async fn update(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    s: &str,
    enrolled: &[Uuid],
    retracted: &[(Uuid, i64)],
) -> Result<(), ProjectionError> {
    if !enrolled.is_empty() {
        sqlx::query(&add_totals(
            s,
            &format!(
                "SELECT {} FROM {s}.enrolled_places e WHERE e.event_id = ANY($1) GROUP BY 1, 2, 3",
                totals("")
            ),
        ))
        .bind(enrolled)
        .execute(&mut **tx)
        .await
        .map_err(db("adding the day's enrolled places"))?;
    }
    if !retracted.is_empty() {
        sqlx::query(&add_totals(
            s,
            &format!(
                "SELECT {} FROM UNNEST($1::uuid[], $2::bigint[]) AS u(event_id, position) \
                 JOIN {s}.enrolled_places e ON e.event_id = u.event_id \
                 WHERE NOT EXISTS (SELECT 1 FROM {s}.retractions r \
                     WHERE r.event_id = u.event_id AND r.position < u.position) \
                 GROUP BY 1, 2, 3",
                totals("-")
            ),
        ))
        .bind(retracted.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(retracted.iter().map(|r| r.1).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(db("taking retracted places from their day"))?;
        sqlx::query(&format!("DELETE FROM {s}.enrolled_by_day WHERE places = 0"))
            .execute(&mut **tx)
            .await
            .map_err(db("dropping days with no place left"))?;
    }
    Ok(())
}

/// Fills an empty `{s}.enrolled_by_day` from every enrolled place not
/// retracted: for a rebuild, after its load.
pub(crate) async fn fill(pool: &PgPool, s: &str) -> Result<(), ProjectionError> {
    sqlx::query(&format!(
        "INSERT INTO {s}.enrolled_by_day (effective_date, track, level, places, funding_province, \
             funding_district, funding_agency, funding_self, funding_other) \
         SELECT {} FROM {s}.enrolled_places e \
         WHERE NOT EXISTS (SELECT 1 FROM {s}.retractions r WHERE r.event_id = e.event_id) \
         GROUP BY 1, 2, 3",
        totals("")
    ))
    .execute(pool)
    .await
    .map_err(db("filling the places enrolled by day"))?;
    Ok(())
}
