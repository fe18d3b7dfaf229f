//! Telehealth POS and modifiers against the payer's table (docs/reference/billing-rules.md C3).
//!
//! POS 02 means telehealth with the patient somewhere other than home and POS 10 the patient
//! at home (CMS CR 12427, via www.apaservices.org/practice/clinic/cms-telehealth-service-codes);
//! modifier 95 marks audio-video and 93 audio-only (codingintel.com/telemedicine-and-covid-19-faq/).
//! Which combinations a payer accepts is data ([`super::TelehealthRules::accepted`]), never code.

use chrono::{Months, NaiveDate};

use super::ids;
use super::payer::TelehealthRules;
use super::scrub::{Ctx, field, list};

/// The combinations of `rules` accepted with `pos`, for a message: `95, 93, none`.
fn accepted_with(rules: &TelehealthRules, pos: &str) -> String {
    let mods: Vec<&str> = rules
        .modifiers_for_pos(pos)
        .into_iter()
        .map(|m| m.unwrap_or("no modifier"))
        .collect();
    if mods.is_empty() {
        "none".into()
    } else {
        list(&mods)
    }
}

/// Whether the line is a telehealth line by its POS or modifiers, and the telehealth modifiers.
fn telehealth_modifiers<'a>(rules: &TelehealthRules, modifiers: &'a [String]) -> Vec<&'a str> {
    modifiers
        .iter()
        .map(String::as_str)
        .filter(|m| rules.telehealth_modifiers.iter().any(|t| t == m))
        .collect()
}

pub(super) fn check(ctx: &mut Ctx<'_>) {
    let rules = &ctx.payer.telehealth;
    for (i, line) in ctx.claim.service_lines.iter().enumerate() {
        let d = line.service_date;
        let pos = line.place_of_service.as_str();
        let has = |m: &str| line.modifiers.iter().any(|x| x == m);
        let (av, ao) = (
            rules.audio_video_modifier.as_str(),
            rules.audio_only_modifier.as_str(),
        );

        // 95 is audio-video, 93 audio-only: both on one line describe no real session.
        if has(av) && has(ao) && ctx.applies(ids::TELEHEALTH_MODIFIER_CONFLICT, d) {
            ctx.report(
                ids::TELEHEALTH_MODIFIER_CONFLICT,
                field(i, "modifiers"),
                format!("modifiers {av} (audio-video) and {ao} (audio-only) contradict each other: keep the one that describes the session"),
            );
        }

        // POS and modifier must form a combination the payer's table accepts.
        let mods = telehealth_modifiers(rules, &line.modifiers);
        let telehealth_pos = rules.telehealth_pos.iter().any(|p| p == pos);
        if (telehealth_pos || !mods.is_empty()) && ctx.applies(ids::TELEHEALTH_POS_MODIFIER, d) {
            let pos_matches = |c: &super::TelehealthCombination| c.pos == pos || c.pos == "*";
            let accepted = if mods.is_empty() {
                rules
                    .accepted
                    .iter()
                    .any(|c| pos_matches(c) && c.modifier.is_none())
            } else {
                mods.iter().any(|m| {
                    rules
                        .accepted
                        .iter()
                        .any(|c| pos_matches(c) && c.modifier.as_deref() == Some(m))
                })
            };
            if !accepted {
                let (f, message) = if mods.is_empty() {
                    (
                        field(i, "modifiers"),
                        format!(
                            "place of service {pos} is telehealth but the line has no telehealth modifier; this payer accepts POS {pos} with: {}",
                            accepted_with(rules, pos)
                        ),
                    )
                } else if telehealth_pos {
                    (
                        field(i, "modifiers"),
                        format!(
                            "modifier {} with place of service {pos} is not a combination this payer accepts; POS {pos} goes with: {}",
                            list(&mods),
                            accepted_with(rules, pos)
                        ),
                    )
                } else {
                    let tele_pos = rules.accepted_pos();
                    (
                        field(i, "place_of_service"),
                        format!(
                            "modifier {} marks telehealth but place of service {pos} is not one this payer accepts for telehealth (use {})",
                            list(&mods),
                            if tele_pos.is_empty() {
                                "the payer's telehealth POS".into()
                            } else {
                                list(&tele_pos)
                            }
                        ),
                    )
                };
                ctx.report(ids::TELEHEALTH_POS_MODIFIER, f, message);
            }
        }

        // FQHCs/RHCs switched from FQ to 93 for audio-only on 2023-01-01.
        if has("FQ") && ctx.applies(ids::TELEHEALTH_FQ_REPLACED, d) {
            ctx.report(
                ids::TELEHEALTH_FQ_REPLACED,
                field(i, "modifiers"),
                format!("modifier FQ was replaced by {ao} for audio-only services from 2023-01-01"),
            );
        }
    }
    in_person_visit(ctx);
}

/// Medicare mental-health telehealth to the home: an in-person visit within 6 months before
/// the first telehealth service, then at least every 12 months; SUD treatment exempt (foley.com,
/// 2021-12, Medicare telehealth mental-health FAQs; psychiatry.org FAQ). Enforced only when the
/// payer's table says so and from its date (docs/reference/billing-rules.md C3: "store it as a
/// dated rule with an enforcement flag"). The same-provider / same-group condition is the caller's
/// to apply when it selects the history. One finding per claim at most.
fn in_person_visit(ctx: &mut Ctx<'_>) {
    let rules = &ctx.payer.telehealth;
    let Some(req) = &rules.in_person_requirement else {
        return;
    };
    if !req.enforced {
        return;
    }
    let exempt = ctx.claim.diagnoses.iter().any(|dx| {
        req.exempt_diagnosis_prefixes
            .iter()
            .any(|p| !p.is_empty() && dx.starts_with(p.as_str()))
    });
    if exempt {
        return;
    }
    let is_telehealth = |pos: &str, mods: &[String]| {
        rules.telehealth_pos.iter().any(|p| p == pos)
            || !telehealth_modifiers(rules, mods).is_empty()
    };
    let at_home = |pos: &str| req.place_of_service.iter().any(|p| p == pos);

    // (date, in person?) for every known service: history and this claim.
    let mut services: Vec<(NaiveDate, bool, bool)> = ctx
        .history
        .iter()
        .map(|h| {
            (
                h.service_date,
                !is_telehealth(&h.place_of_service, &h.modifiers),
                at_home(&h.place_of_service),
            )
        })
        .collect();
    services.extend(ctx.claim.service_lines.iter().map(|l| {
        (
            l.service_date,
            !is_telehealth(&l.place_of_service, &l.modifiers),
            at_home(&l.place_of_service),
        )
    }));

    for (i, line) in ctx.claim.service_lines.iter().enumerate() {
        let d = line.service_date;
        if !at_home(&line.place_of_service)
            || req.effective_from.is_some_and(|f| d < f)
            || !ctx.applies(ids::TELEHEALTH_IN_PERSON, d)
        {
            continue;
        }
        let earlier_home_telehealth = services
            .iter()
            .any(|&(sd, in_person, home)| sd < d && !in_person && home);
        let months = if earlier_home_telehealth {
            req.every_months
        } else {
            req.months_before_first
        };
        let since = d
            .checked_sub_months(Months::new(months))
            .unwrap_or(NaiveDate::MIN);
        let seen = services
            .iter()
            .any(|&(sd, in_person, _)| in_person && since <= sd && sd <= d);
        if !seen {
            let when = if earlier_home_telehealth {
                format!("at least every {months} months")
            } else {
                format!("within {months} months before the first one")
            };
            ctx.report(
                ids::TELEHEALTH_IN_PERSON,
                field(i, "place_of_service"),
                format!("mental-health telehealth to the home needs an in-person visit {when} (substance-use treatment exempt); none is on record"),
            );
            return;
        }
    }
}
