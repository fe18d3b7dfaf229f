//! Specialists CRUD and the checks of a specialist's fields.
use super::*;

/// A specialist's working hours from the request; absent ones are a violation (a create
/// without any gets the business hours before this check).
fn hours_from_proto(
    v: &mut Violations,
    prefix: &str,
    h: Option<&pb::WorkingHours>,
) -> WorkingHours {
    let Some(h) = h else {
        v.push((prefix.to_string(), "required".into()));
        return WorkingHours::default();
    };
    let hours = WorkingHours {
        days: h.days.clone(),
        start_time: h.start_time.clone(),
        end_time: h.end_time.clone(),
        time_zone: h.time_zone.clone(),
    };
    hours.check(prefix, v);
    hours.normalized()
}

fn ids(v: &mut Violations, field: &str, values: &[String]) -> Vec<String> {
    if values.is_empty() {
        v.push((
            field.to_string(),
            "name at least one (or `*` for all)".into(),
        ));
    }
    for (i, s) in values.iter().enumerate() {
        if s.trim().is_empty() || s.len() > 100 {
            v.push((
                format!("{field}[{i}]"),
                "must be 1 to 100 characters".into(),
            ));
        }
    }
    let mut out: Vec<String> = values.iter().map(|s| s.trim().to_string()).collect();
    out.sort();
    out.dedup();
    out
}

/// Validates the fields of `s` named by `paths` onto `base` (all of them when `paths` is
/// None).
fn apply_specialist(
    base: SpecialistFields,
    s: &pb::Specialist,
    paths: Option<&[String]>,
) -> Result<SpecialistFields, Error> {
    let mut v = Violations::new();
    let mut out = base;
    let all = [
        "display_name",
        "payer_ids",
        "clinic_ids",
        "capacity",
        "working_hours",
        "active",
        "out_of_office",
        "key_id",
    ];
    let chosen: Vec<String> = match paths {
        Some(p) if !p.is_empty() => p.to_vec(),
        _ => all.iter().map(|s| s.to_string()).collect(),
    };
    for (i, path) in chosen.iter().enumerate() {
        match path.as_str() {
            "display_name" => {
                let name = s.display_name.trim();
                if name.is_empty() || name.len() > 200 {
                    v.push((
                        "specialist.display_name".into(),
                        "must be 1 to 200 characters".into(),
                    ));
                }
                out.display_name = name.to_string();
            }
            "payer_ids" => out.payer_ids = ids(&mut v, "specialist.payer_ids", &s.payer_ids),
            "clinic_ids" => out.clinic_ids = ids(&mut v, "specialist.clinic_ids", &s.clinic_ids),
            "capacity" => {
                if !(1..=MAX_CAPACITY).contains(&s.capacity) {
                    v.push((
                        "specialist.capacity".into(),
                        format!("must be 1 to {MAX_CAPACITY} open tasks"),
                    ));
                }
                out.capacity = i64::from(s.capacity);
            }
            "working_hours" => {
                out.working_hours =
                    hours_from_proto(&mut v, "specialist.working_hours", s.working_hours.as_ref())
            }
            "active" => out.active = s.active,
            "out_of_office" => out.out_of_office = s.out_of_office,
            "key_id" => {
                let k = s.key_id.trim();
                if k.contains(char::is_whitespace) || k.len() > 100 {
                    v.push(("specialist.key_id".into(), "must be an API key id".into()));
                }
                out.key_id = (!k.is_empty()).then(|| k.to_string());
            }
            _ => v.push((
                format!("update_mask.paths[{i}]"),
                "not a field that can be changed".into(),
            )),
        }
    }
    bad(v)?;
    Ok(out)
}

/// The list ListSpecialists page tokens name (its cursor: the last id of the page).
const SPECIALISTS: &str = "specialists";

pub(super) async fn create_specialist(
    api: &AssignmentApi,
    request: Request<pb::CreateSpecialistRequest>,
) -> Result<Response<pb::CreateSpecialistResponse>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(MANAGERS)?;
    let mut s = request.into_inner().specialist.unwrap_or_default();
    // Working hours are optional on create: a specialist created without them works the
    // tenant's business hours (`[assignment] business_hours`).
    if s.working_hours.is_none() {
        s.working_hours = Some(hours_to_proto(&api.business_hours));
    }
    let fields = apply_specialist(SpecialistFields::default(), &s, None)?;
    let created =
        store::create_specialist(&api.db, &tenant(&principal), &fields, api.clock.now()).await?;
    let mut response = Response::new(pb::CreateSpecialistResponse {
        specialist: Some(specialist_to_proto(&created)),
    });
    audit_objects(&mut response, [created.id]);
    Ok(response)
}

pub(super) async fn get_specialist(
    api: &AssignmentApi,
    request: Request<pb::GetSpecialistRequest>,
) -> Result<Response<pb::GetSpecialistResponse>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(MANAGERS)?;
    let id = request.into_inner().specialist_id;
    let s = store::get_specialist(&api.db, &tenant(&principal), &id).await?;
    Ok(Response::new(pb::GetSpecialistResponse {
        specialist: Some(specialist_to_proto(&s)),
    }))
}

pub(super) async fn list_specialists(
    api: &AssignmentApi,
    request: Request<pb::ListSpecialistsRequest>,
) -> Result<Response<pb::ListSpecialistsResponse>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(MANAGERS)?;
    let r = request.into_inner();
    let limit = page_size(r.page_size)?;
    let after = PageToken::decode(&r.page_token, SPECIALISTS)
        .map_err(|v| Error::invalid("the request is not valid", [v]))?
        .unwrap_or_default();
    let page = store::list_specialists(&api.db, &tenant(&principal), &after, limit).await?;
    let next_page_token = if page.len() as i64 == limit {
        page.last()
            .map(|s| PageToken::encode(SPECIALISTS, &s.id))
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(Response::new(pb::ListSpecialistsResponse {
        specialists: page.iter().map(specialist_to_proto).collect(),
        next_page_token,
    }))
}

pub(super) async fn update_specialist(
    api: &AssignmentApi,
    request: Request<pb::UpdateSpecialistRequest>,
) -> Result<Response<pb::UpdateSpecialistResponse>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(MANAGERS)?;
    let r = request.into_inner();
    let s = r.specialist.unwrap_or_default();
    if s.id.trim().is_empty() {
        return Err(invalid("specialist.id", "required").into());
    }
    let tenant = tenant(&principal);
    let current = store::get_specialist(&api.db, &tenant, &s.id).await?;
    let paths = r.update_mask.map(|m| m.paths);
    let fields = apply_specialist(current.fields, &s, paths.as_deref())?;
    let (updated, moved) =
        store::update_specialist(&api.db, &tenant, &s.id, &fields, api.clock.now()).await?;
    let mut response = Response::new(pb::UpdateSpecialistResponse {
        specialist: Some(specialist_to_proto(&updated)),
        tasks_moved: i32::try_from(moved).unwrap_or(i32::MAX),
    });
    audit_objects(&mut response, [updated.id]);
    Ok(response)
}

pub(super) async fn delete_specialist(
    api: &AssignmentApi,
    request: Request<pb::DeleteSpecialistRequest>,
) -> Result<Response<pb::DeleteSpecialistResponse>, Status> {
    let principal = auth::principal(&request)?;
    principal.require_role(MANAGERS)?;
    let id = request.into_inner().specialist_id;
    let moved =
        store::delete_specialist(&api.db, &tenant(&principal), &id, api.clock.now()).await?;
    let mut response = Response::new(pb::DeleteSpecialistResponse {
        tasks_moved: i32::try_from(moved).unwrap_or(i32::MAX),
    });
    audit_objects(&mut response, [id]);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> pb::Specialist {
        pb::Specialist {
            display_name: "Dana".into(),
            payer_ids: vec!["P1".into()],
            clinic_ids: vec!["*".into()],
            capacity: 5,
            working_hours: Some(pb::WorkingHours {
                days: vec![1, 2, 3, 4, 5],
                start_time: "08:00".into(),
                end_time: "17:00".into(),
                time_zone: "America/Chicago".into(),
            }),
            active: true,
            ..Default::default()
        }
    }

    fn fields_of(status: impl Into<Status>) -> Vec<String> {
        use tonic_types::StatusExt as _;
        let status: Status = status.into();
        status
            .get_details_bad_request()
            .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_good_specialist_passes() {
        let f = apply_specialist(SpecialistFields::default(), &good(), None).expect("valid");
        assert_eq!(f.capacity, 5);
        assert_eq!(f.working_hours.time_zone, "America/Chicago");
    }

    #[test]
    fn bad_specialists_get_field_violations() {
        let s = pb::Specialist {
            display_name: " ".into(),
            payer_ids: vec![],
            capacity: 0,
            working_hours: Some(pb::WorkingHours {
                days: vec![0],
                start_time: "18:00".into(),
                end_time: "9am".into(),
                time_zone: "Central".into(),
            }),
            ..good()
        };
        let err = apply_specialist(SpecialistFields::default(), &s, None).expect_err("invalid");
        let fields = fields_of(err);
        for f in [
            "specialist.display_name",
            "specialist.payer_ids",
            "specialist.capacity",
            "specialist.working_hours.days[0]",
            "specialist.working_hours.end_time",
            "specialist.working_hours.time_zone",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
        }
    }

    #[test]
    fn masks_change_only_what_they_name() {
        let base = apply_specialist(SpecialistFields::default(), &good(), None).expect("valid");
        let change = pb::Specialist {
            capacity: 9,
            display_name: String::new(),
            ..good()
        };
        let f = apply_specialist(base.clone(), &change, Some(&["capacity".to_string()]))
            .expect("valid");
        assert_eq!((f.capacity, f.display_name.as_str()), (9, "Dana"));
        let err = apply_specialist(base, &change, Some(&["tenant_id".to_string()]))
            .expect_err("unknown path");
        assert_eq!(fields_of(err), ["update_mask.paths[0]"]);
    }
}
