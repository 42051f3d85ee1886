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
# Composite indexes: one per query shape of FirestoreEventStore (equality filters, then a
# range and an order on sort_key). sort_key is "<time>|<id>", one string: since, until and
# the paging cursor all ride on the same index, read forwards (oldest first) or backwards
# (newest first). tests/infra checks every query the store sends against these.
# ---------------------------------------------------------------------------------------

locals {
  event_indexes = {
    # events(feed_tag=...), oldest first: feed_tag == X, sort_key range, order by sort_key.
    by_feed = [["feed_tag", "ASCENDING"], ["sort_key", "ASCENDING"]]
    # events(correlation_id=...): one curtailment episode.
    by_correlation = [["correlation_id", "ASCENDING"], ["sort_key", "ASCENDING"]]
    # events(feed_tag=..., correlation_id=...)
    by_feed_and_correlation = [["feed_tag", "ASCENDING"], ["correlation_id", "ASCENDING"], ["sort_key", "ASCENDING"]]
    # events(feed_tag=..., newest_first=True), and latest_by_feed(): feed_tag == X, order
    # by sort_key descending, limit 1.
    latest_by_feed = [["feed_tag", "ASCENDING"], ["sort_key", "DESCENDING"]]
    # events(correlation_id=..., newest_first=True)
    by_correlation_newest = [["correlation_id", "ASCENDING"], ["sort_key", "DESCENDING"]]
    # events(feed_tag=..., correlation_id=..., newest_first=True)
    by_feed_and_correlation_newest = [["feed_tag", "ASCENDING"], ["correlation_id", "ASCENDING"], ["sort_key", "DESCENDING"]]
    # events() without an equality filter (either order), events in write order (on
    # stored_key, filtered after reading) and latest_by_feed()'s skip-scan over the feed
    # tags (feed_tag > X order by feed_tag) use single-field indexes.
  }
  sample_indexes = {
    # samples(feed_tag=...): feed_tag == X, sort_key range, oldest first.
    by_feed = [["feed_tag", "ASCENDING"], ["sort_key", "ASCENDING"]]
    # samples() without a feed uses the single-field index on sort_key.
  }
  # quarantined() (sort_key, either order), alerts() (sort_key descending), drift() and
  # subscriptions() have no equality filter: single-field indexes serve them.
  rollup_indexes = {
    # rollups(feed=...): feed == X, sort_key range ("<hour>|<id>"), oldest first. A
    # listing of every feed (feed=None) uses the single-field index on sort_key.
    by_feed = [["feed", "ASCENDING"], ["sort_key", "ASCENDING"]]
  }
  day_rollup_indexes = {
    # day_rollups(feed=...): feed == X, sort_key range ("<day>|<id>"), oldest first. A
    # listing of every feed uses the single-field index on sort_key.
    by_feed = [["feed", "ASCENDING"], ["sort_key", "ASCENDING"]]
  }
  meter_indexes = {
    # meter_records(feed): feed == X, sort_key range ("<interval start>|<id>").
    by_feed = [["feed", "ASCENDING"], ["sort_key", "ASCENDING"]]
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

resource "google_firestore_index" "samples" {
  for_each = local.sample_indexes

  project     = var.project_id
  database    = google_firestore_database.gridhook.name
  collection  = "samples"
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

resource "google_firestore_index" "rollups" {
  for_each = local.rollup_indexes

  project     = var.project_id
  database    = google_firestore_database.gridhook.name
  collection  = "rollups"
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

resource "google_firestore_index" "day_rollups" {
  for_each = local.day_rollup_indexes

  project     = var.project_id
  database    = google_firestore_database.gridhook.name
  collection  = "day_rollups"
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

resource "google_firestore_index" "meter_intervals" {
  for_each = local.meter_indexes

  project     = var.project_id
  database    = google_firestore_database.gridhook.name
  collection  = "meter_intervals"
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
    # Write order: stored_key ("<stored_at>|<id>") is what a tail ranges on, oldest first
    # (and newest first for where it starts); its filters apply to what it reads, so no
    # composite index is written with every event for it. stored_at alone is never queried.
    events_stored_key = { collection = "power_events", field = "stored_key", indexes = ["ASCENDING", "DESCENDING"] }
    events_stored_at  = { collection = "power_events", field = "stored_at", indexes = [] }
    # sort_key only grows too, but events() without a filter ranges and orders on it,
    # oldest first and newest first.
    events_sort_key = { collection = "power_events", field = "sort_key", indexes = ["ASCENDING", "DESCENDING"] }
    # Quarantine: listed by sort_key both ways; the rest is never queried (the body is
    # up to 1 MiB and could not be indexed anyway).
    quarantine_sort_key    = { collection = "quarantine", field = "sort_key", indexes = ["ASCENDING", "DESCENDING"] }
    quarantine_received_at = { collection = "quarantine", field = "received_at", indexes = [] }
    quarantine_body        = { collection = "quarantine", field = "body", indexes = [] }
    quarantine_errors      = { collection = "quarantine", field = "errors", indexes = [] }
    # Samples: listed oldest first by sort_key, alone or after feed_tag ==; one write
    # per feed per reconcile run, so the growing key is no hot spot.
    samples_sort_key   = { collection = "samples", field = "sort_key", indexes = ["ASCENDING"] }
    samples_sampled_at = { collection = "samples", field = "sampled_at", indexes = [] }
    # Alerts: listed newest first; the details are never queried.
    alerts_sort_key = { collection = "alerts", field = "sort_key", indexes = ["DESCENDING"] }
    alerts_details  = { collection = "alerts", field = "details_json", indexes = [] }
  }
  interval_field_overrides = {
    # Rollups: listed oldest first by sort_key, alone or after feed ==; one write per feed
    # and hour. The hour alone and the buckets (JSON text) are never queried.
    rollups_sort_key   = { collection = "rollups", field = "sort_key", indexes = ["ASCENDING"] }
    rollups_hour_start = { collection = "rollups", field = "hour_start", indexes = [] }
    rollups_counts     = { collection = "rollups", field = "counts", indexes = [] }
    rollups_means      = { collection = "rollups", field = "means", indexes = [] }
    rollups_minima     = { collection = "rollups", field = "minima", indexes = [] }
    rollups_maxima     = { collection = "rollups", field = "maxima", indexes = [] }
    rollups_covered_s  = { collection = "rollups", field = "covered_s", indexes = [] }
    # Day rollups (a UTC day of one feed's hourly rollups, one JSON text): listed like
    # rollups; one write per feed and day.
    day_rollups_sort_key  = { collection = "day_rollups", field = "sort_key", indexes = ["ASCENDING"] }
    day_rollups_day_start = { collection = "day_rollups", field = "day_start", indexes = [] }
    day_rollups_hours     = { collection = "day_rollups", field = "hours", indexes = [] }
    day_rollups_feeds     = { collection = "day_rollups", field = "feeds", indexes = [] }
    # Meter intervals: listed by feed == and sort_key only.
    meter_interval_start = { collection = "meter_intervals", field = "interval_start", indexes = [] }
    meter_interval_end   = { collection = "meter_intervals", field = "interval_end", indexes = [] }
    meter_imported_at    = { collection = "meter_intervals", field = "imported_at", indexes = [] }
    meter_source         = { collection = "meter_intervals", field = "source", indexes = [] }
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

resource "google_firestore_field" "interval_overrides" {
  for_each = local.interval_field_overrides

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

# Quarantined payloads and load samples expire: Firestore deletes a document once its
# expires_at has passed (typically within a day; the store also hides expired ones on
# read). The field only grows and is never queried, so it is not indexed either.
resource "google_firestore_field" "quarantine_ttl" {
  project    = var.project_id
  database   = google_firestore_database.gridhook.name
  collection = "quarantine"
  field      = "expires_at"

  ttl_config {}

  index_config {}
}

resource "google_firestore_field" "samples_ttl" {
  project    = var.project_id
  database   = google_firestore_database.gridhook.name
  collection = "samples"
  field      = "expires_at"

  ttl_config {}

  index_config {}
}

# Hourly rollups keep the long retention (GRIDHOOK_SAMPLE_RETENTION_DAYS; raw samples the
# short one): Firestore deletes one once its expires_at has passed. Meter intervals are the
# settlement record and never expire.
resource "google_firestore_field" "rollups_ttl" {
  project    = var.project_id
  database   = google_firestore_database.gridhook.name
  collection = "rollups"
  field      = "expires_at"

  ttl_config {}

  index_config {}
}

# Day rollups expire with the first hour they hold (its rollup's expires_at).
resource "google_firestore_field" "day_rollups_ttl" {
  project    = var.project_id
  database   = google_firestore_database.gridhook.name
  collection = "day_rollups"
  field      = "expires_at"

  ttl_config {}

  index_config {}
}
