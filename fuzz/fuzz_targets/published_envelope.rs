//! A message as a publishing body sends it, arbitrary bytes: parsing it as a
//! published CloudEvent never panics, and what parses survives its own
//! serialisation (the ledger stores a fact's data and hashes it again on
//! every verification, so a fact whose data reads back differently would
//! break the chain or change a report).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tledger_events::{CloudEvent, Fact};

fuzz_target!(|body: &[u8]| {
    let Ok((event, fact)) = CloudEvent::parse_published(body) else {
        return;
    };
    let data = fact.data();
    let again = Fact::from_data(fact.fact_type(), &data)
        .unwrap_or_else(|e| panic!("the fact's own data is refused: {e}\ndata: {data}"));
    assert_eq!(again, fact, "the fact's data reads back as another fact");

    let bytes = serde_json::to_vec(&event).expect("a parsed envelope serialises");
    let (event_again, fact_again) = CloudEvent::parse_published(&bytes).unwrap_or_else(|e| {
        panic!(
            "the re-serialised envelope is refused: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(event_again, event, "the envelope reads back differently");
    assert_eq!(
        fact_again, fact,
        "the envelope's fact reads back differently"
    );
});
