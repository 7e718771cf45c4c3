//! Every route of the API, each declared once: its handler, whose `#[utoipa::path]` gives the
//! path, method and OpenAPI operation, and who may call it. The same declaration registers the
//! handler with actix, adds the operation to the OpenAPI document with its `x-roles`, and is
//! what the [`Principal`](crate::auth::Principal) extractor checks the caller's role against.

use std::collections::HashMap;

use actix_web::dev::HttpServiceFactory;
use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, Resource, Responder};
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::{RefOr, Schema};

use super::machinery::record::{Resource as _, EDITORS};
use super::resources::dated::{Dated, GoalPartners, Participants};
use super::resources::links::GoalActivityLinks;
use super::resources::{
    activities, areas, audit, auth, changes, clients, companies, dated, goals, health, imports,
    irccs, links, metrics, organisations, partners, stats, universities, users, webhooks,
};
use crate::domain::Role;
use crate::error::ApiError;
use crate::openapi;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (probes, the spec, the token endpoint).
    Anonymous,
    /// A bearer token of one of these roles; others get 403.
    Roles(&'static [Role]),
}

/// Every role: what is readable is readable by all.
pub const EVERYONE: Access = Access::Roles(Role::ALL);
/// The hub's staff.
pub const STAFF: Access = Access::Roles(EDITORS);
/// Admins only: users and API clients.
pub const ADMINS: Access = Access::Roles(super::resources::account::ADMINS);

impl Access {
    /// The `x-roles` of the operation.
    fn names(self) -> Vec<&'static str> {
        match self {
            Self::Anonymous => vec!["anonymous"],
            Self::Roles(roles) => roles.iter().map(|r| r.as_str()).collect(),
        }
    }
}

/// The access of each method of one path, kept in the path's app data, where the
/// `Principal` extractor reads it.
#[derive(Debug, Clone, Default)]
pub struct RouteAccess(HashMap<Method, Access>);

impl RouteAccess {
    /// The access declared for `method` (`HEAD` is served by the `GET` handler).
    pub fn of(&self, method: &Method) -> Option<Access> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.0.get(method).copied()
    }
}

/// What a handler's `#[utoipa::path]` generates: its path, methods and operation, the schemas
/// it references and its tags.
pub trait PathSpec:
    utoipa::Path + utoipa::__dev::SchemaReferences + for<'t> utoipa::__dev::Tags<'t>
{
}

impl<P> PathSpec for P where
    P: utoipa::Path + utoipa::__dev::SchemaReferences + for<'t> utoipa::__dev::Tags<'t>
{
}

/// A handler actix can serve.
pub trait Endpoint<Args>: Handler<Args, Output: Responder + 'static> + Clone {}

impl<F, Args> Endpoint<Args> for F where F: Handler<Args, Output: Responder + 'static> + Clone {}

/// What route declarations are registered into: the actix app, or the OpenAPI document.
pub trait Register {
    /// Registers `handler`, described by `P` (its `#[utoipa::path]`), for `access`.
    fn add<P, F, Args>(&mut self, handler: F, access: Access)
    where
        P: PathSpec,
        F: Endpoint<Args>,
        Args: FromRequest + 'static;

    /// Learns of a writable resource whose routes follow (the checks that its body's uses
    /// agree run for every resource the route table names).
    fn resource<R>(&mut self)
    where
        R: crate::http::machinery::record::Resource + crate::http::machinery::list::ListKind,
        R::Body: crate::http::machinery::schema::Bodies,
    {
    }
}

/// A test's visit of every writable resource the route table declares ([`each_resource`]).
#[cfg(test)]
pub(crate) trait EachResource {
    fn visit<R>(&mut self)
    where
        R: crate::http::machinery::record::Resource + crate::http::machinery::list::ListKind,
        R::Body: crate::http::machinery::schema::Bodies;
}

/// Runs `visitor` on every writable resource [`declare`] names (a new one is visited as soon as
/// its routes are), and gives back their entities, in order.
#[cfg(test)]
pub(crate) fn each_resource(visitor: impl EachResource) -> Vec<&'static str> {
    struct Each<V>(V, Vec<&'static str>);
    impl<V: EachResource> Register for Each<V> {
        fn add<P, F, Args>(&mut self, _handler: F, _access: Access)
        where
            P: PathSpec,
            F: Endpoint<Args>,
            Args: FromRequest + 'static,
        {
        }

        fn resource<R>(&mut self)
        where
            R: crate::http::machinery::record::Resource + crate::http::machinery::list::ListKind,
            R::Body: crate::http::machinery::schema::Bodies,
        {
            self.0.visit::<R>();
            self.1.push(R::ENTITY);
        }
    }
    let mut each = Each(visitor, Vec::new());
    declare(&mut each);
    each.1
}

/// `route!(r, module::handler, access)`: registers the handler with the operation its
/// `#[utoipa::path]` generated (`module::__path_handler`).
macro_rules! route {
    ($r:expr, $module:ident :: $handler:ident, $access:expr) => {
        pastey::paste! {
            $r.add::<$module::[<__path_ $handler>], _, _>($module::$handler, $access)
        }
    };
}

/// The routes of a writable resource: its list and reads for everyone, its create and update
/// for its `CREATE_ROLES` and `UPDATE_ROLES`, and the staff's own (a record's archive, restore
/// and history; a link's delete).
macro_rules! writable_routes {
    ($r:expr, $module:ident, $resource:ty: $list:ident, $create:ident, $get:ident, $update:ident;
     staff: $($staff:ident),+ $(,)?) => {
        $r.resource::<$resource>();
        route!($r, $module::$list, EVERYONE);
        route!($r, $module::$create, Access::Roles(<$resource>::CREATE_ROLES));
        route!($r, $module::$get, EVERYONE);
        route!($r, $module::$update, Access::Roles(<$resource>::UPDATE_ROLES));
        $(route!($r, $module::$staff, STAFF);)+
    };
}

/// The routes of a resource only admins may call at all (users, API clients).
macro_rules! admin_routes {
    ($r:expr, $module:ident, $resource:ty: $($handler:ident),+ $(,)?) => {
        $r.resource::<$resource>();
        $(route!($r, $module::$handler, ADMINS);)+
    };
}

/// Every route of the service.
pub fn declare(r: &mut impl Register) {
    route!(r, health::healthz, Access::Anonymous);
    route!(r, health::readyz, Access::Anonymous);
    // Anonymous to the role check: the scrape token, when set, is checked by the handler.
    route!(r, metrics::get_metrics, Access::Anonymous);
    route!(r, openapi::serve_openapi, Access::Anonymous);
    route!(r, auth::issue_token, Access::Anonymous);
    route!(r, auth::revoke_token, Access::Anonymous);
    route!(r, auth::set_password, Access::Anonymous);
    route!(r, auth::get_me, EVERYONE);

    route!(r, audit::list_audit_events, STAFF);
    route!(r, imports::create_import, STAFF);
    admin_routes! {
        r, clients, clients::Clients: list_clients, create_client, get_client, update_client,
            revoke_client, rotate_client_secret, client_history
    }
    admin_routes! {
        r, users, users::Users: list_users, create_user, get_user, update_user, disable_user,
            enable_user, user_history, issue_set_password_token
    }
    admin_routes! {
        r, webhooks, webhooks::Webhooks: list_webhooks, create_webhook, get_webhook,
            update_webhook, delete_webhook, rotate_webhook_secret, list_deliveries, retry_delivery
    }

    route!(r, organisations::list_organisations, EVERYONE);
    route!(r, organisations::get_organisation, EVERYONE);
    route!(r, organisations::list_engagements, EVERYONE);
    writable_routes! {
        r, companies, companies::Companies: list_companies, create_company, get_company,
            update_company;
        staff: archive_company, restore_company, company_history
    }
    writable_routes! {
        r, irccs, irccs::Irccs: list_irccs, create_irccs, get_irccs, update_irccs;
        staff: archive_irccs, restore_irccs, irccs_history
    }
    writable_routes! {
        r, universities, universities::Universities: list_universities, create_university,
            get_university, update_university;
        staff: archive_university, restore_university, university_history
    }
    writable_routes! {
        r, partners, partners::Partners: list_partners, create_partner, get_partner, update_partner;
        staff: archive_partner, restore_partner, partner_history
    }

    route!(r, stats::get_organisation_stats, EVERYONE);
    route!(r, stats::get_goal_stats, EVERYONE);

    route!(r, areas::list_areas, EVERYONE);
    route!(r, changes::list_changes, EVERYONE);
    writable_routes! {
        r, goals, goals::Goals: list_goals, create_goal, get_goal, update_goal;
        staff: archive_goal, restore_goal, goal_history
    }
    writable_routes! {
        r, activities, activities::Activities: list_activities, create_activity, get_activity,
            update_activity;
        staff: archive_activity, restore_activity, activity_history
    }

    writable_routes! {
        r, links, GoalActivityLinks: list_goal_activity_links, create_goal_activity_link,
            get_goal_activity_link, update_goal_activity_link;
        staff: delete_goal_activity_link
    }
    route!(r, links::list_goal_activities, EVERYONE);
    route!(r, links::list_activity_goals, EVERYONE);

    writable_routes! {
        r, dated, Dated<GoalPartners>: list_goal_partners, create_goal_partner, get_goal_partner,
            update_goal_partner;
        staff: delete_goal_partner
    }
    writable_routes! {
        r, dated, Dated<Participants>: list_participants, create_participant, get_participant,
            update_participant;
        staff: delete_participant
    }
}

/// The actix side: one `web::resource` per path, in declaration order, answering its other
/// methods with 405 and an `Allow` list, `HEAD` by the `GET` handler. Each is mounted in the
/// scope of its collection ([`mount`]).
#[derive(Default)]
struct Actix {
    paths: Vec<(String, Resource, Vec<&'static str>, RouteAccess)>,
}

/// Where a path is mounted: the scope of its first segment under `/api/v1/` and the rest of it
/// (`/api/v1/companies` and `/{id}`), or no scope (`""`) for a path outside the API or one whose
/// first segment is a parameter. Routing compares a scope's fixed prefix before it tries the
/// patterns inside, so a request meets the patterns of its own collection only, instead of every
/// one declared before its own (14 regular expressions for a company's GET, a fifth of a 304
/// poll's instructions: bench/RESULTS.md).
fn mount(path: &str) -> (&str, &str) {
    const API: &str = "/api/v1/";
    let Some(rest) = path.strip_prefix(API) else {
        return ("", path);
    };
    let (scope, tail) = path.split_at(rest.find('/').map_or(path.len(), |at| API.len() + at));
    if scope[API.len()..].contains('{') {
        ("", path)
    } else {
        (scope, tail)
    }
}

impl Register for Actix {
    fn add<P, F, Args>(&mut self, handler: F, access: Access)
    where
        P: PathSpec,
        F: Endpoint<Args>,
        Args: FromRequest + 'static,
    {
        let path = P::path();
        let index = match self.paths.iter().position(|(p, ..)| *p == path) {
            Some(index) => index,
            None => {
                let resource = web::resource(mount(&path).1);
                self.paths
                    .push((path, resource, Vec::new(), RouteAccess::default()));
                self.paths.len() - 1
            }
        };
        let (_, resource, allow, route_access) = &mut self.paths[index];
        for method in P::methods() {
            let (method, name) = match method {
                HttpMethod::Get => (Method::GET, "GET"),
                HttpMethod::Post => (Method::POST, "POST"),
                HttpMethod::Put => (Method::PUT, "PUT"),
                HttpMethod::Patch => (Method::PATCH, "PATCH"),
                HttpMethod::Delete => (Method::DELETE, "DELETE"),
                HttpMethod::Head => (Method::HEAD, "HEAD"),
                HttpMethod::Options => (Method::OPTIONS, "OPTIONS"),
                HttpMethod::Trace => (Method::TRACE, "TRACE"),
            };
            let mut taken = std::mem::replace(resource, web::resource(""));
            taken = taken.route(web::method(method.clone()).to(handler.clone()));
            allow.push(name);
            if method == Method::GET {
                taken = taken.route(web::method(Method::HEAD).to(handler.clone()));
                allow.push("HEAD");
            }
            *resource = taken;
            route_access.0.insert(method, access);
        }
    }
}

/// Registers every route with actix.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut actix = Actix::default();
    declare(&mut actix);
    // Each scope in the order of its first path, its paths in their own order.
    let mut scopes: Vec<(String, actix_web::Scope)> = Vec::new();
    for (path, resource, allow, access) in actix.paths {
        let service = finish(resource, allow.join(", "), access);
        match mount(&path).0 {
            "" => {
                cfg.service(service);
            }
            prefix => match scopes.iter_mut().find(|(p, _)| p == prefix) {
                Some((_, scope)) => {
                    let taken = std::mem::replace(scope, web::scope(""));
                    *scope = taken.service(service);
                }
                None => scopes.push((prefix.to_owned(), web::scope(prefix).service(service))),
            },
        }
    }
    for (_, scope) in scopes {
        cfg.service(scope);
    }
}

fn finish(resource: Resource, allow: String, access: RouteAccess) -> impl HttpServiceFactory {
    resource.app_data(access).default_service(web::to(move || {
        let allow = allow.clone();
        async move { Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed { allow }) }
    }))
}

/// The OpenAPI side: each operation with its tags, its `x-roles`, and its roles in its
/// description; the schemas its annotation references.
#[derive(Default)]
pub struct Document {
    /// The paths, as utoipa keeps them.
    pub paths: utoipa::openapi::Paths,
    /// The schemas the operations reference.
    pub schemas: Vec<(String, RefOr<Schema>)>,
}

impl Register for Document {
    fn add<P, F, Args>(&mut self, _handler: F, access: Access)
    where
        P: PathSpec,
        F: Endpoint<Args>,
        Args: FromRequest + 'static,
    {
        let mut operation: Operation = P::operation();
        let tags: Vec<String> = <P as utoipa::__dev::Tags>::tags()
            .into_iter()
            .map(str::to_owned)
            .collect();
        if !tags.is_empty() {
            operation.tags = Some(tags);
        }
        let names = access.names();
        let roles = format!("Roles: {}.", names.join(", "));
        operation.description = Some(match operation.description.take() {
            Some(rest) if !rest.is_empty() => format!("{roles} {rest}"),
            _ => roles,
        });
        let x_roles = ExtensionsBuilder::new()
            .add("x-roles", serde_json::json!(names))
            .build();
        match operation.extensions.as_mut() {
            Some(extensions) => extensions.merge(x_roles),
            None => operation.extensions = Some(x_roles),
        }
        document_common_statuses(&mut operation, access);
        document_idempotency(&mut operation, &P::path(), &P::methods());
        self.paths
            .add_path_operation(P::path(), P::methods(), operation);
        P::schemas(&mut self.schemas);
    }
}

/// The statuses that follow from the route itself, documented wherever its annotation has not
/// named them: the role check (401, 403), the database behind every authenticated answer and
/// the whole-request timeout (503), the per-principal rate limit (429), a path (400 malformed
/// id, 404), a query (400 unknown or malformed parameter; 422 for a list's), `If-Match` (412,
/// 428), a body (400 malformed, 413, 415, 422). The annotation keeps what is the handler's own
/// (its success answers, 304, 409, and 422 for a query it validates).
fn document_common_statuses(operation: &mut Operation, access: Access) {
    use utoipa::openapi::path::ParameterIn;
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let has = |place: ParameterIn, name: Option<&str>| {
        parameters
            .iter()
            .any(|p| p.parameter_in == place && name.is_none_or(|n| p.name.eq_ignore_ascii_case(n)))
    };
    let mut implied: Vec<(&str, &str)> = Vec::new();
    let Access::Roles(roles) = access else {
        // The anonymous routes (probes, the spec, the OAuth endpoints with their RFC 6749
        // errors) document every answer themselves.
        return;
    };
    implied.extend([
        ("401", "Unauthorized"),
        ("429", "TooManyRequests"),
        ("503", "Unavailable"),
    ]);
    // 403 for a role the route leaves out, or for `include_archived` asked by one that may not.
    if roles != Role::ALL || has(ParameterIn::Query, Some("include_archived")) {
        implied.push(("403", "Forbidden"));
    }
    if has(ParameterIn::Path, None) {
        implied.extend([("400", "BadRequest"), ("404", "NotFound")]);
    }
    if has(ParameterIn::Query, None) {
        implied.push(("400", "BadRequest"));
    }
    // A list's `limit`, `q` and filters are validated (422 out of range or unparsable).
    if has(ParameterIn::Query, Some("limit")) {
        implied.push(("422", "Unprocessable"));
    }
    if has(ParameterIn::Header, Some("If-Match")) {
        implied.extend([
            ("412", "PreconditionFailed"),
            ("428", "PreconditionRequired"),
        ]);
    }
    if operation.request_body.is_some() {
        implied.extend([
            ("400", "BadRequest"),
            ("413", "PayloadTooLarge"),
            ("415", "UnsupportedMediaType"),
            ("422", "Unprocessable"),
        ]);
    }
    for (status, response) in implied {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(utoipa::openapi::Ref::from_response_name(response)));
    }
}

/// What the `Idempotency-Key` parameter says of itself.
const IDEMPOTENCY_KEY_DESCRIPTION: &str = "Makes a retry safe. A retry with the same key and \
    the same request (method, path, query and body) from the same caller within 24 hours (the \
    server's `LSHUB_IDEMPOTENCY_TTL`) gets the first answer again, status, body, `Location` and \
    `ETag`, with `Idempotent-Replayed: true`, and writes nothing twice. The same key with \
    another request is 422 `idempotency_key_reused`; a retry while the first request is in \
    flight is 409 `idempotency_key_in_flight`. An answer that showed a secret (a new API \
    client's, a rotated one, a set-password token) is never stored: a retry of it is 409 \
    `idempotency_answer_not_stored`. Kept: 2xx and 4xx answers except 401, 403, 409 and 429; \
    after one of those, a 5xx or a timeout, the key is free again. 1 to 255 visible ASCII \
    characters, e.g. a UUID; without it a POST behaves as ever.";

/// `Idempotency-Key` where the idempotency middleware takes it (every POST under `/api/v1`
/// outside `/auth/`): the header, `Idempotent-Replayed` on the success answers, and what the
/// middleware itself answers: 400 (a bad key), 409 (in flight, or a secret's answer), 422 (a
/// key reused).
fn document_idempotency(operation: &mut Operation, path: &str, methods: &[HttpMethod]) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::Required;

    use super::machinery::idempotency::{KEY_PATTERN, MAX_KEY_LEN};
    if !methods.contains(&HttpMethod::Post)
        || !path.starts_with("/api/v1/")
        || path.starts_with("/api/v1/auth/")
    {
        return;
    }
    let key = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(IDEMPOTENCY_KEY_DESCRIPTION))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_KEY_LEN))
                .pattern(Some(KEY_PATTERN)),
        ))
        .build();
    operation.parameters.get_or_insert_with(Vec::new).push(key);
    for (status, response) in &mut operation.responses.responses {
        if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
            response.headers.insert(
                "Idempotent-Replayed".to_owned(),
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(["true"])),
                    )
                    .description(Some(
                        "`true` when this is the stored answer to an earlier request with the \
                         same `Idempotency-Key`",
                    ))
                    .build(),
            );
        }
    }
    for (status, response) in [
        ("400", "BadRequest"),
        ("409", "Conflict"),
        ("422", "Unprocessable"),
    ] {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(utoipa::openapi::Ref::from_response_name(response)));
    }
}

/// Every route's operation, for the OpenAPI document.
pub fn document() -> Document {
    let mut doc = Document::default();
    declare(&mut doc);
    doc
}

#[cfg(test)]
mod tests {
    use super::mount;

    #[test]
    fn a_path_is_mounted_in_the_scope_of_its_collection() {
        assert_eq!(mount("/api/v1/companies"), ("/api/v1/companies", ""));
        assert_eq!(
            mount("/api/v1/companies/{id}"),
            ("/api/v1/companies", "/{id}")
        );
        assert_eq!(
            mount("/api/v1/goals/{id}/activities"),
            ("/api/v1/goals", "/{id}/activities")
        );
        assert_eq!(mount("/healthz"), ("", "/healthz"));
        assert_eq!(mount("/api/v1/{kind}/x"), ("", "/api/v1/{kind}/x"));
    }
}
