//! The brochure dataset (`data/brochure.json`, embedded in the binary): the organisations the
//! hub's brochure names, loaded through the same validation as the API and idempotently (an
//! organisation whose kind and folded name already exist live is left as it is).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{Text, Uuid as SqlUuid};
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use crate::domain::OrganisationKind;
use crate::error::ApiError;
use crate::http::machinery::record::insert_new;
use crate::http::resources::companies::Companies;
use crate::http::resources::irccs::Irccs;
use crate::http::resources::organisation::{validate_body, OrgResource};
use crate::http::resources::partners::Partners;
use crate::http::resources::universities::Universities;
use crate::models::audit::Actor;

/// The dataset file.
const DATA: &str = include_str!("../../data/brochure.json");

/// The dataset, as the file holds it.
#[derive(Debug, Deserialize)]
pub struct Dataset {
    /// Every organisation the brochure names.
    pub organisations: Vec<Entry>,
    /// Other spellings the brochure uses, each naming one organisation's key.
    pub aliases: Vec<Alias>,
    /// The strategic goals (loaded with the strategy tables).
    #[serde(default)]
    pub goals: Vec<Json>,
}

/// One organisation of the dataset.
#[derive(Debug, Deserialize)]
pub struct Entry {
    /// Stable key the dataset's references use.
    pub key: String,
    /// Which kind.
    pub kind: OrganisationKind,
    /// The members of a create body, the kind's own under a member named after the kind.
    #[serde(flatten)]
    pub body: Map<String, Json>,
}

/// Another spelling of an organisation's name.
#[derive(Debug, Deserialize)]
pub struct Alias {
    /// The spelling.
    pub name: String,
    /// The organisation's key.
    pub key: String,
}

/// The embedded dataset.
pub fn dataset() -> Result<Dataset, serde_json::Error> {
    serde_json::from_str(DATA)
}

impl Dataset {
    /// The key of the organisation a name or alias stands for.
    pub fn resolve(&self, name: &str) -> Option<&str> {
        self.organisations
            .iter()
            .find(|o| o.body.get("name").and_then(Json::as_str) == Some(name))
            .map(|o| o.key.as_str())
            .or_else(|| {
                self.aliases
                    .iter()
                    .find(|a| a.name == name)
                    .map(|a| a.key.as_str())
            })
    }
}

/// What a load did.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Organisations created now.
    pub created: usize,
    /// Organisations already there.
    pub existing: usize,
    /// Every dataset key with its organisation's id.
    pub ids: HashMap<String, Uuid>,
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

fn existing(
    conn: &mut PgConnection,
    kind: OrganisationKind,
    name: &str,
) -> QueryResult<Option<Uuid>> {
    diesel::sql_query(
        "SELECT id FROM organisations WHERE kind = $1 AND name_key = lshub_fold($2) AND archived_at IS NULL",
    )
    .bind::<Text, _>(kind.as_str())
    .bind::<Text, _>(name)
    .get_result::<Found>(conn)
    .optional()
    .map(|f| f.map(|f| f.id))
}

/// Validates an entry as kind `R` and inserts it unless it exists; returns its id and whether
/// it was created.
fn upsert<R: OrgResource>(
    conn: &mut PgConnection,
    actor: &Actor,
    entry: &Entry,
) -> Result<(Uuid, bool), ApiError> {
    let mut body = entry.body.clone();
    if let Some(Json::Object(own)) = body.remove(R::KIND.as_str()) {
        body.extend(own);
    }
    let name = body
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(id) = existing(conn, R::KIND, &name)? {
        return Ok((id, false));
    }
    let write = validate_body::<R>(body)?;
    let (id, _) = insert_new::<R>(conn, actor, (), &write)?;
    Ok((id, true))
}

/// Loads the brochure's organisations in one transaction; running it again changes nothing.
pub fn load(conn: &mut PgConnection) -> Result<Loaded, String> {
    let data = dataset().map_err(|e| format!("the embedded dataset does not parse: {e}"))?;
    let actor = Actor::system();
    conn.transaction(|conn| {
        let mut loaded = Loaded::default();
        for entry in &data.organisations {
            let (id, created) = match entry.kind {
                OrganisationKind::Company => upsert::<Companies>(conn, &actor, entry),
                OrganisationKind::Irccs => upsert::<Irccs>(conn, &actor, entry),
                OrganisationKind::University => upsert::<Universities>(conn, &actor, entry),
                OrganisationKind::Partner => upsert::<Partners>(conn, &actor, entry),
            }
            .map_err(|e| match e {
                ApiError::Validation(errors) => ApiError::internal(format!(
                    "dataset entry `{}` is invalid: {errors:?}",
                    entry.key
                )),
                other => other,
            })?;
            if created {
                loaded.created += 1;
            } else {
                loaded.existing += 1;
            }
            loaded.ids.insert(entry.key.clone(), id);
        }
        Ok::<_, ApiError>(loaded)
    })
    .map_err(|e| match e {
        ApiError::Internal(cause) => cause,
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dataset_parses_and_every_alias_and_partner_resolves() {
        let data = dataset().expect("dataset");
        let keys: Vec<&str> = data.organisations.iter().map(|o| o.key.as_str()).collect();
        for alias in &data.aliases {
            assert!(
                keys.contains(&alias.key.as_str()),
                "alias {} -> {}",
                alias.name,
                alias.key
            );
        }
        for goal in &data.goals {
            for partner in goal["partners"].as_array().into_iter().flatten() {
                let name = partner["name"].as_str().expect("partner name");
                assert!(data.resolve(name).is_some(), "unresolved partner {name}");
            }
        }
        assert_eq!(data.resolve("Farindustria"), Some("farmindustria"));
    }
}

/// What loading the strategy did.
#[derive(Debug, Default)]
pub struct StrategyLoaded {
    /// Goals created now.
    pub goals: usize,
    /// Activities created now.
    pub activities: usize,
    /// Goal-activity links created now.
    pub links: usize,
    /// Goal partners created now.
    pub partners: usize,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Loads the brochure's goals, the activities listed under each (linked as `primary`) and
/// each goal's strategic partners, after its organisations; idempotent like [`load`]. A
/// partner named twice under one goal (an organisation and its department) is one link whose
/// note names the department.
pub fn load_strategy(
    conn: &mut PgConnection,
    organisations: &HashMap<String, Uuid>,
) -> Result<StrategyLoaded, String> {
    use crate::http::machinery::record::Resource;
    use crate::http::resources::activities::Activities;
    use crate::http::resources::dated::{Dated, GoalPartners};
    use crate::http::resources::goals::Goals;
    use crate::http::resources::links::GoalActivityLinks;

    fn object(value: Json) -> Map<String, Json> {
        match value {
            Json::Object(map) => map,
            _ => Map::new(),
        }
    }

    let data = dataset().map_err(|e| format!("the embedded dataset does not parse: {e}"))?;
    let actor = Actor::system();
    conn.transaction(|conn| {
        let mut loaded = StrategyLoaded::default();
        for goal in &data.goals {
            let mut body: Map<String, Json> = goal.as_object().cloned().unwrap_or_default();
            let partners = body.remove("partners").unwrap_or_default();
            let activities = body.remove("activities").unwrap_or_default();
            let code = body.get("code").and_then(Json::as_i64).unwrap_or_default();
            let existing: Option<Found> = diesel::sql_query("SELECT id FROM goals WHERE code = $1 AND archived_at IS NULL")
                .bind::<diesel::sql_types::Integer, _>(i32::try_from(code).unwrap_or_default())
                .get_result(conn)
                .optional()?;
            let goal_id = match existing {
                Some(found) => found.id,
                None => {
                    loaded.goals += 1;
                    insert_new::<Goals>(conn, &actor, (), &Goals::validate(body)?)?.0
                }
            };
            for activity in activities.as_array().into_iter().flatten() {
                let title = activity["title"].as_str().unwrap_or_default();
                let existing: Option<Found> =
                    diesel::sql_query("SELECT id FROM activities WHERE title_key = lshub_fold($1) AND archived_at IS NULL")
                        .bind::<Text, _>(title)
                        .get_result(conn)
                        .optional()?;
                let activity_id = match existing {
                    Some(found) => found.id,
                    None => {
                        loaded.activities += 1;
                        let body = activity.as_object().cloned().unwrap_or_default();
                        insert_new::<Activities>(conn, &actor, (), &Activities::validate(body)?)?.0
                    }
                };
                let linked: Count = diesel::sql_query(
                    "SELECT count(*) AS n FROM goal_activity_links WHERE goal_id = $1 AND activity_id = $2",
                )
                .bind::<SqlUuid, _>(goal_id)
                .bind::<SqlUuid, _>(activity_id)
                .get_result(conn)?;
                if linked.n == 0 {
                    let has_primary: Count = diesel::sql_query(
                        "SELECT count(*) AS n FROM goal_activity_links WHERE activity_id = $1 AND role = 'primary'",
                    )
                    .bind::<SqlUuid, _>(activity_id)
                    .get_result(conn)?;
                    let role = if has_primary.n == 0 { "primary" } else { "supporting" };
                    let body = serde_json::json!({"goal_id": goal_id, "activity_id": activity_id, "role": role});
                    let write = GoalActivityLinks::validate(object(body))?;
                    insert_new::<GoalActivityLinks>(conn, &actor, (), &write)?;
                    loaded.links += 1;
                }
            }
            // One link per organisation: a department named beside its parent adds its note.
            let mut wanted: Vec<(Uuid, Option<String>)> = Vec::new();
            for partner in partners.as_array().into_iter().flatten() {
                let name = partner["name"].as_str().unwrap_or_default();
                let key = data.resolve(name).ok_or_else(|| ApiError::internal(format!("unresolved partner {name}")))?;
                let org = *organisations.get(key).ok_or_else(|| ApiError::internal(format!("partner {key} not loaded")))?;
                let note = partner["note"].as_str().map(str::to_owned);
                match wanted.iter_mut().find(|(id, _)| *id == org) {
                    Some((_, existing)) => {
                        if note.is_some() {
                            *existing = note;
                        }
                    }
                    None => wanted.push((org, note)),
                }
            }
            for (org, note) in wanted {
                let linked: Count = diesel::sql_query(
                    "SELECT count(*) AS n FROM goal_partners WHERE goal_id = $1 AND organisation_id = $2 AND role = 'strategic_partner'",
                )
                .bind::<SqlUuid, _>(goal_id)
                .bind::<SqlUuid, _>(org)
                .get_result(conn)?;
                if linked.n > 0 {
                    continue;
                }
                let body = serde_json::json!({"organisation_id": org, "role": "strategic_partner", "note": note});
                let write = Dated::<GoalPartners>::validate(object(body))?;
                insert_new::<Dated<GoalPartners>>(conn, &actor, goal_id, &write)?;
                loaded.partners += 1;
            }
        }
        Ok::<_, ApiError>(loaded)
    })
    .map_err(|e| match e {
        ApiError::Validation(errors) => format!("the dataset's strategy is invalid: {errors:?}"),
        ApiError::Internal(cause) => cause,
        other => other.to_string(),
    })
}
