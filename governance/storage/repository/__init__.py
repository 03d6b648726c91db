"""SQL by aggregate, one module each; every function takes the session and the tenant and flushes, never commits."""
from governance.storage.repository._sql import as_array
from governance.storage.repository.api_keys import api_keys, insert_api_key, key_by_hash, live_key_scopes, revoke_api_key
from governance.storage.repository.alerts import flagged_summary, lock_alert_state, tenants_with_flagged_decisions
from governance.storage.repository.assets import (
    asset_by_id, asset_sources, assets_with_tasks, upsert_assets,
)
from governance.storage.repository.banks import (
    add_exemplar, anomaly_threshold, audit_exemplar_vectors, bank_asset_pks, bank_exemplar_vectors, bank_vectors,
    bank_version, bump_bank_version, exemplar_counts, exemplar_page, exemplars_of_asset, iter_exemplars,
    nearest_exemplars,
    set_exemplar_enabled, set_knn_scan, store_anomaly_threshold, sync_in_bank,
)
from governance.storage.repository.clusters import (
    cluster_report_by_id, cluster_reports, latest_cluster_report, latest_events_of_assets,
    recent_assets_for_clustering, store_cluster_report, stream_assets_for_clustering,
)
from governance.storage.repository.console import (
    assets_by_ids, audit_log_page, bank_exemplars, bank_label_counts, bank_labels, claim_lease,
    insert_console_session, insert_login_link, latest_cluster_of_asset, latest_report_cluster, live_console_session,
    live_lease, release_lease, review_queue_counts, review_queue_item, review_queue_items, reviewer_reveals_media,
    revoke_console_session, set_reviewer_reveals_media, skip_lease, use_login_link,
)
from governance.storage.repository.decisions import (
    dead_letters, decided_event_ids, decision_exists, decision_for_event, decision_page, decisions_for_events, decisions_of_asset,
    decisions_with_vectors, insert_dead_letter, insert_decisions, iter_decisions, record_decisions, latest_decision_for_asset, tenants_with_recent_decisions,
)
from governance.storage.repository.embeddings import (
    asset_vectors, cached_vectors, content_lock_key, embedding_windows, lock_contents,
    store_embedding_windows, store_embeddings,
)
from governance.storage.repository.hashes import (
    asset_pdq_hashes, bank_hash_page, bump_hash_bank_version, count_bank_hashes, enabled_bank_hashes,
    hash_bank_version, iter_bank_hashes,
    recently_allowed_hashes, set_bank_hashes_enabled, store_asset_hashes, upsert_bank_hashes,
)
from governance.storage.repository.inbox import (
    count_attempt, count_batch_delivery, dead_letter_reasons, event_payloads, events_by_ids, event_status, lock_events, operational_counts,
    record_events, set_event_status, set_events_status, stale_events, touch_all_pending, touch_events,
    uncount_attempts,
)
from governance.storage.repository.outbox import (
    claim_outbox, delivered_sinks, deliveries, enqueue_outbox, insert_delivery,
)
from governance.storage.repository.policies import (
    current_policy_ref, insert_policy_version, policy_source, policy_version_row, policy_versions,
    reapply_policy_version,
)
from governance.storage.repository.review import (
    ReviewPosition, audit_entries, insert_audit, insert_review_item, open_review_items,
    pending_review_decisions, recently_allowed_near, resolve_review_items,
)
from governance.storage.repository.quality import (
    decided_second_reviews, open_second_review, record_second_decision, reviewed_decisions,
    second_review_counts, second_review_of_event, set_second_review_status,
)
from governance.storage.repository.rls import APP_ROLE, enter_all_tenants, enter_tenant
from governance.storage.repository.tenant_models import (
    activate_tenant_model, active_tenant_model, finish_batch_job, insert_batch_job, lock_tenant_models,
    open_batch_jobs,
)
from governance.storage.repository.usage import add_usage, usage_totals
from governance.storage.repository.webhooks import (
    claim_due_deliveries, fan_out_to_subscriptions, insert_subscription, live_subscriptions, mark_delivered,
    mark_failed, soft_delete_subscription, subscription_deliveries,
)

__all__ = [
    "decided_second_reviews", "open_second_review", "record_second_decision", "reviewed_decisions",
    "second_review_counts", "second_review_of_event", "set_second_review_status",
    "assets_by_ids", "audit_log_page", "bank_exemplars", "bank_label_counts", "bank_labels", "claim_lease",
    "decision_for_event", "decisions_of_asset", "insert_console_session", "insert_login_link",
    "latest_cluster_of_asset", "latest_report_cluster", "live_console_session", "live_lease", "release_lease",
    "review_queue_counts", "review_queue_item", "review_queue_items", "reviewer_reveals_media",
    "revoke_console_session", "set_reviewer_reveals_media", "skip_lease", "use_login_link", "activate_tenant_model",
    "active_tenant_model", "api_keys", "insert_api_key", "key_by_hash", "live_key_scopes", "revoke_api_key", "add_exemplar",
    "add_usage", "anomaly_threshold", "APP_ROLE", "as_array", "asset_by_id", "asset_sources", "asset_vectors",
    "assets_with_tasks", "audit_entries", "asset_pdq_hashes", "bank_hash_page", "bump_hash_bank_version",
    "count_bank_hashes", "enabled_bank_hashes",
    "hash_bank_version", "iter_bank_hashes", "recently_allowed_hashes", "set_bank_hashes_enabled",
    "store_asset_hashes", "upsert_bank_hashes",
    "audit_exemplar_vectors", "bank_asset_pks", "bank_exemplar_vectors", "bank_vectors", "bank_version",
    "bump_bank_version", "cached_vectors", "claim_outbox", "cluster_report_by_id", "cluster_reports", "latest_events_of_assets", "content_lock_key", "count_attempt",
    "count_batch_delivery", "current_policy_ref", "dead_letter_reasons", "dead_letters", "decided_event_ids", "decision_page", "decisions_for_events",
    "decisions_of_asset", "events_by_ids", "decision_exists", "decision_for_event",
    "decisions_with_vectors", "delivered_sinks", "deliveries", "embedding_windows", "enqueue_outbox",
    "enter_all_tenants", "enter_tenant", "event_payloads", "event_status",
    "exemplar_counts", "exemplar_page", "exemplars_of_asset", "finish_batch_job", "flagged_summary", "insert_audit", "insert_batch_job",
    "insert_dead_letter", "insert_decisions", "record_decisions", "insert_delivery", "insert_policy_version",
    "insert_review_item", "iter_decisions", "iter_exemplars", "latest_cluster_report", "latest_decision_for_asset",
    "lock_alert_state", "lock_contents", "lock_events", "lock_tenant_models", "nearest_exemplars",
    "open_batch_jobs", "open_review_items", "operational_counts",
    "pending_review_decisions", "policy_source", "policy_version_row", "policy_versions", "reapply_policy_version", "ReviewPosition",
    "recent_assets_for_clustering", "stream_assets_for_clustering", "recently_allowed_near", "record_events", "resolve_review_items",
    "set_event_status", "set_events_status", "set_exemplar_enabled", "set_knn_scan", "stale_events",
    "store_anomaly_threshold", "store_cluster_report", "store_embedding_windows",
    "store_embeddings", "sync_in_bank", "tenants_with_flagged_decisions", "tenants_with_recent_decisions",
    "touch_all_pending", "touch_events", "uncount_attempts", "upsert_assets", "usage_totals",
    "claim_due_deliveries", "fan_out_to_subscriptions", "insert_subscription", "live_subscriptions", "mark_delivered",
    "mark_failed", "soft_delete_subscription", "subscription_deliveries",
]
