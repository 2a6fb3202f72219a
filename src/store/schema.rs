//! The diesel table definitions shared by both backends.
//!
//! One schema serves SQLite and PostgreSQL, so every column uses a SQL type both
//! support: identifiers and JSON documents are `Text`, instants are UTC `Timestamp`,
//! money is `BigInt` cents, and only the two cursor columns (`events.seq`,
//! `audit_log.seq`) are database-generated. The migrations in `migrations/sqlite` and
//! `migrations/postgres` create exactly these columns; `tests/schema_matches.rs`
//! checks that on both backends.

diesel::table! {
    tenants (tenant_id) {
        tenant_id -> Text,
        name -> Text,
        profile -> Text,
        timezone -> Text,
        phone -> Nullable<Text>,
        country -> Text,
        currency -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    business_config (tenant_id, key) {
        tenant_id -> Text,
        key -> Text,
        value -> Text,
        updated_at -> Timestamp,
        updated_by -> Nullable<Text>,
    }
}

diesel::table! {
    customers (id) {
        id -> Text,
        tenant_id -> Text,
        pseudonym -> Text,
        phone_e164 -> Nullable<Text>,
        name -> Nullable<Text>,
        email -> Nullable<Text>,
        timezone -> Nullable<Text>,
        language -> Nullable<Text>,
        appointment_count -> Integer,
        confirmed_count -> Integer,
        no_show_count -> Integer,
        reschedule_count -> Integer,
        payment_past_due -> Bool,
        risk_score -> Integer,
        requires_deposit -> Bool,
        opted_out -> Bool,
        last_review_request_at -> Nullable<Timestamp>,
        erased_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    consents (id) {
        id -> Text,
        tenant_id -> Text,
        customer_id -> Text,
        channel -> Text,
        status -> Text,
        source -> Text,
        evidence -> Nullable<Text>,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    appointments (id) {
        id -> Text,
        tenant_id -> Text,
        customer_id -> Text,
        source -> Text,
        external_id -> Text,
        status -> Text,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        timezone -> Text,
        service_type -> Nullable<Text>,
        service_cost_cents -> Nullable<BigInt>,
        currency -> Nullable<Text>,
        cancel_url -> Nullable<Text>,
        reschedule_url -> Nullable<Text>,
        deposit_status -> Text,
        deposit_amount_cents -> Nullable<BigInt>,
        notes -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deposit_link -> Nullable<Text>,
        deposit_steps -> BigInt,
    }
}

diesel::table! {
    messages (id) {
        id -> Text,
        tenant_id -> Text,
        customer_id -> Nullable<Text>,
        appointment_id -> Nullable<Text>,
        direction -> Text,
        channel -> Text,
        kind -> Nullable<Text>,
        body -> Text,
        from_addr -> Nullable<Text>,
        to_addr -> Nullable<Text>,
        provider -> Text,
        provider_message_id -> Nullable<Text>,
        status -> Text,
        encoding -> Nullable<Text>,
        segments -> Nullable<Integer>,
        sandbox -> Bool,
        idempotency_key -> Nullable<Text>,
        error_code -> Nullable<Text>,
        sent_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    message_status_history (id) {
        id -> Text,
        tenant_id -> Text,
        message_id -> Text,
        status -> Text,
        error_code -> Nullable<Text>,
        provider_event_id -> Nullable<Text>,
        occurred_at -> Timestamp,
    }
}

diesel::table! {
    events (seq) {
        seq -> BigInt,
        event_id -> Text,
        tenant_id -> Text,
        event_type -> Text,
        aggregate_type -> Text,
        aggregate_id -> Text,
        aggregate_version -> BigInt,
        occurred_at -> Timestamp,
        recorded_at -> Timestamp,
        profile -> Text,
        payload -> Text,
        workflow_id -> Nullable<Text>,
        correlation_id -> Nullable<Text>,
        causation_id -> Nullable<Text>,
    }
}

diesel::table! {
    inbox (id) {
        id -> Text,
        tenant_id -> Text,
        source -> Text,
        dedup_key -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        received_at -> Timestamp,
        processed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    commands (id) {
        id -> Text,
        tenant_id -> Text,
        command_type -> Text,
        aggregate_type -> Text,
        aggregate_id -> Text,
        status -> Text,
        payload -> Text,
        result -> Nullable<Text>,
        error -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        correlation_id -> Text,
        workflow_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    idempotency_keys (tenant_id, scope, key) {
        tenant_id -> Text,
        scope -> Text,
        key -> Text,
        request_hash -> Text,
        status -> Text,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        resource_id -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    workflow_instances (id) {
        id -> Text,
        tenant_id -> Text,
        kind -> Text,
        appointment_id -> Nullable<Text>,
        customer_id -> Nullable<Text>,
        state -> Text,
        step -> Text,
        data -> Text,
        retry_count -> Integer,
        last_error -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    timers (id) {
        id -> Text,
        tenant_id -> Text,
        timer_key -> Text,
        owner_type -> Text,
        owner_id -> Text,
        kind -> Text,
        due_at -> Timestamp,
        payload -> Text,
        status -> Text,
        fired_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        tenant_id -> Text,
        domain -> Text,
        kind -> Text,
        owner_type -> Text,
        owner_id -> Text,
        idempotency_key -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        provider_ref -> Nullable<Text>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    dead_letters (id) {
        id -> Text,
        tenant_id -> Text,
        outbox_id -> Nullable<Text>,
        domain -> Text,
        kind -> Text,
        payload -> Text,
        error -> Text,
        attempts -> Integer,
        status -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
        resolved_by -> Nullable<Text>,
    }
}

diesel::table! {
    escalations (id) {
        id -> Text,
        tenant_id -> Text,
        appointment_id -> Nullable<Text>,
        customer_id -> Nullable<Text>,
        reason -> Text,
        priority -> Text,
        status -> Text,
        details -> Text,
        created_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
        resolved_by -> Nullable<Text>,
        resolution -> Nullable<Text>,
    }
}

diesel::table! {
    breaker_state (tenant_id, domain) {
        tenant_id -> Text,
        domain -> Text,
        state -> Text,
        failure_count -> Integer,
        success_count -> Integer,
        window_started_at -> Nullable<Timestamp>,
        opened_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> Text,
        tenant_id -> Text,
        url -> Text,
        secret_nonce -> Binary,
        secret_ciphertext -> Binary,
        event_types -> Text,
        status -> Text,
        cursor -> BigInt,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    integration_secrets (tenant_id, name) {
        tenant_id -> Text,
        name -> Text,
        key_id -> Text,
        nonce -> Binary,
        ciphertext -> Binary,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        tenant_id -> Text,
        occurred_at -> Timestamp,
        actor_type -> Text,
        actor_id -> Text,
        action -> Text,
        subject_type -> Nullable<Text>,
        subject_id -> Nullable<Text>,
        details -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    admin_users (id) {
        id -> Text,
        tenant_id -> Text,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        tenant_id -> Text,
        user_id -> Text,
        csrf_token_hash -> Text,
        address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    login_attempts (id) {
        id -> Text,
        tenant_id -> Text,
        username -> Text,
        address -> Text,
        success -> Bool,
        attempted_at -> Timestamp,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        tenant_id -> Text,
        token_hash -> Text,
        name -> Text,
        role -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    appointment_aliases (tenant_id, source, external_id) {
        tenant_id -> Text,
        source -> Text,
        external_id -> Text,
        appointment_id -> Text,
        replaces -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(appointments -> customers (customer_id));
diesel::joinable!(consents -> customers (customer_id));
diesel::joinable!(messages -> appointments (appointment_id));
diesel::joinable!(message_status_history -> messages (message_id));
diesel::joinable!(sessions -> admin_users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    business_config,
    customers,
    consents,
    appointments,
    messages,
    message_status_history,
    events,
    inbox,
    commands,
    idempotency_keys,
    workflow_instances,
    timers,
    outbox,
    dead_letters,
    escalations,
    breaker_state,
    subscriptions,
    integration_secrets,
    audit_log,
    admin_users,
    sessions,
    login_attempts,
    api_tokens,
    appointment_aliases,
);
