//! The strategy as written: goals, activities, the links between them and the dated links of
//! organisations to either, each declared once as the body the server decodes, and the rules
//! that turn a body into a draft the store writes.

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::rules::{self, required, text, title, Errors, Rejected};
use crate::domain::{
    codes, ActivityStatus, Area, GoalLinkRole, GoalPartnerRole, Invalid, OrganisationId,
    ParticipantRole, ParticipationStatus,
};

/// One of a goal's lines of action (the brochure's HOW).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LineOfAction {
    /// A short label, e.g. `Communication`, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// What is done.
    pub text: String,
}

/// A line of action as written.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineOfActionInput {
    /// A short label, e.g. `Communication`: up to 100 characters; blank counts as absent.
    #[serde(default)]
    #[schema(value_type = Option<crate::domain::rules::Text<0, 100>>, inline)]
    pub label: Option<String>,
    /// What is done: 1 to 2,000 characters.
    #[schema(value_type = crate::domain::rules::Text<1, 2000>, inline)]
    pub text: String,
}

/// A goal as written (its body's one declaration): `POST /api/v1/goals` takes these members
/// (`CreateGoal`), `PATCH` a merge patch of them (`GoalPatch`; lists are replaced whole). Blank
/// optional members count as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct GoalBody {
    /// The goal's number, 1 to 999, unique among live goals (409 `duplicate` otherwise).
    #[serde(
        default,
        deserialize_with = "crate::domain::rules::optional_whole_number"
    )]
    #[schema(required, minimum = 1, maximum = 999, format = Int32)]
    pub code: Option<i64>,
    /// The short name: 2 to 200 characters.
    #[schema(required, value_type = Option<crate::domain::rules::Text<2, 200>>, inline)]
    pub title: Option<String>,
    /// The one-line aim, up to 500 characters.
    #[schema(value_type = Option<crate::domain::rules::Text<0, 500>>, inline)]
    pub headline: Option<String>,
    /// The GOAL sentence, up to 5,000 characters.
    #[schema(value_type = Option<crate::domain::rules::Text<0, 5000>>, inline)]
    pub statement: Option<String>,
    /// How the goal is pursued: up to 50 lines. (The whole body is capped at 64 KiB: 413
    /// beyond.)
    #[serde(default)]
    #[schema(max_items = 50)]
    pub lines_of_action: Vec<LineOfActionInput>,
    /// Areas of action, no repeats.
    #[serde(default)]
    #[schema(value_type = crate::domain::rules::Areas, inline)]
    pub areas: Vec<Area>,
    /// Partners named only as a category: up to 50 names, each up to 300 characters (blank
    /// ones are dropped).
    #[serde(default)]
    #[schema(max_items = 50, value_type = Vec<crate::domain::rules::Text<0, 300>>, inline)]
    pub unlisted_partners: Vec<String>,
}

/// An activity as written (its body's one declaration): `POST /api/v1/activities` takes these
/// members (`CreateActivity`), `PATCH` a merge patch of them (`ActivityPatch`). Blank optional
/// members count as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ActivityBody {
    /// What the activity is: 2 to 500 characters.
    #[schema(required, value_type = Option<crate::domain::rules::Text<2, 500>>, inline)]
    pub title: Option<String>,
    /// More detail, up to 5,000 characters.
    #[schema(value_type = Option<crate::domain::rules::Text<0, 5000>>, inline)]
    pub description: Option<String>,
    /// Where it stands; default `active`.
    pub status: Option<ActivityStatus>,
    /// First day (`YYYY-MM-DD`), if known.
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub starts_on: Option<NaiveDate>,
    /// Last day (`YYYY-MM-DD`), if known; not before `starts_on` (refused otherwise).
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub ends_on: Option<NaiveDate>,
    /// Its own areas of action, no repeats; empty or absent: its primary goal's.
    #[serde(default)]
    #[schema(value_type = crate::domain::rules::Areas, inline)]
    pub areas: Vec<Area>,
}

/// A goal–activity link as written (its body's one declaration): `POST
/// /api/v1/goal-activity-links` takes these members (`CreateGoalActivityLink`), `PATCH` a
/// merge patch of them (`GoalActivityLinkPatch`; only `role` and `note` change). A blank note
/// counts as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct GoalActivityLinkBody {
    /// A live goal (422 otherwise). Fixed at creation: not a patch member.
    #[schema(required)]
    pub goal_id: Option<Uuid>,
    /// A live activity (422 otherwise). Fixed at creation: not a patch member.
    #[schema(required)]
    pub activity_id: Option<Uuid>,
    /// `primary` (the goal the activity is listed under; at most one per activity, 409 at
    /// `/role` otherwise) or `supporting`. One link per goal and activity (409).
    #[schema(required)]
    pub role: Option<GoalLinkRole>,
    /// A note, up to 1,000 characters.
    #[schema(value_type = Option<crate::domain::rules::Text<0, 1000>>, inline)]
    pub note: Option<String>,
}

/// A strategic partner of a goal as written (its body's one declaration): `POST
/// /api/v1/goals/{id}/partners` takes these members (`CreateGoalPartner`), `PATCH` a merge
/// patch of them (`GoalPartnerPatch`). A blank note counts as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct GoalPartnerBody {
    /// A live organisation (422 otherwise). Fixed at creation: not a patch member.
    #[schema(required)]
    pub organisation_id: Option<Uuid>,
    /// `strategic_partner` or `other`.
    #[schema(required)]
    pub role: Option<GoalPartnerRole>,
    /// First day (`YYYY-MM-DD`); absent or null: since ever.
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub since: Option<NaiveDate>,
    /// Last day, inclusive (`YYYY-MM-DD`); absent or null: open-ended. Not before `since`
    /// (refused otherwise). Two periods of one organisation with one role in one goal may not
    /// overlap (409 at `/since`).
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub until: Option<NaiveDate>,
    /// A note, e.g. the department of the organisation that partners: up to 1,000 characters.
    #[schema(value_type = Option<crate::domain::rules::Text<0, 1000>>, inline)]
    pub note: Option<String>,
}

/// An organisation's participation in an activity as written (its body's one declaration):
/// `POST /api/v1/activities/{id}/participants` takes these members (`CreateParticipant`),
/// `PATCH` a merge patch of them (`ParticipantPatch`). A blank note counts as absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ParticipantBody {
    /// A live organisation (422 otherwise); a partner's own. Fixed at creation: not a patch
    /// member.
    #[schema(required)]
    pub organisation_id: Option<Uuid>,
    /// Its part in the activity.
    #[schema(required)]
    pub role: Option<ParticipantRole>,
    /// A partner proposes (`proposed`, its default and the only status it may create) and may
    /// withdraw (`withdrawn`, its only patch); editors also confirm or decline (their default:
    /// `confirmed`, which `null` in a patch restores).
    pub status: Option<ParticipationStatus>,
    /// First day (`YYYY-MM-DD`); absent or null: since ever.
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub since: Option<NaiveDate>,
    /// Last day, inclusive (`YYYY-MM-DD`); absent or null: open-ended. Not before `since`
    /// (refused otherwise). Two periods of one organisation with one role in one activity may
    /// not overlap (409 at `/since`), unless one is `declined` or `withdrawn`.
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub until: Option<NaiveDate>,
    /// A note, up to 1,000 characters.
    #[schema(value_type = Option<crate::domain::rules::Text<0, 1000>>, inline)]
    pub note: Option<String>,
}

/// A dated link's members as decoded, whichever its kind.
#[derive(Debug, Clone, Default)]
pub struct DatedInput {
    /// The organisation.
    pub organisation_id: Option<Uuid>,
    /// The role, as its wire string.
    pub role: Option<&'static str>,
    /// The status (participants).
    pub status: Option<ParticipationStatus>,
    /// First day.
    pub since: Option<NaiveDate>,
    /// Last day.
    pub until: Option<NaiveDate>,
    /// A note.
    pub note: Option<String>,
}

crate::domain::ids::record_id!(
    /// A strategic goal's id.
    GoalId,
    "goal"
);

crate::domain::ids::record_id!(
    /// An activity's id.
    ActivityId,
    "activity"
);

/// A goal, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalDraft {
    pub code: i32,
    pub title: String,
    pub headline: Option<String>,
    pub statement: Option<String>,
    pub lines_of_action: Vec<LineOfAction>,
    pub areas: Vec<Area>,
    pub unlisted_partners: Vec<String>,
}

/// Decodes and validates a goal body (a create, or a merged patch).
pub fn goal(body: Map<String, Json>) -> Result<GoalDraft, Rejected> {
    rules::validate(body, |input: GoalBody, errors: &mut Errors| {
        let code = match input.code {
            Some(code) => errors.range("/code", Some(code), 1, 999).unwrap_or(1),
            None => {
                errors.push("/code", Invalid::new(codes::REQUIRED, "code is required"));
                1
            }
        };
        let title = title(errors, "/title", input.title, 200);
        if input.lines_of_action.len() > 50 {
            errors.push(
                "/lines_of_action",
                Invalid::new(codes::OUT_OF_RANGE, "at most 50"),
            );
        }
        let mut lines = Vec::new();
        for (i, line) in input.lines_of_action.into_iter().enumerate() {
            let at = format!("/lines_of_action/{i}/text");
            let text_of_line = text(errors, &at, Some(line.text), 2000);
            if text_of_line.is_none() {
                errors.push(&at, Invalid::new(codes::REQUIRED, "text is required"));
            }
            let label = text(
                errors,
                &format!("/lines_of_action/{i}/label"),
                line.label,
                100,
            );
            lines.push(LineOfAction {
                label,
                text: text_of_line.unwrap_or_default(),
            });
        }
        if input.unlisted_partners.len() > 50 {
            errors.push(
                "/unlisted_partners",
                Invalid::new(codes::OUT_OF_RANGE, "at most 50"),
            );
        }
        let unlisted_partners = input
            .unlisted_partners
            .into_iter()
            .enumerate()
            .filter_map(|(i, p)| text(errors, &format!("/unlisted_partners/{i}"), Some(p), 300))
            .collect();
        GoalDraft {
            code,
            title,
            headline: text(errors, "/headline", input.headline, 500),
            statement: text(errors, "/statement", input.statement, 5000),
            lines_of_action: lines,
            areas: rules::distinct(errors, "/areas", &input.areas),
            unlisted_partners,
        }
    })
}

/// An activity, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityDraft {
    pub title: String,
    pub description: Option<String>,
    pub status: ActivityStatus,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub areas: Vec<Area>,
}

/// Decodes and validates an activity body.
pub fn activity(body: Map<String, Json>) -> Result<ActivityDraft, Rejected> {
    rules::validate(body, |input: ActivityBody, errors: &mut Errors| {
        if let (Some(s), Some(e)) = (input.starts_on, input.ends_on) {
            if e < s {
                errors.push(
                    "/ends_on",
                    Invalid::new(codes::OUT_OF_RANGE, "ends_on is before starts_on"),
                );
            }
        }
        ActivityDraft {
            title: title(errors, "/title", input.title, 500),
            description: text(errors, "/description", input.description, 5000),
            status: input.status.unwrap_or(ActivityStatus::Active),
            starts_on: input.starts_on,
            ends_on: input.ends_on,
            areas: rules::distinct(errors, "/areas", &input.areas),
        }
    })
}

/// A goal–activity link, validated (its ends' liveness is the store's to check).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkDraft {
    pub goal_id: GoalId,
    pub activity_id: ActivityId,
    pub role: GoalLinkRole,
    pub note: Option<String>,
}

/// Decodes and validates a goal–activity link body.
pub fn goal_activity_link(body: Map<String, Json>) -> Result<LinkDraft, Rejected> {
    rules::validate(body, |input: GoalActivityLinkBody, errors: &mut Errors| {
        LinkDraft {
            goal_id: GoalId::new(required(errors, "/goal_id", input.goal_id, Uuid::nil())),
            activity_id: ActivityId::new(required(
                errors,
                "/activity_id",
                input.activity_id,
                Uuid::nil(),
            )),
            role: required(errors, "/role", input.role, GoalLinkRole::Supporting),
            note: text(errors, "/note", input.note, 1000),
        }
    })
}

impl From<GoalPartnerBody> for DatedInput {
    fn from(body: GoalPartnerBody) -> Self {
        Self {
            organisation_id: body.organisation_id,
            role: body.role.map(GoalPartnerRole::as_str),
            status: None,
            since: body.since,
            until: body.until,
            note: body.note,
        }
    }
}

impl From<ParticipantBody> for DatedInput {
    fn from(body: ParticipantBody) -> Self {
        Self {
            organisation_id: body.organisation_id,
            role: body.role.map(ParticipantRole::as_str),
            status: body.status,
            since: body.since,
            until: body.until,
            note: body.note,
        }
    }
}

/// A dated link, validated (its organisation's liveness is the store's to check).
#[derive(Debug, Clone, PartialEq)]
pub struct DatedDraft {
    /// The organisation.
    pub organisation_id: OrganisationId,
    /// Its role, one of the kind's.
    pub role: String,
    /// Its status, where the kind has one.
    pub status: Option<&'static str>,
    /// First day.
    pub since: Option<NaiveDate>,
    /// Last day, inclusive.
    pub until: Option<NaiveDate>,
    /// A note.
    pub note: Option<String>,
}

/// Decodes and validates a dated link body of the kind whose body `B` declares.
pub fn dated<B: DeserializeOwned + Default + Into<DatedInput>>(
    body: Map<String, Json>,
) -> Result<DatedDraft, Rejected> {
    rules::validate(body, |input: B, errors: &mut Errors| {
        let input: DatedInput = input.into();
        let organisation_id = required(
            errors,
            "/organisation_id",
            input.organisation_id,
            Uuid::nil(),
        );
        let role = required(errors, "/role", input.role, "");
        if let (Some(since), Some(until)) = (input.since, input.until) {
            if until < since {
                errors.push(
                    "/until",
                    Invalid::new(codes::OUT_OF_RANGE, "until is before since"),
                );
            }
        }
        DatedDraft {
            organisation_id: OrganisationId::new(organisation_id),
            role: role.to_owned(),
            status: input.status.map(ParticipationStatus::as_str),
            since: input.since,
            until: input.until,
            note: text(errors, "/note", input.note, 1000),
        }
    })
}
