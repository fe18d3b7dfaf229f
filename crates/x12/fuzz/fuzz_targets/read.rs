//! Arbitrary bytes into the reader and the inspect report: neither may panic, whatever the
//! input (crates/x12 promises a located problem instead). Seed corpus: the public samples,
//! e.g. `cargo +nightly fuzz run read $ARFLOW_X12_SAMPLES/*/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let doc = arflow_x12::read(data);
    let _ = doc.balance_problems();
    let report = arflow_x12::inspect(data);
    let _ = arflow_x12::render_text(&report);
    let _ = serde_json::to_string(&report);
});
