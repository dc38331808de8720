//! The demo district: Đại Lộc (Quảng Nam) from 1997 to 2015, as a plan of
//! commands that reproduces the figures of the article of 3 May 2012
//! (docs/domain.md, "The reference report") exactly.
//!
//! The plan is pure and deterministic: [`plan`] turns a seed into the same
//! commands every time (a small splitmix64 generator of its own, no `rand`),
//! in an order the ledger accepts (units, then everything in the order it
//! happened, a person's registration before anything about them). The seed
//! picks names, birth years, dates, which person holds which post, which
//! specialties, institutions and amounts; it never changes a figure. The
//! figures follow from a fixed composition of the staff (see
//! [`ARCHETYPES`]): each row is a number of people with the same career
//! path and the same levels on 2006-12-31 and on 2011-12-31. A level that
//! rises between the two dates rises through a training place completed in
//! 2007–2011 (the ledger's policy then records the qualification); every
//! other place of the window is "neutral": taken by a part-time worker, by
//! someone who left, still running at the end of 2011, failed, withdrawn, or
//! an advanced political course for someone who already had the
//! intermediate level. General education and elementary levels never come
//! from a place of the window, so the window holds only the three kinds of
//! place the article counts.
//!
//! The composition on 2011-12-31 (397 cadres and civil servants):
//!
//! | group | people | meet all | college+ | political intermediate+ |
//! |---|---|---|---|---|
//! | key leaders | 101 | 80 | 58 | 99 of 101 |
//! | other cadres | 90 | 62 | 6 | 75 of 90 |
//! | police chiefs and military commanders (exempt from political theory) | 9 | 6 | 2 | — |
//! | other civil servants | 197 | 99 | 26 | 139 of 197 |
//! | total | 397 | 247 | 92 | 313 of 388 |
//!
//! On 2006-12-31: 373 (100 key leaders, 90 other cadres, 10 exempt, 173
//! civil servants), 114 meeting all standards (30.56%): 62.22% is up 103.6%.
//! Between the two dates 26 people left, 40 were recruited, 6 other cadres
//! became key leaders and 10 part-time workers became civil servants (posts
//! added under Decree 92/2009); two people left in 2008 and returned in
//! 2010, one left in 2009 and returned in 2012, three pairs of civil
//! servants swapped communes. About 350 part-time workers (17–22 a unit)
//! take part of the places.
//!
//! The problems the article names are there too: 14 civil servants hold a
//! diploma in a specialty their post does not accept and 18 have no
//! professional training (misassigned on 2011-12-31); of the people sent to
//! professional training, 12 have no plan entry, 4 only one for 2011–2015
//! though trained earlier, and 10 one planning another specialty. Outside
//! the window, so not counted: refresher places of 2006 and 2012,
//! intermediate places nominated in December 2011 for January 2012, 12
//! places of 2004–2006 whose diplomas count in the 2006 baseline, and 80
//! nominations cancelled before enrolment.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};
use serde_json::{json, Map, Value};

/// The seed `tledger demo` uses unless told otherwise.
pub const DEFAULT_SEED: u64 = 2012;

/// One command of the plan: its name (`POST /v1/commands/<name>`), its body
/// (the data of the fact it records) and a stable idempotency key, so that
/// seeding again after an interruption records nothing twice.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoCommand {
    pub name: &'static str,
    pub body: Value,
    pub key: String,
}

/// The commands that seed the demo district, in the order to send them.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoPlan {
    pub steps: Vec<DemoCommand>,
}

/// The figures the seeded district reproduces (those of the article), each
/// count with its population.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub unit_id: &'static str,
    /// Training volume window.
    pub volume_from: &'static str,
    pub volume_to: &'static str,
    pub total: u64,
    pub professional_intermediate_plus: u64,
    pub political_theory_intermediate_plus: u64,
    pub refresher: u64,
    /// Places per level of the professional track (other levels: 0).
    pub professional_by_level: &'static [(&'static str, u64)],
    /// Places per level of the political-theory track (other levels: 0).
    pub political_theory_by_level: &'static [(&'static str, u64)],
    /// Standards report date.
    pub as_of: &'static str,
    pub ruleset: &'static str,
    pub population: u64,
    pub meets_all: (u64, u64),
    pub professional_college_plus: (u64, u64),
    pub key_leaders_college_plus: (u64, u64),
    pub political_theory_intermediate_plus_people: (u64, u64),
    /// The 2006 baseline the article compares with.
    pub baseline_as_of: &'static str,
    pub baseline_meets_all: (u64, u64),
    /// "Up 103.6%": the increase of the meets-all rate, in thousandths,
    /// computed from the rates as reports state them (see
    /// [`increase_permille`]).
    pub meets_all_increase_permille: i64,
    /// The demo's own (the article gives no numbers): civil servants in
    /// posts outside their specialty (`other_specialty`) and untrained, on
    /// `as_of`.
    pub misassigned_other_specialty: u64,
    pub misassigned_untrained: u64,
}

/// The article's figures.
pub fn expected() -> Expected {
    Expected {
        unit_id: "dai-loc",
        volume_from: "2007-01-01",
        volume_to: "2011-12-31",
        total: 9_384,
        professional_intermediate_plus: 696,
        political_theory_intermediate_plus: 368,
        refresher: 8_320,
        professional_by_level: &[("intermediate", 500), ("college", 100), ("university", 96)],
        political_theory_by_level: &[("intermediate", 300), ("advanced", 68)],
        as_of: "2011-12-31",
        ruleset: "qd04-2004",
        population: 397,
        meets_all: (247, 397),
        professional_college_plus: (92, 397),
        key_leaders_college_plus: (58, 101),
        political_theory_intermediate_plus_people: (313, 388),
        baseline_as_of: "2006-12-31",
        baseline_meets_all: (114, 373),
        meets_all_increase_permille: 1_036,
        misassigned_other_specialty: MISASSIGNED as u64,
        // The civil servants of the composition with no professional level
        // in 2011: 15 in post throughout, 3 former part-time workers.
        misassigned_untrained: 18,
    }
}

/// A rate as reports state it (docs/contract.md, Conventions: count/of
/// rounded half away from zero to 4 decimals), in ten-thousandths; `None`
/// when `of` is 0.
pub fn rate_ten_thousandths((count, of): (u64, u64)) -> Option<u64> {
    // Integer arithmetic: round(count * 10000 / of) half up (both positive).
    (of > 0).then(|| (count * 20_000 + of) / (2 * of))
}

/// By how much the rate `now` is up on the rate `then`, in thousandths,
/// from the two rates as reports state them (so 0.6222 against 0.3056 is
/// 1036: "up 103.6%"); `None` when a rate is missing or zero.
pub fn increase_permille(now: (u64, u64), then: (u64, u64)) -> Option<i64> {
    let now = i64::try_from(rate_ten_thousandths(now)?).ok()?;
    let then = i64::try_from(rate_ten_thousandths(then)?).ok()?;
    if then == 0 {
        return None;
    }
    // round((now / then − 1) × 1000), half away from zero.
    let numerator = (now - then) * 1000;
    let rounded = (2 * numerator.abs() + then) / (2 * then);
    Some(if numerator < 0 { -rounded } else { rounded })
}

/// The commands that seed the demo district for `seed`.
pub fn plan(seed: u64) -> DemoPlan {
    let mut g = Generator::new(seed);
    g.people();
    g.qualifications();
    g.training();
    g.plans_and_ratings();
    g.into_plan()
}

// ---------------------------------------------------------------------------
// Calendar days and the generator's randomness.

/// A calendar day as a number, so that durations are additions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Day(i32);

impl Day {
    fn ymd(year: i32, month: u32, day: u32) -> Day {
        // Every date this module names is a real day; were one not, it
        // would read as year 1 and the plan's tests would fail.
        Day(NaiveDate::from_ymd_opt(year, month, day).map_or(0, |d| d.num_days_from_ce()))
    }

    fn plus(self, days: i32) -> Day {
        Day(self.0 + days)
    }

    fn naive(self) -> NaiveDate {
        NaiveDate::from_num_days_from_ce_opt(self.0).unwrap_or(NaiveDate::MIN)
    }

    fn year(self) -> i32 {
        self.naive().year()
    }

    fn month(self) -> u32 {
        self.naive().month()
    }

    fn text(self) -> String {
        self.naive().format("%Y-%m-%d").to_string()
    }
}

/// splitmix64: tiny, fast and good enough to pick demo data; written here so
/// that a seed gives the same plan whatever crate versions are in the tree.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// A number in `lo..=hi` (`lo` when the range is empty).
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        if hi <= lo {
            lo
        } else {
            lo + self.below((hi - lo + 1) as usize) as i32
        }
    }

    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn day(&mut self, lo: Day, hi: Day) -> Day {
        Day(self.range(lo.0, hi.0))
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// An amount in đồng between `lo` and `hi`, in whole ten thousands.
    fn vnd(&mut self, lo: i64, hi: i64) -> i64 {
        let steps = ((hi - lo) / 10_000).max(0) as usize;
        lo + self.below(steps + 1) as i64 * 10_000
    }
}

// ---------------------------------------------------------------------------
// The district.

/// Units: (id, name). Index 0 is the town; the rest are the communes.
const COMMUNES: [(&str, &str); 18] = [
    ("dai-loc-ai-nghia", "Thị trấn Ái Nghĩa"),
    ("dai-loc-dai-an", "Xã Đại An"),
    ("dai-loc-dai-chanh", "Xã Đại Chánh"),
    ("dai-loc-dai-cuong", "Xã Đại Cường"),
    ("dai-loc-dai-dong", "Xã Đại Đồng"),
    ("dai-loc-dai-hiep", "Xã Đại Hiệp"),
    ("dai-loc-dai-hoa", "Xã Đại Hòa"),
    ("dai-loc-dai-hong", "Xã Đại Hồng"),
    ("dai-loc-dai-hung", "Xã Đại Hưng"),
    ("dai-loc-dai-lanh", "Xã Đại Lãnh"),
    ("dai-loc-dai-minh", "Xã Đại Minh"),
    ("dai-loc-dai-nghia", "Xã Đại Nghĩa"),
    ("dai-loc-dai-phong", "Xã Đại Phong"),
    ("dai-loc-dai-quang", "Xã Đại Quang"),
    ("dai-loc-dai-son", "Xã Đại Sơn"),
    ("dai-loc-dai-tan", "Xã Đại Tân"),
    ("dai-loc-dai-thang", "Xã Đại Thắng"),
    ("dai-loc-dai-thanh", "Xã Đại Thạnh"),
];
const DISTRICT: &str = "dai-loc";
/// Đại Hưng and Đại Lãnh are the communes with Cơ Tu villages.
const HUNG: usize = 8;
const LANH: usize = 9;

const KEY_LEADER_POSTS: [&str; 6] = [
    "party_secretary",
    "deputy_party_secretary",
    "council_chair",
    "council_vice_chair",
    "committee_chair",
    "committee_vice_chair",
];
const OTHER_CADRE_POSTS: [&str; 5] = [
    "front_chair",
    "youth_union_secretary",
    "women_union_chair",
    "farmers_union_chair",
    "veterans_union_chair",
];
const CIVIL_SERVANT_POSTS: [&str; 5] = [
    "office_statistics",
    "land_construction",
    "finance_accounting",
    "justice_civil_status",
    "culture_social",
];
/// Communes whose party secretary also chairs the People's Council, so
/// there is no separate council chair: 18 × 6 − 7 = 101 key leaders.
const CONCURRENT_COUNCIL_CHAIR: [usize; 7] = [2, 4, 7, 9, 11, 14, 16];
/// The communes whose police chief and military commander are commune
/// civil servants in the ledger (9 people exempt from political theory);
/// elsewhere the posts are held by officers the ledger does not hold.
const POLICE_CHIEF_UNITS: [usize; 4] = [0, 3, 6, 10];
const MILITARY_COMMANDER_UNITS: [usize; 5] = [1, 5, 8, 12, 15];

fn category_of(position: &str) -> &'static str {
    if KEY_LEADER_POSTS.contains(&position) || OTHER_CADRE_POSTS.contains(&position) {
        "cadre"
    } else if position == "part_time" {
        "part_time"
    } else {
        "civil_servant"
    }
}

/// The specialties each civil-servant post accepts (the shipped
/// `default-specialties` map; a unit test keeps the two equal).
fn accepted(post: &str) -> &'static [&'static str] {
    match post {
        "land_construction" => &["land_management", "construction", "surveying"],
        "finance_accounting" => &["accounting", "finance"],
        "justice_civil_status" => &["law"],
        "culture_social" => &["culture", "social_work", "education"],
        "office_statistics" => &["public_admin", "statistics"],
        "police_chief" => &["police", "law"],
        "military_commander" => &["military"],
        _ => &[],
    }
}

/// Specialties of cadres' diplomas.
const CADRE_LINES: [&str; 6] = [
    "public_admin",
    "public_admin",
    "law",
    "agriculture",
    "economics",
    "accounting",
];
/// Specialties from which a misassigned civil servant's is drawn (those
/// their post accepts are skipped).
const OTHER_LINES: [&str; 7] = [
    "agriculture",
    "economics",
    "education",
    "veterinary",
    "accounting",
    "law",
    "construction",
];

fn specialty_title(code: &str) -> &'static str {
    match code {
        "land_management" => "Quản lý đất đai",
        "construction" => "Xây dựng",
        "surveying" => "Trắc địa",
        "accounting" => "Kế toán",
        "finance" => "Tài chính – Ngân hàng",
        "law" => "Luật",
        "culture" => "Quản lý văn hóa",
        "social_work" => "Công tác xã hội",
        "education" => "Sư phạm",
        "public_admin" => "Hành chính",
        "statistics" => "Thống kê",
        "police" => "Nghiệp vụ Công an",
        "military" => "Quân sự cơ sở",
        "agriculture" => "Nông học",
        "economics" => "Kinh tế",
        "veterinary" => "Thú y",
        _ => "Tổng hợp",
    }
}

/// Part-time posts (người hoạt động không chuyên trách) and the specialty
/// their holders train in.
const PART_TIME_POSTS: [(&str, &str); 20] = [
    ("Phó Chỉ huy trưởng Quân sự", "military"),
    ("Phó Trưởng Công an", "police"),
    ("Văn thư – lưu trữ – thủ quỹ", "public_admin"),
    (
        "Kế hoạch – giao thông – thủy lợi – nông lâm ngư nghiệp",
        "agriculture",
    ),
    ("Lao động – thương binh và xã hội", "social_work"),
    ("Dân số – gia đình – trẻ em", "social_work"),
    ("Phó Chủ tịch Ủy ban Mặt trận Tổ quốc", "public_admin"),
    ("Phó Bí thư Đoàn Thanh niên", "public_admin"),
    ("Phó Chủ tịch Hội Liên hiệp Phụ nữ", "public_admin"),
    ("Phó Chủ tịch Hội Nông dân", "agriculture"),
    ("Phó Chủ tịch Hội Cựu chiến binh", "public_admin"),
    ("Chủ tịch Hội Người cao tuổi", "public_admin"),
    ("Chủ tịch Hội Chữ thập đỏ", "social_work"),
    ("Trưởng Ban Tuyên giáo Đảng ủy", "public_admin"),
    ("Chủ nhiệm Ủy ban Kiểm tra Đảng ủy", "law"),
    ("Văn phòng Đảng ủy", "public_admin"),
    ("Đài truyền thanh", "culture"),
    ("Nhân viên thú y", "veterinary"),
    ("Khuyến nông viên", "agriculture"),
    ("Kế toán Đảng ủy", "accounting"),
];

#[derive(Clone, Copy)]
struct Institution {
    id: &'static str,
    name: &'static str,
    in_province: bool,
}

const POLITICAL_SCHOOL: Institution = Institution {
    id: "qn-truong-chinh-tri",
    name: "Trường Chính trị tỉnh Quảng Nam",
    in_province: true,
};
const DISTRICT_CENTRE: Institution = Institution {
    id: "dl-trung-tam-bdct",
    name: "Trung tâm Bồi dưỡng chính trị huyện Đại Lộc",
    in_province: true,
};
const HOME_AFFAIRS: Institution = Institution {
    id: "qn-so-noi-vu",
    name: "Sở Nội vụ tỉnh Quảng Nam",
    in_province: true,
};
const ACADEMY_REGION_3: Institution = Institution {
    id: "hvct-hc-khu-vuc-3",
    name: "Học viện Chính trị – Hành chính khu vực III",
    in_province: false,
};
const QN_UNIVERSITY: Institution = Institution {
    id: "qn-dai-hoc-quang-nam",
    name: "Trường Đại học Quảng Nam",
    in_province: true,
};
const QN_ECONOMICS_TECHNOLOGY: Institution = Institution {
    id: "qn-trung-hoc-ktkt",
    name: "Trường Trung học Kinh tế – Kỹ thuật Quảng Nam",
    in_province: true,
};
const QN_MILITARY: Institution = Institution {
    id: "qn-truong-quan-su",
    name: "Trường Quân sự tỉnh Quảng Nam",
    in_province: true,
};
const POLICE_SCHOOL: Institution = Institution {
    id: "csnd-trung-cap-5",
    name: "Trường Trung cấp Cảnh sát nhân dân V",
    in_province: false,
};
const DN_ECONOMICS: Institution = Institution {
    id: "dn-dai-hoc-kinh-te",
    name: "Trường Đại học Kinh tế – Đại học Đà Nẵng",
    in_province: false,
};
const DN_COLLEGE: Institution = Institution {
    id: "dn-cao-dang-ktkh",
    name: "Trường Cao đẳng Kinh tế – Kế hoạch Đà Nẵng",
    in_province: false,
};
const HUE_LAW: Institution = Institution {
    id: "hue-dai-hoc-luat",
    name: "Trường Đại học Luật – Đại học Huế",
    in_province: false,
};
const HUE_AGRICULTURE: Institution = Institution {
    id: "hue-dai-hoc-nong-lam",
    name: "Trường Đại học Nông Lâm – Đại học Huế",
    in_province: false,
};
const BMT_LAW: Institution = Institution {
    id: "bmt-trung-cap-luat",
    name: "Trường Trung cấp Luật Buôn Ma Thuột",
    in_province: false,
};

// ---------------------------------------------------------------------------
// The composition.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    KeyLeader,
    OtherCadre,
    /// Police chiefs and military commanders: civil servants exempt from
    /// the political-theory standard.
    Exempt,
    CivilServant,
}

/// A career between the two report dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// In the same group on both dates.
    Stay(Group),
    /// Another cadre in 2006, a key leader in 2011.
    Promoted,
    /// Recruited (registered) in 2007–2011.
    New(Group),
    /// In post in 2006, left in 2007–2011.
    Left(Group),
    /// A part-time worker in 2006, a civil servant in 2011.
    FromPartTime,
    /// A part-time worker throughout (outside the standards).
    PartTime,
}

impl Path {
    fn group_2011(self) -> Option<Group> {
        match self {
            Path::Stay(g) | Path::New(g) => Some(g),
            Path::Promoted => Some(Group::KeyLeader),
            Path::FromPartTime => Some(Group::CivilServant),
            Path::Left(_) | Path::PartTime => None,
        }
    }

    /// Whether the person was registered before 2007.
    fn since_before_2007(self) -> bool {
        !matches!(self, Path::New(_))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Plain,
    /// Leaves in 2008 (seconded to the district) and returns in 2010.
    Returns,
    /// Leaves in 2007–2011 and returns to a post in 2012.
    ReturnsIn2012,
}

/// People sharing a career path and their levels: professional rank
/// (0 none, 1 elementary, 2 intermediate, 3 college, 4 university) and
/// political-theory rank (0 none, 1 elementary, 2 intermediate, 3 advanced)
/// on 2006-12-31 and on 2011-12-31, and whether they finished upper
/// secondary school. A rank that rises does so through a place completed in
/// 2007–2011; a rise only ever reaches intermediate or higher.
#[derive(Clone, Copy, Debug)]
struct Archetype {
    count: usize,
    path: Path,
    upper_secondary: bool,
    professional: (u8, u8),
    political: (u8, u8),
    /// The first person of the row has this special career.
    tag: Tag,
}

const fn row(
    count: usize,
    path: Path,
    upper_secondary: bool,
    professional: (u8, u8),
    political: (u8, u8),
) -> Archetype {
    Archetype {
        count,
        path,
        upper_secondary,
        professional,
        political,
        tag: Tag::Plain,
    }
}

const fn tagged(a: Archetype, tag: Tag) -> Archetype {
    Archetype { tag, ..a }
}

use Group::{CivilServant as CS, Exempt as EX, KeyLeader as KL, OtherCadre as OC};
const U: bool = true;
const L: bool = false;

/// The staff of the district. Standards on 2011-12-31 (meets all: upper
/// secondary, and professional/political ≥ intermediate/intermediate for key
/// leaders, elementary/elementary for other cadres, intermediate/elementary
/// for civil servants, political theory waived for the exempt posts).
const ARCHETYPES: &[Archetype] = &[
    // Key leaders in post throughout: 91.
    tagged(row(6, Path::Stay(KL), U, (4, 4), (2, 2)), Tag::Returns),
    row(4, Path::Stay(KL), U, (3, 3), (3, 3)),
    row(6, Path::Stay(KL), U, (2, 3), (2, 2)),
    row(6, Path::Stay(KL), U, (2, 2), (2, 2)),
    row(14, Path::Stay(KL), U, (2, 3), (1, 2)),
    row(10, Path::Stay(KL), U, (2, 4), (1, 3)),
    row(10, Path::Stay(KL), U, (1, 3), (1, 2)),
    row(8, Path::Stay(KL), U, (1, 2), (1, 2)),
    row(4, Path::Stay(KL), U, (0, 2), (2, 2)),
    row(3, Path::Stay(KL), U, (2, 2), (1, 2)),
    row(10, Path::Stay(KL), U, (1, 1), (1, 2)),
    row(4, Path::Stay(KL), U, (0, 0), (1, 2)),
    row(2, Path::Stay(KL), U, (3, 3), (1, 1)),
    row(4, Path::Stay(KL), L, (2, 2), (1, 2)),
    // Other cadres who became key leaders: 6.
    row(3, Path::Promoted, U, (2, 3), (1, 2)),
    row(2, Path::Promoted, U, (1, 2), (1, 2)),
    row(1, Path::Promoted, L, (2, 2), (2, 2)),
    // Key leaders recruited in 2010-2011: 4.
    row(3, Path::New(KL), U, (4, 4), (2, 2)),
    row(1, Path::New(KL), U, (2, 2), (2, 2)),
    // Key leaders who left (retired): 9.
    row(3, Path::Left(KL), U, (2, 2), (2, 2)),
    row(4, Path::Left(KL), U, (1, 1), (1, 1)),
    row(2, Path::Left(KL), L, (0, 0), (1, 1)),
    // Other cadres in post throughout: 76.
    row(3, Path::Stay(OC), U, (3, 3), (2, 2)),
    row(10, Path::Stay(OC), U, (2, 2), (2, 2)),
    row(3, Path::Stay(OC), U, (1, 3), (1, 2)),
    row(6, Path::Stay(OC), U, (1, 1), (1, 1)),
    row(12, Path::Stay(OC), U, (0, 2), (1, 2)),
    row(8, Path::Stay(OC), U, (0, 2), (0, 2)),
    row(6, Path::Stay(OC), U, (1, 2), (0, 2)),
    row(4, Path::Stay(OC), U, (2, 2), (0, 2)),
    row(10, Path::Stay(OC), U, (0, 0), (1, 2)),
    row(6, Path::Stay(OC), L, (1, 2), (1, 2)),
    row(4, Path::Stay(OC), L, (0, 0), (0, 2)),
    row(4, Path::Stay(OC), U, (0, 0), (1, 1)),
    // Other cadres recruited: 14.
    row(8, Path::New(OC), U, (2, 2), (2, 2)),
    row(1, Path::New(OC), U, (1, 1), (2, 2)),
    row(1, Path::New(OC), U, (1, 1), (1, 1)),
    row(2, Path::New(OC), U, (0, 0), (1, 1)),
    row(2, Path::New(OC), L, (2, 2), (1, 1)),
    // Other cadres who left: 8.
    row(3, Path::Left(OC), U, (2, 2), (1, 1)),
    row(5, Path::Left(OC), U, (0, 0), (1, 1)),
    // Police chiefs and military commanders: 9, and one who left.
    row(2, Path::Stay(EX), U, (3, 3), (2, 2)),
    row(3, Path::Stay(EX), U, (2, 2), (1, 2)),
    row(1, Path::Stay(EX), U, (1, 2), (0, 0)),
    row(3, Path::Stay(EX), U, (1, 1), (0, 0)),
    row(1, Path::Left(EX), U, (2, 2), (1, 1)),
    // Civil servants in post throughout: 165.
    row(8, Path::Stay(CS), U, (3, 3), (2, 2)),
    row(6, Path::Stay(CS), U, (2, 3), (1, 2)),
    row(26, Path::Stay(CS), U, (2, 2), (1, 2)),
    tagged(row(10, Path::Stay(CS), U, (2, 2), (1, 1)), Tag::Returns),
    row(6, Path::Stay(CS), U, (1, 2), (1, 2)),
    row(12, Path::Stay(CS), U, (0, 2), (1, 2)),
    row(6, Path::Stay(CS), U, (1, 3), (1, 2)),
    row(6, Path::Stay(CS), U, (2, 2), (0, 2)),
    row(30, Path::Stay(CS), U, (1, 1), (1, 2)),
    row(15, Path::Stay(CS), U, (0, 0), (1, 2)),
    row(12, Path::Stay(CS), L, (2, 2), (1, 2)),
    row(12, Path::Stay(CS), U, (2, 2), (0, 0)),
    row(8, Path::Stay(CS), U, (1, 1), (0, 0)),
    row(8, Path::Stay(CS), L, (0, 2), (1, 1)),
    // Part-time workers who became civil servants: 10.
    row(4, Path::FromPartTime, U, (2, 2), (1, 2)),
    row(3, Path::FromPartTime, U, (3, 3), (1, 1)),
    row(3, Path::FromPartTime, U, (0, 0), (0, 0)),
    // Civil servants recruited: 22.
    row(4, Path::New(CS), U, (2, 2), (1, 1)),
    row(3, Path::New(CS), U, (4, 4), (2, 2)),
    row(10, Path::New(CS), U, (2, 2), (0, 0)),
    row(5, Path::New(CS), U, (2, 2), (2, 2)),
    // Civil servants who left: 8.
    tagged(
        row(3, Path::Left(CS), U, (2, 2), (1, 1)),
        Tag::ReturnsIn2012,
    ),
    row(5, Path::Left(CS), U, (1, 1), (1, 1)),
];

/// Places of the window that are not rises of a level, by bucket.
const IN_PROGRESS_UNIVERSITY: usize = 70;
const IN_PROGRESS_COLLEGE: usize = 35;
const IN_PROGRESS_INTERMEDIATE: usize = 60;
const ENDED_INTERMEDIATE: usize = 25;
const ENDED_COLLEGE: usize = 5;
const ENDED_UNIVERSITY: usize = 6;
const LEAVERS_INTERMEDIATE: usize = 10;
const IN_PROGRESS_POLITICAL: usize = 10;
const ENDED_POLITICAL: usize = 10;
const ADVANCED_ON_INTERMEDIATE: usize = 30;
const IN_PROGRESS_ADVANCED: usize = 20;
/// Refresher places enrolled per year, 2007–2011 (8,320 in all).
const REFRESHER_BY_YEAR: [(i32, usize); 5] = [
    (2007, 1_480),
    (2008, 1_590),
    (2009, 1_660),
    (2010, 1_760),
    (2011, 1_830),
];
/// Places outside the window or never enrolled: they must not count.
const REFRESHER_2006: usize = 60;
const REFRESHER_2012: usize = 20;
const PROFESSIONAL_2012: usize = 6;
const CANCELLED: usize = 80;
/// People whose 2006 intermediate diploma came from a 2004–2006 place.
const HISTORIC_PLACES: usize = 12;
/// Civil servants trained in a specialty their post does not accept.
const MISASSIGNED: usize = 14;
/// Trainees with no plan entry, with only a plan for 2011–2015 though
/// trained before 2011, and with a plan for another specialty.
const NO_PLAN: usize = 12;
const PLAN_TOO_LATE: usize = 4;
const PLAN_OTHER_SPECIALTY: usize = 10;

// ---------------------------------------------------------------------------
// People.

#[derive(Clone, Debug, PartialEq, Eq)]
struct Seat {
    unit: usize,
    position: &'static str,
    title: Option<&'static str>,
}

impl Seat {
    fn new(unit: usize, position: &'static str) -> Self {
        Self {
            unit,
            position,
            title: None,
        }
    }

    fn category(&self) -> &'static str {
        category_of(self.position)
    }
}

#[derive(Clone, Debug)]
enum Change {
    Register(Seat),
    Assign(Seat),
    Leave(&'static str),
}

#[derive(Clone, Debug)]
struct Qualification {
    track: &'static str,
    level: &'static str,
    specialty: Option<&'static str>,
    day: Day,
}

struct Person {
    arch: Archetype,
    seat_2006: Option<Seat>,
    seat_2011: Option<Seat>,
    /// When a newcomer starts, a promotion or conversion takes effect.
    start: Option<Day>,
    /// When a leaver leaves.
    leave: Option<Day>,
    registered: Day,
    tenure: Vec<(Day, Change)>,
    birth_year: i32,
    female: bool,
    minority: bool,
    name: String,
    id: String,
    /// The specialty of their professional diplomas.
    line: &'static str,
    misassigned: bool,
    historic: bool,
    swapped: bool,
    qualifications: Vec<Qualification>,
}

impl Person {
    fn new(arch: Archetype) -> Self {
        Self {
            arch,
            seat_2006: None,
            seat_2011: None,
            start: None,
            leave: None,
            registered: Day(0),
            tenure: Vec::new(),
            birth_year: 1970,
            female: false,
            minority: false,
            name: String::new(),
            id: String::new(),
            line: "public_admin",
            misassigned: false,
            historic: false,
            swapped: false,
            qualifications: Vec::new(),
        }
    }

    fn path(&self) -> Path {
        self.arch.path
    }

    /// In the 2011 standards population (whatever their path).
    fn in_2011(&self) -> bool {
        self.path().group_2011().is_some()
    }

    fn in_post(&self, day: Day) -> bool {
        self.tenure
            .iter()
            .rev()
            .find(|(d, _)| *d <= day)
            .is_some_and(|(_, c)| !matches!(c, Change::Leave(_)))
    }

    fn seat_on(&self, day: Day) -> Option<&Seat> {
        self.tenure
            .iter()
            .rev()
            .filter(|(d, _)| *d <= day)
            .find_map(|(_, c)| match c {
                Change::Register(s) | Change::Assign(s) => Some(s),
                Change::Leave(_) => None,
            })
    }

    /// The seat that decides their specialty and plans: the 2011 one, else
    /// the 2006 one.
    fn main_seat(&self) -> Option<&Seat> {
        self.seat_2011.as_ref().or(self.seat_2006.as_ref())
    }

    fn upper_secondary(&self) -> bool {
        self.arch.upper_secondary
    }
}

/// A part-time worker's archetype (no levels that matter to a figure).
const PART_TIME: Archetype = row(0, Path::PartTime, true, (0, 0), (0, 0));

// ---------------------------------------------------------------------------
// Training places.

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Completed(Day),
    Failed(Day),
    Withdrawn(Day),
    Cancelled(Day),
}

struct Place {
    person: usize,
    /// `None`: nominated by the district.
    unit: Option<usize>,
    track: &'static str,
    level: Option<&'static str>,
    specialty: Option<&'static str>,
    title: String,
    institution: Institution,
    nominated: Day,
    /// `None` for a nomination cancelled before enrolment.
    enrolled: Option<Day>,
    planned_start: Day,
    planned_end: Day,
    outcome: Outcome,
    funding: Vec<(&'static str, i64)>,
}

/// Course lengths in days (from enrolment to the end), by kind.
#[derive(Clone, Copy)]
struct Course(i32, i32);

const INTERMEDIATE_COURSE: Course = Course(700, 760);
const BRIDGING_COURSE: Course = Course(700, 760);
const COLLEGE_COURSE: Course = Course(1060, 1100);
const UNIVERSITY_COURSE: Course = Course(1420, 1450);
const POLITICAL_COURSE: Course = Course(380, 450);
const ADVANCED_COURSE: Course = Course(700, 760);
const REFRESHER_COURSE: Course = Course(3, 20);

fn professional_level(rank: u8) -> &'static str {
    match rank {
        1 => "elementary",
        2 => "intermediate",
        3 => "college",
        _ => "university",
    }
}

fn political_level(rank: u8) -> &'static str {
    match rank {
        1 => "elementary",
        2 => "intermediate",
        _ => "advanced",
    }
}

/// The course of a professional place of `rank` for someone at `from`.
fn professional_course(rank: u8, from: u8) -> Course {
    match rank {
        2 => INTERMEDIATE_COURSE,
        3 if from >= 2 => BRIDGING_COURSE,
        3 => COLLEGE_COURSE,
        _ if from >= 3 => BRIDGING_COURSE,
        _ => UNIVERSITY_COURSE,
    }
}

fn window_start() -> Day {
    Day::ymd(2007, 1, 15)
}

/// The last day a place of the window may end to count as a rise by
/// 2011-12-31.
fn rise_deadline() -> Day {
    Day::ymd(2011, 12, 20)
}

/// The first day a place may end to change nothing by 2011-12-31.
fn after_2011() -> Day {
    Day::ymd(2012, 1, 12)
}

fn last_enrolment() -> Day {
    Day::ymd(2011, 11, 30)
}

// ---------------------------------------------------------------------------
// The generator.

struct Generator {
    rng: Rng,
    people: Vec<Person>,
    places: Vec<Place>,
    /// (day to record it, order within a day, command name, body).
    commands: Vec<(Day, u8, &'static str, Value)>,
    certificates: u32,
}

impl Generator {
    fn new(seed: u64) -> Self {
        Self {
            rng: Rng(seed ^ 0x0DA1_10C0_2012_0503),
            people: Vec::new(),
            places: Vec::new(),
            commands: Vec::new(),
            certificates: 0,
        }
    }

    fn indices(&self, keep: impl Fn(&Person) -> bool) -> Vec<usize> {
        (0..self.people.len())
            .filter(|i| keep(&self.people[*i]))
            .collect()
    }

    fn shuffled(&mut self, keep: impl Fn(&Person) -> bool) -> Vec<usize> {
        let mut v = self.indices(keep);
        self.rng.shuffle(&mut v);
        v
    }

    // --- people and their careers ---

    fn people(&mut self) {
        for arch in ARCHETYPES {
            for i in 0..arch.count {
                let tag = if i == 0 { arch.tag } else { Tag::Plain };
                self.people.push(Person::new(Archetype { tag, ..*arch }));
            }
        }
        self.seats_2011();
        self.successions();
        self.part_time_workers();
        self.swaps();
        for i in 0..self.people.len() {
            self.identity(i);
            self.tenure(i);
        }
        self.historic_and_misassigned();
        for i in 0..self.people.len() {
            self.line(i);
        }
        // Ids in order of registration, as a register hands them out.
        let mut order: Vec<usize> = (0..self.people.len()).collect();
        order.sort_by_key(|i| (self.people[*i].registered, *i));
        for (n, i) in order.into_iter().enumerate() {
            self.people[i].id = format!("dl-{:05}", n + 1);
        }
    }

    /// The posts of 2011, shared out among the people of each group.
    fn seats_2011(&mut self) {
        let mut key_leaders = Vec::new();
        let mut other_cadres = Vec::new();
        let mut exempt = Vec::new();
        let mut civil_servants = Vec::new();
        for unit in 0..COMMUNES.len() {
            for post in KEY_LEADER_POSTS {
                if !(post == "council_chair" && CONCURRENT_COUNCIL_CHAIR.contains(&unit)) {
                    key_leaders.push(Seat::new(unit, post));
                }
            }
            for post in OTHER_CADRE_POSTS {
                other_cadres.push(Seat::new(unit, post));
            }
            if POLICE_CHIEF_UNITS.contains(&unit) {
                exempt.push(Seat::new(unit, "police_chief"));
            }
            if MILITARY_COMMANDER_UNITS.contains(&unit) {
                exempt.push(Seat::new(unit, "military_commander"));
            }
            for post in CIVIL_SERVANT_POSTS {
                civil_servants.push(Seat::new(unit, post));
                civil_servants.push(Seat::new(unit, post));
            }
            if unit != 0 {
                civil_servants.push(Seat::new(unit, "land_construction"));
            }
        }
        for (group, seats) in [
            (KL, key_leaders),
            (OC, other_cadres),
            (EX, exempt),
            (CS, civil_servants),
        ] {
            let people = self.shuffled(|p| p.path().group_2011() == Some(group));
            for (i, seat) in people.into_iter().zip(seats) {
                self.people[i].seat_2011 = Some(seat);
            }
        }
    }

    /// Who replaced whom: a leaver's post of 2006 is a newcomer's of 2011,
    /// the leaver leaving shortly before the newcomer starts.
    fn successions(&mut self) {
        // Key leaders: promotions and recruitment at the 2010 party congress
        // and the 2011 council elections.
        let incoming = self.shuffled(|p| matches!(p.path(), Path::Promoted | Path::New(KL)));
        for &i in &incoming {
            let start = self.rng.day(Day::ymd(2010, 6, 1), Day::ymd(2011, 7, 31));
            self.people[i].start = Some(start);
        }
        let leavers = self.shuffled(|p| p.path() == Path::Left(KL));
        self.succeed(&leavers, &incoming, KL);

        // Other cadres: newcomers replace leavers and the promoted.
        let incoming = self.shuffled(|p| p.path() == Path::New(OC));
        let mut before = self.shuffled(|p| p.path() == Path::Promoted);
        before.extend(self.shuffled(|p| p.path() == Path::Left(OC)));
        for (n, &i) in incoming.iter().enumerate() {
            let start = match before.get(n) {
                Some(&b) if self.people[b].path() == Path::Promoted => {
                    let promoted = self.people[b].start.unwrap_or(Day::ymd(2011, 1, 1));
                    promoted.plus(self.rng.range(15, 120))
                }
                _ => self.rng.day(Day::ymd(2008, 1, 1), Day::ymd(2011, 9, 30)),
            };
            self.people[i].start = Some(start);
        }
        for (n, &b) in before.iter().enumerate() {
            let Some(&i) = incoming.get(n) else { break };
            self.people[b].seat_2006 = self.people[i].seat_2011.clone();
            if self.people[b].path() != Path::Promoted {
                let start = self.people[i].start.unwrap_or(Day::ymd(2009, 1, 1));
                self.people[b].leave = Some(self.leave_before(start));
            }
        }

        // Civil servants: recruits and converted part-time workers.
        let incoming = self.shuffled(|p| matches!(p.path(), Path::New(CS) | Path::FromPartTime));
        for &i in &incoming {
            let start = if self.people[i].path() == Path::FromPartTime {
                self.rng.day(Day::ymd(2009, 6, 1), Day::ymd(2010, 12, 31))
            } else {
                self.rng.day(Day::ymd(2007, 3, 1), Day::ymd(2011, 9, 30))
            };
            self.people[i].start = Some(start);
        }
        let leavers = self.shuffled(|p| p.path() == Path::Left(CS));
        self.succeed(&leavers, &incoming, CS);

        // The exempt leaver's post went to an officer outside the ledger.
        for i in self.indices(|p| p.path() == Path::Left(EX)) {
            self.people[i].seat_2006 = Some(Seat::new(17, "police_chief"));
            let leave = self.rng.day(Day::ymd(2008, 1, 1), Day::ymd(2011, 6, 30));
            self.people[i].leave = Some(leave);
        }

        // Everyone else kept their post.
        for p in &mut self.people {
            if p.seat_2006.is_none() && matches!(p.path(), Path::Stay(_)) {
                p.seat_2006 = p.seat_2011.clone();
            }
        }
    }

    fn leave_before(&mut self, start: Day) -> Day {
        let leave = start.plus(-self.rng.range(20, 150));
        // Leavers are in post on 2006-12-31 (they count in the baseline).
        leave.max(Day::ymd(2007, 1, 10)).min(start.plus(-1))
    }

    fn succeed(&mut self, leavers: &[usize], incoming: &[usize], group: Group) {
        for (n, &l) in leavers.iter().enumerate() {
            let (seat, start) = match incoming.get(n) {
                Some(&i) => (
                    self.people[i].seat_2011.clone(),
                    self.people[i].start.unwrap_or(Day::ymd(2009, 1, 1)),
                ),
                // More leavers than newcomers: a post left vacant.
                None => (
                    Some(Seat::new(
                        self.rng.below(COMMUNES.len()),
                        match group {
                            KL => "committee_vice_chair",
                            _ => "culture_social",
                        },
                    )),
                    self.rng.day(Day::ymd(2008, 1, 1), Day::ymd(2011, 6, 30)),
                ),
            };
            self.people[l].seat_2006 = seat;
            self.people[l].leave = Some(self.leave_before(start));
        }
    }

    /// Part-time workers: 17–22 per unit, and the part-time posts of those
    /// who became civil servants.
    fn part_time_workers(&mut self) {
        for unit in 0..COMMUNES.len() {
            let n = self.rng.range(17, 22) as usize;
            let offset = self.rng.below(PART_TIME_POSTS.len());
            for k in 0..n {
                let (title, _) = PART_TIME_POSTS[(offset + k) % PART_TIME_POSTS.len()];
                let mut person = Person::new(PART_TIME);
                person.seat_2006 = Some(Seat {
                    unit,
                    position: "part_time",
                    title: Some(title),
                });
                self.people.push(person);
            }
        }
        for i in self.indices(|p| p.path() == Path::FromPartTime) {
            let unit = self.people[i].seat_2011.as_ref().map_or(0, |s| s.unit);
            let title = self.rng.pick(&PART_TIME_POSTS).0;
            self.people[i].seat_2006 = Some(Seat {
                unit,
                position: "part_time",
                title: Some(title),
            });
        }
    }

    /// Three pairs of civil servants swap communes in 2009–2010.
    fn swaps(&mut self) {
        let candidates = self.shuffled(|p| p.path() == Path::Stay(CS) && p.arch.tag == Tag::Plain);
        let mut pairs = 0;
        for (n, &a) in candidates.iter().enumerate() {
            if pairs == 3 {
                break;
            }
            if self.people[a].swapped {
                continue;
            }
            let Some(seat_a) = self.people[a].seat_2011.clone() else {
                continue;
            };
            let partner = candidates[n + 1..].iter().copied().find(|&b| {
                !self.people[b].swapped
                    && self.people[b]
                        .seat_2011
                        .as_ref()
                        .is_some_and(|s| s.position == seat_a.position && s.unit != seat_a.unit)
            });
            if let Some(b) = partner {
                let seat_b = self.people[b].seat_2011.clone();
                self.people[a].seat_2006 = seat_b;
                self.people[b].seat_2006 = Some(seat_a);
                let day = self.rng.day(Day::ymd(2009, 1, 5), Day::ymd(2010, 12, 20));
                self.people[a].start = Some(day);
                self.people[b].start = Some(day);
                self.people[a].swapped = true;
                self.people[b].swapped = true;
                pairs += 1;
            }
        }
    }

    fn identity(&mut self, i: usize) {
        let path = self.people[i].path();
        let seat = self.people[i].main_seat().cloned();
        let position = seat.as_ref().map_or("part_time", |s| s.position);
        let unit = seat.as_ref().map_or(0, |s| s.unit);
        let rng = &mut self.rng;
        let birth_year = match path {
            Path::Left(KL) => rng.range(1946, 1951),
            Path::Left(_) => rng.range(1950, 1975),
            Path::New(_) => rng.range(1975, 1986),
            Path::FromPartTime => rng.range(1970, 1984),
            Path::PartTime => rng.range(1950, 1986),
            _ if position == "youth_union_secretary" => rng.range(1976, 1984),
            Path::Stay(KL) | Path::Promoted => rng.range(1953, 1972),
            Path::Stay(_) => rng.range(1956, 1982),
        };
        let female = match position {
            "women_union_chair" => true,
            "veterans_union_chair" | "military_commander" | "police_chief" => false,
            _ if KEY_LEADER_POSTS.contains(&position) => rng.percent(12),
            _ => rng.percent(40),
        };
        let minority_percent = match unit {
            HUNG => 25,
            LANH => 6,
            _ => 1,
        };
        let minority = rng.percent(minority_percent);
        let name = full_name(rng, female, minority);
        let p = &mut self.people[i];
        p.birth_year = birth_year;
        p.female = female;
        p.minority = minority;
        p.name = name;
    }

    fn tenure(&mut self, i: usize) {
        let path = self.people[i].path();
        let tag = self.people[i].arch.tag;
        let birth = self.people[i].birth_year;
        // In post from their twenties, and not before the province existed
        // again (1997).
        let earliest = Day::ymd((birth + 21).max(1997), 2, 1);
        let registered = match path {
            Path::New(_) => self.people[i].start.unwrap_or(Day::ymd(2009, 1, 1)),
            Path::PartTime if self.rng.percent(20) => {
                self.rng.day(Day::ymd(2007, 1, 10), Day::ymd(2010, 12, 31))
            }
            _ => self
                .rng
                .day(earliest.min(Day::ymd(2005, 6, 1)), Day::ymd(2005, 12, 31)),
        };
        let p = &self.people[i];
        let mut tenure = Vec::new();
        let first = match path {
            Path::New(_) => p.seat_2011.clone(),
            _ => p.seat_2006.clone(),
        };
        if let Some(seat) = first {
            tenure.push((registered, Change::Register(seat)));
        }
        match path {
            Path::Promoted | Path::FromPartTime => {
                if let (Some(start), Some(seat)) = (p.start, p.seat_2011.clone()) {
                    tenure.push((start, Change::Assign(seat)));
                }
            }
            Path::Stay(_) if p.swapped => {
                if let (Some(start), Some(seat)) = (p.start, p.seat_2011.clone()) {
                    tenure.push((start, Change::Assign(seat)));
                }
            }
            _ => {}
        }
        if tag == Tag::Returns {
            let left = self.rng.day(Day::ymd(2008, 2, 1), Day::ymd(2008, 5, 31));
            let back = self.rng.day(Day::ymd(2010, 3, 1), Day::ymd(2010, 6, 30));
            tenure.push((left, Change::Leave("transferred")));
            if let Some(seat) = self.people[i].seat_2011.clone() {
                tenure.push((back, Change::Assign(seat)));
            }
        }
        if let (Path::Left(group), Some(leave)) = (path, self.people[i].leave) {
            let reason = match group {
                KL => "retired",
                _ if tag == Tag::ReturnsIn2012 => "transferred",
                _ if birth <= 1952 => "retired",
                _ => self.rng.pick(&["transferred", "resigned", "transferred"]),
            };
            tenure.push((leave, Change::Leave(reason)));
            if tag == Tag::ReturnsIn2012 {
                let back = self.rng.day(Day::ymd(2012, 3, 1), Day::ymd(2012, 8, 31));
                let unit = self.people[i].seat_2006.as_ref().map_or(0, |s| s.unit);
                let seat = Seat::new((unit + 3) % COMMUNES.len(), "culture_social");
                tenure.push((back, Change::Assign(seat)));
            }
        }
        tenure.sort_by_key(|(d, _)| *d);
        let p = &mut self.people[i];
        p.registered = registered;
        p.tenure = tenure;
    }

    fn historic_and_misassigned(&mut self) {
        let historic = self.shuffled(|p| {
            p.path() == Path::Stay(CS)
                && p.arch.professional.0 == 2
                && p.arch.tag == Tag::Plain
                && p.registered <= Day::ymd(2004, 6, 1)
        });
        for i in historic.into_iter().take(HISTORIC_PLACES) {
            self.people[i].historic = true;
        }
        let misassigned = self.shuffled(|p| {
            matches!(
                p.path(),
                Path::Stay(CS) | Path::New(CS) | Path::FromPartTime
            ) && p.arch.professional.1 >= 1
                && !p.swapped
        });
        for i in misassigned.into_iter().take(MISASSIGNED) {
            self.people[i].misassigned = true;
        }
    }

    fn line(&mut self, i: usize) {
        let p = &self.people[i];
        let misassigned = p.misassigned;
        let title = p.seat_2006.as_ref().and_then(|s| s.title);
        let position = p.main_seat().map_or("part_time", |s| s.position);
        let line = match p.path() {
            Path::PartTime => PART_TIME_POSTS
                .iter()
                .find(|(t, _)| Some(*t) == title)
                .map_or("public_admin", |(_, l)| l),
            _ if category_of(position) == "cadre" => self.rng.pick(&CADRE_LINES),
            _ if misassigned => {
                let others: Vec<&'static str> = OTHER_LINES
                    .iter()
                    .copied()
                    .filter(|s| !accepted(position).contains(s))
                    .collect();
                self.rng.pick(&others)
            }
            _ => match accepted(position) {
                [] => "public_admin",
                list if position == "police_chief" => {
                    if self.rng.percent(75) {
                        list[0]
                    } else {
                        "law"
                    }
                }
                list => self.rng.pick(list),
            },
        };
        self.people[i].line = line;
    }

    // --- qualifications recorded outside the window's places ---

    fn qualifications(&mut self) {
        for i in 0..self.people.len() {
            let p = &self.people[i];
            let birth = p.birth_year;
            let path = p.path();
            let (p06, p11) = p.arch.professional;
            let (l06, l11) = p.arch.political;
            let line = p.line;
            let historic = p.historic;
            let upper = p.upper_secondary();
            let before_2007 = path.since_before_2007();
            // Newcomers bring their diplomas; the others' are of 2006 or
            // earlier.
            let latest = if before_2007 {
                Day::ymd(2006, 10, 31)
            } else {
                p.registered.plus(-45)
            };
            let mut quals = Vec::new();
            let school = if upper {
                ("upper_secondary", birth + 18)
            } else {
                ("lower_secondary", birth + 15)
            };
            quals.push(Qualification {
                track: "general_education",
                level: school.0,
                specialty: None,
                day: Day::ymd(school.1, 6, self.rng.range(1, 28) as u32),
            });
            let (prof, pol) = match path {
                Path::PartTime => {
                    let prof = match self.rng.below(100) {
                        0..=24 => 1,
                        25..=44 => 2,
                        _ => 0,
                    };
                    (prof, u8::from(self.rng.percent(30)))
                }
                Path::New(_) => (p11, l11),
                _ => (p06, l06),
            };
            let from = Day::ymd((birth + 20).max(1985), 1, 1).min(latest.plus(-400));
            if prof >= 1 && !historic {
                let day = self.rng.day(from, latest);
                if prof >= 3 && self.rng.percent(50) {
                    quals.push(Qualification {
                        track: "professional",
                        level: "intermediate",
                        specialty: Some(line),
                        day: day.plus(-self.rng.range(900, 1500)),
                    });
                }
                quals.push(Qualification {
                    track: "professional",
                    level: professional_level(prof),
                    specialty: Some(line),
                    day,
                });
            }
            if pol >= 1 {
                let from = Day::ymd((birth + 22).max(1990), 1, 1).min(latest.plus(-300));
                let day = self.rng.day(from, latest);
                if pol >= 2 && self.rng.percent(60) {
                    quals.push(Qualification {
                        track: "political_theory",
                        level: "elementary",
                        specialty: None,
                        day: day.plus(-self.rng.range(700, 1400)),
                    });
                }
                quals.push(Qualification {
                    track: "political_theory",
                    level: political_level(pol),
                    specialty: None,
                    day,
                });
            }
            if path != Path::PartTime && self.rng.percent(35) {
                let level = if prof >= 3 { "specialist" } else { "clerk" };
                quals.push(Qualification {
                    track: "state_management",
                    level,
                    specialty: None,
                    day: self.rng.day(from, latest),
                });
            }
            if self.rng.percent(30) {
                quals.push(Qualification {
                    track: "it",
                    level: self.rng.pick(&["A", "B"]),
                    specialty: None,
                    day: self.rng.day(from, latest),
                });
            }
            if self.rng.percent(15) {
                quals.push(Qualification {
                    track: "foreign_language",
                    level: self.rng.pick(&["A", "B"]),
                    specialty: Some("english"),
                    day: self.rng.day(from, latest),
                });
            }
            self.people[i].qualifications = quals;
        }
    }

    // --- training places ---

    /// Picks enrolment and nomination days for `person` with the enrolment
    /// in `lo..=hi`, nominated while in post (and, with `stay`, still in
    /// post at the end); `None` when no such days are found.
    fn schedule(
        &mut self,
        person: usize,
        (lo, hi): (Day, Day),
        course: Course,
        stay: bool,
    ) -> Option<(Day, Day, Day)> {
        for _ in 0..60 {
            let enrolled = self.rng.day(lo, hi);
            let nominated = enrolled.plus(-self.rng.range(12, 45));
            let end = enrolled.plus(self.rng.range(course.0, course.1));
            let p = &self.people[person];
            if p.in_post(nominated) && p.in_post(enrolled) && (!stay || p.in_post(end)) {
                return Some((nominated, enrolled, end));
            }
        }
        None
    }

    fn nominating_unit(
        &mut self,
        person: usize,
        day: Day,
        district_percent: usize,
    ) -> Option<usize> {
        if self.rng.percent(district_percent) {
            return None;
        }
        Some(self.people[person].seat_on(day).map_or(0, |s| s.unit))
    }

    fn add_place(
        &mut self,
        person: usize,
        track: &'static str,
        rank: u8,
        days: (Day, Day, Day),
        outcome: Outcome,
        district_percent: usize,
    ) {
        let (nominated, enrolled, end) = days;
        let line = self.people[person].line;
        let unit = self.nominating_unit(person, nominated, district_percent);
        let (level, specialty, title, institution) = match track {
            "professional" => {
                let level = professional_level(rank);
                let institution = self.professional_institution(rank, line);
                let prefix = match rank {
                    1 => "Sơ cấp",
                    2 => "Trung cấp",
                    3 => "Cao đẳng",
                    _ => "Đại học",
                };
                let mode = if rank >= 3 {
                    " (vừa làm vừa học)"
                } else {
                    ""
                };
                (
                    Some(level),
                    Some(line),
                    format!("{prefix} {}{mode}", specialty_title(line)),
                    institution,
                )
            }
            "political_theory" => {
                let (title, institution) = match rank {
                    1 => ("Sơ cấp Lý luận chính trị", DISTRICT_CENTRE),
                    2 => ("Trung cấp Lý luận chính trị – Hành chính", POLITICAL_SCHOOL),
                    _ => (
                        "Cao cấp Lý luận chính trị (hệ không tập trung)",
                        ACADEMY_REGION_3,
                    ),
                };
                (
                    Some(political_level(rank)),
                    None,
                    title.to_owned(),
                    institution,
                )
            }
            "state_management" => (
                Some("specialist"),
                None,
                "Quản lý nhà nước chương trình chuyên viên".to_owned(),
                HOME_AFFAIRS,
            ),
            "it" => (
                Some("B"),
                None,
                "Tin học ứng dụng trình độ B".to_owned(),
                QN_ECONOMICS_TECHNOLOGY,
            ),
            _ => {
                let position = self.people[person]
                    .seat_on(nominated)
                    .map_or("part_time", |s| s.position);
                let (title, institution) = self.refresher_course(position);
                (None, None, title.to_owned(), institution)
            }
        };
        let funding = self.funding(track, rank, institution.in_province);
        self.places.push(Place {
            person,
            unit,
            track,
            level,
            specialty,
            title,
            institution,
            nominated,
            enrolled: (!matches!(outcome, Outcome::Cancelled(_))).then_some(enrolled),
            planned_start: enrolled,
            planned_end: end,
            outcome,
            funding,
        });
    }

    fn professional_institution(&mut self, rank: u8, line: &str) -> Institution {
        match (rank, line) {
            (_, "military") => QN_MILITARY,
            (_, "police") => POLICE_SCHOOL,
            (2, "law") => BMT_LAW,
            (2, "agriculture" | "veterinary") => HUE_AGRICULTURE,
            (2, _) => QN_ECONOMICS_TECHNOLOGY,
            (3, "accounting" | "finance" | "economics" | "statistics") if self.rng.percent(50) => {
                DN_COLLEGE
            }
            (3, _) => QN_UNIVERSITY,
            (_, "law") => HUE_LAW,
            (_, "agriculture" | "veterinary" | "land_management") => HUE_AGRICULTURE,
            (_, "accounting" | "finance" | "economics" | "statistics" | "public_admin") => {
                DN_ECONOMICS
            }
            _ => QN_UNIVERSITY,
        }
    }

    fn refresher_course(&mut self, position: &str) -> (&'static str, Institution) {
        let specific = match position {
            "land_construction" => "Bồi dưỡng nghiệp vụ địa chính – xây dựng cấp xã",
            "finance_accounting" => "Bồi dưỡng nghiệp vụ quản lý ngân sách và kế toán xã",
            "justice_civil_status" => "Bồi dưỡng nghiệp vụ tư pháp – hộ tịch",
            "culture_social" => "Bồi dưỡng nghiệp vụ văn hóa – xã hội",
            "office_statistics" => "Bồi dưỡng nghiệp vụ văn phòng – thống kê",
            "police_chief" => "Bồi dưỡng nghiệp vụ công an xã",
            "military_commander" => "Bồi dưỡng kiến thức quốc phòng – an ninh",
            "council_chair" | "council_vice_chair" => "Bồi dưỡng kỹ năng hoạt động của HĐND cấp xã",
            "part_time" => "Bồi dưỡng nghiệp vụ cho người hoạt động không chuyên trách",
            p if KEY_LEADER_POSTS.contains(&p) => "Bồi dưỡng kỹ năng lãnh đạo, quản lý cấp xã",
            _ => "Bồi dưỡng nghiệp vụ công tác Mặt trận và đoàn thể",
        };
        match self.rng.below(10) {
            0..=5 => (specific, DISTRICT_CENTRE),
            6 => ("Bồi dưỡng cập nhật kiến thức pháp luật", DISTRICT_CENTRE),
            7 => ("Bồi dưỡng kiến thức quản lý nhà nước", HOME_AFFAIRS),
            8 => ("Bồi dưỡng nghiệp vụ quản lý hành chính", POLITICAL_SCHOOL),
            _ => (specific, POLITICAL_SCHOOL),
        }
    }

    /// Funding lines: the province and the district pay for most places
    /// (the district "reserves budget each year"), the commune (agency) and
    /// the trainee for some.
    fn funding(&mut self, track: &str, rank: u8, in_province: bool) -> Vec<(&'static str, i64)> {
        let r = &mut self.rng;
        let mut lines = match (track, rank) {
            ("professional", 2) => vec![
                ("province", r.vnd(3_000_000, 4_500_000)),
                ("district", r.vnd(1_500_000, 2_500_000)),
            ],
            ("professional", 3) => vec![
                ("province", r.vnd(4_000_000, 6_000_000)),
                ("district", r.vnd(2_000_000, 3_000_000)),
            ],
            ("professional", _) => vec![
                ("district", r.vnd(4_000_000, 8_000_000)),
                ("self", r.vnd(6_000_000, 12_000_000)),
            ],
            ("political_theory", 3) => vec![
                ("province", r.vnd(8_000_000, 12_000_000)),
                ("district", r.vnd(2_000_000, 4_000_000)),
            ],
            ("political_theory", _) => vec![("province", r.vnd(4_000_000, 6_000_000))],
            ("refresher", _) if r.percent(55) => vec![("district", r.vnd(300_000, 1_200_000))],
            _ => vec![("province", r.vnd(500_000, 1_500_000))],
        };
        if !in_province && track == "professional" && rank <= 3 {
            lines.push(("self", r.vnd(1_000_000, 3_000_000)));
        }
        if r.percent(12) {
            lines.push(("agency", r.vnd(200_000, 800_000)));
        }
        if track == "political_theory" && rank == 2 && r.percent(40) {
            lines.push(("district", r.vnd(1_000_000, 2_000_000)));
        }
        lines
    }

    fn training(&mut self) {
        self.historic_places();
        self.rises();
        self.neutral_professional();
        self.neutral_political();
        self.refreshers();
        self.outside_the_window();
    }

    /// 2004–2006 intermediate places whose completion is the 2006 diploma.
    fn historic_places(&mut self) {
        for i in self.indices(|p| p.historic) {
            let nominated = self.rng.day(Day::ymd(2004, 7, 20), Day::ymd(2004, 8, 20));
            let enrolled = self.rng.day(Day::ymd(2004, 9, 5), Day::ymd(2004, 9, 20));
            let end = self.rng.day(Day::ymd(2006, 6, 10), Day::ymd(2006, 6, 30));
            self.add_place(
                i,
                "professional",
                2,
                (nominated, enrolled, end),
                Outcome::Completed(end),
                0,
            );
        }
    }

    /// The places through which levels rise between the two dates
    /// (newcomers bring their levels with them).
    fn rises(&mut self) {
        for i in self.indices(|p| p.in_2011() && p.path().since_before_2007()) {
            let (p06, p11) = self.people[i].arch.professional;
            let (l06, l11) = self.people[i].arch.political;
            if p11 > p06 {
                let course = professional_course(p11, p06);
                let window = (window_start(), rise_deadline().plus(-course.1));
                if let Some(days) = self.schedule(i, window, course, true) {
                    self.add_place(i, "professional", p11, days, Outcome::Completed(days.2), 0);
                }
            }
            if l11 > l06 {
                let course = if l11 >= 3 {
                    ADVANCED_COURSE
                } else {
                    POLITICAL_COURSE
                };
                let window = (window_start(), rise_deadline().plus(-course.1));
                if let Some(days) = self.schedule(i, window, course, true) {
                    self.add_place(
                        i,
                        "political_theory",
                        l11,
                        days,
                        Outcome::Completed(days.2),
                        30,
                    );
                }
            }
        }
    }

    fn count(&self, track: &str, level: &str) -> usize {
        let window = (Day::ymd(2007, 1, 1), Day::ymd(2011, 12, 31));
        self.places
            .iter()
            .filter(|p| p.track == track && p.level == Some(level))
            .filter(|p| p.enrolled.is_some_and(|d| d >= window.0 && d <= window.1))
            .count()
    }

    /// Adds up to `n` places, one per person of `pool`, each ending as
    /// `outcome` decides; returns how many it added.
    #[allow(clippy::too_many_arguments)]
    fn bucket(
        &mut self,
        pool: &[usize],
        n: usize,
        track: &'static str,
        rank: u8,
        window: (Day, Day),
        course: impl Fn(&Person) -> Course,
        outcome: impl Fn(&mut Rng, (Day, Day, Day)) -> Outcome,
    ) -> Vec<usize> {
        let mut used = Vec::new();
        for &i in pool {
            if used.len() == n {
                break;
            }
            let course = course(&self.people[i]);
            let window = (window.0.max(after_start(course, window)), window.1);
            if let Some(days) = self.schedule(i, window, course, false) {
                let outcome = outcome(&mut self.rng, days);
                self.add_place(
                    i,
                    track,
                    rank,
                    days,
                    outcome,
                    if track == "political_theory" { 30 } else { 0 },
                );
                used.push(i);
            }
        }
        used
    }

    fn neutral_professional(&mut self) {
        let mut used: BTreeSet<usize> = BTreeSet::new();
        // Still running at the end of 2011: they change nothing by then.
        let running = (Day(0), last_enrolment());
        let end_after_2011 = |r: &mut Rng, (_, enrolled, end): (Day, Day, Day)| match r.below(100) {
            0..=84 => Outcome::Completed(end),
            85..=91 => Outcome::Failed(end),
            _ => Outcome::Withdrawn(enrolled.plus(r.range(90, 400))),
        };
        let steady = |p: &Person| p.in_2011() && p.arch.professional.0 == p.arch.professional.1;
        let pool = self.shuffled(|p| steady(p) && matches!(p.arch.professional.1, 2 | 3));
        let took = self.bucket(
            &pool,
            IN_PROGRESS_UNIVERSITY,
            "professional",
            4,
            running,
            |p| professional_course(4, p.arch.professional.1),
            end_after_2011,
        );
        used.extend(took);
        let pool = self.shuffled(|p| steady(p) && p.arch.professional.1 <= 2);
        let pool: Vec<usize> = pool.into_iter().filter(|i| !used.contains(i)).collect();
        let took = self.bucket(
            &pool,
            IN_PROGRESS_COLLEGE,
            "professional",
            3,
            running,
            |p| professional_course(3, p.arch.professional.1),
            end_after_2011,
        );
        used.extend(took);
        let pool = self.shuffled(|p| steady(p) && p.arch.professional.1 <= 1);
        let pool: Vec<usize> = pool.into_iter().filter(|i| !used.contains(i)).collect();
        let took = self.bucket(
            &pool,
            IN_PROGRESS_INTERMEDIATE,
            "professional",
            2,
            running,
            |_| INTERMEDIATE_COURSE,
            end_after_2011,
        );
        used.extend(took);

        // Failed or withdrawn in the window.
        let ended = (Day::ymd(2007, 2, 1), Day::ymd(2011, 6, 30));
        let end_early = |r: &mut Rng, (_, enrolled, _): (Day, Day, Day)| {
            let day = enrolled.plus(r.range(60, 330));
            if r.percent(50) {
                Outcome::Failed(day)
            } else {
                Outcome::Withdrawn(day)
            }
        };
        for (n, rank, top) in [
            (ENDED_INTERMEDIATE, 2, 1),
            (ENDED_COLLEGE, 3, 2),
            (ENDED_UNIVERSITY, 4, 3),
        ] {
            let pool = self.shuffled(|p| steady(p) && p.arch.professional.1 <= top);
            let pool: Vec<usize> = pool.into_iter().filter(|i| !used.contains(i)).collect();
            let took = self.bucket(
                &pool,
                n,
                "professional",
                rank,
                ended,
                |p| professional_course(rank, p.arch.professional.1),
                end_early,
            );
            used.extend(took);
        }

        // People who left: completed before leaving, or withdrawn on leaving.
        let leavers = self.shuffled(|p| matches!(p.path(), Path::Left(_)));
        let mut added = 0;
        for i in leavers {
            if added == LEAVERS_INTERMEDIATE {
                break;
            }
            let Some(leave) = self.people[i].leave else {
                continue;
            };
            if leave < Day::ymd(2007, 4, 1) {
                continue;
            }
            let window = (Day::ymd(2007, 2, 1), leave.plus(-40));
            if let Some(days) = self.schedule(i, window, INTERMEDIATE_COURSE, false) {
                let outcome = if days.2 < leave {
                    Outcome::Completed(days.2)
                } else {
                    Outcome::Withdrawn(leave.plus(-self.rng.range(3, 20)).max(days.1.plus(1)))
                };
                self.add_place(i, "professional", 2, days, outcome, 0);
                added += 1;
            }
        }

        // The rest: part-time workers (outside the standards population).
        self.part_time_places("professional", 2, 500);
        self.part_time_places("professional", 3, 100);
        self.part_time_places("professional", 4, 96);
    }

    /// Part-time workers' places of `track`/`rank` until the window holds
    /// `target` of them.
    fn part_time_places(&mut self, track: &'static str, rank: u8, target: usize) {
        let level = if track == "professional" {
            professional_level(rank)
        } else {
            political_level(rank)
        };
        let pool = self.shuffled(|p| p.path() == Path::PartTime);
        let mut k = 0;
        let mut attempts = 0;
        while self.count(track, level) < target && attempts < 20 * target + 100 {
            attempts += 1;
            let Some(&i) = pool.get(k % pool.len().max(1)) else {
                return;
            };
            k += 1;
            let course = match track {
                "professional" => professional_course(rank, self.people[i].arch.professional.1),
                _ => POLITICAL_COURSE,
            };
            let window = (Day::ymd(2007, 1, 20), last_enrolment());
            if let Some(days) = self.schedule(i, window, course, true) {
                let outcome = match self.rng.below(100) {
                    0..=91 => Outcome::Completed(days.2),
                    92..=95 => Outcome::Failed(days.2),
                    _ => Outcome::Withdrawn(days.1.plus(self.rng.range(60, 300))),
                };
                self.add_place(
                    i,
                    track,
                    rank,
                    days,
                    outcome,
                    if track == "political_theory" { 30 } else { 0 },
                );
            }
        }
    }

    fn neutral_political(&mut self) {
        let mut used: BTreeSet<usize> = BTreeSet::new();
        let steady = |p: &Person| p.in_2011() && p.arch.political.0 == p.arch.political.1;
        let running = (Day(0), last_enrolment());
        let end_after_2011 = |r: &mut Rng, (_, enrolled, end): (Day, Day, Day)| match r.below(100) {
            0..=89 => Outcome::Completed(end),
            _ => Outcome::Withdrawn(enrolled.plus(r.range(120, 300))),
        };
        let pool = self.shuffled(|p| steady(p) && p.arch.political.1 <= 1);
        let took = self.bucket(
            &pool,
            IN_PROGRESS_POLITICAL,
            "political_theory",
            2,
            running,
            |_| POLITICAL_COURSE,
            end_after_2011,
        );
        used.extend(took);
        let ended = (Day::ymd(2007, 2, 1), Day::ymd(2011, 6, 30));
        let pool = self.shuffled(|p| steady(p) && p.arch.political.1 <= 1);
        let pool: Vec<usize> = pool.into_iter().filter(|i| !used.contains(i)).collect();
        let took = self.bucket(
            &pool,
            ENDED_POLITICAL,
            "political_theory",
            2,
            ended,
            |_| POLITICAL_COURSE,
            |r, (_, enrolled, _)| {
                let day = enrolled.plus(r.range(30, 300));
                if r.percent(50) {
                    Outcome::Failed(day)
                } else {
                    Outcome::Withdrawn(day)
                }
            },
        );
        used.extend(took);

        // Advanced courses for people who already had the intermediate
        // level in 2006: completed in the window, raising nothing counted.
        let pool = self.shuffled(|p| {
            p.in_2011()
                && p.arch.political == (2, 2)
                && matches!(p.path(), Path::Stay(_) | Path::Promoted)
                && p.arch.tag == Tag::Plain
        });
        let mut added = 0;
        for i in pool {
            if added == ADVANCED_ON_INTERMEDIATE {
                break;
            }
            let window = (
                Day::ymd(2007, 2, 1),
                rise_deadline().plus(-ADVANCED_COURSE.1),
            );
            if let Some(days) = self.schedule(i, window, ADVANCED_COURSE, true) {
                self.add_place(
                    i,
                    "political_theory",
                    3,
                    days,
                    Outcome::Completed(days.2),
                    30,
                );
                used.insert(i);
                added += 1;
            }
        }
        // Advanced courses still running at the end of 2011.
        let pool = self.shuffled(|p| p.in_2011() && p.arch.political.1 == 2);
        let pool: Vec<usize> = pool.into_iter().filter(|i| !used.contains(i)).collect();
        let took = self.bucket(
            &pool,
            IN_PROGRESS_ADVANCED,
            "political_theory",
            3,
            running,
            |_| ADVANCED_COURSE,
            end_after_2011,
        );
        used.extend(took);
        // The rest of the advanced places: withdrawn.
        let remaining = 68usize.saturating_sub(self.count("political_theory", "advanced"));
        let pool = self.shuffled(|p| p.in_2011() && p.arch.political.1 >= 2);
        let pool: Vec<usize> = pool.into_iter().filter(|i| !used.contains(i)).collect();
        self.bucket(
            &pool,
            remaining,
            "political_theory",
            3,
            ended,
            |_| ADVANCED_COURSE,
            |r, (_, enrolled, _)| Outcome::Withdrawn(enrolled.plus(r.range(60, 400))),
        );
        // The rest of the intermediate places: part-time workers.
        self.part_time_places("political_theory", 2, 300);
    }

    fn refreshers(&mut self) {
        let everyone: Vec<usize> = (0..self.people.len()).collect();
        for (year, n) in REFRESHER_BY_YEAR {
            let lo = Day::ymd(year, 1, 10);
            let hi = Day::ymd(year, 12, 20);
            let mut added = 0;
            let mut attempts = 0;
            while added < n && attempts < 40 * n {
                attempts += 1;
                let i = self.rng.pick(&everyone);
                if let Some(days) = self.schedule(i, (lo, hi), REFRESHER_COURSE, false) {
                    let outcome = if self.rng.percent(97) {
                        Outcome::Completed(days.2)
                    } else {
                        Outcome::Withdrawn(days.1.plus(1))
                    };
                    self.add_place(i, "refresher", 0, days, outcome, 20);
                    added += 1;
                }
            }
        }
    }

    /// Places that must not count: enrolled in 2006 or 2012, and
    /// nominations cancelled before enrolment.
    fn outside_the_window(&mut self) {
        let everyone: Vec<usize> = (0..self.people.len()).collect();
        let add_refreshers = |g: &mut Self, n: usize, lo: Day, hi: Day| {
            let mut added = 0;
            let mut attempts = 0;
            while added < n && attempts < 100 * n {
                attempts += 1;
                let i = g.rng.pick(&everyone);
                if let Some(days) = g.schedule(i, (lo, hi), REFRESHER_COURSE, false) {
                    g.add_place(i, "refresher", 0, days, Outcome::Completed(days.2), 20);
                    added += 1;
                }
            }
        };
        add_refreshers(
            self,
            REFRESHER_2006,
            Day::ymd(2006, 2, 1),
            Day::ymd(2006, 11, 30),
        );
        add_refreshers(
            self,
            REFRESHER_2012,
            Day::ymd(2012, 1, 16),
            Day::ymd(2012, 2, 20),
        );

        // Nominated in December 2011 for classes opening in January 2012.
        let pool = self.shuffled(|p| p.in_2011() && p.arch.professional.1 <= 1);
        let mut added = 0;
        for i in pool {
            if added == PROFESSIONAL_2012 {
                break;
            }
            let nominated = self.rng.day(Day::ymd(2011, 12, 1), Day::ymd(2011, 12, 20));
            let enrolled = self.rng.day(Day::ymd(2012, 1, 9), Day::ymd(2012, 1, 20));
            let end = enrolled.plus(self.rng.range(INTERMEDIATE_COURSE.0, INTERMEDIATE_COURSE.1));
            if self.people[i].in_post(nominated) {
                self.add_place(
                    i,
                    "professional",
                    2,
                    (nominated, enrolled, end),
                    Outcome::Completed(end),
                    0,
                );
                added += 1;
            }
        }

        // Cancelled before enrolment (the class did not open, the person
        // was needed at work): never enrolled, never counted.
        let kinds: [(&'static str, u8); 6] = [
            ("refresher", 0),
            ("refresher", 0),
            ("political_theory", 1),
            ("professional", 2),
            ("state_management", 0),
            ("it", 0),
        ];
        let mut added = 0;
        let mut attempts = 0;
        while added < CANCELLED && attempts < 100 * CANCELLED {
            attempts += 1;
            let i = self.rng.pick(&everyone);
            let (track, rank) = self.rng.pick(&kinds);
            let lo = Day::ymd(2007, 2, 1);
            let hi = Day::ymd(2011, 10, 31);
            if let Some(days) = self.schedule(i, (lo, hi), Course(30, 60), false) {
                let cancelled = days.0.plus(self.rng.range(5, 10));
                self.add_place(i, track, rank, days, Outcome::Cancelled(cancelled), 10);
                added += 1;
            }
        }
    }

    // --- plans and ratings ---

    fn plans_and_ratings(&mut self) {
        // Who trained professionally, and in which plan periods.
        let mut periods: BTreeMap<usize, BTreeSet<i32>> = BTreeMap::new();
        for place in &self.places {
            if place.track == "professional" && !matches!(place.outcome, Outcome::Cancelled(_)) {
                let year = place.nominated.year();
                let period = match year {
                    ..=2005 => 2001,
                    2006..=2010 => 2006,
                    _ => 2011,
                };
                periods.entry(place.person).or_default().insert(period);
            }
        }
        let mut trainees: Vec<usize> = periods.keys().copied().collect();
        self.rng.shuffle(&mut trainees);
        let mut no_plan = 0;
        let mut too_late = 0;
        let mut other = 0;
        for i in trainees {
            let Some(needed) = periods.get(&i).cloned() else {
                continue;
            };
            let line = self.people[i].line;
            if no_plan < NO_PLAN {
                no_plan += 1;
                continue;
            }
            if too_late < PLAN_TOO_LATE && !needed.contains(&2011) {
                too_late += 1;
                self.plan_entry(i, 2011, Some(line));
                continue;
            }
            let specialty = if other < PLAN_OTHER_SPECIALTY {
                other += 1;
                let choices: Vec<&'static str> = OTHER_LINES
                    .iter()
                    .copied()
                    .chain(["public_admin"])
                    .filter(|s| *s != line)
                    .collect();
                self.rng.pick(&choices)
            } else {
                line
            };
            let mut all = needed;
            if self.people[i].in_2011() {
                all.insert(2011);
            }
            for period in all {
                self.plan_entry(i, period, Some(specialty));
            }
        }
        // Plans of people not sent to professional training.
        for i in self.indices(|p| p.in_2011()) {
            if !periods.contains_key(&i) && self.rng.percent(40) {
                let line = self.people[i].line;
                self.plan_entry(i, 2011, Some(line));
            }
        }
        self.ratings();
    }

    fn plan_entry(&mut self, i: usize, period: i32, specialty: Option<&'static str>) {
        let p = &self.people[i];
        let (lo, hi) = match period {
            2001 => (Day::ymd(2001, 3, 1), Day::ymd(2001, 6, 30)),
            2006 => (Day::ymd(2006, 3, 1), Day::ymd(2006, 5, 31)),
            _ => (Day::ymd(2010, 9, 1), Day::ymd(2010, 12, 31)),
        };
        let registered = p.registered;
        let target = match p.main_seat() {
            Some(seat) if seat.position == "part_time" => CIVIL_SERVANT_POSTS
                .iter()
                .copied()
                .find(|post| accepted(post).contains(&p.line))
                .unwrap_or("office_statistics"),
            Some(seat)
                if KEY_LEADER_POSTS.contains(&seat.position)
                    && seat.position != "party_secretary" =>
            {
                self.rng
                    .pick(&["party_secretary", "committee_chair", seat.position])
            }
            Some(seat) => seat.position,
            None => "office_statistics",
        };
        let effective = self.rng.day(lo, hi).max(registered.plus(20));
        let mut body = json!({
            "official_id": self.people[i].id,
            "target_position": target,
            "period_from": period,
            "period_to": period + 4,
            "effective_date": effective.text(),
        });
        if let Some(s) = specialty {
            body["planned_specialty"] = json!(s);
        }
        self.commands.push((effective, 4, "plan", body));
    }

    fn ratings(&mut self) {
        for i in 0..self.people.len() {
            for year in 2006..=2011 {
                let day = Day::ymd(year, 12, self.rng.range(5, 28) as u32);
                let p = &self.people[i];
                let rated =
                    p.in_post(day) && p.seat_on(day).is_some_and(|s| s.category() != "part_time");
                if !rated {
                    continue;
                }
                let rating = match self.rng.below(100) {
                    0..=14 => "excellent",
                    15..=69 => "good",
                    70..=96 => "completed",
                    _ => "not_completed",
                };
                let body = json!({
                    "official_id": self.people[i].id,
                    "year": year,
                    "rating": rating,
                    "effective_date": day.text(),
                });
                self.commands.push((day, 5, "rate", body));
            }
        }
    }

    // --- the commands ---

    fn into_plan(mut self) -> DemoPlan {
        self.unit_commands();
        self.official_commands();
        self.place_commands();
        // In the order things happened; on one day, what others depend on
        // first. The sort is stable: equal keys keep generation order.
        self.commands.sort_by_key(|(day, rank, _, _)| (*day, *rank));
        let steps = self
            .commands
            .into_iter()
            .enumerate()
            .map(|(n, (_, _, name, body))| DemoCommand {
                name,
                body,
                key: format!("demo-{}", n + 1),
            })
            .collect();
        DemoPlan { steps }
    }

    fn unit_commands(&mut self) {
        // Quảng Nam was re-established on 1997-01-01.
        let founded = Day::ymd(1997, 1, 1);
        let units = [
            ("quang-nam", "Tỉnh Quảng Nam", "province", None),
            (DISTRICT, "Huyện Đại Lộc", "district", Some("quang-nam")),
        ]
        .into_iter()
        .chain(
            COMMUNES
                .iter()
                .map(|(id, name)| (*id, *name, "commune", Some(DISTRICT))),
        );
        for (id, name, level, parent) in units {
            let mut body = json!({
                "unit_id": id,
                "name": name,
                "level": level,
                "effective_date": founded.text(),
            });
            if let Some(parent) = parent {
                body["parent_id"] = json!(parent);
            }
            self.commands.push((founded, 0, "register_unit", body));
        }
    }

    fn official_commands(&mut self) {
        let mut decisions = 0;
        for p in &self.people {
            for (day, change) in &p.tenure {
                match change {
                    Change::Register(seat) => {
                        let mut body = json!({
                            "official_id": p.id,
                            "full_name": p.name,
                            "birth_year": p.birth_year,
                            "gender": if p.female { "female" } else { "male" },
                            "ethnic_minority": p.minority,
                            "unit_id": COMMUNES[seat.unit].0,
                            "staff_category": seat.category(),
                            "position": seat.position,
                            "effective_date": day.text(),
                        });
                        if let Some(title) = seat.title {
                            body["position_title"] = json!(title);
                        }
                        self.commands.push((*day, 1, "register_official", body));
                    }
                    Change::Assign(seat) => {
                        decisions += 1;
                        let body = json!({
                            "official_id": p.id,
                            "unit_id": COMMUNES[seat.unit].0,
                            "staff_category": seat.category(),
                            "position": seat.position,
                            "decision_no": format!("{decisions}/QĐ-UBND-{}", day.year()),
                            "effective_date": day.text(),
                        });
                        self.commands.push((*day, 2, "assign_position", body));
                    }
                    Change::Leave(reason) => {
                        let body = json!({
                            "official_id": p.id,
                            "reason": reason,
                            "effective_date": day.text(),
                        });
                        self.commands.push((*day, 2, "record_leaving", body));
                    }
                }
            }
            for (n, q) in p.qualifications.iter().enumerate() {
                let mut body = json!({
                    "official_id": p.id,
                    "track": q.track,
                    "level": q.level,
                    "effective_date": q.day.text(),
                });
                if let Some(s) = q.specialty {
                    body["specialty"] = json!(s);
                }
                if matches!(
                    q.track,
                    "general_education" | "professional" | "political_theory"
                ) {
                    body["evidence"] = json!({
                        "kind": "diploma",
                        "number": format!("{}-{}-{:02}", q.day.year(), &p.id[3..], n + 1),
                    });
                }
                // Recorded when the person was registered, whatever the
                // diploma's date.
                self.commands
                    .push((q.day.max(p.registered), 3, "record_qualification", body));
            }
        }
    }

    fn place_commands(&mut self) {
        let mut places = std::mem::take(&mut self.places);
        places.sort_by_key(|p| p.nominated);
        let mut per_year: BTreeMap<i32, u32> = BTreeMap::new();
        let mut decisions: BTreeMap<(i32, u32, &'static str), u32> = BTreeMap::new();
        let mut decision_counter: BTreeMap<i32, u32> = BTreeMap::new();
        for place in &places {
            let year = place.nominated.year();
            let n = per_year.entry(year).or_default();
            *n += 1;
            let id = format!("dl-{year}-{n:05}");
            let issuer = if place.track == "political_theory" {
                "HU"
            } else {
                "UBND"
            };
            let decision = *decisions
                .entry((year, place.nominated.month(), place.track))
                .or_insert_with(|| {
                    let c = decision_counter.entry(year).or_default();
                    *c += 1 + (*c * 7) % 5;
                    *c
                });
            let official = &self.people[place.person].id;
            let mut program = Map::new();
            program.insert("track".into(), json!(place.track));
            if let Some(level) = place.level {
                program.insert("level".into(), json!(level));
            }
            if let Some(s) = place.specialty {
                program.insert("specialty".into(), json!(s));
            }
            program.insert("title".into(), json!(place.title));
            let funding: Vec<Value> = place
                .funding
                .iter()
                .map(|(source, amount)| json!({"source": source, "amount_vnd": amount}))
                .collect();
            let unit = place.unit.map_or(DISTRICT, |u| COMMUNES[u].0);
            self.commands.push((
                place.nominated,
                6,
                "nominate",
                json!({
                    "enrollment_id": id,
                    "official_id": official,
                    "nominating_unit_id": unit,
                    "program": program,
                    "institution": {
                        "institution_id": place.institution.id,
                        "name": place.institution.name,
                        "in_province": place.institution.in_province,
                    },
                    "planned_start": place.planned_start.text(),
                    "planned_end": place.planned_end.max(place.planned_start).text(),
                    "funding": funding,
                    "decision_no": format!("{decision}/QĐ-{issuer}"),
                    "effective_date": place.nominated.text(),
                }),
            ));
            if let Some(enrolled) = place.enrolled {
                self.commands.push((
                    enrolled,
                    7,
                    "enroll",
                    json!({"enrollment_id": id, "effective_date": enrolled.text()}),
                ));
            }
            let (name, body) = match place.outcome {
                Outcome::Completed(day) => {
                    self.certificates += 1;
                    let tenths = self.rng.range(55, 95);
                    let result = match tenths {
                        90.. => "excellent",
                        80..=89 => "good",
                        65..=79 => "fair",
                        _ => "pass",
                    };
                    let (kind, prefix) = if place.track == "refresher" {
                        ("certificate", "BD")
                    } else {
                        ("diploma", "VB")
                    };
                    (
                        "complete",
                        json!({
                            "enrollment_id": id,
                            "result": result,
                            "score": f64::from(tenths) / 10.0,
                            "certificate": {
                                "kind": kind,
                                "number": format!("{prefix}-{}-{:06}", day.year(), self.certificates),
                            },
                            "effective_date": day.text(),
                        }),
                    )
                }
                Outcome::Failed(day) => ("fail", ended(&id, FAILED, day)),
                Outcome::Withdrawn(day) => {
                    let reason = self.rng.pick(&WITHDRAWN);
                    ("withdraw", ended(&id, reason, day))
                }
                Outcome::Cancelled(day) => {
                    let reason = self.rng.pick(&CANCELLED_BECAUSE);
                    ("cancel", ended(&id, reason, day))
                }
            };
            let day = match place.outcome {
                Outcome::Completed(d)
                | Outcome::Failed(d)
                | Outcome::Withdrawn(d)
                | Outcome::Cancelled(d) => d,
            };
            self.commands.push((day, 8, name, body));
        }
        self.places = places;
    }
}

const FAILED: &str = "Không đạt yêu cầu tốt nghiệp";
const WITHDRAWN: [&str; 3] = [
    "Bỏ học vì lý do công tác",
    "Bỏ học vì lý do gia đình",
    "Nghỉ học do chuyển công tác",
];
const CANCELLED_BECAUSE: [&str; 3] = [
    "Lớp học không đủ điều kiện mở",
    "Cơ quan cử người khác đi học",
    "Yêu cầu nhiệm vụ tại địa phương",
];

/// The body of `fail`, `withdraw` and `cancel`.
fn ended(enrollment_id: &str, reason: &str, day: Day) -> Value {
    json!({"enrollment_id": enrollment_id, "reason": reason, "effective_date": day.text()})
}

/// The first day a place of `course` may be enrolled in `window`: a window
/// opening on day 0 stands for "courses still running at the end of 2011",
/// whose first day depends on the course's length.
fn after_start(course: Course, window: (Day, Day)) -> Day {
    if window.0 == Day(0) {
        after_2011().plus(-course.0)
    } else {
        window.0
    }
}

const FAMILY_NAMES: [&str; 20] = [
    "Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Hoàng", "Phan", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ",
    "Ngô", "Dương", "Đoàn", "Trương", "Lương", "Đinh", "Mai", "Lâm",
];
const CO_TU_FAMILY_NAMES: [&str; 6] = ["Alăng", "Bhling", "Zơ Râm", "Ating", "Bríu", "Pơloong"];
const MALE_MIDDLE_NAMES: [&str; 8] = [
    "Văn", "Hữu", "Đức", "Công", "Minh", "Quang", "Thanh", "Ngọc",
];
const FEMALE_MIDDLE_NAMES: [&str; 5] = ["Thị", "Thị", "Thu", "Ngọc", "Kim"];
const MALE_GIVEN_NAMES: [&str; 24] = [
    "Anh", "Bình", "Cường", "Dũng", "Hải", "Hùng", "Hưng", "Khánh", "Lâm", "Long", "Minh", "Nam",
    "Phong", "Phúc", "Quân", "Sơn", "Tài", "Thành", "Tiến", "Trung", "Tuấn", "Việt", "Vinh",
    "Phụng",
];
const FEMALE_GIVEN_NAMES: [&str; 16] = [
    "Hoa", "Hương", "Lan", "Linh", "Mai", "Nga", "Nhung", "Phương", "Thảo", "Trang", "Tuyết",
    "Vân", "Yến", "Hà", "Hạnh", "Hồng",
];

fn full_name(rng: &mut Rng, female: bool, minority: bool) -> String {
    let family = if minority {
        rng.pick(&CO_TU_FAMILY_NAMES)
    } else {
        rng.pick(&FAMILY_NAMES)
    };
    let (middle, given) = if female {
        (
            rng.pick(&FEMALE_MIDDLE_NAMES),
            rng.pick(&FEMALE_GIVEN_NAMES),
        )
    } else {
        (rng.pick(&MALE_MIDDLE_NAMES), rng.pick(&MALE_GIVEN_NAMES))
    };
    format!("{family} {middle} {given}")
}

#[cfg(test)]
mod tests {
    use tledger_events::reference_data::{self, ReferenceContent};

    use super::*;

    #[test]
    fn the_accepted_specialties_are_those_of_the_shipped_map() {
        let shipped = reference_data::shipped().expect("shipped reference data");
        let map = shipped
            .iter()
            .find_map(|(_, c)| match c {
                ReferenceContent::SpecialtyMap(m) => Some(m),
                _ => None,
            })
            .expect("the shipped specialty map");
        for (post, specialties) in &map.posts {
            let ours: Vec<&str> = accepted(post.as_str()).to_vec();
            let theirs: Vec<&str> = specialties.iter().map(|s| s.as_str()).collect();
            assert_eq!(ours, theirs, "{post}");
        }
    }

    #[test]
    fn the_composition_fills_every_post_of_2011_once() {
        let count = |keep: &dyn Fn(&Archetype) -> bool| -> usize {
            ARCHETYPES.iter().filter(|a| keep(a)).map(|a| a.count).sum()
        };
        assert_eq!(count(&|a| a.path.group_2011() == Some(KL)), 101);
        assert_eq!(count(&|a| a.path.group_2011() == Some(OC)), 90);
        assert_eq!(count(&|a| a.path.group_2011() == Some(EX)), 9);
        assert_eq!(count(&|a| a.path.group_2011() == Some(CS)), 197);
        // A rise always reaches intermediate or more (no elementary place
        // in the window), and leavers and newcomers do not rise.
        for a in ARCHETYPES {
            for (from, to) in [a.professional, a.political] {
                assert!(to >= from && (to == from || to >= 2), "{a:?}");
            }
            if matches!(a.path, Path::Left(_) | Path::New(_)) {
                assert_eq!(
                    (a.professional.0, a.political.0),
                    (a.professional.1, a.political.1)
                );
            }
        }
    }

    #[test]
    fn rates_are_rounded_as_reports_state_them() {
        assert_eq!(rate_ten_thousandths((247, 397)), Some(6222));
        assert_eq!(rate_ten_thousandths((58, 101)), Some(5743));
        assert_eq!(rate_ten_thousandths((313, 388)), Some(8067));
        assert_eq!(rate_ten_thousandths((92, 397)), Some(2317));
        assert_eq!(rate_ten_thousandths((1, 0)), None);
        assert_eq!(increase_permille((247, 397), (114, 373)), Some(1036));
        assert_eq!(increase_permille((1, 2), (1, 1)), Some(-500));
    }

    #[test]
    fn splitmix_is_stable() {
        let mut r = Rng(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}
