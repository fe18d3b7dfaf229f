//! The scrubber: every new claim against the behavioral-health rules and its payer's rules.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use super::payer::{CorrectedClaimClock, DEFAULT_SESSION_CODES, PayerRules, Period};
use super::{PriorService, ScrubFinding, Severity, ids, psychotherapy, rule, telehealth};
use crate::claim::{Frequency, ServiceLine, ValidClaim};
use crate::deadlines::{corrected_claim_deadline, timely_filing_deadline};

/// Checks `claim` against every rule in force on its dates of service, as `payer` (the rules
/// [`super::PayerRuleSet::for_payer`] returned for the claim's first date of service) applies
/// them.
///
/// - `history`: the patient's earlier services, see [`PriorService`]; may be empty, in which
///   case history-based rules (evaluation interval, session-count authorization, in-person
///   visit) see only this claim.
/// - `today`: the tenant's current date. A claim counts as filed on its `submission_date`
///   (today for a fresh submission), or today for a draft, for the timely-filing warning.
///
/// A void (frequency 8) must match the claim it cancels, so it is not scrubbed. Findings come
/// in rule order, then line order; messages never contain patient data.
pub fn scrub(
    claim: &ValidClaim,
    payer: &PayerRules,
    history: &[PriorService],
    today: NaiveDate,
) -> Vec<ScrubFinding> {
    if claim.frequency == Frequency::Void {
        return Vec::new();
    }
    let mut ctx = Ctx {
        claim,
        payer,
        history,
        findings: Vec::new(),
    };
    psychotherapy::check(&mut ctx);
    telehealth::check(&mut ctx);
    prior_authorization(&mut ctx);
    credential(&mut ctx);
    timely_filing(&mut ctx, today);
    ctx.findings
}

/// What every rule check gets.
pub(super) struct Ctx<'a> {
    pub claim: &'a ValidClaim,
    pub payer: &'a PayerRules,
    pub history: &'a [PriorService],
    findings: Vec<ScrubFinding>,
}

impl Ctx<'_> {
    /// Whether rule `id` is in force on `on` and the payer has not switched it off.
    pub fn applies(&self, id: &str, on: NaiveDate) -> bool {
        !self.payer.disables(id) && rule(id).is_some_and(|r| r.in_force(on))
    }

    /// Reports a finding at the rule's severity (or the payer's override).
    pub fn report(&mut self, id: &'static str, field: String, message: String) {
        let severity = rule(id).map_or(Severity::Error, |r| r.severity);
        self.report_as(id, severity, field, message);
    }

    /// Reports a finding at `severity` unless the payer overrides the rule's severity.
    pub fn report_as(
        &mut self,
        id: &'static str,
        severity: Severity,
        field: String,
        message: String,
    ) {
        let severity = self
            .payer
            .severity_overrides
            .get(id)
            .copied()
            .unwrap_or(severity);
        self.findings.push(ScrubFinding {
            rule_id: id.to_owned(),
            severity,
            field,
            message,
        });
    }

    pub fn lines(&self) -> impl Iterator<Item = (usize, &ServiceLine)> {
        self.claim.service_lines.iter().enumerate()
    }

    /// Line indexes per date of service, dates ascending.
    pub fn by_date(&self) -> BTreeMap<NaiveDate, Vec<usize>> {
        let mut out: BTreeMap<NaiveDate, Vec<usize>> = BTreeMap::new();
        for (i, l) in self.lines() {
            out.entry(l.service_date).or_default().push(i);
        }
        out
    }

    pub fn line(&self, i: usize) -> &ServiceLine {
        &self.claim.service_lines[i]
    }
}

/// `service_lines[i].name`.
pub(super) fn field(i: usize, name: &str) -> String {
    format!("service_lines[{i}].{name}")
}

/// Codes joined for a message: `90832, 90834`.
pub(super) fn list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prior authorization required by code or after N sessions in a period, and no authorization
/// number on the claim (docs/reference/billing-rules.md C5: TMHP 30 visits per calendar year across
/// all behavioral-health providers, then authorization; vendor: commercial carve-outs often after
/// 4–8 sessions).
fn prior_authorization(ctx: &mut Ctx<'_>) {
    if ctx.claim.prior_authorization_number.is_some() {
        return;
    }
    let pa = &ctx.payer.prior_auth;
    let id = ids::PRIOR_AUTHORIZATION;
    let claim = ctx.claim;
    let mut reported_codes: Vec<&str> = Vec::new();
    for l in &claim.service_lines {
        let code = l.procedure_code.as_str();
        if pa.codes.iter().any(|c| c == code)
            && !reported_codes.contains(&code)
            && ctx.applies(id, l.service_date)
        {
            reported_codes.push(code);
        }
    }
    for code in reported_codes {
        ctx.report(
            id,
            "prior_authorization_number".into(),
            format!("this payer requires prior authorization for {code}; the claim has no authorization number"),
        );
    }

    let Some(limit) = pa.after_sessions else {
        return;
    };
    let is_session = |code: &str| {
        if pa.session_codes.is_empty() {
            DEFAULT_SESSION_CODES.contains(&code)
        } else {
            pa.session_codes.iter().any(|c| c == code)
        }
    };
    // A session is a date with a session code, whichever claim it is on.
    let mut dates: BTreeSet<NaiveDate> = ctx
        .history
        .iter()
        .filter(|h| is_session(&h.procedure_code))
        .map(|h| h.service_date)
        .collect();
    let mut claim_sessions: BTreeMap<NaiveDate, usize> = BTreeMap::new();
    for (i, l) in ctx.lines() {
        if is_session(&l.procedure_code) {
            claim_sessions.entry(l.service_date).or_insert(i);
            dates.insert(l.service_date);
        }
    }
    for (&d, &i) in &claim_sessions {
        if !ctx.applies(id, d) {
            continue;
        }
        let Some(start) = pa.per.start(d) else {
            continue;
        };
        let before = dates.range(start..d).count();
        if before >= usize::try_from(limit).unwrap_or(usize::MAX) {
            let message = format!(
                "this payer allows {limit} sessions per {} without prior authorization; the session on service_lines[{i}] is number {} and the claim has no authorization number",
                period_name(pa.per),
                before + 1,
            );
            ctx.report(id, "prior_authorization_number".into(), message);
            // Later sessions on the claim are over the limit too; one finding says it.
            break;
        }
    }
}

fn period_name(p: Period) -> String {
    match p {
        Period::CalendarYear => "calendar year".into(),
        Period::FiscalYear { start_month } => format!("fiscal year (starting month {start_month})"),
        Period::Rolling { days } => format!("{days} days"),
    }
}

/// The rendering clinician's licence must be one the payer pays for on the date of service
/// (docs/reference/billing-rules.md C4: Medicare pays MFTs and MHCs only from 2024-01-01; never
/// associates).
fn credential(ctx: &mut Ctx<'_>) {
    let id = ids::CREDENTIAL;
    let (Some(allowed), Some(cred)) = (
        &ctx.payer.allowed_credentials,
        ctx.claim.rendering_provider.credential,
    ) else {
        return;
    };
    if allowed.contains(&cred) || !ctx.applies(id, ctx.claim.first_service_date()) {
        return;
    }
    let names: Vec<&str> = allowed.iter().map(|c| c.as_str()).collect();
    ctx.report(
        id,
        "rendering_provider.credential".into(),
        format!(
            "this payer does not pay services rendered by a clinician with credential {cred} on these dates of service (payable: {})",
            list(&names)
        ),
    );
}

/// Past the payer's filing window (docs/reference/billing-rules.md C6). The claim is filed on its
/// submission date (today for a draft). A replacement claim has its own window
/// (docs/reference/billing-rules.md C7): checked here when it runs from the date of service; a
/// window from the remittance date needs that date, which the claims service has
/// ([`crate::deadlines::corrected_claim_deadline`]).
fn timely_filing(ctx: &mut Ctx<'_>, today: NaiveDate) {
    let id = ids::TIMELY_FILING;
    let claim = ctx.claim;
    let payer = ctx.payer;
    let Some((first_index, first)) = ctx
        .lines()
        .min_by_key(|(_, l)| l.service_date)
        .map(|(i, l)| (i, l.service_date))
    else {
        return;
    };
    if !ctx.applies(id, first) {
        return;
    }
    let (deadline, window) = match claim.frequency {
        Frequency::Original => {
            let window = match payer.timely_filing_months {
                Some(m) => format!("{m}-month timely filing limit"),
                None => format!("{}-day timely filing limit", payer.timely_filing_days),
            };
            (timely_filing_deadline(first, payer), window)
        }
        Frequency::Replacement => match (payer.corrected_claim_clock, payer.corrected_claim_days) {
            (CorrectedClaimClock::FromServiceDate, Some(days)) => (
                // The remit date does not matter for a clock from the date of service.
                corrected_claim_deadline(first, first, payer).unwrap_or(NaiveDate::MAX),
                format!("{days}-day corrected-claim limit"),
            ),
            _ => return,
        },
        Frequency::Void => return,
    };
    let filed_on = claim.submission_date.unwrap_or(today);
    if filed_on > deadline {
        ctx.report(
            id,
            field(first_index, "service_date"),
            format!("past timely filing for this payer: the {window} from the first date of service has passed"),
        );
    }
}

#[cfg(test)]
mod tests;
