output "webhook_url" {
  description = "URL to register with DPS, without the token (reconcile adds the current token when it registers). Verify with the curl line in the README."
  value       = "${google_cloudfunctions2_function.receiver.url}${var.webhook_path}"
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
    power_report            = google_cloudfunctions2_function.report.name
  }
}

output "service_accounts" {
  description = "Service account e-mails by role (receiver, jobs, scheduler, teardown, report, build)."
  value       = { for role, sa in google_service_account.sa : role => sa.email }
}

output "secrets" {
  description = "Secret Manager secret IDs to add versions to (gcloud secrets versions add ID --data-file=-)."
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
  description = "Runs reconcile_subscriptions now."
  value       = "gcloud scheduler jobs run ${google_cloud_scheduler_job.jobs["reconcile"].name} --project ${var.project_id} --location ${var.region}"
}

output "teardown_command" {
  description = "Unregisters every webhook this deployment registered (runs the paused teardown job once)."
  value       = "gcloud scheduler jobs run ${google_cloud_scheduler_job.jobs["teardown"].name} --project ${var.project_id} --location ${var.region}"
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
