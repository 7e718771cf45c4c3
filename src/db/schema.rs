//! Diesel table definitions, kept by hand in step with `migrations/`.

diesel::table! {
    organisations (id) {
        id -> Uuid,
        kind -> Text,
        name -> Text,
        name_key -> Text,
        legal_name -> Nullable<Text>,
        search_key -> Text,
        description -> Nullable<Text>,
        website -> Nullable<Text>,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        address_street -> Nullable<Text>,
        address_city -> Nullable<Text>,
        address_postal_code -> Nullable<Text>,
        address_province -> Nullable<Text>,
        address_country -> Text,
        tags -> Array<Text>,
        in_mind -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
        archived_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    companies (organisation_id) {
        organisation_id -> Uuid,
        vat_number -> Nullable<Text>,
        sector -> Text,
        device_segment -> Nullable<Text>,
        ateco_code -> Nullable<Text>,
        employees -> Nullable<Int4>,
        revenue_eur -> Nullable<Int8>,
        rd_investment_eur -> Nullable<Int8>,
        exports_eur -> Nullable<Int8>,
        founded_year -> Nullable<Int4>,
        assolombarda_member -> Bool,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Nullable<Text>,
        role -> Text,
        organisation_id -> Nullable<Uuid>,
        disabled_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Uuid,
        family_id -> Uuid,
        user_id -> Uuid,
        token_hash -> Bytea,
        issued_at -> Timestamptz,
        expires_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    api_clients (id) {
        id -> Uuid,
        name -> Text,
        role -> Text,
        organisation_id -> Nullable<Uuid>,
        secret_hash -> Text,
        previous_secret_hash -> Nullable<Text>,
        previous_valid_until -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Uuid,
        at -> Timestamptz,
        actor_id -> Nullable<Uuid>,
        actor_kind -> Text,
        action -> Text,
        entity -> Text,
        entity_id -> Uuid,
        request_id -> Nullable<Text>,
        changes -> Jsonb,
        related -> Array<Uuid>,
        seq -> Int8,
        txid -> Int8,
        version -> Nullable<Int8>,
    }
}

diesel::joinable!(companies -> organisations (organisation_id));
diesel::joinable!(users -> organisations (organisation_id));
diesel::joinable!(api_clients -> organisations (organisation_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    organisations,
    companies,
    users,
    refresh_tokens,
    api_clients,
    audit_events
);

diesel::table! {
    irccs (organisation_id) {
        organisation_id -> Uuid,
        ownership -> Nullable<Text>,
        specialisations -> Array<Text>,
        beds -> Nullable<Int4>,
        emergency_care -> Nullable<Bool>,
        serves_foreign_patients -> Nullable<Bool>,
    }
}

diesel::table! {
    universities (organisation_id) {
        organisation_id -> Uuid,
        ownership -> Nullable<Text>,
        has_medical_faculty -> Nullable<Bool>,
        students -> Nullable<Int4>,
        ror_id -> Nullable<Text>,
    }
}

diesel::table! {
    university_rankings (university_id, position) {
        university_id -> Uuid,
        position -> Int2,
        area -> Text,
        rank -> Int4,
        source -> Text,
        year -> Int4,
    }
}

diesel::table! {
    partners (organisation_id) {
        organisation_id -> Uuid,
        partner_type -> Text,
        scope -> Nullable<Text>,
    }
}

diesel::joinable!(irccs -> organisations (organisation_id));
diesel::joinable!(universities -> organisations (organisation_id));
diesel::joinable!(partners -> organisations (organisation_id));
diesel::allow_tables_to_appear_in_same_query!(
    organisations,
    irccs,
    universities,
    university_rankings,
    partners
);

diesel::table! {
    areas (code) {
        code -> Text,
        name -> Text,
        position -> Int2,
    }
}

diesel::table! {
    goals (id) {
        id -> Uuid,
        code -> Int4,
        title -> Text,
        title_key -> Text,
        headline -> Nullable<Text>,
        statement -> Nullable<Text>,
        lines_of_action -> Jsonb,
        areas -> Array<Text>,
        unlisted_partners -> Array<Text>,
        search_key -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
        archived_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    activities (id) {
        id -> Uuid,
        title -> Text,
        title_key -> Text,
        description -> Nullable<Text>,
        status -> Text,
        starts_on -> Nullable<Date>,
        ends_on -> Nullable<Date>,
        areas -> Array<Text>,
        search_key -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
        archived_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    goal_activity_links (id) {
        id -> Uuid,
        goal_id -> Uuid,
        activity_id -> Uuid,
        role -> Text,
        note -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::table! {
    goal_partners (id) {
        id -> Uuid,
        goal_id -> Uuid,
        organisation_id -> Uuid,
        role -> Text,
        since -> Nullable<Date>,
        until -> Nullable<Date>,
        note -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::table! {
    activity_participants (id) {
        id -> Uuid,
        activity_id -> Uuid,
        organisation_id -> Uuid,
        role -> Text,
        status -> Text,
        since -> Nullable<Date>,
        until -> Nullable<Date>,
        note -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::joinable!(goal_activity_links -> goals (goal_id));
diesel::joinable!(goal_activity_links -> activities (activity_id));
diesel::joinable!(goal_partners -> goals (goal_id));
diesel::joinable!(goal_partners -> organisations (organisation_id));
diesel::joinable!(activity_participants -> activities (activity_id));
diesel::joinable!(activity_participants -> organisations (organisation_id));
diesel::allow_tables_to_appear_in_same_query!(
    goals,
    activities,
    goal_activity_links,
    goal_partners,
    activity_participants,
    organisations,
    areas
);

diesel::table! {
    idempotency_keys (principal_id, key) {
        principal_id -> Uuid,
        key -> Text,
        request_hash -> Bytea,
        claim -> Uuid,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        status -> Nullable<Int2>,
        headers -> Nullable<Jsonb>,
        body -> Nullable<Bytea>,
        shown_once -> Bool,
    }
}

diesel::table! {
    token_rate_limits (key) {
        key -> Text,
        tat -> Timestamptz,
        emission_us -> Int8,
        burst -> Int4,
        allowed -> Bool,
    }
}

diesel::table! {
    set_password_tokens (user_id) {
        user_id -> Uuid,
        token_hash -> Bytea,
        issued_at -> Timestamptz,
    }
}

diesel::joinable!(set_password_tokens -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(set_password_tokens, users);

diesel::table! {
    webhooks (id) {
        id -> Uuid,
        url -> Text,
        events -> Array<Text>,
        kinds -> Array<Text>,
        description -> Nullable<Text>,
        disabled -> Bool,
        disabled_reason -> Nullable<Text>,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_valid_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::table! {
    webhook_cursors (webhook_id) {
        webhook_id -> Uuid,
        after_txid -> Int8,
        after_id -> Uuid,
        failures -> Int4,
        next_attempt_at -> Timestamptz,
        lease -> Nullable<Uuid>,
        leased_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        webhook_id -> Uuid,
        event_id -> Uuid,
        event_seq -> Int8,
        event_type -> Text,
        attempt -> Int4,
        manual -> Bool,
        outcome -> Text,
        status_code -> Nullable<Int4>,
        error -> Nullable<Text>,
        latency_ms -> Int4,
        attempted_at -> Timestamptz,
        next_attempt_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(webhook_cursors -> webhooks (webhook_id));
diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
diesel::allow_tables_to_appear_in_same_query!(webhooks, webhook_cursors, webhook_deliveries);
