//! The figures a dashboard view shows, computed in-process by the same
//! report functions `GET /v1/reports/<name>` uses ([`ReadModels`]), at one
//! cut for the whole page so its panels agree with each other.

use tledger_events::{Date, FundingSource, Track};
use tledger_projections::rate::Figure;
use tledger_projections::reports::{
    AlignmentReport, ReadModels, ReportError, StandardsReport, TrainingVolume,
};

use super::view::View;

/// How many years the trend looks back from the view's date: the seed
/// article compares 2011 with 2006.
pub const TREND_YEARS: i32 = 5;

/// The meets-all figure on each date of the trend; `None` where no ruleset
/// was in force yet.
pub type Trend = Vec<(Date, Option<Figure>)>;

/// The dates of the trend: 31 December of each of the [`TREND_YEARS`]
/// years before the view's date, then the date itself.
pub fn trend_dates(as_of: Date) -> Vec<Date> {
    let mut dates: Vec<Date> = ((as_of.year() - TREND_YEARS)..as_of.year())
        .filter_map(|year| Date::from_ymd(year, 12, 31))
        .collect();
    dates.push(as_of);
    dates
}

pub async fn standards(
    models: &ReadModels,
    view: &View,
    cut: u64,
) -> Result<StandardsReport, ReportError> {
    models
        .standards(view.unit.as_deref(), view.as_of, cut)
        .await
}

pub async fn trend(models: &ReadModels, view: &View, cut: u64) -> Result<Trend, ReportError> {
    let mut points = Vec::new();
    for date in trend_dates(view.as_of) {
        match models.standards(view.unit.as_deref(), date, cut).await {
            Ok(report) => points.push((date, Some(report.meets_all_standards))),
            // Before the first ruleset there is no standard to meet: a gap
            // in the line, not an error for the whole page.
            Err(ReportError::NoReferenceData { .. }) => points.push((date, None)),
            Err(other) => return Err(other),
        }
    }
    Ok(points)
}

/// The training places of the view's window, whole and year by year.
pub struct Volume {
    pub window: TrainingVolume,
    pub by_year: Vec<(i32, TrainingVolume)>,
}

pub async fn volume(models: &ReadModels, view: &View, cut: u64) -> Result<Volume, ReportError> {
    let unit = view.unit.as_deref();
    let window = models
        .training_volume(unit, view.from, view.to, cut)
        .await?;
    let mut by_year = Vec::new();
    for year in view.years() {
        let from = Date::from_ymd(year, 1, 1).map_or(view.from, |d| d.max(view.from));
        let to = Date::from_ymd(year, 12, 31).map_or(view.to, |d| d.min(view.to));
        by_year.push((year, models.training_volume(unit, from, to, cut).await?));
    }
    Ok(Volume { window, by_year })
}

pub async fn alignment(
    models: &ReadModels,
    view: &View,
    cut: u64,
) -> Result<AlignmentReport, ReportError> {
    models
        .alignment(view.unit.as_deref(), view.as_of, cut)
        .await
}

/// Places of one track (every level).
pub fn track_total(volume: &TrainingVolume, track: Track) -> u64 {
    volume
        .places
        .iter()
        .filter(|((t, _), _)| *t == track)
        .map(|(_, n)| n)
        .sum()
}

/// The three subsets of the total the seed article names, as the report's
/// `headline` has them.
pub fn headline(volume: &TrainingVolume) -> [(&'static str, u64); 3] {
    let json = volume.to_json();
    let count = |key: &str| json["headline"][key].as_u64().unwrap_or(0);
    [
        (
            "professional_intermediate_plus",
            count("professional_intermediate_plus"),
        ),
        (
            "political_theory_intermediate_plus",
            count("political_theory_intermediate_plus"),
        ),
        ("refresher", count("refresher")),
    ]
}

/// Funding of the counted places by source, every source listed.
pub fn funding(volume: &TrainingVolume) -> Vec<(FundingSource, i128)> {
    FundingSource::ALL
        .iter()
        .map(|s| (*s, volume.funding.get(s).copied().unwrap_or(0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trend_runs_from_five_years_before_to_the_date() {
        let dates: Vec<String> = trend_dates("2011-12-31".parse().expect("date"))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            dates,
            [
                "2006-12-31",
                "2007-12-31",
                "2008-12-31",
                "2009-12-31",
                "2010-12-31",
                "2011-12-31"
            ]
        );
        let mid_year = trend_dates("2011-06-30".parse().expect("date"));
        assert_eq!(mid_year.len(), 6);
        assert_eq!(mid_year[5].to_string(), "2011-06-30");
    }
}
