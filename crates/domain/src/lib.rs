//! Pure billing rules for arflow: no I/O, no async, no clocks (callers pass `today`).
//!
//! Map of the crate:
//! - [`money`]: [`Money`], integer cents with checked arithmetic and `$1,234.56` display.
//! - [`codes`]: shapes of NPIs (check digit), ICD-10-CM, CPT/HCPCS, modifiers, place of service
//!   and our own identifiers.
//! - [`status`]: the claim state machine, [`ClaimStatus`] and its table of legal moves.
//! - [`claim`]: intake types ([`ClaimInput`]), the validated [`ValidClaim`] the store saves,
//!   and [`validate_claim`], which reports every [`FieldViolation`] at once without echoing
//!   patient data.
//! - [`rules`]: the behavioral-health rule pack. Coding rules as effective-dated [`rules::Rule`]
//!   values (psychotherapy time rule, add-on and code-pair edits, telehealth POS/modifiers),
//!   payer rules as data ([`PayerRules`], looked up per tenant, payer and date in a
//!   [`PayerRuleSet`]), and [`scrub`], which checks a [`ValidClaim`] against both and returns
//!   [`ScrubFinding`]s without patient data.
//! - [`deadlines`]: timely-filing, appeal and corrected-claim deadlines (pure date math).
//! - [`denial`]: the denial taxonomy, CAS group + CARC (+ RARCs) to a [`DenialClassification`]
//!   (category, appealable, next action, owner, evidence), and [`is_denial_adjustment`].
//! - [`priority`]: the priority score of a follow-up task and its reasons (balance, age,
//!   deadline, recoverability), and the task kinds.
//! - [`calendar`]: business days (weekends, US federal holidays as data, tenant overrides).
//! - [`followup`]: follow-up timer planning (aging thresholds, payer status checks in business
//!   days, deadline warnings, each at local midnight of the tenant's time zone).
//! - [`remit_match`]: which of our claims an 835 CLP pays (payee, payer, CLP01, CLP07), or
//!   why none.
//! - [`projection`]: what a service knows of a claim from its events ([`projection::ClaimFacts`])
//!   and the one rule that folds an event in, keeping the newest version
//!   ([`projection::ClaimFacts::merge`]).
//! - [`fixtures`]: a realistic valid claim for tests in every crate.
//!
//! Services map their protos onto these types at the edge; nothing here knows about gRPC,
//! databases or event buses, so every rule is testable in microseconds. Rules cite their
//! source (docs/reference/billing-rules.md by section, e.g. C6, or the page itself) where they are
//! encoded.

pub mod calendar;
pub mod claim;
pub mod codes;
pub mod deadlines;
pub mod denial;
pub mod fixtures;
pub mod followup;
pub mod money;
pub mod priority;
pub mod projection;
pub mod remit_match;
pub mod rules;
pub mod status;

pub use claim::{
    ClaimInput, Credential, FieldViolation, Frequency, Patient, PatientInput, Payer, PayerInput,
    Provider, ProviderInput, ServiceLine, ServiceLineInput, ValidClaim, validate_claim,
};
pub use deadlines::{
    appeal_deadline, corrected_claim_deadline, is_past_timely_filing, timely_filing_deadline,
};
pub use denial::{
    DenialCategory, DenialClassification, Owner, Resolution, classify_denial, is_denial_adjustment,
};
pub use money::Money;
pub use rules::{
    CorrectedClaimClock, PayerRuleSet, PayerRules, Period, PriorAuthRule, PriorService, RulesError,
    ScrubFinding, Severity, TelehealthRules, scrub,
};
pub use status::{ClaimStatus, IllegalTransition};
