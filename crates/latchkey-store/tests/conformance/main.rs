//! The backend conformance suite: every case in `cases` is written once against
//! `Arc<dyn Store>` and instantiated by [`conformance!`] for SQLite (at both durability
//! levels) and for PostgreSQL,
//! so the two backends must agree on every observable behaviour.
//!
//! PostgreSQL cases each get their own fresh database (see
//! `latchkey_store::testing::TestDatabase::postgres`); without a reachable server they
//! skip with a `SKIPPED` line on stderr (`latchkey_store::testing::skip`), or fail when
//! `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cases;
mod harness;

/// Instantiate each named case of [`cases`] once per backend.
macro_rules! conformance {
    ($($case:ident),+ $(,)?) => {
        /// The cases against SQLite.
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let harness = crate::harness::Harness::sqlite().await;
                    crate::cases::$case(harness).await;
                }
            )+
        }

        /// The cases against SQLite at `synchronous=NORMAL`, where the refresh lane
        /// answers rotations at commit instead of after its own WAL sync.
        mod sqlite_normal {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let harness = crate::harness::Harness::sqlite_normal().await;
                    crate::cases::$case(harness).await;
                }
            )+
        }

        /// The cases against PostgreSQL.
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(harness) = crate::harness::Harness::postgres().await else {
                        return;
                    };
                    crate::cases::$case(harness).await;
                }
            )+
        }
    };
}

conformance! {
    // second factor
    pending_totp_is_replaced_until_confirmed,
    a_totp_step_and_a_recovery_code_are_spent_once,
    concurrent_logins_with_one_code_have_one_winner,
    a_login_challenge_is_single_use_and_voided_by_failures,
    turning_mfa_off_spends_the_proof_and_clears_everything,
    a_session_keeps_its_auth_methods,
    a_proof_is_spent_on_its_own_once,
    // accounts
    create_session_notes_the_device,
    create_session_refuses_a_changed_user,
    rotation_keeps_the_last_address_and_use,
    revoke_user_sessions_spares_the_one_kept,
    update_user_is_a_compare_and_set,
    the_last_enabled_admin_is_kept,
    concurrent_demotions_leave_an_admin,
    delete_user_takes_sessions_and_keeps_events,
    change_password_revokes_the_other_sessions,
    // users
    user_insert_and_lookup,
    duplicate_email_is_email_taken,
    list_users_pages_in_byte_order,
    set_user_roles_replaces_roles,
    // sessions and rotation
    create_session_and_refresh_state,
    refresh_state_carries_the_current_roles,
    rotate_spends_and_issues_successor,
    rotate_same_token_twice_conflicts,
    rotate_with_wrong_generation_or_session_conflicts,
    concurrent_rotations_have_one_winner,
    concurrent_rotations_across_store_instances_have_one_winner,
    a_conflict_in_a_batch_spoils_no_other_rotation,
    rotate_on_revoked_session_conflicts,
    revoke_session_is_idempotent_and_recorded_once,
    concurrent_revocations_record_once,
    // revocation log
    deny_access_token_is_idempotent,
    revocations_after_orders_filters_and_limits,
    revocation_seq_never_reused_after_purge,
    // keys and secrets
    first_signing_key_race_has_one_winner,
    rotate_signing_key_retires_previous_and_old_keys_are_deleted,
    secret_or_insert_is_consistent_under_races,
    key_material_is_replaced_only_from_what_was_read,
    revoking_a_key_deletes_it_and_logs_its_kid,
    // audit log
    audit_events_round_trip_newest_first_and_filtered,
    // maintenance
    purge_expired_removes_expired_entries_and_old_sessions,
    live_sessions_are_counted_by_both_lifetimes,
    ping_answers_and_closed_store_is_unavailable,
    data_survives_reopening,
    // e-mail
    password_reset_request_writes_a_token_only_for_a_known_address,
    a_reset_token_works_once_and_voids_the_others,
    expired_or_foreign_tokens_change_nothing,
    concurrent_token_uses_have_one_winner,
    verification_and_change_of_address_apply_only_while_they_fit,
    the_outbox_leases_retries_records_failures_and_survives_reopening,
    // registration
    a_registration_writes_the_account_or_only_what_a_taken_address_asks,
    concurrent_registrations_of_one_address_make_one_account,
    // sealed values
    sealed_values_are_listed_and_replaced_only_from_what_was_read,
    // webhooks and the audit log's pages
    events_queue_one_message_per_endpoint_with_the_event,
    webhook_claims_lease_retry_fail_and_survive_reopening,
    concurrent_webhook_claims_have_one_winner,
    removing_an_endpoint_gives_up_its_queued_messages,
    logged_events_page_in_time_order_with_addresses,
}
