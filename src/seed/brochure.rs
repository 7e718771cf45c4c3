//! The brochure dataset (`data/brochure.json`, embedded in the binary): the organisations the
//! hub's brochure names, loaded through the same write pipeline as the API (its validation and
//! its audit events) and idempotently (an organisation whose kind and folded name already
//! exist live is left as it is).

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use crate::domain::{ActivityId, GoalId, OrganisationId, OrganisationKind};
use crate::error::ApiError;
use crate::models::audit::Actor;
use crate::models::{activity, goal, link, organisation};

/// A record the dataset creates, as the body a client would send.
#[derive(Debug, Clone)]
pub enum New {
    /// An organisation of a kind: a create body of its collection.
    Organisation(OrganisationKind, Map<String, Json>),
    /// A goal.
    Goal(Map<String, Json>),
    /// An activity.
    Activity(Map<String, Json>),
    /// A goal–activity link.
    GoalActivityLink(Map<String, Json>),
    /// A strategic partner of the goal `goal`.
    GoalPartner {
        /// The goal.
        goal: GoalId,
        /// The link's create body.
        body: Map<String, Json>,
    },
}

/// The registry's write pipeline, as the dataset is loaded through it: a create, validated by
/// the domain's rules and written with its audit event, inside the caller's transaction. The
/// pipeline the API serves implements it, in the HTTP layer; the loader takes it as a
/// parameter so that it names none of that layer.
pub trait Registry {
    /// Creates `new` as `actor`; its id.
    fn create(&self, conn: &mut PgConnection, actor: &Actor, new: New) -> Result<Uuid, ApiError>;
}

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
    pub ids: HashMap<String, OrganisationId>,
}

/// Creates the organisation of `entry` through `registry` unless one of its kind and name
/// is live; its id and whether it was created.
fn upsert(
    conn: &mut PgConnection,
    registry: &dyn Registry,
    actor: &Actor,
    entry: &Entry,
) -> Result<(OrganisationId, bool), ApiError> {
    let mut body = entry.body.clone();
    if let Some(Json::Object(own)) = body.remove(entry.kind.as_str()) {
        body.extend(own);
    }
    let name = body
        .get("name")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(id) = organisation::live_id_by_name(conn, entry.kind, &name)? {
        return Ok((id, false));
    }
    let id = registry.create(conn, actor, New::Organisation(entry.kind, body))?;
    Ok((OrganisationId::new(id), true))
}

/// Loads the brochure's organisations in one transaction; running it again changes nothing.
pub fn load(conn: &mut PgConnection, registry: &dyn Registry) -> Result<Loaded, String> {
    let data = dataset().map_err(|e| format!("the embedded dataset does not parse: {e}"))?;
    let actor = Actor::system();
    conn.transaction(|conn| {
        let mut loaded = Loaded::default();
        for entry in &data.organisations {
            let (id, created) = upsert(conn, registry, &actor, entry).map_err(|e| match e {
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

/// Loads the brochure's goals, the activities listed under each (linked as `primary`) and
/// each goal's strategic partners, after its organisations; idempotent like [`load`]. A
/// partner named twice under one goal (an organisation and its department) is one link whose
/// note names the department.
pub fn load_strategy(
    conn: &mut PgConnection,
    registry: &dyn Registry,
    organisations: &HashMap<String, OrganisationId>,
) -> Result<StrategyLoaded, String> {
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
            let existing = goal::live_id_by_code(conn, i32::try_from(code).unwrap_or_default())?;
            let goal_id = match existing {
                Some(id) => id,
                None => {
                    loaded.goals += 1;
                    GoalId::new(registry.create(conn, &actor, New::Goal(body))?)
                }
            };
            for activity in activities.as_array().into_iter().flatten() {
                let title = activity["title"].as_str().unwrap_or_default();
                let activity_id = match activity::live_id_by_title(conn, title)? {
                    Some(id) => id,
                    None => {
                        loaded.activities += 1;
                        let body = activity.as_object().cloned().unwrap_or_default();
                        ActivityId::new(registry.create(conn, &actor, New::Activity(body))?)
                    }
                };
                if !link::goal_activity_linked(conn, goal_id, activity_id)? {
                    let role = if link::has_primary_goal(conn, activity_id)? { "supporting" } else { "primary" };
                    let body = serde_json::json!({"goal_id": goal_id, "activity_id": activity_id, "role": role});
                    registry.create(conn, &actor, New::GoalActivityLink(object(body)))?;
                    loaded.links += 1;
                }
            }
            // One link per organisation: a department named beside its parent adds its note.
            let mut wanted: Vec<(OrganisationId, Option<String>)> = Vec::new();
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
                if link::goal_partnered(conn, goal_id, org, "strategic_partner")? {
                    continue;
                }
                let body = serde_json::json!({"organisation_id": org, "role": "strategic_partner", "note": note});
                registry.create(conn, &actor, New::GoalPartner { goal: goal_id, body: object(body) })?;
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
