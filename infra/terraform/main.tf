# gridhook on Google Cloud: a public webhook receiver, two private subscription jobs, a
# private read-only report, Firestore, Secret Manager, Cloud Scheduler and log-based
# monitoring.
# One file per concern: apis, firestore, storage, secrets, iam, functions, scheduler,
# monitoring, outputs.

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = merge({ app = "gridhook", deployment = var.name_prefix }, var.labels)
}

locals {
  firestore_location = coalesce(var.firestore_location, var.region)

  # What the functions read at cold start (functions/gridhook/settings.py, ENV_VARS).
  store_url = "firestore://${var.project_id}/${var.firestore_database}"

  # Secret volumes: one directory per secret, one file ("value") per directory.
  secret_mount_root = "/etc/secrets"
  secret_file       = "value"

  function_names = {
    receiver  = "${var.name_prefix}-receive-power-event"
    reconcile = "${var.name_prefix}-reconcile-subscriptions"
    teardown  = "${var.name_prefix}-teardown-subscriptions"
    report    = "${var.name_prefix}-power-report"
  }
}
