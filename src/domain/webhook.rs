//! Webhook subscriptions: which changes of the feed a receiver is sent, and where.

use serde::Deserialize;
use serde_json::{Map, Value as Json};
use utoipa::ToSchema;

use super::contact::URL_MAX;
use super::rules::{self, required, Errors, Rejected};
use super::{codes, wire_string, Invalid, OrganisationKind};

/// The feed's entities and what each can undergo, as event types name them
/// (`<entity>.<action>`): records are archived and restored, links are deleted.
pub const EVENT_TYPES: &[(&str, &[&str])] = &[
    ("company", RECORD_ACTIONS),
    ("irccs", RECORD_ACTIONS),
    ("university", RECORD_ACTIONS),
    ("partner", RECORD_ACTIONS),
    ("goal", RECORD_ACTIONS),
    ("activity", RECORD_ACTIONS),
    ("goal_activity_link", LINK_ACTIONS),
    ("goal_partner", LINK_ACTIONS),
    ("activity_participant", LINK_ACTIONS),
];
const RECORD_ACTIONS: &[&str] = &["created", "updated", "archived", "restored"];
const LINK_ACTIONS: &[&str] = &["created", "updated", "deleted"];

/// Every event, as a subscription names it.
pub const ALL_EVENTS: &str = "*";

/// The most event types a subscription lists: each of them once, and `*`.
pub const MAX_EVENTS: usize = {
    let mut n = 1;
    let mut i = 0;
    while i < EVENT_TYPES.len() {
        n += EVENT_TYPES[i].1.len();
        i += 1;
    }
    n
};

/// An event type's past-tense action for an audit action (`update` → `updated`).
pub fn past_tense(action: &str) -> &'static str {
    match action {
        "create" => "created",
        "update" => "updated",
        "archive" => "archived",
        "restore" => "restored",
        "delete" => "deleted",
        _ => "changed",
    }
}

/// What a subscription's `events` may hold: `*`, or an entity's event (`company.updated`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventType(String);

string_newtype!(EventType);

impl EventType {
    /// Every value, `*` first, in the contract's order.
    pub fn all() -> impl Iterator<Item = String> {
        std::iter::once(ALL_EVENTS.to_owned()).chain(
            EVENT_TYPES
                .iter()
                .flat_map(|(entity, actions)| actions.iter().map(move |a| format!("{entity}.{a}"))),
        )
    }

    /// Exactly one of [`Self::all`].
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        if Self::all().any(|t| t == input) {
            Ok(Self(input.to_owned()))
        } else {
            Err(Invalid::new(
                codes::UNKNOWN_VALUE,
                "`*`, or an entity and what happened to it, such as `company.updated`",
            ))
        }
    }
}

wire_schema!(
    EventType,
    wire_string().enum_values(Some(EventType::all().collect::<Vec<_>>()))
);

/// A receiver's address as the contract states it: `https://`, a host name, an optional port,
/// path and query (a server that allows private targets also takes `http://` and address
/// literals).
pub struct TargetUrl;

wire_schema!(
    TargetUrl,
    wire_string()
        .max_length(Some(URL_MAX))
        .pattern(Some(concat!(
            r"^https://(?:[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\.)*[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*",
            r"(?::[0-9]{1,4})?(?:/[A-Za-z0-9._~!$&'()*+,;=:@/-]*)?",
            r"(?:\?[A-Za-z0-9._~!$&'()*+,;=:@/?-]*)?$"
        )))
        .examples(["https://partner.example/hooks/lshub"])
);

/// A webhook subscription's body (a create, or a merged patch).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// Where events are posted: an `https://` address (or `http://` where the server allows
    /// private targets), at most 2,048 characters, without user name, password or fragment.
    /// Refused (422 at `/url`) when its host is, or resolves to, a loopback, private,
    /// link-local, shared (CGNAT) or metadata address, unless the server allows private
    /// targets.
    #[schema(required, value_type = Option<TargetUrl>, inline)]
    pub url: Option<String>,
    /// The event types sent: `*` for all, or `<entity>.<action>` ones such as
    /// `company.updated`, `activity_participant.created` (at least one, each at most once).
    #[schema(required, value_type = Option<crate::domain::rules::EventTypes>, inline)]
    pub events: Option<Vec<String>>,
    /// Only organisations of these kinds: an organisation's event of another kind is not sent
    /// (events of goals, activities and links are, as `events` says). Empty or absent: every
    /// kind.
    #[schema(value_type = Option<crate::domain::rules::Kinds>, inline)]
    pub kinds: Option<Vec<OrganisationKind>>,
    /// What it is for, at most 500 characters.
    #[schema(value_type = Option<crate::domain::rules::Text<0, 500>>, inline)]
    pub description: Option<String>,
    /// Paused: nothing is sent, and events wait past its cursor. Setting it back to `false`
    /// resumes with the first event not yet delivered (and clears `disabled_reason`).
    pub disabled: Option<bool>,
}

/// A subscription, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDraft {
    /// The address as sent (checked by [`target`]).
    pub url: String,
    pub events: Vec<String>,
    pub kinds: Vec<OrganisationKind>,
    pub description: Option<String>,
    pub disabled: bool,
}

/// The event type of a change of `entity` that underwent `action` (audit's name):
/// `company.updated`.
pub fn event_name(entity: &str, action: &str) -> String {
    format!("{entity}.{}", past_tense(action))
}

/// Whether a subscription to `events` and `kinds` is sent an event of `entity` that underwent
/// `action` (audit's name, e.g. `update`).
pub fn subscribed(
    events: &[String],
    kinds: &[OrganisationKind],
    entity: &str,
    action: &str,
) -> bool {
    let kind_ok = kinds.is_empty()
        || !OrganisationKind::ALL.iter().any(|k| k.as_str() == entity)
        || kinds.iter().any(|k| k.as_str() == entity);
    let name = event_name(entity, action);
    kind_ok && events.iter().any(|e| e == ALL_EVENTS || *e == name)
}

/// Decodes and validates a subscription body.
pub fn webhook(body: Map<String, Json>) -> Result<WebhookDraft, Rejected> {
    rules::validate(body, |input: WebhookBody, errors: &mut Errors| {
        let url = match input.url.map(|sent| target(&sent).map(|_| sent)) {
            None => required(errors, "/url", None, String::new()),
            Some(Ok(sent)) => sent,
            Some(Err(invalid)) => {
                errors.push("/url", invalid);
                String::new()
            }
        };
        let events = required(errors, "/events", input.events, Vec::new());
        if events.len() > MAX_EVENTS {
            errors.push(
                "/events",
                Invalid::new(
                    codes::OUT_OF_RANGE,
                    format!("at most {MAX_EVENTS} event types"),
                ),
            );
        }
        let mut kept: Vec<String> = Vec::new();
        for (i, event) in events.iter().enumerate() {
            match EventType::parse(event) {
                Err(invalid) => errors.push(&format!("/events/{i}"), invalid),
                Ok(_) if kept.contains(event) => errors.push(
                    &format!("/events/{i}"),
                    Invalid::new(codes::DUPLICATE_VALUE, "listed twice"),
                ),
                Ok(t) => kept.push(t.into_inner()),
            }
        }
        if events.is_empty() {
            errors.push(
                "/events",
                Invalid::new(codes::TOO_SHORT, "at least one event type, or `*`"),
            );
        }
        let kinds = rules::distinct(errors, "/kinds", &input.kinds.unwrap_or_default());
        WebhookDraft {
            url,
            events: kept,
            kinds,
            description: rules::text(errors, "/description", input.description, 500),
            disabled: input.disabled.unwrap_or(false),
        }
    })
}

/// A receiver's address as sent: absolute `http` or `https` with a host, no credentials (they
/// would show in every read of the subscription), no fragment (never sent), no whitespace.
/// Whether `http` and private hosts are allowed is the server's to say, at the HTTP layer.
pub fn target(sent: &str) -> Result<url::Url, Invalid> {
    let bad = |message: &str| Invalid::new(codes::INVALID_FORMAT, message);
    if sent.chars().count() > URL_MAX {
        return Err(Invalid::new(
            codes::TOO_LONG,
            format!("a webhook address has at most {URL_MAX} characters"),
        ));
    }
    if sent.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "a webhook address contains no spaces or control characters",
        ));
    }
    let url = url::Url::parse(sent).map_err(|e| bad(&format!("not a valid web address: {e}")))?;
    let spells_authority = sent
        .get(url.scheme().len()..)
        .is_some_and(|rest| rest.starts_with("://"));
    if !matches!(url.scheme(), "http" | "https") || !spells_authority || url.host().is_none() {
        return Err(bad(
            "a webhook address starts with https:// (or http://) followed by a host",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("a webhook address contains no user name or password"));
    }
    if url.fragment().is_some() {
        return Err(bad("a webhook address has no #fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_the_entities_actions_and_the_wildcard() {
        let all: Vec<String> = EventType::all().collect();
        assert_eq!(all[0], "*");
        assert!(all.contains(&"company.updated".to_owned()));
        assert!(all.contains(&"activity_participant.created".to_owned()));
        assert!(!all.contains(&"goal_partner.archived".to_owned()));
        assert_eq!(all.len(), 1 + 6 * 4 + 3 * 3);
        assert_eq!(all.len(), MAX_EVENTS);
    }

    #[test]
    fn a_subscription_filters_by_event_and_kind() {
        let events = vec!["company.updated".to_owned(), "goal.created".to_owned()];
        assert!(subscribed(&events, &[], "company", "update"));
        assert!(!subscribed(&events, &[], "company", "create"));
        let all = vec!["*".to_owned()];
        let irccs = [OrganisationKind::Irccs];
        assert!(subscribed(&all, &irccs, "irccs", "archive"));
        assert!(!subscribed(&all, &irccs, "company", "update"));
        assert!(subscribed(&all, &irccs, "goal_partner", "create"));
    }

    #[test]
    fn a_target_is_an_absolute_web_address_without_credentials() {
        assert!(target("https://example.org/hook?x=1").is_ok());
        assert!(target("http://10.0.0.1:8080/").is_ok());
        for bad in [
            "ftp://example.org/",
            "https:example.org",
            "https://user:pw@example.org/",
            "https://example.org/#x",
            "https://exa mple.org/",
            "/relative",
        ] {
            assert!(target(bad).is_err(), "{bad}");
        }
    }
}
