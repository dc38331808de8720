//! The data of each fact type: the first byte chooses the type, the rest is
//! the data as JSON. Parsing never panics, and a fact that parses
//! re-serialises to data that parses to the same fact, also through bytes
//! (the form in which it is stored and published).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tledger_events::{Fact, FactType};

fuzz_target!(|input: &[u8]| {
    let Some((&selector, json)) = input.split_first() else {
        return;
    };
    let fact_type = FactType::ALL[usize::from(selector) % FactType::ALL.len()];
    let Ok(data) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    // The shape-only pass must not panic either (the command path uses it
    // before look-ups).
    let _ = Fact::shape_only(fact_type, &data);
    let Ok(fact) = Fact::from_data(fact_type, &data) else {
        return;
    };
    assert_eq!(fact.fact_type(), fact_type);
    let written = serde_json::to_vec(&fact.data()).expect("a fact's data serialises");
    let again = Fact::from_slice(fact_type, &written).unwrap_or_else(|e| {
        panic!(
            "the fact's own data is refused: {e}\n{}",
            String::from_utf8_lossy(&written)
        )
    });
    assert_eq!(again, fact, "the fact's data reads back as another fact");
    // What a fact's stream and references are must not depend on the trip.
    assert_eq!(again.stream(), fact.stream());
    assert_eq!(again.referenced_streams(), fact.referenced_streams());
});
