//! The service's calendar: today in the district's time zone, and the
//! window a report covers when no `from` is given (docs/contract.md,
//! Reports).

use chrono::Utc;
use tledger_events::Date;

/// Today in Asia/Ho_Chi_Minh (UTC+7 all year).
pub fn today() -> Date {
    (Utc::now() + chrono::Duration::hours(7))
        .date_naive()
        .into()
}

/// The five calendar years ending with `to`'s year.
pub fn five_years_ending(to: Date) -> Date {
    Date::from_ymd(to.year() - 4, 1, 1).unwrap_or(to)
}
