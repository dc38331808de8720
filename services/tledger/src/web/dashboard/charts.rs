//! Charts drawn on the server as inline SVG: no script, no library to
//! download, and the figures are in the page (each mark has a `<title>`
//! with its value), so they print and read without JavaScript.

use std::fmt::Write as _;

use tledger_events::Track;

use super::figures::{track_total, Trend, Volume};
use super::i18n::Words;
use super::pages::esc;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 32.0;

/// One colour per track, in [`Track::ALL`] order (distinguishable in grey
/// print too: the lightness steps differ).
const TRACK_COLOURS: [&str; 7] = [
    "#8c564b", "#1f77b4", "#d62728", "#9467bd", "#17becf", "#bcbd22", "#ff9f40",
];

fn plot_width() -> f64 {
    WIDTH - LEFT - RIGHT
}

fn plot_height() -> f64 {
    HEIGHT - TOP - BOTTOM
}

fn open(out: &mut String, label: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(label),
        esc(label)
    );
}

/// The meets-all rate over the trend's dates, 0–100 %.
pub fn trend_chart(trend: &Trend, words: &Words, label: &str) -> String {
    let mut out = String::new();
    open(&mut out, label);
    for step in 0..=4u32 {
        let share = f64::from(step) / 4.0;
        let y = TOP + plot_height() * (1.0 - share);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11">{}%</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            step * 25
        );
    }
    let n = trend.len().max(1);
    let x_of = |i: usize| LEFT + plot_width() * (i as f64 + 0.5) / n as f64;
    let y_of = |rate: f64| TOP + plot_height() * (1.0 - rate.clamp(0.0, 1.0));
    // A run of points with a figure is one line; a date without a ruleset
    // breaks it.
    let mut run: Vec<(f64, f64)> = Vec::new();
    let mut runs = Vec::new();
    for (i, (_, figure)) in trend.iter().enumerate() {
        match figure.and_then(|f| f.rate()) {
            Some(rate) => run.push((x_of(i), y_of(rate))),
            None => runs.push(std::mem::take(&mut run)),
        }
    }
    runs.push(run);
    for run in runs.iter().filter(|r| r.len() > 1) {
        let points: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = write!(
            out,
            r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2.5" points="{}"/>"##,
            points.join(" ")
        );
    }
    for (i, (date, figure)) in trend.iter().enumerate() {
        let x = x_of(i);
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
            HEIGHT - 10.0,
            esc(&words.date(*date))
        );
        if let Some(f) = figure {
            if let Some(rate) = f.rate() {
                let y = y_of(rate);
                let value = words.percent(Some(rate));
                let _ = write!(
                    out,
                    r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="#1f77b4"><title>{}: {} ({} / {})</title></circle><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="11" font-weight="bold">{}</text>"##,
                    esc(&words.date(*date)),
                    esc(&value),
                    words.number(f.count),
                    words.number(f.of),
                    y - 8.0,
                    esc(&value)
                );
            }
        }
    }
    out.push_str("</svg>");
    out
}

/// A round number at or above `n` for the top of an axis.
fn axis_top(n: u64) -> u64 {
    if n == 0 {
        return 1;
    }
    let magnitude = 10u64.pow(n.ilog10());
    for step in [1, 2, 5, 10] {
        if magnitude * step >= n {
            return magnitude * step;
        }
    }
    magnitude * 10
}

/// Training places per year, stacked by track, with a legend.
pub fn volume_chart(volume: &Volume, words: &Words, label: &str) -> String {
    let tracks: Vec<(usize, Track)> = Track::ALL
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, t)| volume.by_year.iter().any(|(_, v)| track_total(v, *t) > 0))
        .collect();
    let top = axis_top(
        volume
            .by_year
            .iter()
            .map(|(_, v)| v.total())
            .max()
            .unwrap_or(0),
    );
    let mut out = String::new();
    open(&mut out, label);
    for step in 0..=4u64 {
        let y = TOP + plot_height() * (1.0 - step as f64 / 4.0);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
            WIDTH - RIGHT - 130.0,
            LEFT - 6.0,
            y + 4.0,
            words.number(top * step / 4)
        );
    }
    let plot = plot_width() - 130.0;
    let n = volume.by_year.len().max(1);
    let slot = plot / n as f64;
    let bar = (slot * 0.6).min(60.0);
    for (i, (year, places)) in volume.by_year.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut base = TOP + plot_height();
        for (colour, track) in &tracks {
            let count = track_total(places, *track);
            if count == 0 {
                continue;
            }
            let h = plot_height() * count as f64 / top as f64;
            base -= h;
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{base:.1}" width="{bar:.1}" height="{h:.1}" fill="{}"><title>{year} {}: {}</title></rect>"#,
                TRACK_COLOURS[*colour % TRACK_COLOURS.len()],
                esc(&words.code("track", track.as_str())),
                words.number(count)
            );
        }
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" font-weight="bold">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{year}</text>"#,
            x + bar / 2.0,
            base - 4.0,
            words.number(places.total()),
            x + bar / 2.0,
            HEIGHT - 10.0
        );
    }
    for (row, (colour, track)) in tracks.iter().enumerate() {
        let y = TOP + 16.0 * row as f64;
        let x = WIDTH - RIGHT - 120.0;
        let _ = write!(
            out,
            r#"<rect x="{x}" y="{y}" width="10" height="10" fill="{}"/><text x="{}" y="{}" font-size="11">{}</text>"#,
            TRACK_COLOURS[*colour % TRACK_COLOURS.len()],
            x + 14.0,
            y + 9.0,
            esc(&words.code("track", track.as_str()))
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_a_round_number_at_or_above_the_largest_bar() {
        assert_eq!(axis_top(0), 1);
        assert_eq!(axis_top(7), 10);
        assert_eq!(axis_top(1_950), 2_000);
        assert_eq!(axis_top(2_001), 5_000);
        assert_eq!(axis_top(10_000), 10_000);
    }
}
