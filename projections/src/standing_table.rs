//! The `standing` table (ADR 17): reads each person's placements and ranked
//! qualifications with their retractions, and writes the rows
//! [`standing::history`] computes from them. The projector rewrites the
//! people a batch touches; a rebuild fills the table once, after its load.

use std::collections::HashMap;

use futures::TryStreamExt;
use sqlx::postgres::PgPoolCopyExt;
use sqlx::{PgPool, Postgres, Row};
use uuid::Uuid;

use crate::projector::ProjectionError;
use crate::standing::{self, Change, PersonFact, Post, StandingRow, RANKED};

fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> ProjectionError {
    move |source| ProjectionError::Database { context, source }
}

/// Bytes of rows a rebuild sends to `COPY` at a time.
const COPY_CHUNK: usize = 1 << 20;

/// The placements and ranked qualifications of the people `filter` keeps
/// (a condition on `t.official_id`), each with the position of a
/// retraction of it (a fact retracted twice comes twice).
fn person_facts(s: &str, filter: &str, order: &str) -> String {
    let tracks: Vec<String> = RANKED.iter().map(|t| format!("'{}'", t.as_str())).collect();
    format!(
        "SELECT t.event_id, t.official_id, t.position, t.effective_date, t.kind, t.unit_id, \
                t.staff_category, t.post, NULL::text AS track, NULL::smallint AS rank, \
                r.position AS retracted_at \
         FROM {s}.placements t LEFT JOIN {s}.retractions r ON r.event_id = t.event_id \
         WHERE {filter} \
         UNION ALL \
         SELECT t.event_id, t.official_id, t.position, t.effective_date, NULL, NULL, NULL, NULL, \
                t.track, t.rank, r.position \
         FROM {s}.qualifications t LEFT JOIN {s}.retractions r ON r.event_id = t.event_id \
         WHERE t.rank IS NOT NULL AND t.track IN ({tracks}) AND {filter}{order}",
        tracks = tracks.join(", ")
    )
}

/// One person's facts as they are read, by event id: a fact retracted more
/// than once keeps its first retraction.
#[derive(Default)]
struct Person(HashMap<Uuid, PersonFact>);

impl Person {
    fn add(&mut self, row: &sqlx::postgres::PgRow) -> Result<(), ProjectionError> {
        let read = |e: sqlx::Error| ProjectionError::Database {
            context: "reading a person's facts for their standing",
            source: e,
        };
        let event_id: Uuid = row.try_get("event_id").map_err(read)?;
        let retracted_at: Option<i64> = row.try_get("retracted_at").map_err(read)?;
        if let Some(known) = self.0.get_mut(&event_id) {
            known.retracted_at = match (known.retracted_at, retracted_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            return Ok(());
        }
        let track: Option<String> = row.try_get("track").map_err(read)?;
        let change = match track {
            Some(track) => {
                let Some(track) = RANKED.iter().position(|t| t.as_str() == track) else {
                    return Ok(());
                };
                let rank: i16 = row.try_get("rank").map_err(read)?;
                Change::Qualified { track, rank }
            }
            None => {
                let kind: Option<String> = row.try_get("kind").map_err(read)?;
                let unit_id: Option<String> = row.try_get("unit_id").map_err(read)?;
                let staff_category: Option<String> = row.try_get("staff_category").map_err(read)?;
                let post: Option<String> = row.try_get("post").map_err(read)?;
                match (kind.as_deref(), unit_id, staff_category, post) {
                    (Some("left"), ..) => Change::Placed(None),
                    (_, Some(unit_id), Some(staff_category), Some(post)) => {
                        Change::Placed(Some(Post {
                            unit_id,
                            staff_category,
                            post,
                        }))
                    }
                    _ => return Ok(()),
                }
            }
        };
        self.0.insert(
            event_id,
            PersonFact {
                position: row.try_get("position").map_err(read)?,
                retracted_at,
                effective_date: row.try_get("effective_date").map_err(read)?,
                change,
            },
        );
        Ok(())
    }

    fn history(self) -> Vec<StandingRow> {
        let facts: Vec<PersonFact> = self.0.into_values().collect();
        standing::history(&facts)
    }
}

/// Writes `rows` (each with its person) into `{s}.standing`, one statement.
async fn insert<'c, E>(
    executor: E,
    s: &str,
    rows: &[(String, StandingRow)],
) -> Result<(), ProjectionError>
where
    E: sqlx::Executor<'c, Database = Postgres>,
{
    if rows.is_empty() {
        return Ok(());
    }
    let rank = |i: usize| {
        rows.iter()
            .map(|(_, r)| r.standing.ranks[i])
            .collect::<Vec<Option<i16>>>()
    };
    sqlx::query(&format!(
        "INSERT INTO {s}.standing (official_id, known_from, known_to, valid_from, valid_to, \
             unit_id, staff_category, post, general_education, professional, political_theory, \
             state_management) \
         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::date[], $5::date[], \
             $6::text[], $7::text[], $8::text[], $9::smallint[], $10::smallint[], \
             $11::smallint[], $12::smallint[])"
    ))
    .bind(rows.iter().map(|(o, _)| o.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, r)| r.known_from).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, r)| r.known_to).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, r)| r.valid_from).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, r)| r.valid_to).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|(_, r)| r.standing.post.unit_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|(_, r)| r.standing.post.staff_category.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|(_, r)| r.standing.post.post.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(rank(0))
    .bind(rank(1))
    .bind(rank(2))
    .bind(rank(3))
    .execute(executor)
    .await
    .map_err(db("writing standing"))?;
    Ok(())
}

/// Rewrites the standing of the people whose placements or qualifications
/// a batch recorded (`officials`) or retracted (`retracted`: each event id
/// with the retraction's position), in the batch's transaction, after its
/// rows.
pub(crate) async fn rewrite(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    s: &str,
    mut officials: Vec<String>,
    retracted: &[(Uuid, i64)],
) -> Result<(), ProjectionError> {
    if !retracted.is_empty() {
        let owners: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT official_id FROM {s}.placements WHERE event_id = ANY($1) \
             UNION SELECT official_id FROM {s}.qualifications WHERE event_id = ANY($1)"
        ))
        .bind(retracted.iter().map(|r| r.0).collect::<Vec<_>>())
        .fetch_all(&mut **tx)
        .await
        .map_err(db("finding whose facts were retracted"))?;
        officials.extend(owners);
    }
    officials.sort_unstable();
    officials.dedup();
    if officials.is_empty() {
        return Ok(());
    }
    let found = sqlx::query(&person_facts(s, "t.official_id = ANY($1)", ""))
        .bind(&officials)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("reading the facts of people to stand"))?;
    let mut people: HashMap<String, Person> = HashMap::new();
    for row in &found {
        let official: String = row
            .try_get("official_id")
            .map_err(db("reading the facts of people to stand"))?;
        people.entry(official).or_default().add(row)?;
    }
    let rows: Vec<(String, StandingRow)> = people
        .into_iter()
        .flat_map(|(official, person)| {
            person
                .history()
                .into_iter()
                .map(move |row| (official.clone(), row))
        })
        .collect();
    sqlx::query(&format!(
        "DELETE FROM {s}.standing WHERE official_id = ANY($1)"
    ))
    .bind(&officials)
    .execute(&mut **tx)
    .await
    .map_err(db("clearing standing to rewrite"))?;
    insert(&mut **tx, s, &rows).await
}

/// Fills an empty `{s}.standing` from every person's facts, read in one
/// pass sorted by person: for a rebuild, after its load and before its
/// indexes (a person at a time would probe tables not yet indexed). The
/// rows go in by `COPY`, as they are computed. Returns how many it wrote.
pub(crate) async fn fill(pool: &PgPool, s: &str) -> Result<u64, ProjectionError> {
    let mut tx = pool
        .begin()
        .await
        .map_err(db("starting to fill standing"))?;
    // The sort by person fits in memory rather than spilling to disk.
    sqlx::query("SELECT set_config('work_mem', '256MB', true)")
        .execute(&mut *tx)
        .await
        .map_err(db("starting to fill standing"))?;
    let mut copy = pool
        .copy_in_raw(&format!(
            "COPY {s}.standing (official_id, known_from, known_to, valid_from, valid_to, unit_id, \
                 staff_category, post, general_education, professional, political_theory, \
                 state_management) FROM STDIN"
        ))
        .await
        .map_err(db("starting to write standing"))?;
    let sql = person_facts(s, "true", " ORDER BY official_id");
    let mut facts = sqlx::query(&sql).fetch(&mut *tx);
    let mut written = 0u64;
    let mut pending = String::new();
    let mut current: Option<(String, Person)> = None;
    let finish = |official: &str, person: Person, pending: &mut String| -> u64 {
        let rows = person.history();
        for row in &rows {
            copy_line(pending, official, row);
        }
        rows.len() as u64
    };
    while let Some(row) = facts
        .try_next()
        .await
        .map_err(db("reading every person's facts"))?
    {
        let official: String = row
            .try_get("official_id")
            .map_err(db("reading every person's facts"))?;
        let same = current.as_ref().is_some_and(|(o, _)| *o == official);
        if !same {
            if let Some((done, person)) = current.take() {
                written += finish(&done, person, &mut pending);
            }
            current = Some((official, Person::default()));
        }
        if let Some((_, person)) = current.as_mut() {
            person.add(&row)?;
        }
        if pending.len() >= COPY_CHUNK {
            copy.send(pending.as_bytes())
                .await
                .map_err(db("writing standing"))?;
            pending.clear();
        }
    }
    drop(facts);
    if let Some((done, person)) = current.take() {
        written += finish(&done, person, &mut pending);
    }
    copy.send(pending.as_bytes())
        .await
        .map_err(db("writing standing"))?;
    copy.finish().await.map_err(db("writing standing"))?;
    tx.commit()
        .await
        .map_err(db("ending the fill of standing"))?;
    Ok(written)
}

/// One row of `COPY … FROM STDIN` text: tab-separated, `\N` for none.
fn copy_line(out: &mut String, official: &str, row: &StandingRow) {
    use std::fmt::Write as _;
    let text = |out: &mut String, value: &str| {
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
        out.push('\t');
    };
    text(out, official);
    let _ = write!(
        out,
        "{}\t{}\t{}\t{}\t",
        row.known_from, row.known_to, row.valid_from, row.valid_to
    );
    text(out, &row.standing.post.unit_id);
    text(out, &row.standing.post.staff_category);
    text(out, &row.standing.post.post);
    for (i, rank) in row.standing.ranks.iter().enumerate() {
        match rank {
            Some(rank) => {
                let _ = write!(out, "{rank}");
            }
            None => out.push_str("\\N"),
        }
        out.push(if i + 1 == row.standing.ranks.len() {
            '\n'
        } else {
            '\t'
        });
    }
}
