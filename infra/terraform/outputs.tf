output "webhook_url" {
  description = "URL the default site's DPS delivers to, without the token (reconcile adds the current token when it registers); another site's is this URL followed by /<site> (webhook_urls). Verify with the curl line in the README."
  value       = local.webhook_base_url
}

output "webhook_urls" {
  description = "By site: the URL reconcile registers with that site's DPS, without the token."
  value       = local.site_webhook_urls
}

output "sites" {
  description = "By site: its time zone, NvGrid endpoint and TLS mode, and the secrets to add versions to (gcloud secrets versions add ID --data-file=-)."
  value = {
    for name, site in local.sites : name => {
      timezone    = site.timezone
      nvgrid_host = site.nvgrid_host
      nvgrid_tls  = site.nvgrid_tls
      secrets = {
        for key, secret in local.site_secrets : secret.kind => google_secret_manager_secret.secrets[key].secret_id
        if secret.site == name
      }
    }
  }
}

output "receiver_url" {
  description = "Base URL of the receive_power_event function."
  value       = google_cloudfunctions2_function.receiver.url
}

output "function_names" {
  description = "Cloud Functions by role."
  value = {
    receive_power_event     = google_cloudfunctions2_function.receiver.name
    reconcile_subscriptions = google_cloudfunctions2_function.jobs["reconcile"].name
    teardown_subscriptions  = google_cloudfunctions2_function.jobs["teardown"].name
    sample_load             = google_cloudfunctions2_function.sampler.name
    power_report            = google_cloudfunctions2_function.report.name
  }
}

output "service_accounts" {
  description = "Service account e-mails by role (receiver, jobs, sampler, scheduler, teardown, report, build)."
  value       = { for role, sa in google_service_account.sa : role => sa.email }
}

output "secrets" {
  description = "Secret Manager secret IDs by \"<site>/<kind>\" (kinds: webhook_tokens, nvgrid_credentials, nvgrid_ca) to add versions to (gcloud secrets versions add ID --data-file=-)."
  value       = { for key, secret in google_secret_manager_secret.secrets : key => secret.secret_id }
}

output "firestore_database" {
  description = "Firestore database name, and the GRIDHOOK_STORE URL to use it from the CLI."
  value = {
    name      = google_firestore_database.gridhook.name
    store_url = local.store_url
  }
}

output "reconcile_command" {
  description = "Runs reconcile_subscriptions now for every site: one line per site's job (`terraform output -raw reconcile_command | sh`)."
  value       = join("\n", values(local.reconcile_commands))
}

output "reconcile_commands" {
  description = "By site: runs that site's reconcile job now."
  value       = local.reconcile_commands
}

output "sample_commands" {
  description = "By site: runs that site's sample_load job now (it also runs every sample_schedule)."
  value = {
    for name in keys(local.sites) : name => "gcloud scheduler jobs run ${google_cloud_scheduler_job.site["sample/${name}"].name} --project ${var.project_id} --location ${var.region}"
  }
}

output "scheduler_jobs" {
  description = "Cloud Scheduler job names: by \"reconcile/<site>\" and \"sample/<site>\", and \"teardown\"."
  value = merge(
    { for key, job in google_cloud_scheduler_job.site : key => job.name },
    { teardown = google_cloud_scheduler_job.teardown.name },
  )
}

output "teardown_command" {
  description = "Unregisters every webhook this deployment registered (runs the paused teardown job once)."
  value       = "gcloud scheduler jobs run ${google_cloud_scheduler_job.teardown.name} --project ${var.project_id} --location ${var.region}"
}

output "source_archive" {
  description = "Object holding the functions' source (its name carries the archive's SHA-256)."
  value       = "gs://${google_storage_bucket.source.name}/${google_storage_bucket_object.functions.name}"
}

output "report_url" {
  description = "URL of power_report (private: a request needs a Google identity token of one of report_viewers). /, /report?since=30d&format=html, /episodes."
  value       = google_cloudfunctions2_function.report.url
}

output "report_proxy_command" {
  description = "Opens power_report for a report viewer: serves it on http://localhost:8080 with the viewer's own gcloud identity (then open http://localhost:8080/ in a browser)."
  value       = "gcloud run services proxy ${google_cloudfunctions2_function.report.service_config[0].service} --project ${var.project_id} --region ${var.region} --port 8080"
}

output "report_curl_command" {
  description = "Fetches the last 30 days' report as JSON with the caller's identity token (a report viewer's gcloud login)."
  value       = "curl -H \"Authorization: Bearer $(gcloud auth print-identity-token)\" '${google_cloudfunctions2_function.report.url}/report?since=30d&format=json'"
}

locals {
  reconcile_commands = {
    for name in keys(local.sites) : name => "gcloud scheduler jobs run ${google_cloud_scheduler_job.site["reconcile/${name}"].name} --project ${var.project_id} --location ${var.region}"
  }
}
