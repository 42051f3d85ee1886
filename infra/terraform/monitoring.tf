# Log-based metrics on the JSON line each function writes per request or run
# (functions/gridhook/log.py): the outcome is jsonPayload.outcome, the site
# jsonPayload.site. Every metric carries both as labels, and every alert keeps one time
# series per site, so an incident names the site it is about. Gen2 functions log as the
# Cloud Run revision of their service.

locals {
  receiver_logs = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.function_names.receiver}\""
  jobs_logs     = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=(\"${local.function_names.reconcile}\" OR \"${local.function_names.teardown}\")"
  sample_logs   = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.function_names.sample}\""

  # Labels of every log-based metric: name => the jsonPayload field it is extracted from.
  metric_labels = {
    outcome = "outcome"
    site    = "site"
  }

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
    # Each accepted end_ramp_down carries `compliant` (a redelivery is "duplicate" and
    # carries none), so every curtailment whose target was not met counts once.
    target_not_met = {
      description = "Curtailments whose target was not met: accepted end_ramp_down events with compliant = false."
      filter      = "${local.receiver_logs} AND jsonPayload.outcome=\"accepted\" AND jsonPayload.event=\"end_ramp_down\" AND jsonPayload.compliant=false"
    }
    # Logged once per stalled ramp (reconcile records an alert and logs only the first time).
    ramp_stalled = {
      description = "Stalled ramps: a start_ramp_* whose end_ramp_* did not come within ramp_deadline_seconds (a missed webhook, or DPS stopped mid-ramp)."
      filter      = "${local.jobs_logs} AND jsonPayload.outcome=\"episode_stalled\""
    }
    sample_failures = {
      description = "sample_load runs that stored no sample: DPS or the store unreachable, or DPS refused the credentials."
      filter      = "${local.sample_logs} AND jsonPayload.outcome=\"sample_failed\" AND severity>=ERROR"
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
    for label, field in local.metric_labels : label => "EXTRACT(jsonPayload.${field})"
  }

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "gridhook ${replace(each.key, "_", " ")} (${var.name_prefix})"

    dynamic "labels" {
      for_each = local.metric_labels
      content {
        key         = labels.key
        value_type  = "STRING"
        description = "jsonPayload.${labels.value} of the log line."
      }
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
    for label, field in local.metric_labels : label => "EXTRACT(jsonPayload.${field})"
  }

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "ms"
    display_name = "gridhook webhook latency (${var.name_prefix})"

    dynamic "labels" {
      for_each = local.metric_labels
      content {
        key         = labels.key
        value_type  = "STRING"
        description = "jsonPayload.${labels.value} of the log line."
      }
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
# Alerts: a failed reconcile means DPS may have stopped delivering; drift means an event
# was missed or lost; a target not met or a stalled ramp means a curtailment went wrong;
# sampling failing means gaps in the interval load settlement is computed from.
# Each needs a person (what to do: docs/alerts.md).
# ---------------------------------------------------------------------------------------

locals {
  alerts = {
    reconcile_failures = {
      display_name = "gridhook (${var.name_prefix}): subscription reconcile failing"
      severity     = "ERROR"
      threshold    = 0
      documentation = join("\n", [
        "reconcile_subscriptions failed: DPS may no longer deliver power events to gridhook.",
        "Look at the function's logs (jsonPayload.outcome=\"reconcile_failed\") for the DPS error.",
        "Usual causes: DPS unreachable from Google Cloud, expired NvGrid credentials or CA",
        "(Secret Manager), or a webhook URL DPS refuses. Re-run the site's job with",
        "(no suffix for the site named default; `terraform output reconcile_commands`):",
        "gcloud scheduler jobs run ${var.name_prefix}-reconcile-SITE --location ${var.region}",
        "A teardown that left subscriptions behind (jsonPayload.outcome=\"teardown_incomplete\")",
        "counts here too: its log line names what DPS still has registered; run it again.",
      ])
    }
    drift = {
      display_name = "gridhook (${var.name_prefix}): drift between DPS and received events"
      severity     = "ERROR"
      threshold    = 0
      documentation = join("\n", [
        "reconcile_subscriptions found DPS's current load target or status differing from the",
        "state derived from the events gridhook stored: a webhook was missed or lost.",
        "See the drift records (`gridhook subscriptions`) and the receiver's logs for",
        "rejected or unauthorized deliveries around that time.",
      ])
    }
    target_not_met = {
      display_name = "gridhook (${var.name_prefix}): curtailment target not met"
      severity     = "WARNING"
      threshold    = 0
      documentation = join("\n", [
        "DPS reported the end of a ramp down with compliant = false: the feed did not reach",
        "the load target the utility asked for.",
        "Find it: receiver logs with jsonPayload.event=\"end_ramp_down\" AND jsonPayload.compliant=false",
        "(feed_tag, correlation_id, event_id). The episode (power_report /episodes or",
        "`gridhook episodes --correlation-id ID`) shows the target and the load DPS reached.",
        "Tell the utility if the contract asks for it, and ask the DPS operator why the",
        "datacenter could not shed that much (the target below what the feed can reach?).",
      ])
    }
    ramp_stalled = {
      display_name = "gridhook (${var.name_prefix}): curtailment ramp stalled"
      severity     = "ERROR"
      threshold    = 0
      documentation = join("\n", [
        "A ramp started (start_ramp_down or start_ramp_up) and its end did not arrive within",
        "${var.ramp_deadline_seconds} s. The reconcile log line (jsonPayload.outcome=\"episode_stalled\")",
        "names the feed, correlation id, since when, the missing event and the likely cause:",
        "missed_webhook (DPS reached the target: look for rejected or unauthorized deliveries",
        "and drift) or dps_stopped_mid_ramp (DPS is short of the target: ask the DPS operator).",
        "It is logged once per ramp; the reconcile report keeps listing it while it is open.",
      ])
    }
    sample_failures = {
      display_name = "gridhook (${var.name_prefix}): load sampling failing"
      severity     = "WARNING"
      threshold    = var.sample_failure_threshold
      documentation = join("\n", [
        "sample_load failed more than ${var.sample_failure_threshold} times within ${var.alert_window_seconds} s:",
        "the site's interval load has gaps (an interval under interval_min_coverage is missing,",
        "never filled in), so baselines and settlement for those hours will say so.",
        "Look at the function's logs (jsonPayload.outcome=\"sample_failed\"): `code` says",
        "whether DPS was unreachable (nvgrid_unavailable), refused the credentials",
        "(Secret Manager) or the store was down (store_unavailable).",
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
  severity              = each.value.severity
  notification_channels = var.notification_channels

  conditions {
    display_name = "${each.key} > ${each.value.threshold}"

    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.counters[each.key].name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.threshold
      duration        = "0s"

      aggregations {
        alignment_period     = "${var.alert_window_seconds}s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        # One time series per site: the incident names its site (metric.label.site).
        group_by_fields = ["metric.label.site"]
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
    # $${…}: Cloud Monitoring's own variables, filled in per incident (not Terraform's).
    subject   = "${each.value.display_name} on site $${metric.label.site}"
    content   = "Site: $${metric.label.site}\n\n${each.value.documentation}"
    mime_type = "text/markdown"
  }
}
