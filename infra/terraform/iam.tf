# One service account per role, each with only what that role needs. No primitive roles,
# no default compute or Cloud Build account. Invoker grants are in functions.tf, next to
# the functions they open.

locals {
  service_accounts = {
    receiver  = "Runs receive_power_event: writes events to Firestore, reads the webhook tokens of every site."
    jobs      = "Runs reconcile_subscriptions and teardown_subscriptions: Firestore, every site's DPS credentials, CA and webhook tokens."
    sampler   = "Runs sample_load: writes load samples to Firestore, reads every site's DPS credentials and CA."
    scheduler = "Cloud Scheduler's identity when calling reconcile_subscriptions and sample_load (invoker of those two functions only)."
    teardown  = "Identity of the paused teardown job (invoker of teardown_subscriptions only)."
    report    = "Runs power_report: reads Firestore (read-only), nothing else."
    build     = "Cloud Build's identity when building the functions' images."
  }

  # Secret access, "<account>/<site>/<kind>", derived from local.secret_readers (secrets.tf).
  secret_grants = merge([
    for key, secret in local.site_secrets : {
      for account in local.secret_readers[secret.kind] : "${account}/${key}" => {
        account = account
        secret  = key
      }
    }
  ]...)

  firestore_users = toset(["receiver", "jobs", "sampler"])
  log_writers     = toset(["receiver", "jobs", "sampler", "report", "build"])
}

resource "google_service_account" "sa" {
  for_each = local.service_accounts

  project      = var.project_id
  account_id   = "${var.name_prefix}-${each.key}"
  display_name = "gridhook ${each.key} (${var.name_prefix})"
  description  = each.value

  depends_on = [google_project_service.apis]
}

# Firestore: read and write documents of this deployment's database only.
resource "google_project_iam_member" "firestore_user" {
  for_each = local.firestore_users

  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.sa[each.key].member

  condition {
    title       = "${var.name_prefix}-firestore-database"
    description = "Only the ${var.firestore_database} Firestore database."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${var.firestore_database}\""
  }
}

# power_report only reads: roles/datastore.viewer, on this deployment's database only.
resource "google_project_iam_member" "firestore_viewer" {
  project = var.project_id
  role    = "roles/datastore.viewer"
  member  = google_service_account.sa["report"].member

  condition {
    title       = "${var.name_prefix}-firestore-database-read"
    description = "Only the ${var.firestore_database} Firestore database."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${var.firestore_database}\""
  }
}

resource "google_project_iam_member" "log_writer" {
  for_each = local.log_writers

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.sa[each.key].member
}

resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = local.secret_grants

  project   = var.project_id
  secret_id = google_secret_manager_secret.secrets[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.sa[each.value.account].member
}

# ---------------------------------------------------------------------------------------
# Build service account (build_config.service_account): reads the uploaded source, which
# Cloud Functions stages in its gcf-v2-sources-* bucket, and pushes to our repository.
# ---------------------------------------------------------------------------------------

resource "google_storage_bucket_iam_member" "build_source_reader" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.sa["build"].member
}

resource "google_project_iam_member" "build_staged_sources" {
  project = var.project_id
  role    = "roles/storage.objectAdmin"
  member  = google_service_account.sa["build"].member

  condition {
    title       = "${var.name_prefix}-gcf-sources"
    description = "Only the buckets where Cloud Functions stages function sources."
    expression  = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-\")"
  }
}

resource "google_artifact_registry_repository_iam_member" "build_writer" {
  project    = var.project_id
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.sa["build"].member
}
