//! The read models' tables. They are derived data, kept in a schema of
//! their own (`rm`; a rebuild fills `rm_next` and swaps it in), created by
//! the projector rather than by the event store's migrations: they can be
//! dropped and rebuilt from the ledger at any time (ADR 7).
//!
//! Every row is one fact, keyed by its event id, with its ledger `position`
//! (transaction time) and `effective_date` (valid time); retractions are a
//! table of their own. "As of a date, as known at a cut" is then a query:
//! rows with `position <= cut`, not retracted by a retraction at or before
//! the cut, and the latest (or highest) one effective by the date.

/// Bumped when the tables change: a schema of another version is dropped
/// and projected again from position 0 (see `projector::ensure_schema`).
/// 2: `enrolled_places`. 3: event ids unique by an index of their own
/// (built after a rebuild's load, see [`INDEXES`]) rather than a primary key.
/// 4: `standing`, `enrolled_by_day` and `checkpoint.units_position`
/// (ADR 17), and no `placements_by_unit`, `place_steps_by_state` or
/// `enrolled_places_by_date`, which no query reads any more: who is in post
/// in a unit comes from `standing`, the places enrolled from
/// `enrolled_places` by unit or `enrolled_by_day`. 5: funding in `numeric`
/// rather than `bigint`, so that a place's funding and every sum of it are
/// exact whatever a recorded fact holds (issue 19: one place of 1,100 lines
/// of 2^53 − 1 đồng is past `bigint`).
pub const VERSION: i32 = 5;

/// The live schema.
pub const LIVE: &str = "rm";

/// DDL for one schema's tables (`{s}` is replaced by its name), with only
/// the indexes the projector itself reads while writing: a training place by
/// its enrollment, for `enrolled_places`, and the key of `enrolled_by_day`.
pub(crate) const TABLES: &str = r#"
CREATE SCHEMA IF NOT EXISTS {s};
-- `units_position`: the latest position at which a unit fact, or any
-- retraction, was projected. The unit hierarchy as known at any cut from it
-- to `position` is the same, so a report can reuse it.
CREATE TABLE IF NOT EXISTS {s}.checkpoint (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    position       bigint  NOT NULL,
    version        integer NOT NULL,
    units_position bigint  NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS {s}.retractions (
    event_id      uuid   NOT NULL,
    position      bigint NOT NULL,
    retraction_id uuid   NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.reference_data (
    event_id       uuid   NOT NULL,
    position       bigint NOT NULL,
    kind           text   NOT NULL,
    name           text   NOT NULL,
    effective_date date   NOT NULL,
    content        jsonb  NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.unit_facts (
    event_id       uuid    NOT NULL,
    position       bigint  NOT NULL,
    unit_id        text    NOT NULL,
    effective_date date    NOT NULL,
    registered     boolean NOT NULL,
    name           text,
    level          text,
    parent_id      text,
    dissolved_into text
);
CREATE TABLE IF NOT EXISTS {s}.placements (
    event_id       uuid   NOT NULL,
    position       bigint NOT NULL,
    official_id    text   NOT NULL,
    effective_date date   NOT NULL,
    kind           text   NOT NULL,
    unit_id        text,
    staff_category text,
    post           text
);
CREATE TABLE IF NOT EXISTS {s}.qualifications (
    event_id             uuid     NOT NULL,
    position             bigint   NOT NULL,
    official_id          text     NOT NULL,
    effective_date       date     NOT NULL,
    track                text     NOT NULL,
    level                text     NOT NULL,
    rank                 smallint,
    specialty            text,
    source_enrollment_id text
);
CREATE TABLE IF NOT EXISTS {s}.plans (
    event_id          uuid    NOT NULL,
    position          bigint  NOT NULL,
    official_id       text    NOT NULL,
    effective_date    date    NOT NULL,
    target_position   text    NOT NULL,
    period_from       integer NOT NULL,
    period_to         integer NOT NULL,
    planned_specialty text
);
CREATE TABLE IF NOT EXISTS {s}.ratings (
    event_id       uuid    NOT NULL,
    position       bigint  NOT NULL,
    official_id    text    NOT NULL,
    effective_date date    NOT NULL,
    year           integer NOT NULL,
    rating         text    NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.places (
    event_id           uuid    NOT NULL,
    position           bigint  NOT NULL,
    enrollment_id      text    NOT NULL,
    official_id        text    NOT NULL,
    nominating_unit_id text    NOT NULL,
    effective_date     date    NOT NULL,
    track              text    NOT NULL,
    level              text,
    rank               smallint,
    specialty          text,
    institution_id     text    NOT NULL,
    in_province        boolean NOT NULL,
    funding_province   numeric NOT NULL,
    funding_district   numeric NOT NULL,
    funding_agency     numeric NOT NULL,
    funding_self       numeric NOT NULL,
    funding_other      numeric NOT NULL
);
CREATE INDEX IF NOT EXISTS places_by_enrollment ON {s}.places (enrollment_id);
CREATE TABLE IF NOT EXISTS {s}.place_steps (
    event_id       uuid   NOT NULL,
    position       bigint NOT NULL,
    enrollment_id  text   NOT NULL,
    effective_date date   NOT NULL,
    state          text   NOT NULL
);
-- One row per `training.enrolled` fact, with what the volume report counts
-- of the place it enrolls (the enrollment's nomination as it stood: its
-- unit, track, level and funding), so that the places enrolled by a set of
-- units in a window are one index range rather than every place of those
-- units joined to its steps. The nomination in force when a step is
-- recorded is the enrollment's latest place row: a nomination can only be
-- retracted while it is the last step, so an enrolled step never outlives
-- it.
CREATE TABLE IF NOT EXISTS {s}.enrolled_places (
    event_id           uuid    NOT NULL,
    position           bigint  NOT NULL,
    enrollment_id      text    NOT NULL,
    effective_date     date    NOT NULL,
    nominating_unit_id text    NOT NULL,
    track              text    NOT NULL,
    level              text,
    funding_province   numeric NOT NULL,
    funding_district   numeric NOT NULL,
    funding_agency     numeric NOT NULL,
    funding_self       numeric NOT NULL,
    funding_other      numeric NOT NULL
);
-- Each person's standing in both times (ADR 17, `crate::standing`): as
-- known at cuts in [known_from, known_to), in post at `unit_id` as
-- `staff_category` in `post` on dates in [valid_from, valid_to), with the
-- highest rank reached per ordered track by then (NULL: none). Derived from
-- `placements`, `qualifications` and `retractions`; open ends are
-- 9999-12-31 and the largest bigint.
CREATE TABLE IF NOT EXISTS {s}.standing (
    official_id       text     NOT NULL,
    known_from        bigint   NOT NULL,
    known_to          bigint   NOT NULL,
    valid_from        date     NOT NULL,
    valid_to          date     NOT NULL,
    unit_id           text     NOT NULL,
    staff_category    text     NOT NULL,
    post              text     NOT NULL,
    general_education smallint,
    professional      smallint,
    political_theory  smallint,
    state_management  smallint
);
-- The places enrolled on each date by track and level (level '' for none),
-- with their funding, as known at the checkpoint (ADR 17,
-- `crate::daily_volume`); the projector adds to a row by its key.
CREATE TABLE IF NOT EXISTS {s}.enrolled_by_day (
    effective_date   date   NOT NULL,
    track            text   NOT NULL,
    level            text   NOT NULL,
    places           bigint NOT NULL,
    funding_province numeric NOT NULL,
    funding_district numeric NOT NULL,
    funding_agency   numeric NOT NULL,
    funding_self     numeric NOT NULL,
    funding_other    numeric NOT NULL,
    PRIMARY KEY (effective_date, track, level)
);
INSERT INTO {s}.checkpoint (position, version) VALUES (0, {version}) ON CONFLICT DO NOTHING;
"#;

/// The other indexes, per table: created with the tables for the live
/// schema, and after the load for a rebuild, where one sorted build per
/// index is several times cheaper than a million inserts into each (random
/// event ids scatter a unique index's inserts over all its pages). Each
/// table's indexes are one statement list, so tables build side by side.
pub(crate) const INDEXES: &[&str] = &[
    "CREATE UNIQUE INDEX IF NOT EXISTS retractions_by_event ON {s}.retractions (event_id);",
    "CREATE UNIQUE INDEX IF NOT EXISTS reference_data_by_event ON {s}.reference_data (event_id);",
    "CREATE UNIQUE INDEX IF NOT EXISTS unit_facts_by_event ON {s}.unit_facts (event_id);",
    "CREATE UNIQUE INDEX IF NOT EXISTS placements_by_event ON {s}.placements (event_id);
     CREATE INDEX IF NOT EXISTS placements_by_official ON {s}.placements (official_id, effective_date, position);",
    "CREATE UNIQUE INDEX IF NOT EXISTS qualifications_by_event ON {s}.qualifications (event_id);
     CREATE INDEX IF NOT EXISTS qualifications_by_official ON {s}.qualifications (official_id, track);",
    "CREATE UNIQUE INDEX IF NOT EXISTS plans_by_event ON {s}.plans (event_id);
     CREATE INDEX IF NOT EXISTS plans_by_official ON {s}.plans (official_id);",
    "CREATE UNIQUE INDEX IF NOT EXISTS ratings_by_event ON {s}.ratings (event_id);",
    // `places_by_official`: a person's training places, for their timeline.
    "CREATE UNIQUE INDEX IF NOT EXISTS places_by_event ON {s}.places (event_id);
     CREATE INDEX IF NOT EXISTS places_by_unit ON {s}.places (nominating_unit_id);
     CREATE INDEX IF NOT EXISTS places_by_official ON {s}.places (official_id);",
    "CREATE UNIQUE INDEX IF NOT EXISTS place_steps_by_event ON {s}.place_steps (event_id);
     CREATE INDEX IF NOT EXISTS place_steps_by_enrollment ON {s}.place_steps (enrollment_id);",
    "CREATE UNIQUE INDEX IF NOT EXISTS enrolled_places_by_event ON {s}.enrolled_places (event_id);
     CREATE INDEX IF NOT EXISTS enrolled_places_by_unit ON {s}.enrolled_places (nominating_unit_id, effective_date)
         INCLUDE (position, event_id, track, level, funding_province, funding_district, funding_agency, funding_self, funding_other);",
    // The standards report reads a unit's standing from one range of an
    // index that holds every column it needs: of `standing_now_by_unit`,
    // which holds only the rows no fact has revised yet, for a cut at the
    // head (nearly every report), or of `standing_by_unit` for an earlier
    // cut. The projector replaces a person's rows by `standing_by_official`.
    "CREATE INDEX IF NOT EXISTS standing_by_unit ON {s}.standing (unit_id, known_to)
         INCLUDE (known_from, valid_from, valid_to, staff_category, post,
                  general_education, professional, political_theory, state_management);
     CREATE INDEX IF NOT EXISTS standing_now_by_unit ON {s}.standing (unit_id, valid_to)
         INCLUDE (valid_from, staff_category, post,
                  general_education, professional, political_theory, state_management)
         WHERE known_to = 9223372036854775807;
     CREATE INDEX IF NOT EXISTS standing_by_official ON {s}.standing (official_id);",
];

/// The tables of `schema`, without [`INDEXES`].
pub(crate) fn tables(schema: &str) -> String {
    TABLES
        .replace("{s}", schema)
        .replace("{version}", &VERSION.to_string())
}

/// One table's [`INDEXES`] for `schema`, a statement each.
pub(crate) fn indexes(schema: &str, statements: &str) -> Vec<String> {
    statements
        .split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(|statement| statement.replace("{s}", schema))
        .collect()
}
