# Firestore (native mode): the durable record of every power event.
# Collection and field names are those of functions/gridhook/store/firestore.py.

resource "google_firestore_database" "gridhook" {
  project     = var.project_id
  name        = var.firestore_database
  location_id = local.firestore_location
  type        = "FIRESTORE_NATIVE"

  concurrency_mode                  = "OPTIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = var.firestore_point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = var.firestore_delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.firestore_deletion_policy

  depends_on = [google_project_service.apis]
}

# ---------------------------------------------------------------------------------------
# Composite indexes: one per query shape of FirestoreEventStore.events() / latest_by_feed().
# Every range condition and every order is on sort_key ("<received_at>|<event_id>", one
# string): since, until and the paging cursor all ride on the same indexes.
# ---------------------------------------------------------------------------------------

locals {
  event_indexes = {
    # events(feed_tag=...): feed_tag == X, sort_key range, order by sort_key.
    by_feed = [["feed_tag", "ASCENDING"], ["sort_key", "ASCENDING"]]
    # events(correlation_id=...): one curtailment episode.
    by_correlation = [["correlation_id", "ASCENDING"], ["sort_key", "ASCENDING"]]
    # events(feed_tag=..., correlation_id=...)
    by_feed_and_correlation = [["feed_tag", "ASCENDING"], ["correlation_id", "ASCENDING"], ["sort_key", "ASCENDING"]]
    # latest_by_feed(): feed_tag == X, order by sort_key descending, limit 1.
    latest_by_feed = [["feed_tag", "ASCENDING"], ["sort_key", "DESCENDING"]]
    # events() without an equality filter and latest_by_feed()'s skip-scan over the feed
    # tags (feed_tag > X order by feed_tag) use single-field indexes (below / default).
  }
}

resource "google_firestore_index" "power_events" {
  for_each = local.event_indexes

  project     = var.project_id
  database    = google_firestore_database.gridhook.name
  collection  = "power_events"
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

# ---------------------------------------------------------------------------------------
# Single-field index settings. Firestore indexes every field both ways (and for
# array-contains) by default. Each index entry costs a write, values over 1500 bytes
# cannot be indexed usefully, and an index on a value that only grows (a timestamp)
# concentrates writes on one tablet, capping the write rate at about 500/s.
# ---------------------------------------------------------------------------------------

locals {
  field_overrides = {
    # The raw payload: large, never queried.
    events_payload = { collection = "power_events", field = "payload_json", indexes = [] }
    # Event times reported by DPS: only grow, never queried alone.
    events_start_time = { collection = "power_events", field = "start_time", indexes = [] }
    events_end_time   = { collection = "power_events", field = "end_time", indexes = [] }
    # Receipt time: only grows; queried through sort_key, never on its own.
    events_received_at = { collection = "power_events", field = "received_at", indexes = [] }
    # sort_key only grows too, but events() without a filter ranges and orders on it,
    # ascending; the descending order is served by the latest_by_feed composite index.
    events_sort_key = { collection = "power_events", field = "sort_key", indexes = ["ASCENDING"] }
    # Quarantine: listed newest first; the body and the errors are never queried.
    quarantine_received_at = { collection = "quarantine", field = "received_at", indexes = ["DESCENDING"] }
    quarantine_body        = { collection = "quarantine", field = "body", indexes = [] }
    quarantine_errors      = { collection = "quarantine", field = "errors", indexes = [] }
  }
}

resource "google_firestore_field" "overrides" {
  for_each = local.field_overrides

  project    = var.project_id
  database   = google_firestore_database.gridhook.name
  collection = each.value.collection
  field      = each.value.field

  index_config {
    dynamic "indexes" {
      for_each = each.value.indexes
      content {
        order       = indexes.value
        query_scope = "COLLECTION"
      }
    }
  }
}

# Quarantined payloads expire: Firestore deletes a document once its expires_at has
# passed (typically within a day). The field only grows and is never queried, so it is
# not indexed either.
resource "google_firestore_field" "quarantine_ttl" {
  project    = var.project_id
  database   = google_firestore_database.gridhook.name
  collection = "quarantine"
  field      = "expires_at"

  ttl_config {}

  index_config {}
}
