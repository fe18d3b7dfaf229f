//! The 835 health care claim payment/advice (005010X221A1), typed (docs/reference/x12.md §3).
//!
//! Loops are recognized by segment order, as the implementation guide defines them: the
//! header (BPR, TRN, REF, DTM*405), 1000A payer (N1*PR and what follows), 1000B payee (N1*PE),
//! 2000 LX, 2100 CLP (claim), 2110 SVC (service line) and the PLB summary. A REF, DTM, AMT or
//! CAS belongs to the innermost open loop, so a CAS after an SVC is a line adjustment and one
//! right after a CLP is a claim adjustment (§3.2).
//!
//! Every amount is exact [`Money`]; balancing lives in [`crate::balance`].

use arflow_domain::Money;
use chrono::NaiveDate;
use serde::{Serialize, Serializer};

use crate::common::{
    Address, Contact, Entity, Procedure, QualifiedAmount, QualifiedDate, QualifiedQuantity,
    Reference, amount, amt, date, push_small, qty, quantity, require, required_amount, unexpected,
};
use crate::lex::{Segment, id, key};
use crate::problem::{Cx, Problem, ProblemKind};
use crate::text::Text;
use crate::value::{Decimal, opt_text};

/// A decoded 835 transaction set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Remittance835 {
    /// BPR.
    pub payment: Option<Payment>,
    /// TRN: the reassociation key to the bank deposit.
    pub trace: Option<Trace>,
    /// Header REF (EV receiver id, F2 version).
    pub references: Vec<Reference>,
    /// DTM*405 production date.
    pub production_date: Option<NaiveDate>,
    /// 1000A N1*PR.
    pub payer: Option<Party>,
    /// 1000B N1*PE.
    pub payee: Option<Party>,
    /// 2100 claims of every LX, in file order.
    pub claims: Vec<ClaimPayment>,
    /// PLB provider-level adjustments.
    pub provider_adjustments: Vec<ProviderAdjustment>,
    /// An amount of BPR or PLB could not be read (reported): the transaction cannot balance.
    #[serde(skip)]
    pub(crate) incomplete: bool,
}

/// BPR financial information.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Payment {
    /// BPR01: `I` remittance with payment, `H` notification only, `C`, `D`, `P`, `U`, `X`.
    pub handling_code: Text,
    /// BPR02 total actual provider payment.
    pub amount: Option<Money>,
    /// BPR03 `C` credit / `D` debit.
    pub credit_debit: Text,
    /// BPR04 `ACH`, `BOP`, `CHK`, `FWT`, `NON`.
    pub method: Option<Text>,
    /// BPR05 `CCP` / `CTX`.
    pub format: Option<Text>,
    /// BPR16 check issue or EFT effective date.
    pub date: Option<NaiveDate>,
    pub segment_index: usize,
    pub line: u32,
}

/// TRN reassociation trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Trace {
    /// TRN01 (`1` current transaction trace numbers).
    pub trace_type: Text,
    /// TRN02 check or EFT trace number.
    pub trace_number: Text,
    /// TRN03 payer identifier (usually `1` + TIN).
    pub originator_id: Option<Text>,
    /// TRN04.
    pub supplemental_id: Option<Text>,
}

/// An N1 loop: payer or payee.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Party {
    /// N101: `PR` payer, `PE` payee.
    pub entity_code: Text,
    pub name: Text,
    /// N103: `XV` (payer), `XX` NPI, `FI` TIN (payee).
    pub id_qualifier: Option<Text>,
    pub id: Option<Text>,
    pub address: Option<Address>,
    /// REF*2U, EO, HI, NF (payer); 0B, D3, PQ, TJ (payee).
    pub references: Vec<Reference>,
    pub contacts: Vec<Contact>,
}

/// CAS01 claim adjustment group code (docs/reference/x12.md §3.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AdjustmentGroup {
    /// CO contractual obligation: write off.
    ContractualObligation,
    /// PR patient responsibility: bill the patient or secondary.
    PatientResponsibility,
    /// OA other adjustment.
    OtherAdjustment,
    /// PI payer-initiated reduction.
    PayerInitiated,
    /// CR corrections and reversals: 004010 only, accepted and flagged.
    CorrectionReversal,
    /// Anything else, kept as sent (and reported).
    Other(Text),
}

impl AdjustmentGroup {
    pub fn parse(code: &str) -> AdjustmentGroup {
        const CO: u32 = key(b"CO");
        const PR: u32 = key(b"PR");
        const OA: u32 = key(b"OA");
        const PI: u32 = key(b"PI");
        const CR: u32 = key(b"CR");
        match key(code.as_bytes()) {
            CO => AdjustmentGroup::ContractualObligation,
            PR => AdjustmentGroup::PatientResponsibility,
            OA => AdjustmentGroup::OtherAdjustment,
            PI => AdjustmentGroup::PayerInitiated,
            CR => AdjustmentGroup::CorrectionReversal,
            _ => AdjustmentGroup::Other(Text::new(code)),
        }
    }

    pub fn code(&self) -> &str {
        match self {
            AdjustmentGroup::ContractualObligation => "CO",
            AdjustmentGroup::PatientResponsibility => "PR",
            AdjustmentGroup::OtherAdjustment => "OA",
            AdjustmentGroup::PayerInitiated => "PI",
            AdjustmentGroup::CorrectionReversal => "CR",
            AdjustmentGroup::Other(s) => s,
        }
    }
}

impl Serialize for AdjustmentGroup {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// One CAS reason/amount/quantity triple with its group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Adjustment {
    pub group: AdjustmentGroup,
    /// CARC (code list 139).
    pub reason: Text,
    pub amount: Money,
    pub quantity: Option<Decimal>,
    pub segment_index: usize,
    pub line: u32,
}

/// CLP02 claim status (docs/reference/x12.md §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimPaymentStatus {
    /// 1.
    ProcessedAsPrimary,
    /// 2.
    ProcessedAsSecondary,
    /// 3.
    ProcessedAsTertiary,
    /// 4.
    Denied,
    /// 19.
    ProcessedAsPrimaryForwarded,
    /// 20.
    ProcessedAsSecondaryForwarded,
    /// 21.
    ProcessedAsTertiaryForwarded,
    /// 22: reversal of a previous payment; amounts are negative.
    Reversal,
    /// 23.
    NotOurClaimForwarded,
    /// 25.
    PredeterminationPricingOnly,
    /// Not a 005010X221A1 code (reported).
    Unknown,
}

impl ClaimPaymentStatus {
    pub fn from_code(code: &str) -> ClaimPaymentStatus {
        const C1: u32 = key(b"1");
        const C2: u32 = key(b"2");
        const C3: u32 = key(b"3");
        const C4: u32 = key(b"4");
        const C19: u32 = key(b"19");
        const C20: u32 = key(b"20");
        const C21: u32 = key(b"21");
        const C22: u32 = key(b"22");
        const C23: u32 = key(b"23");
        const C25: u32 = key(b"25");
        match key(code.as_bytes()) {
            C1 => ClaimPaymentStatus::ProcessedAsPrimary,
            C2 => ClaimPaymentStatus::ProcessedAsSecondary,
            C3 => ClaimPaymentStatus::ProcessedAsTertiary,
            C4 => ClaimPaymentStatus::Denied,
            C19 => ClaimPaymentStatus::ProcessedAsPrimaryForwarded,
            C20 => ClaimPaymentStatus::ProcessedAsSecondaryForwarded,
            C21 => ClaimPaymentStatus::ProcessedAsTertiaryForwarded,
            C22 => ClaimPaymentStatus::Reversal,
            C23 => ClaimPaymentStatus::NotOurClaimForwarded,
            C25 => ClaimPaymentStatus::PredeterminationPricingOnly,
            _ => ClaimPaymentStatus::Unknown,
        }
    }
}

/// MOA outpatient adjudication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct OutpatientAdjudication {
    /// MOA01.
    pub reimbursement_rate: Option<Decimal>,
    /// MOA02.
    pub hcpcs_payable_amount: Option<Money>,
    /// MOA03–MOA07 claim-level RARCs.
    pub remarks: Vec<Text>,
    /// MOA08.
    pub esrd_payment_amount: Option<Money>,
    /// MOA09.
    pub nonpayable_professional_component: Option<Money>,
}

/// MIA inpatient adjudication (the parts AR follow-up uses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct InpatientAdjudication {
    /// MIA01 covered days or visits.
    pub covered_days: Option<Decimal>,
    /// MIA04 DRG amount.
    pub drg_amount: Option<Money>,
    /// MIA05, MIA20–MIA23 RARCs.
    pub remarks: Vec<Text>,
}

/// 2100 claim payment information.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClaimPayment {
    /// LX01 of the 2000 loop around the claim.
    pub header_number: Option<Text>,
    /// CLP01 patient control number: our CLM01.
    pub patient_control_number: Text,
    /// CLP02 as sent.
    pub status_code: Text,
    pub status: ClaimPaymentStatus,
    /// CLP03 total claim charge.
    pub charge: Option<Money>,
    /// CLP04 claim payment amount (0 or negative for reversals).
    pub paid: Option<Money>,
    /// CLP05 patient responsibility.
    pub patient_responsibility: Option<Money>,
    /// CLP06 claim filing indicator.
    pub filing_indicator: Option<Text>,
    /// CLP07 payer claim control number (ICN/DCN).
    pub payer_claim_control_number: Option<Text>,
    /// CLP08 facility type / place of service.
    pub facility_type: Option<Text>,
    /// CLP09 claim frequency code.
    pub frequency_code: Option<Text>,
    /// CLP11 DRG code.
    pub drg_code: Option<Text>,
    /// CLP12 DRG weight.
    pub drg_weight: Option<Decimal>,
    /// CLP13 discharge fraction.
    pub discharge_fraction: Option<Decimal>,
    /// Claim-level CAS.
    pub adjustments: Vec<Adjustment>,
    /// NM1*QC.
    pub patient: Option<Entity>,
    /// Other 2100 NM1 (IL insured, 74 corrected, 82 rendering, TT crossover, PR, GB).
    pub names: Vec<Entity>,
    /// MOA (boxed: rare in professional remits, and a smaller claim is a faster read).
    pub outpatient: Option<Box<OutpatientAdjudication>>,
    /// MIA (boxed, as MOA).
    pub inpatient: Option<Box<InpatientAdjudication>>,
    /// Claim REF (1L, 1W, 28, 6P, 9A, 9C, BB, CE, EA, F8, G1, G3, IG, SY...).
    pub references: Vec<Reference>,
    /// DTM*232.
    pub statement_from: Option<NaiveDate>,
    /// DTM*233.
    pub statement_to: Option<NaiveDate>,
    /// DTM*050.
    pub received: Option<NaiveDate>,
    /// Other claim DTM (036 coverage expiration...).
    pub dates: Vec<QualifiedDate>,
    /// Claim AMT (AU coverage, I interest, F5 patient paid...).
    pub amounts: Vec<QualifiedAmount>,
    pub quantities: Vec<QualifiedQuantity>,
    /// 2110 service lines.
    pub lines: Vec<ServicePayment>,
    pub segment_index: usize,
    pub line: u32,
    /// An amount of this claim or its lines could not be read (reported): it cannot balance.
    #[serde(skip)]
    pub(crate) incomplete: bool,
}

impl ClaimPayment {
    /// First claim AMT with the qualifier.
    pub fn amount(&self, qualifier: &str) -> Option<Money> {
        self.amounts
            .iter()
            .find(|a| a.qualifier == qualifier)
            .map(|a| a.amount)
    }

    pub fn is_reversal(&self) -> bool {
        self.status == ClaimPaymentStatus::Reversal
    }
}

/// LQ remark: `HE` RARC or `RX` NCPDP reject code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Remark {
    pub qualifier: Text,
    pub code: Text,
}

/// 2110 service payment information.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServicePayment {
    /// SVC01 adjudicated procedure.
    pub procedure: Procedure,
    /// SVC02 line charge.
    pub charge: Option<Money>,
    /// SVC03 line payment.
    pub paid: Option<Money>,
    /// SVC04 NUBC revenue code.
    pub revenue_code: Option<Text>,
    /// SVC05 units paid.
    pub units_paid: Option<Decimal>,
    /// SVC06 original submitted procedure, when the payer changed it.
    /// (Boxed: rare, and a smaller line is a faster read.)
    pub original_procedure: Option<Box<Procedure>>,
    /// SVC07 original units.
    pub original_units: Option<Decimal>,
    /// DTM*472.
    pub service_date: Option<NaiveDate>,
    /// DTM*150.
    pub period_start: Option<NaiveDate>,
    /// DTM*151.
    pub period_end: Option<NaiveDate>,
    /// Line CAS.
    pub adjustments: Vec<Adjustment>,
    /// REF*6R line item control number: our 837 REF*6R.
    pub line_item_control_number: Option<Text>,
    /// Other line REF (1S, APC, BB, E9, G1, G3, LU, RB, 0K...).
    pub references: Vec<Reference>,
    /// Line AMT (B6 allowed, KH, T, T2, ZK..ZO).
    pub amounts: Vec<QualifiedAmount>,
    pub quantities: Vec<QualifiedQuantity>,
    /// LQ remarks.
    pub remarks: Vec<Remark>,
    pub segment_index: usize,
    pub line: u32,
}

impl ServicePayment {
    /// First line AMT with the qualifier.
    pub fn amount(&self, qualifier: &str) -> Option<Money> {
        self.amounts
            .iter()
            .find(|a| a.qualifier == qualifier)
            .map(|a| a.amount)
    }

    /// AMT*B6 allowed amount.
    pub fn allowed(&self) -> Option<Money> {
        self.amount("B6")
    }
}

/// One PLB adjustment pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlbItem {
    /// PLB03-1 adjustment reason (`WO`, `L6`, `72`, `CS`...).
    pub reason: Text,
    /// PLB03-2 reference (often the original ICN for a recoupment).
    pub reference: Option<Text>,
    /// Positive withholds from the provider, negative pays the provider (§3.3).
    pub amount: Money,
}

/// PLB provider-level adjustment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProviderAdjustment {
    /// PLB01 provider identifier.
    pub provider_id: Text,
    /// PLB02 fiscal period end.
    pub fiscal_period_end: Option<NaiveDate>,
    pub items: Vec<PlbItem>,
    pub segment_index: usize,
    pub line: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loop {
    Header,
    Payer,
    Payee,
    Detail,
    Claim,
    Line,
    Summary,
}

/// Streaming 835 decoder: fed one segment at a time between ST and SE.
pub(crate) struct Decoder {
    out: Remittance835,
    state: Loop,
    header_number: Option<Text>,
}

impl Decoder {
    pub(crate) fn new() -> Decoder {
        Decoder {
            out: Remittance835::default(),
            state: Loop::Header,
            header_number: None,
        }
    }

    pub(crate) fn finish(self) -> Remittance835 {
        self.out
    }

    fn current_claim(&mut self) -> Option<&mut ClaimPayment> {
        self.out.claims.last_mut()
    }

    fn current_line(&mut self) -> Option<&mut ServicePayment> {
        self.out.claims.last_mut().and_then(|c| c.lines.last_mut())
    }

    fn party(&mut self) -> Option<&mut Party> {
        match self.state {
            Loop::Payer => self.out.payer.as_mut(),
            Loop::Payee => self.out.payee.as_mut(),
            _ => None,
        }
    }

    pub(crate) fn segment(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        match seg.key {
            id::BPR => self.bpr(seg, cx),
            id::TRN if self.state == Loop::Header => {
                let [t, n, o, s] = seg.fields::<4>();
                require(cx, seg, "TRN02", n);
                self.out.trace = Some(Trace {
                    trace_type: Text::new(t),
                    trace_number: Text::new(n),
                    originator_id: opt_text(o),
                    supplemental_id: opt_text(s),
                });
            }
            id::N1 => self.n1(seg, cx),
            id::N3 | id::N4 => match self.party() {
                Some(p) => {
                    let a = p.address.get_or_insert_with(Address::default);
                    if seg.key == id::N3 {
                        a.set_n3(seg);
                    } else {
                        a.set_n4(seg);
                    }
                }
                None => unexpected(cx, seg, "outside the payer or payee loop"),
            },
            id::PER => match self.state {
                Loop::Payer | Loop::Payee => {
                    if let Some(p) = self.party() {
                        p.contacts.push(Contact::from_per(seg));
                    }
                }
                // 2100 PER*CX claim contact: not used by AR follow-up.
                Loop::Claim | Loop::Line => {}
                _ => unexpected(cx, seg, "outside the payer, payee or claim loop"),
            },
            id::REF => self.reference(seg, cx),
            id::DTM => self.dtm(seg, cx),
            id::LX => {
                self.state = Loop::Detail;
                self.header_number = opt_text(seg.element(1));
            }
            // Provider summary and Medicare Part A supplement: not used by AR follow-up.
            id::TS3 | id::TS2 | id::CUR | id::RDM => {}
            id::CLP => self.clp(seg, cx),
            id::CAS => self.cas(seg, cx),
            id::NM1 => match (self.state, self.out.claims.last_mut()) {
                (Loop::Claim, Some(c)) => {
                    let e = Entity::from_nm1(seg);
                    if key(e.entity_code.as_bytes()) == key(b"QC") && c.patient.is_none() {
                        c.patient = Some(e);
                    } else {
                        push_small(&mut c.names, e);
                    }
                }
                _ => unexpected(cx, seg, "outside a claim (CLP) before its service lines"),
            },
            id::MOA => self.moa(seg, cx),
            id::MIA => self.mia(seg, cx),
            id::AMT => {
                let state = self.state;
                let a = amt(cx, seg);
                match (state, a) {
                    (Loop::Line, Some(a)) => {
                        if let Some(l) = self.current_line() {
                            push_small(&mut l.amounts, a);
                        }
                    }
                    (Loop::Claim, Some(a)) => {
                        if let Some(c) = self.current_claim() {
                            push_small(&mut c.amounts, a);
                        }
                    }
                    (Loop::Line | Loop::Claim, None) => {}
                    _ => unexpected(cx, seg, "outside a claim or service line"),
                }
            }
            id::QTY => {
                let state = self.state;
                let q = qty(cx, seg);
                match (state, q) {
                    (Loop::Line, Some(q)) => {
                        if let Some(l) = self.current_line() {
                            push_small(&mut l.quantities, q);
                        }
                    }
                    (Loop::Claim, Some(q)) => {
                        if let Some(c) = self.current_claim() {
                            push_small(&mut c.quantities, q);
                        }
                    }
                    (Loop::Line | Loop::Claim, None) => {}
                    _ => unexpected(cx, seg, "outside a claim or service line"),
                }
            }
            id::SVC => self.svc(seg, cx),
            id::LQ => match self.current_line() {
                Some(l) => {
                    let [q, code] = seg.fields::<2>();
                    push_small(
                        &mut l.remarks,
                        Remark {
                            qualifier: Text::new(q),
                            code: Text::new(code),
                        },
                    );
                }
                None => unexpected(cx, seg, "outside a service line (SVC)"),
            },
            id::PLB => self.plb(seg, cx),
            _ => {}
        }
    }

    fn bpr(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        let f = seg.fields::<16>();
        let [handling, amt02, cd, method, format, ..] = f;
        let date16 = f.get(15).copied().unwrap_or("");
        require(cx, seg, "BPR01", handling);
        // BPR16 is required (X221A1): the date the money moves, which cash posting needs.
        require(cx, seg, "BPR16", date16);
        let amount = required_amount(cx, seg, "BPR02", amt02);
        self.out.incomplete |= amount.is_none();
        self.out.payment = Some(Payment {
            handling_code: Text::new(handling),
            amount,
            credit_debit: Text::new(cd),
            method: opt_text(method),
            format: opt_text(format),
            date: date(cx, seg, "BPR16", date16),
            segment_index: seg.index,
            line: seg.line,
        });
    }

    fn n1(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        let [code, name, q, id] = seg.fields::<4>();
        let party = Party {
            entity_code: Text::new(code),
            name: Text::new(name),
            id_qualifier: opt_text(q),
            id: opt_text(id),
            ..Party::default()
        };
        match code {
            "PR" => {
                self.out.payer = Some(party);
                self.state = Loop::Payer;
            }
            "PE" => {
                self.out.payee = Some(party);
                self.state = Loop::Payee;
            }
            other => cx.warning(
                seg,
                ProblemKind::UnknownCode,
                format!(
                    "N101 {other:?} is neither PR (payer) nor PE (payee); the loop was ignored"
                ),
            ),
        }
    }

    fn reference(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        let r = Reference::from_ref(seg);
        match self.state {
            Loop::Header => self.out.references.push(r),
            Loop::Payer | Loop::Payee => {
                if let Some(p) = self.party() {
                    p.references.push(r);
                }
            }
            Loop::Claim => {
                if let Some(c) = self.current_claim() {
                    push_small(&mut c.references, r);
                }
            }
            Loop::Line => {
                if let Some(l) = self.current_line() {
                    if key(r.qualifier.as_bytes()) == key(b"6R")
                        && l.line_item_control_number.is_none()
                    {
                        l.line_item_control_number = Some(r.value);
                    } else {
                        push_small(&mut l.references, r);
                    }
                }
            }
            Loop::Detail | Loop::Summary => unexpected(cx, seg, "outside a claim or header"),
        }
    }

    fn dtm(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        // Qualifiers as keys: integer compares on the hot path (see `lex::key`).
        const Q405: u32 = key(b"405");
        const Q232: u32 = key(b"232");
        const Q233: u32 = key(b"233");
        const Q050: u32 = key(b"050");
        // Some payers drop the leading zero of 050 (diasks2 samples: DTM*50).
        const Q50: u32 = key(b"50");
        const Q472: u32 = key(b"472");
        const Q150: u32 = key(b"150");
        const Q151: u32 = key(b"151");
        let [q, d] = seg.fields::<2>();
        let Some(day) = date(cx, seg, "DTM02", d) else {
            require(cx, seg, "DTM02", d);
            return;
        };
        match self.state {
            Loop::Header => {
                if key(q.as_bytes()) == Q405 {
                    self.out.production_date = Some(day);
                }
            }
            Loop::Claim => {
                if let Some(c) = self.current_claim() {
                    match key(q.as_bytes()) {
                        Q232 => c.statement_from = Some(day),
                        Q233 => c.statement_to = Some(day),
                        Q050 | Q50 => c.received = Some(day),
                        _ => push_small(
                            &mut c.dates,
                            QualifiedDate {
                                qualifier: Text::new(q),
                                date: day,
                                end: day,
                            },
                        ),
                    }
                }
            }
            Loop::Line => {
                if let Some(l) = self.current_line() {
                    match key(q.as_bytes()) {
                        Q472 => l.service_date = Some(day),
                        Q150 => l.period_start = Some(day),
                        Q151 => l.period_end = Some(day),
                        _ => cx.warning(
                            seg,
                            ProblemKind::UnknownCode,
                            format!(
                                "DTM01 {q:?} is not a service line date qualifier (472, 150, 151)"
                            ),
                        ),
                    }
                }
            }
            _ => unexpected(cx, seg, "outside the header, a claim or a service line"),
        }
    }

    fn clp(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        let f = seg.fields::<13>();
        let [
            pcn,
            status,
            charge,
            paid,
            resp,
            filing,
            icn,
            facility,
            freq,
            _,
            drg,
            weight,
            frac,
        ] = f;
        require(cx, seg, "CLP01", pcn);
        let st = ClaimPaymentStatus::from_code(status);
        if st == ClaimPaymentStatus::Unknown {
            cx.push(
                Problem::error(
                    ProblemKind::UnknownCode,
                    format!("CLP02 {status:?} is not a 005010X221A1 claim status (1, 2, 3, 4, 19, 20, 21, 22, 23, 25)"),
                )
                .at(seg)
                .element("CLP02"),
            );
        }
        let charge = required_amount(cx, seg, "CLP03", charge);
        let paid = required_amount(cx, seg, "CLP04", paid);
        let claim = ClaimPayment {
            header_number: self.header_number.clone(),
            patient_control_number: Text::new(pcn),
            status_code: Text::new(status),
            status: st,
            charge,
            paid,
            patient_responsibility: amount(cx, seg, "CLP05", resp),
            filing_indicator: opt_text(filing),
            payer_claim_control_number: opt_text(icn),
            facility_type: opt_text(facility),
            frequency_code: opt_text(freq),
            drg_code: opt_text(drg),
            drg_weight: quantity(cx, seg, "CLP12", weight),
            discharge_fraction: quantity(cx, seg, "CLP13", frac),
            adjustments: Vec::new(),
            patient: None,
            names: Vec::new(),
            outpatient: None,
            inpatient: None,
            references: Vec::new(),
            statement_from: None,
            statement_to: None,
            received: None,
            dates: Vec::new(),
            amounts: Vec::new(),
            quantities: Vec::new(),
            lines: Vec::new(),
            segment_index: seg.index,
            line: seg.line,
            incomplete: charge.is_none() || paid.is_none(),
        };
        self.out.claims.push(claim);
        self.state = Loop::Claim;
    }

    fn cas(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        if !matches!(self.state, Loop::Claim | Loop::Line) {
            unexpected(cx, seg, "outside a claim or service line");
            return;
        }
        let line_level = self.state == Loop::Line;
        if let Some(c) = self.out.claims.last_mut() {
            let target = if line_level {
                c.lines.last_mut().map(|l| &mut l.adjustments)
            } else {
                Some(&mut c.adjustments)
            };
            if let Some(t) = target {
                let complete = parse_cas(seg, cx, t);
                c.incomplete |= !complete;
            }
        }
    }

    fn moa(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        if self.state != Loop::Claim {
            unexpected(cx, seg, "outside a claim (before its service lines)");
            return;
        }
        let [rate, hcpcs, r1, r2, r3, r4, r5, esrd, nonpay] = seg.fields::<9>();
        let moa = OutpatientAdjudication {
            reimbursement_rate: quantity(cx, seg, "MOA01", rate),
            hcpcs_payable_amount: amount(cx, seg, "MOA02", hcpcs),
            remarks: [r1, r2, r3, r4, r5]
                .into_iter()
                .filter(|r| !r.is_empty())
                .map(Text::new)
                .collect(),
            esrd_payment_amount: amount(cx, seg, "MOA08", esrd),
            nonpayable_professional_component: amount(cx, seg, "MOA09", nonpay),
        };
        if let Some(c) = self.current_claim() {
            c.outpatient = Some(Box::new(moa));
        }
    }

    fn mia(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        if self.state != Loop::Claim {
            unexpected(cx, seg, "outside a claim (before its service lines)");
            return;
        }
        let f = seg.fields::<24>();
        let get = |n: usize| f.get(n - 1).copied().unwrap_or("");
        let mia = InpatientAdjudication {
            covered_days: quantity(cx, seg, "MIA01", get(1)),
            drg_amount: amount(cx, seg, "MIA04", get(4)),
            remarks: [get(5), get(20), get(21), get(22), get(23)]
                .into_iter()
                .filter(|r| !r.is_empty())
                .map(Text::new)
                .collect(),
        };
        if let Some(c) = self.current_claim() {
            c.inpatient = Some(Box::new(mia));
        }
    }

    fn svc(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        if !matches!(self.state, Loop::Claim | Loop::Line) {
            unexpected(cx, seg, "outside a claim (CLP)");
            return;
        }
        let [proc1, charge, paid, rev, units, proc6, units7] = seg.fields::<7>();
        require(cx, seg, "SVC01", proc1);
        let charge = required_amount(cx, seg, "SVC02", charge);
        let paid = required_amount(cx, seg, "SVC03", paid);
        let complete = charge.is_some() && paid.is_some();
        let line = ServicePayment {
            procedure: Procedure::parse(seg, proc1),
            charge,
            paid,
            revenue_code: opt_text(rev),
            units_paid: quantity(cx, seg, "SVC05", units),
            original_procedure: (!proc6.is_empty()).then(|| Box::new(Procedure::parse(seg, proc6))),
            original_units: quantity(cx, seg, "SVC07", units7),
            service_date: None,
            period_start: None,
            period_end: None,
            adjustments: Vec::new(),
            line_item_control_number: None,
            references: Vec::new(),
            amounts: Vec::new(),
            quantities: Vec::new(),
            remarks: Vec::new(),
            segment_index: seg.index,
            line: seg.line,
        };
        if let Some(c) = self.current_claim() {
            c.incomplete |= !complete;
            push_small(&mut c.lines, line);
        }
        self.state = Loop::Line;
    }

    fn plb(&mut self, seg: &Segment<'_>, cx: &mut Cx<'_>) {
        let f = seg.fields::<14>();
        let [provider, period, ..] = f;
        let mut items = Vec::new();
        for (k, pair) in f.get(2..).unwrap_or_default().chunks(2).enumerate() {
            let (reason_ref, amt_s) = match pair {
                [a, b] => (*a, *b),
                _ => continue,
            };
            if reason_ref.is_empty() && amt_s.is_empty() {
                continue;
            }
            let n = 3 + 2 * k;
            let [reason, reference] = seg.composite::<2>(reason_ref);
            let Some(amount) = required_amount(cx, seg, element_name(&PLB_ELEMENTS, n + 1), amt_s)
            else {
                self.out.incomplete = true;
                continue;
            };
            if reason.is_empty() {
                cx.push(
                    Problem::error(
                        ProblemKind::MissingElement,
                        format!("PLB{n:02}-01 adjustment reason is required"),
                    )
                    .at(seg)
                    .element(format!("PLB{n:02}")),
                );
            }
            items.push(PlbItem {
                reason: Text::new(reason),
                reference: opt_text(reference),
                amount,
            });
        }
        self.out.provider_adjustments.push(ProviderAdjustment {
            provider_id: Text::new(provider),
            fiscal_period_end: date(cx, seg, "PLB02", period),
            items,
            segment_index: seg.index,
            line: seg.line,
        });
        self.state = Loop::Summary;
    }
}

/// Element names, so the hot path never formats a string for a problem it does not report.
const CAS_ELEMENTS: [&str; 20] = [
    "CAS00", "CAS01", "CAS02", "CAS03", "CAS04", "CAS05", "CAS06", "CAS07", "CAS08", "CAS09",
    "CAS10", "CAS11", "CAS12", "CAS13", "CAS14", "CAS15", "CAS16", "CAS17", "CAS18", "CAS19",
];
const PLB_ELEMENTS: [&str; 15] = [
    "PLB00", "PLB01", "PLB02", "PLB03", "PLB04", "PLB05", "PLB06", "PLB07", "PLB08", "PLB09",
    "PLB10", "PLB11", "PLB12", "PLB13", "PLB14",
];

fn element_name(names: &'static [&'static str], n: usize) -> &'static str {
    names.get(n).copied().unwrap_or("?")
}

/// CAS: a group and up to six reason/amount/quantity triples (CAS02–CAS19,
/// docs/reference/x12.md §3.3), appended to `out`. Returns false when an amount could not be read
/// (the claim cannot be balanced).
pub(crate) fn parse_cas(seg: &Segment<'_>, cx: &mut Cx<'_>, out: &mut Vec<Adjustment>) -> bool {
    let f = seg.fields::<19>();
    let [group_code, ..] = f;
    let group = AdjustmentGroup::parse(group_code);
    match &group {
        AdjustmentGroup::CorrectionReversal => cx.push(
            Problem::warning(
                ProblemKind::LegacyCode,
                "CAS01 CR (corrections and reversals) is a 004010 group code; 005010X221A1 allows CO, OA, PI, PR",
            )
            .at(seg)
            .element("CAS01"),
        ),
        AdjustmentGroup::Other(code) => cx.push(
            Problem::error(
                ProblemKind::UnknownCode,
                format!("CAS01 {code:?} is not a claim adjustment group code (CO, OA, PI, PR)"),
            )
            .at(seg)
            .element("CAS01"),
        ),
        _ => {}
    }
    let before = out.len();
    let mut complete = true;
    for (k, triple) in f.get(1..).unwrap_or_default().chunks(3).enumerate() {
        let [reason, amt_s, qty_s] = match triple {
            [a, b, c] => [*a, *b, *c],
            _ => continue,
        };
        if reason.is_empty() && amt_s.is_empty() && qty_s.is_empty() {
            continue;
        }
        let n = 2 + 3 * k;
        if reason.is_empty() {
            cx.push(
                Problem::error(
                    ProblemKind::MissingElement,
                    format!(
                        "CAS{n:02} reason code is required when CAS{:02} has an amount",
                        n + 1
                    ),
                )
                .at(seg)
                .element(format!("CAS{n:02}")),
            );
        }
        let Some(amount) = required_amount(cx, seg, element_name(&CAS_ELEMENTS, n + 1), amt_s)
        else {
            complete = false;
            continue;
        };
        push_small(
            out,
            Adjustment {
                group: group.clone(),
                reason: Text::new(reason),
                amount,
                quantity: quantity(cx, seg, element_name(&CAS_ELEMENTS, n + 2), qty_s),
                segment_index: seg.index,
                line: seg.line,
            },
        );
    }
    if out.len() == before && complete {
        cx.error(
            seg,
            ProblemKind::MissingElement,
            "CAS has no reason/amount pair",
        );
    }
    complete
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::document::{Transaction, read};

    /// A hand-written 835 exercising every segment the reader keeps; amounts balance.
    pub(crate) const FIXTURE: &str = "ISA*00*          *00*          *ZZ*PAYER          *ZZ*ARFLOW         *240315*1200*^*00501*000000001*0*P*:~
GS*HP*PAYER*ARFLOW*20240315*1200*1*X*005010X221A1~
ST*835*0001~
BPR*I*175*C*ACH*CCP*01*999999992*DA*123456*1512345678**01*999988880*DA*98765*20240315~
TRN*1*EFT0001*1512345678*SUPP~
REF*EV*ARFLOW~
DTM*405*20240314~
N1*PR*RIVERSIDE PLAN*XV*87726~
N3*PO BOX 1*SUITE 2~
N4*ALBANY*NY*122370080~
REF*2U*87726~
PER*BL*EDI SUPPORT*TE*8005551234*EM*edi@example.org~
N1*PE*RIVERSIDE BEHAVIORAL HEALTH*XX*1245319599~
REF*TJ*123456789~
LX*1~
CLP*RBH-1*1*300*250*10*12*ICN0001*11*1~
CAS*CO*45*10*1*253*.5**94*9.5~
NM1*QC*1*RIVERA*JORDAN****MI*XEH123~
NM1*82*1*CHEN*AVERY****XX*1234567893~
MOA***MA130*N362~
REF*EA*PT-1~
DTM*232*20240301~
DTM*233*20240302~
DTM*050*20240310~
AMT*AU*300~
SVC*HC:90837:95:HJ*180*170*0400*1**1~
DTM*472*20240301~
CAS*PR*2*10*1~
REF*6R*1~
AMT*B6*160~
LQ*HE*N130~
SVC*HC:90785*100*80**1*HC:90785:GT*2~
DTM*150*20240301~
DTM*151*20240302~
CAS*CO*45*20~
REF*6R*2~
CLP*RBH-0*22*-100*-50**12*ICN0000*11*7~
CAS*CO*45*-50~
NM1*QC*1*RIVERA*JORDAN~
PLB*1245319599*20241231*WO:ICN0000*-12.5*L6*37.5~
SE*39*0001~
GE*1*1~
IEA*1*000000001~
";

    fn remit(text: &str) -> (Remittance835, Vec<crate::Problem>) {
        let doc = read(text.as_bytes());
        let r = doc
            .transactions()
            .find_map(|t| match &t.content {
                Transaction::Remittance835(r) => Some((**r).clone()),
                _ => None,
            })
            .unwrap();
        (r, doc.problems)
    }

    #[test]
    fn header_payer_and_payee() {
        let (r, problems) = remit(FIXTURE);
        assert!(problems.is_empty(), "{problems:#?}");
        let p = r.payment.unwrap();
        assert_eq!(p.handling_code, "I");
        assert_eq!(p.amount, Some(Money::from_cents(17_500)));
        assert_eq!(p.credit_debit, "C");
        assert_eq!(p.method.as_deref(), Some("ACH"));
        assert_eq!(p.date, NaiveDate::from_ymd_opt(2024, 3, 15));
        let t = r.trace.unwrap();
        assert_eq!(
            (t.trace_number.as_str(), t.originator_id.as_deref()),
            ("EFT0001", Some("1512345678"))
        );
        assert_eq!(r.production_date, NaiveDate::from_ymd_opt(2024, 3, 14));
        let payer = r.payer.unwrap();
        assert_eq!(payer.name, "RIVERSIDE PLAN");
        assert_eq!(payer.references[0].qualifier, "2U");
        assert_eq!(payer.address.unwrap().line2.as_deref(), Some("SUITE 2"));
        assert_eq!(
            payer.contacts[0].numbers[1],
            ("EM".into(), "edi@example.org".into())
        );
        let payee = r.payee.unwrap();
        assert_eq!(
            (payee.id_qualifier.as_deref(), payee.id.as_deref()),
            (Some("XX"), Some("1245319599"))
        );
        assert_eq!(payee.references[0].value, "123456789");
    }

    #[test]
    fn claims_lines_and_adjustments() {
        let (r, _) = remit(FIXTURE);
        assert_eq!(r.claims.len(), 2);
        let c = &r.claims[0];
        assert_eq!(c.header_number.as_deref(), Some("1"));
        assert_eq!(c.patient_control_number, "RBH-1");
        assert_eq!(c.status, ClaimPaymentStatus::ProcessedAsPrimary);
        assert_eq!(c.charge, Some(Money::from_cents(30_000)));
        assert_eq!(c.paid, Some(Money::from_cents(25_000)));
        assert_eq!(c.patient_responsibility, Some(Money::from_cents(1_000)));
        assert_eq!(c.payer_claim_control_number.as_deref(), Some("ICN0001"));
        assert_eq!(c.frequency_code.as_deref(), Some("1"));
        // Three triples in one CAS, the second without quantity.
        let reasons: Vec<(&str, i64)> = c
            .adjustments
            .iter()
            .map(|a| (a.reason.as_str(), a.amount.cents()))
            .collect();
        assert_eq!(reasons, [("45", 1_000), ("253", 50), ("94", 950)]);
        assert_eq!(
            c.adjustments[0].quantity.map(|q| q.to_string()),
            Some("1".into())
        );
        assert_eq!(c.adjustments[1].quantity, None);
        assert_eq!(c.patient.as_ref().unwrap().name, "RIVERA");
        assert_eq!(c.names[0].entity_code, "82");
        assert_eq!(c.outpatient.as_ref().unwrap().remarks, ["MA130", "N362"]);
        assert_eq!(c.statement_from, NaiveDate::from_ymd_opt(2024, 3, 1));
        assert_eq!(c.statement_to, NaiveDate::from_ymd_opt(2024, 3, 2));
        assert_eq!(c.received, NaiveDate::from_ymd_opt(2024, 3, 10));
        assert_eq!(c.amount("AU"), Some(Money::from_cents(30_000)));
        assert_eq!(c.references[0].qualifier, "EA");

        let l = &c.lines[0];
        assert_eq!(l.procedure.qualifier, "HC");
        assert_eq!(l.procedure.code, "90837");
        assert_eq!(l.procedure.modifiers, ["95", "HJ"]);
        assert_eq!(l.revenue_code.as_deref(), Some("0400"));
        assert_eq!(l.units_paid.map(|u| u.to_string()), Some("1".into()));
        assert_eq!(l.service_date, NaiveDate::from_ymd_opt(2024, 3, 1));
        assert_eq!(
            l.adjustments[0].group,
            AdjustmentGroup::PatientResponsibility
        );
        assert_eq!(l.line_item_control_number.as_deref(), Some("1"));
        assert_eq!(l.allowed(), Some(Money::from_cents(16_000)));
        assert_eq!(
            l.remarks[0],
            Remark {
                qualifier: "HE".into(),
                code: "N130".into()
            }
        );

        let l2 = &c.lines[1];
        let orig = l2.original_procedure.as_ref().unwrap();
        assert_eq!((orig.code.as_str(), orig.modifiers.len()), ("90785", 1));
        assert_eq!(l2.original_units.map(|u| u.to_string()), Some("2".into()));
        assert_eq!(l2.period_start, NaiveDate::from_ymd_opt(2024, 3, 1));
        assert_eq!(l2.period_end, NaiveDate::from_ymd_opt(2024, 3, 2));

        let rev = &r.claims[1];
        assert!(rev.is_reversal());
        assert_eq!(rev.paid, Some(Money::from_cents(-5_000)));
        assert_eq!(rev.adjustments[0].amount, Money::from_cents(-5_000));
    }

    #[test]
    fn provider_adjustments() {
        let (r, _) = remit(FIXTURE);
        let plb = &r.provider_adjustments[0];
        assert_eq!(plb.provider_id, "1245319599");
        assert_eq!(plb.fiscal_period_end, NaiveDate::from_ymd_opt(2024, 12, 31));
        assert_eq!(plb.items.len(), 2);
        assert_eq!(plb.items[0].reason, "WO");
        assert_eq!(plb.items[0].reference.as_deref(), Some("ICN0000"));
        assert_eq!(plb.items[0].amount, Money::from_cents(-1_250));
        assert_eq!(plb.items[1].reference, None);
    }

    #[test]
    fn bad_amounts_are_located_problems_not_roundings() {
        let text = FIXTURE.replace("CAS*PR*2*10*1~", "CAS*PR*2*10.005*1~");
        let (r, problems) = remit(&text);
        let p = problems
            .iter()
            .find(|p| p.kind == ProblemKind::BadAmount)
            .unwrap();
        assert_eq!(p.element.as_deref(), Some("CAS03"));
        assert_eq!(p.line, Some(28));
        assert_eq!(p.transaction.as_deref(), Some("0001"));
        assert!(p.message.contains("more than 2 decimal places"));
        // The adjustment is dropped, not rounded, and the claim is marked unbalanceable.
        assert!(r.claims[0].lines[0].adjustments.is_empty());
        assert!(r.claims[0].incomplete);
    }

    #[test]
    fn legacy_and_unknown_codes_are_flagged_but_kept() {
        let text = FIXTURE
            .replace("CAS*CO*45*20~", "CAS*CR*45*20~")
            .replace("CLP*RBH-0*22*", "CLP*RBH-0*99*");
        let (r, problems) = remit(&text);
        let legacy = problems
            .iter()
            .find(|p| p.kind == ProblemKind::LegacyCode)
            .unwrap();
        assert_eq!(legacy.severity, crate::Severity::Warning);
        assert_eq!(
            r.claims[0].lines[1].adjustments[0].group,
            AdjustmentGroup::CorrectionReversal
        );
        assert_eq!(r.claims[0].lines[1].adjustments[0].group.code(), "CR");
        assert!(
            problems.iter().any(
                |p| p.kind == ProblemKind::UnknownCode && p.element.as_deref() == Some("CLP02")
            )
        );
        assert_eq!(r.claims[1].status, ClaimPaymentStatus::Unknown);
    }

    #[test]
    fn misplaced_segments_are_reported() {
        let text = FIXTURE.replace("LX*1~", "LX*1~\nSVC*HC:1*1*1~\nLQ*HE*X~");
        let (_, problems) = remit(&text);
        let unexpected: Vec<_> = problems
            .iter()
            .filter(|p| p.kind == ProblemKind::UnexpectedSegment)
            .map(|p| p.segment.clone().unwrap())
            .collect();
        assert_eq!(unexpected, ["SVC", "LQ"]);
    }

    #[test]
    fn cas_triples_need_reason_and_amount() {
        let text = FIXTURE.replace("CAS*CO*45*20~", "CAS*CO**20*1*45~");
        let (_, problems) = remit(&text);
        let missing: Vec<_> = problems
            .iter()
            .filter(|p| p.kind == ProblemKind::MissingElement)
            .filter_map(|p| p.element.clone())
            .collect();
        assert_eq!(missing, ["CAS02", "CAS06"]);
    }
}
