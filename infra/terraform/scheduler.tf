# Per site: reconcile_subscriptions on var.reconcile_schedule and sample_load on
# var.sample_schedule, each call naming its site (?site=<name>), so one site's failure or
# retry is only its own. For all sites: teardown_subscriptions as a paused job that runs
# only when asked:  gcloud scheduler jobs run <teardown_job> --location <region>
# Every job calls its function with an OIDC identity token whose audience is the
# function's URL, minted for a service account that may invoke just that function (the
# scheduler account: reconcile and sample_load; the teardown account: teardown).

locals {
  site_jobs = merge([
    for name in keys(local.sites) : {
      "reconcile/${name}" = {
        site         = name
        name         = "${var.name_prefix}-reconcile${local.site_suffix[name]}"
        description  = "Keep site ${name}'s DPS webhook subscription registered; record drift."
        function_url = google_cloudfunctions2_function.jobs["reconcile"].url
        schedule     = var.reconcile_schedule
        retry_count  = var.scheduler_retry_count
        # Cloud Scheduler waits at most 30 minutes for an HTTP target.
        attempt_deadline = "${min(1800, var.reconcile_deadline_seconds + 90)}s"
      }
      "sample/${name}" = {
        site         = name
        name         = "${var.name_prefix}-sample${local.site_suffix[name]}"
        description  = "Sample site ${name}'s load from DPS (one GetStatus per run)."
        function_url = google_cloudfunctions2_function.sampler.url
        schedule     = var.sample_schedule
        # No retry: the next run is the retry (a sample late is no sample of its minute).
        retry_count      = 0
        attempt_deadline = "${min(1800, local.sample_timeout_seconds + 30)}s"
      }
    }
  ]...)
}

resource "google_cloud_scheduler_job" "site" {
  for_each = local.site_jobs

  project          = var.project_id
  region           = var.region
  name             = each.value.name
  description      = each.value.description
  schedule         = each.value.schedule
  time_zone        = var.scheduler_time_zone
  paused           = false
  attempt_deadline = each.value.attempt_deadline

  retry_config {
    retry_count          = each.value.retry_count
    min_backoff_duration = var.scheduler_min_backoff
    max_backoff_duration = var.scheduler_max_backoff
    max_doublings        = 3
  }

  http_target {
    http_method = "POST"
    uri         = "${each.value.function_url}?site=${each.value.site}"
    body        = base64encode(jsonencode({ trigger = "cloud-scheduler", site = each.value.site }))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.sa["scheduler"].email
      # The audience is the function's URL, without the query.
      audience = each.value.function_url
    }
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.jobs_invoker,
    google_cloud_run_v2_service_iam_member.sampler_invoker,
  ]
}

resource "google_cloud_scheduler_job" "teardown" {
  project     = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-teardown"
  description = "Unregister every webhook this deployment registered, on every site. Paused: run it on demand."
  # Never fires while paused; the schedule is required but only 'run' triggers it.
  schedule  = "0 0 1 1 *"
  time_zone = var.scheduler_time_zone
  paused    = true

  attempt_deadline = "${min(1800, var.reconcile_deadline_seconds + 90)}s"

  retry_config {
    retry_count          = var.scheduler_retry_count
    min_backoff_duration = var.scheduler_min_backoff
    max_backoff_duration = var.scheduler_max_backoff
    max_doublings        = 3
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.jobs["teardown"].url
    body        = base64encode(jsonencode({ trigger = "cloud-scheduler" }))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.sa["teardown"].email
      audience              = google_cloudfunctions2_function.jobs["teardown"].url
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.jobs_invoker]
}
