//! Figures as the contract states them: a count, its population, and the
//! rate count/of rounded half away from zero to 4 decimals (`null` when the
//! population is empty). Integer arithmetic: no float rounding surprises.

use serde::Serialize;

/// A count and the population it is out of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Figure {
    pub count: u64,
    pub of: u64,
}

impl Figure {
    /// The rate in ten-thousandths, rounded half away from zero.
    pub fn rate_basis_points(self) -> Option<u64> {
        (self.of > 0).then(|| (self.count * 20_000 + self.of) / (2 * self.of))
    }

    pub fn rate(self) -> Option<f64> {
        self.rate_basis_points().map(|bp| bp as f64 / 10_000.0)
    }

    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({"count": self.count, "of": self.of, "rate": self.rate()})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_rounded_half_away_from_zero_to_four_decimals() {
        let r = |count, of| Figure { count, of }.rate();
        assert_eq!(r(247, 397), Some(0.6222));
        assert_eq!(r(92, 397), Some(0.2317));
        assert_eq!(r(58, 101), Some(0.5743));
        assert_eq!(r(313, 388), Some(0.8067));
        assert_eq!(r(1, 8), Some(0.125));
        // 1/20000 = 0.00005 exactly: half rounds away from zero.
        assert_eq!(
            Figure {
                count: 1,
                of: 20_000
            }
            .rate_basis_points(),
            Some(1)
        );
        assert_eq!(r(0, 0), None);
    }
}
