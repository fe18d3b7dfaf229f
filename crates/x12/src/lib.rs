//! A tolerant X12 reader and a strict X12 writer for arflow's payer traffic. A format library:
//! it knows the implementation guides (docs/reference/x12.md, cited below as §), no billing
//! policy; the writers take their own plain input types.
//!
//! Map of the crate (reading goes top to bottom):
//! - [`lex`]: bytes → text (UTF-8 BOM, UTF-16, bad bytes) → [`lex::Segment`]s; delimiters from
//!   each ISA header, fragment mode for a bare `ST..SE` (§2.1). Borrowed slices only.
//! - [`document`]: envelopes (ISA/GS/ST nesting and IEA/GE/SE count and control-number checks,
//!   §2.2) and dispatch of each transaction set by ST01 and version into a
//!   [`Transaction`]; the entry point [`read`].
//! - typed readers, one per transaction set, each a streaming decoder fed by `document`:
//!   [`remit`] (835, §3), [`status`] (277 and 277CA, §4), [`ack`] (999, §2.3),
//!   [`inquiry`] (276, §4.4) and [`professional`] (837P, §5).
//! - [`balance`]: 835 balancing, line, claim and transaction (§3.4).
//! - [`inspect`]: the report behind `arflow x12 inspect` ([`inspect()`], [`render_text`]), JSON
//!   shape in `docs/x12-inspect.md`.
//! - writers: [`inquiry::write_276`] and [`professional::write_837p`] (input
//!   [`professional::Submission`] of [`professional::ClaimInput837`]s) on the shared envelope
//!   machinery of [`write`], which refuses data X12 cannot carry.
//! - shared pieces: [`problem`] (located problems), [`value`] (exact amounts, decimals,
//!   dates), [`text`] (a string that keeps short values inline), [`common`] (NM1, REF,
//!   N3/N4, PER, AMT, DTP, procedure composites).
//!
//! Two promises hold everywhere: reading never panics and never returns an error for bad
//! content (everything wrong becomes a located [`Problem`]; the crate is fuzzed, see
//! `crates/x12/fuzz` and `tests/robustness.rs`), and money is exact [`arflow_domain::Money`]
//! cents, never a float (a third decimal place is a problem, not a rounding).
//!
//! Speed: the tokenizer borrows from the input and allocates nothing per segment or element;
//! decoders stream, so memory is the typed result, not the segment list. `benches/read.rs`
//! measures both (budget: 200 MB/s per core for a full 835 read).

pub mod ack;
pub mod balance;
pub mod common;
pub mod document;
pub mod inquiry;
pub mod inspect;
pub mod lex;
pub mod problem;
pub mod professional;
pub mod remit;
pub mod status;
pub mod text;
pub mod value;
pub mod write;

pub use ack::Ack999;
pub use balance::{BalanceLevel, BalanceProblem, Unchecked};
pub use document::{Document, Group, Interchange, Transaction, TransactionSet, read};
pub use inquiry::{ClaimInquiry, StatusRequest276, write_276};
pub use inspect::{InspectReport, inspect, render_text};
pub use problem::{Problem, ProblemKind, Severity};
pub use professional::{ClaimInput837, Professional837, Submission, write_837p};
pub use remit::Remittance835;
pub use status::{ClaimStatus277, StatusKind};
pub use text::Text;
pub use write::{Envelope, Error};
