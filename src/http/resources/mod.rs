//! One module per resource: its request and response types, its storage and validation hooks
//! for the pipeline, and its thin handlers. Who may call each handler is declared in
//! `http::routes`.

pub mod account;
pub mod activities;
pub mod areas;
pub mod audit;
pub mod auth;
pub mod changes;
pub mod clients;
pub mod companies;
pub mod dated;
pub mod goals;
pub mod health;
pub mod imports;
pub mod irccs;
pub mod links;
pub mod metrics;
pub mod organisation;
pub mod organisations;
pub mod partners;
pub mod stats;
pub mod universities;
pub mod users;
pub mod webhooks;

/// The write pipeline as the dataset loader takes it: each record it creates goes through its
/// resource's validation and insert, with its audit event, as a client's `POST` does.
pub struct Pipeline;

impl crate::seed::brochure::Registry for Pipeline {
    fn create(
        &self,
        conn: &mut diesel::PgConnection,
        actor: &crate::models::audit::Actor,
        new: crate::seed::brochure::New,
    ) -> Result<uuid::Uuid, crate::error::ApiError> {
        use crate::domain::OrganisationKind as Kind;
        use crate::http::machinery::record::insert_new;
        use crate::seed::brochure::New;

        fn create<R: crate::http::machinery::record::Resource>(
            conn: &mut diesel::PgConnection,
            actor: &crate::models::audit::Actor,
            parent: R::Parent,
            body: serde_json::Map<String, serde_json::Value>,
        ) -> Result<uuid::Uuid, crate::error::ApiError> {
            Ok(insert_new::<R>(conn, actor, parent, &R::validate(body)?)?.0)
        }

        match new {
            New::Organisation(Kind::Company, body) => {
                create::<companies::Companies>(conn, actor, (), body)
            }
            New::Organisation(Kind::Irccs, body) => create::<irccs::Irccs>(conn, actor, (), body),
            New::Organisation(Kind::University, body) => {
                create::<universities::Universities>(conn, actor, (), body)
            }
            New::Organisation(Kind::Partner, body) => {
                create::<partners::Partners>(conn, actor, (), body)
            }
            New::Goal(body) => create::<goals::Goals>(conn, actor, (), body),
            New::Activity(body) => create::<activities::Activities>(conn, actor, (), body),
            New::GoalActivityLink(body) => {
                create::<links::GoalActivityLinks>(conn, actor, (), body)
            }
            New::GoalPartner { goal, body } => {
                create::<dated::Dated<dated::GoalPartners>>(conn, actor, goal, body)
            }
        }
    }
}
