//! What a delivery sends: a CloudEvents 1.0 structured event, signed per Standard Webhooks 1.0.

use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};

use crate::domain::webhook::event_name;
use crate::domain::OrganisationKind;
use crate::models::webhook::FeedEvent;

/// The body's media type (CloudEvents' structured mode, JSON format).
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// The members the change touched, sorted: the names only, never their values (no personal
/// data leaves in a webhook). A create names what it set, a delete what the link held.
pub fn changed(changes: &Json) -> Vec<String> {
    let side = |name: &str| changes.get(name).and_then(Json::as_object);
    let mut names: Vec<String> = side("after")
        .or_else(|| side("before"))
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// The CloudEvent of a feed event.
pub fn cloud_event(event: &FeedEvent) -> Json {
    let kind = OrganisationKind::ALL
        .iter()
        .find(|k| k.as_str() == event.entity)
        .map(|k| k.as_str());
    json!({
        "specversion": "1.0",
        "id": event.seq.to_string(),
        "source": "/api/v1",
        "type": format!("org.lshub.{}", event_name(&event.entity, &event.action)),
        "subject": event.entity_id,
        "time": event.at,
        "datacontenttype": "application/json",
        "data": {
            "id": event.entity_id,
            "kind": kind,
            "version": event.version,
            "changed": changed(&event.changes),
        },
    })
}

/// The Standard Webhooks headers of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `webhook-id`: the feed event's number, the same on every attempt (receivers dedupe on
    /// it).
    pub id: String,
    /// `webhook-timestamp`: Unix seconds of this attempt.
    pub timestamp: i64,
    /// `webhook-signature`: `v1,<base64>` per live secret, space-separated.
    pub signature: String,
}

/// Signs `body` for event `id` at `now` with each of `secrets` (the current one first).
pub fn sign(
    secrets: &[&str],
    id: &str,
    now: DateTime<Utc>,
    body: &[u8],
) -> Result<Signed, standardwebhooks::WebhookError> {
    let timestamp = now.timestamp();
    let signatures = secrets
        .iter()
        .map(|secret| standardwebhooks::Webhook::new(secret)?.sign(id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Signed {
        id: id.to_owned(),
        timestamp,
        signature: signatures.join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_names_the_members_of_the_side_that_exists() {
        let update =
            json!({"before": {"name": "A", "tags": []}, "after": {"name": "B", "tags": ["x"]}});
        assert_eq!(changed(&update), ["name", "tags"]);
        let delete = json!({"before": {"role": "lead"}, "after": null});
        assert_eq!(changed(&delete), ["role"]);
    }

    #[test]
    fn a_signature_verifies_with_the_reference_library() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"id":"1"}"#;
        let now = Utc::now();
        let signed = sign(&[secret], "1", now, body).unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("webhook-id", "1".parse().unwrap());
        headers.insert(
            "webhook-timestamp",
            signed.timestamp.to_string().parse().unwrap(),
        );
        headers.insert("webhook-signature", signed.signature.parse().unwrap());
        let hook = standardwebhooks::Webhook::new(secret).unwrap();
        hook.verify(body, &headers).unwrap();
        let two = sign(
            &["whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", secret],
            "1",
            now,
            body,
        )
        .unwrap();
        assert_eq!(two.signature.split(' ').count(), 2);
        headers.insert("webhook-signature", two.signature.parse().unwrap());
        hook.verify(body, &headers).unwrap();
    }
}
