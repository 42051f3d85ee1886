# State addresses of before sites (one site, its secrets keyed by kind, one reconcile job):
# a one-site deployment upgraded to this stack keeps its secrets (and their versions), its
# grants and its jobs in place instead of destroying and re-creating them.

moved {
  from = google_secret_manager_secret.secrets["webhook_tokens"]
  to   = google_secret_manager_secret.secrets["default/webhook_tokens"]
}

moved {
  from = google_secret_manager_secret.secrets["nvgrid_credentials"]
  to   = google_secret_manager_secret.secrets["default/nvgrid_credentials"]
}

moved {
  from = google_secret_manager_secret.secrets["nvgrid_ca"]
  to   = google_secret_manager_secret.secrets["default/nvgrid_ca"]
}

moved {
  from = google_secret_manager_secret_iam_member.accessor["receiver_webhook_tokens"]
  to   = google_secret_manager_secret_iam_member.accessor["receiver/default/webhook_tokens"]
}

moved {
  from = google_secret_manager_secret_iam_member.accessor["jobs_webhook_tokens"]
  to   = google_secret_manager_secret_iam_member.accessor["jobs/default/webhook_tokens"]
}

moved {
  from = google_secret_manager_secret_iam_member.accessor["jobs_nvgrid_credentials"]
  to   = google_secret_manager_secret_iam_member.accessor["jobs/default/nvgrid_credentials"]
}

moved {
  from = google_secret_manager_secret_iam_member.accessor["jobs_nvgrid_ca"]
  to   = google_secret_manager_secret_iam_member.accessor["jobs/default/nvgrid_ca"]
}

moved {
  from = google_cloud_scheduler_job.jobs["reconcile"]
  to   = google_cloud_scheduler_job.site["reconcile/default"]
}

moved {
  from = google_cloud_scheduler_job.jobs["teardown"]
  to   = google_cloud_scheduler_job.teardown
}
