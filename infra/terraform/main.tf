# gridhook on Google Cloud: a public webhook receiver, three private jobs (reconcile,
# teardown, sample_load), a private read-only report, Firestore, Secret Manager, Cloud
# Scheduler and log-based monitoring, for one DPS site or a fleet of them.
# One file per concern: apis, sites, firestore, storage, secrets, iam, functions,
# scheduler, monitoring, outputs (and moved: state addresses of before sites).

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = merge({ app = "gridhook", deployment = var.name_prefix }, var.labels)
}

locals {
  firestore_location = coalesce(var.firestore_location, var.region)

  # What the functions read at cold start (functions/gridhook/settings.py, ENV_VARS).
  store_url = "firestore://${var.project_id}/${var.firestore_database}"

  # Secret volumes: one directory per secret under its site's, /secrets/<site>/<secret>/,
  # one file ("value") per directory (a volume shadows its whole directory).
  secret_mount_root = "/secrets"
  secret_file       = "value"

  function_names = {
    receiver  = "${var.name_prefix}-receive-power-event"
    reconcile = "${var.name_prefix}-reconcile-subscriptions"
    teardown  = "${var.name_prefix}-teardown-subscriptions"
    sample    = "${var.name_prefix}-sample-load"
    report    = "${var.name_prefix}-power-report"
  }
}
