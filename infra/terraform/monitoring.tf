# Log-based metrics on the JSON line each function writes per request or run
# (functions/gridhook/log.py): the outcome is jsonPayload.outcome. Gen2 functions log
# as the Cloud Run revision of their service.

locals {
  receiver_logs = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.function_names.receiver}\""
  jobs_logs     = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=(\"${local.function_names.reconcile}\" OR \"${local.function_names.teardown}\")"

  counter_metrics = {
    webhook_accepted = {
      description = "Power events stored (first delivery)."
      filter      = "${local.receiver_logs} AND jsonPayload.outcome=\"accepted\""
    }
    webhook_duplicate = {
      description = "Redeliveries of events already stored (nothing written)."
      filter      = "${local.receiver_logs} AND jsonPayload.outcome=\"duplicate\""
    }
    webhook_rejected = {
      description = "Webhook requests refused for their content: schema violations (quarantined), malformed JSON, too large, wrong media type or method."
      filter      = "${local.receiver_logs} AND jsonPayload.outcome=(\"rejected\" OR \"invalid\" OR \"too_large\" OR \"unsupported_media_type\" OR \"method_not_allowed\")"
    }
    webhook_unauthorized = {
      description = "Webhook requests without a valid token (401)."
      filter      = "${local.receiver_logs} AND jsonPayload.outcome=\"unauthorized\""
    }
    store_errors = {
      description = "Requests answered 503 because the event store was unavailable, and internal errors."
      filter      = "${local.receiver_logs} AND jsonPayload.outcome=(\"store_unavailable\" OR \"internal_error\")"
    }
    reconcile_failures = {
      description = "Reconcile runs that failed, and teardown runs that left a subscription registered with DPS."
      filter      = "${local.jobs_logs} AND jsonPayload.outcome=(\"reconcile_failed\" OR \"teardown_incomplete\") AND severity>=ERROR"
    }
    drift = {
      description = "Drift records: DPS's view differs from the state derived from received events (a missed or lost webhook)."
      filter      = "${local.jobs_logs} AND jsonPayload.outcome=\"drift\""
    }
  }
}

resource "google_logging_metric" "counters" {
  for_each = local.counter_metrics

  project     = var.project_id
  name        = "${var.name_prefix}/${each.key}"
  description = each.value.description
  filter      = each.value.filter

  label_extractors = {
    outcome = "EXTRACT(jsonPayload.outcome)"
  }

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "gridhook ${replace(each.key, "_", " ")} (${var.name_prefix})"

    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "jsonPayload.outcome of the log line."
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_logging_metric" "webhook_latency" {
  project         = var.project_id
  name            = "${var.name_prefix}/webhook_latency"
  description     = "Time the receiver spent on a webhook request, in milliseconds."
  filter          = "${local.receiver_logs} AND jsonPayload.latency_ms>=0"
  value_extractor = "EXTRACT(jsonPayload.latency_ms)"

  label_extractors = {
    outcome = "EXTRACT(jsonPayload.outcome)"
  }

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "ms"
    display_name = "gridhook webhook latency (${var.name_prefix})"

    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "jsonPayload.outcome of the log line."
    }
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 24
      growth_factor      = 1.6
      scale              = 1
    }
  }

  depends_on = [google_project_service.apis]
}

# ---------------------------------------------------------------------------------------
# Alerts: a failed reconcile means DPS may have stopped delivering; drift means an
# event was missed or lost. Either needs a person.
# ---------------------------------------------------------------------------------------

locals {
  alerts = {
    reconcile_failures = {
      display_name = "gridhook (${var.name_prefix}): subscription reconcile failing"
      documentation = join("\n", [
        "reconcile_subscriptions failed: DPS may no longer deliver power events to gridhook.",
        "Look at the function's logs (jsonPayload.outcome=\"reconcile_failed\") for the DPS error.",
        "Usual causes: DPS unreachable from Google Cloud, expired NvGrid credentials or CA",
        "(Secret Manager), or a webhook URL DPS refuses. Re-run with:",
        "gcloud scheduler jobs run ${var.name_prefix}-reconcile --location ${var.region}",
        "A teardown that left subscriptions behind (jsonPayload.outcome=\"teardown_incomplete\")",
        "counts here too: its log line names what DPS still has registered; run it again.",
      ])
    }
    drift = {
      display_name = "gridhook (${var.name_prefix}): drift between DPS and received events"
      documentation = join("\n", [
        "reconcile_subscriptions found DPS's current load target or status differing from the",
        "state derived from the events gridhook stored: a webhook was missed or lost.",
        "See the drift records (gridhook CLI: status / drift) and the receiver's logs for",
        "rejected or unauthorized deliveries around that time.",
      ])
    }
  }
}

resource "google_monitoring_alert_policy" "alerts" {
  for_each = local.alerts

  project               = var.project_id
  display_name          = each.value.display_name
  combiner              = "OR"
  enabled               = true
  severity              = "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "${each.key} > 0"

    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.counters[each.key].name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "${var.alert_window_seconds}s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    content   = each.value.documentation
    mime_type = "text/markdown"
  }
}
