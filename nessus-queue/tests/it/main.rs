//! Integration tests: one conformance suite run against SQLite and real Redis
//! deployments (one server, Sentinel, Cluster) and Valkey when it is installed.

mod conformance;
mod faults;
mod findings;
mod results_store;
mod support;
mod topology;
mod webhooks;
mod worker;
mod worker_policy;

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let h = crate::support::Harness::sqlite();
                    crate::conformance::$name(&h).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let h = crate::support::Harness::redis().await;
                    crate::conformance::$name(&h).await;
                }
            )*
        }
        mod redis_sentinel {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let h = crate::support::Harness::redis_sentinel().await;
                    crate::conformance::$name(&h).await;
                }
            )*
        }
        mod redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let h = crate::support::Harness::redis_cluster().await;
                    crate::conformance::$name(&h).await;
                }
            )*
        }
        mod valkey {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(h) = crate::support::Harness::valkey(stringify!($name)).await else {
                        return;
                    };
                    crate::conformance::$name(&h).await;
                }
            )*
        }
    };
}

conformance_tests!(
    submit_get_and_position,
    idempotency_same_and_conflicting_requests,
    idempotency_key_is_scoped_per_caller_not_per_pool,
    hundred_concurrent_identical_submits_make_one_task,
    claim_complete_and_eta_history,
    capacity_and_pins_across_claimers,
    lease_expiry_requeues_and_fences_stale_writers,
    poison_task_goes_to_dlq_and_retry_succeeds,
    cancel_queued_and_running,
    list_filters_and_pagination,
    queue_position_never_rises,
    positions_and_claims_with_many_principals,
    housekeeping_ttls_and_dry_run,
    sealed_credentials_never_stored_in_plaintext,
    dlq_purge_modes,
    import_lifecycle,
    audit_append_list_filter_and_cursor_paging,
    audit_fields_are_capped,
    audit_ttl_purged_by_housekeeping,
    principal_pages_are_full_and_cursors_private,
    queue_status_for_shows_others_as_counts,
    fair_claims_and_positions_follow_the_reference_model,
    one_scan_is_not_stuck_behind_five_hundred,
    quota_exceeded_and_idempotent_replay,
    breaker_open_instance_is_skipped,
    garbage_cursors_are_refused_on_every_listing,
    approval_transitions,
    approval_rules_at_submit_and_review,
    schedules_fire_each_slot_once_across_nodes,
    webhook_signed_and_retried_after_500,
    webhook_sender_killed_mid_delivery_loses_nothing,
    webhook_urls_and_approval_event,
);
