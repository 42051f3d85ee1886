# reconcile_subscriptions on a schedule; teardown_subscriptions as a paused job that runs
# only when asked:  gcloud scheduler jobs run <teardown_job> --location <region>
# Both call their function with an OIDC identity token whose audience is the function's
# URL, minted for a service account that may invoke that one function.

locals {
  scheduler_jobs = {
    reconcile = {
      name        = "${var.name_prefix}-reconcile"
      description = "Keep gridhook's DPS webhook subscription registered; record drift."
      invoker     = "scheduler"
      paused      = false
      schedule    = var.reconcile_schedule
      retry_count = var.scheduler_retry_count
    }
    teardown = {
      name        = "${var.name_prefix}-teardown"
      description = "Unregister every webhook this deployment registered. Paused: run it on demand."
      invoker     = "teardown"
      paused      = true
      # Never fires while paused; the schedule is required but only 'run' triggers it.
      schedule    = "0 0 1 1 *"
      retry_count = var.scheduler_retry_count
    }
  }
}

resource "google_cloud_scheduler_job" "jobs" {
  for_each = local.scheduler_jobs

  project     = var.project_id
  region      = var.region
  name        = each.value.name
  description = each.value.description
  schedule    = each.value.schedule
  time_zone   = var.scheduler_time_zone
  paused      = each.value.paused

  # Cloud Scheduler waits at most 30 minutes for an HTTP target.
  attempt_deadline = "${min(1800, var.reconcile_deadline_seconds + 90)}s"

  retry_config {
    retry_count          = each.value.retry_count
    min_backoff_duration = var.scheduler_min_backoff
    max_backoff_duration = var.scheduler_max_backoff
    max_doublings        = 3
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.jobs[each.key].url
    body        = base64encode(jsonencode({ trigger = "cloud-scheduler" }))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.sa[each.value.invoker].email
      audience              = google_cloudfunctions2_function.jobs[each.key].url
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.jobs_invoker]
}
