# The four Cloud Functions (gen2, python312) built from the one source archive.
# Entry points are the functions of functions/main.py (tests/infra checks they exist).

locals {
  build_service_account = "projects/${var.project_id}/serviceAccounts/${google_service_account.sa["build"].email}"
  docker_repository     = google_artifact_registry_repository.functions.id

  # Settings shared by every function (names: functions/gridhook/settings.py ENV_VARS).
  common_env = {
    GRIDHOOK_STORE                 = local.store_url
    GRIDHOOK_STORE_TIMEOUT_SECONDS = tostring(var.store_timeout_seconds)
    GRIDHOOK_LOG_LEVEL             = var.log_level
    GRIDHOOK_WEBHOOK_TOKENS_FILE   = "${local.secret_mount_root}/webhook-tokens/${local.secret_file}"
    # Re-read the mounted secret: a new version ("latest") is picked up without a redeploy.
    GRIDHOOK_WEBHOOK_TOKENS_RELOAD_SECONDS = tostring(var.webhook_tokens_reload_seconds)
  }

  receiver_env = merge(local.common_env, {
    # Explicitly off: the receiver refuses to start without a token.
    GRIDHOOK_ALLOW_UNAUTHENTICATED = "0"
    GRIDHOOK_MAX_BODY_BYTES        = tostring(var.max_body_bytes)
    GRIDHOOK_QUARANTINE_TTL_DAYS   = tostring(var.quarantine_ttl_days)
  })

  jobs_env = merge(
    local.common_env,
    {
      # The URL DPS is told to call; the current token is added when registering.
      GRIDHOOK_WEBHOOK_URL                = "${google_cloudfunctions2_function.receiver.url}${var.webhook_path}"
      GRIDHOOK_EVENTS                     = join(",", var.webhook_events)
      GRIDHOOK_RECONCILE_DEADLINE_SECONDS = tostring(var.reconcile_deadline_seconds)
      GRIDHOOK_DRIFT_GRACE_SECONDS        = tostring(var.drift_grace_seconds)
      GRIDHOOK_RAMP_DEADLINE_SECONDS      = tostring(var.ramp_deadline_seconds)
      GRIDHOOK_SAMPLE_RETENTION_DAYS      = tostring(var.sample_retention_days)
      NVGRID_HOST                         = var.nvgrid_host
      NVGRID_TLS                          = var.nvgrid_tls
      NVGRID_CREDENTIALS_FILE             = "${local.secret_mount_root}/nvgrid-credentials/${local.secret_file}"
    },
    var.nvgrid_port == null ? {} : { NVGRID_PORT = tostring(var.nvgrid_port) },
    var.nvgrid_custom_ca ? { NVGRID_CA_CERT = "${local.secret_mount_root}/nvgrid-ca/${local.secret_file}" } : {},
  )

  # power_report reads the store and nothing else: no webhook token, no DPS, no secret.
  report_env = {
    GRIDHOOK_STORE                 = local.store_url
    GRIDHOOK_STORE_TIMEOUT_SECONDS = tostring(var.store_timeout_seconds)
    GRIDHOOK_LOG_LEVEL             = var.log_level
    # Episodes open longer than this are shown as stalled (the same deadline as reconcile's).
    GRIDHOOK_RAMP_DEADLINE_SECONDS = tostring(var.ramp_deadline_seconds)
  }

  # Secret volumes: key of local.secrets => mount directory.
  receiver_secret_mounts = {
    webhook_tokens = "${local.secret_mount_root}/webhook-tokens"
  }
  jobs_secret_mounts = merge(
    {
      webhook_tokens     = "${local.secret_mount_root}/webhook-tokens"
      nvgrid_credentials = "${local.secret_mount_root}/nvgrid-credentials"
    },
    var.nvgrid_custom_ca ? { nvgrid_ca = "${local.secret_mount_root}/nvgrid-ca" } : {},
  )

  jobs = {
    reconcile = {
      entry_point = "reconcile_subscriptions"
      description = "gridhook: make DPS's webhook registrations match the desired ones and record drift (scheduled)."
    }
    teardown = {
      entry_point = "teardown_subscriptions"
      description = "gridhook: unregister every webhook this deployment registered (on demand)."
    }
  }
}

# ---------------------------------------------------------------------------------------
# receive_power_event: public HTTP endpoint DPS posts power events to.
# ---------------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "receiver" {
  #checkov:skip=CKV_GCP_124:The webhook receiver must be reachable from DPS outside Google Cloud; every request is authenticated by the webhook token.
  project     = var.project_id
  location    = var.region
  name        = local.function_names.receiver
  description = "gridhook: receive DPS NvGrid power-event webhooks, validate, store exactly once."

  build_config {
    runtime           = "python312"
    entry_point       = "receive_power_event"
    service_account   = local.build_service_account
    docker_repository = local.docker_repository

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.sa["receiver"].email
    # Public on the network (DPS calls from outside Google Cloud); see the allUsers
    # invoker below. Authentication is the webhook token, checked by the function.
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true

    available_memory                 = var.receiver_memory
    available_cpu                    = var.receiver_cpu
    max_instance_request_concurrency = var.receiver_concurrency
    min_instance_count               = var.receiver_min_instances
    max_instance_count               = var.receiver_max_instances
    timeout_seconds                  = var.receiver_timeout_seconds

    environment_variables = local.receiver_env

    dynamic "secret_volumes" {
      for_each = local.receiver_secret_mounts
      content {
        project_id = var.project_id
        secret     = google_secret_manager_secret.secrets[secret_volumes.key].secret_id
        mount_path = secret_volumes.value
        versions {
          version = "latest"
          path    = local.secret_file
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.accessor,
    google_project_iam_member.firestore_user,
    google_project_iam_member.log_writer,
    google_project_iam_member.build_staged_sources,
    google_storage_bucket_iam_member.build_source_reader,
    google_artifact_registry_repository_iam_member.build_writer,
    google_secret_manager_secret_version.webhook_tokens,
  ]
}

# Public invocation. DPS's webhook dispatcher is an ordinary HTTPS client outside Google
# Cloud: it cannot mint Google identity tokens, so IAM cannot authenticate it. The
# function therefore admits everyone at the IAM layer and authenticates every request
# itself with the webhook token (Secret Manager), answering 401 without it.
# A gen2 function is served by a Cloud Run service, and roles/run.invoker on that service
# is what lets a request through (roles/cloudfunctions.invoker on the function does not
# cover the service's URL), hence the Cloud Run IAM resource.
resource "google_cloud_run_v2_service_iam_member" "receiver_public" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.receiver.service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# ---------------------------------------------------------------------------------------
# reconcile_subscriptions and teardown_subscriptions: private, called with OIDC tokens.
# ---------------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "jobs" {
  #checkov:skip=CKV_GCP_124:Private by IAM (run.invoker for one service account each, OIDC); network ingress is var.jobs_ingress_settings, ALLOW_ALL by default so Cloud Scheduler and an operator's gcloud reach it.
  for_each = local.jobs

  project     = var.project_id
  location    = var.region
  name        = local.function_names[each.key]
  description = each.value.description

  build_config {
    runtime           = "python312"
    entry_point       = each.value.entry_point
    service_account   = local.build_service_account
    docker_repository = local.docker_repository

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.sa["jobs"].email
    ingress_settings               = var.jobs_ingress_settings
    all_traffic_on_latest_revision = true

    available_memory = var.jobs_memory
    available_cpu    = "1"
    # One run at a time: reconcile and teardown are not meant to overlap themselves.
    max_instance_request_concurrency = 1
    min_instance_count               = 0
    max_instance_count               = 1
    # The run's own deadline plus time to start and to report.
    timeout_seconds = var.reconcile_deadline_seconds + 60

    environment_variables = local.jobs_env

    dynamic "secret_volumes" {
      for_each = local.jobs_secret_mounts
      content {
        project_id = var.project_id
        secret     = google_secret_manager_secret.secrets[secret_volumes.key].secret_id
        mount_path = secret_volumes.value
        versions {
          version = "latest"
          path    = local.secret_file
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.accessor,
    google_project_iam_member.firestore_user,
    google_project_iam_member.log_writer,
    google_project_iam_member.build_staged_sources,
    google_storage_bucket_iam_member.build_source_reader,
    google_artifact_registry_repository_iam_member.build_writer,
    google_secret_manager_secret_version.webhook_tokens,
    google_secret_manager_secret_version.nvgrid_credentials,
    google_secret_manager_secret_version.nvgrid_ca,
  ]
}

# The scheduler's account may invoke reconcile, the teardown account teardown; nobody
# else (project owners aside) may invoke either.
resource "google_cloud_run_v2_service_iam_member" "jobs_invoker" {
  for_each = local.jobs

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.jobs[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.sa[each.key == "reconcile" ? "scheduler" : "teardown"].member
}

# ---------------------------------------------------------------------------------------
# power_report: the control-room page, reports and episodes. Private and read-only.
# ---------------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "report" {
  #checkov:skip=CKV_GCP_124:Private by IAM (run.invoker only for var.report_viewers, identity tokens); network ingress is var.report_ingress_settings, ALLOW_ALL by default so that viewers reach it through `gcloud run services proxy`.
  project     = var.project_id
  location    = var.region
  name        = local.function_names.report
  description = "gridhook: the control-room page, curtailment reports and episodes (private, read-only)."

  build_config {
    runtime           = "python312"
    entry_point       = "power_report"
    service_account   = local.build_service_account
    docker_repository = local.docker_repository

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    # Its own account: Firestore read-only (roles/datastore.viewer), no secret.
    service_account_email          = google_service_account.sa["report"].email
    ingress_settings               = var.report_ingress_settings
    all_traffic_on_latest_revision = true

    available_memory                 = var.report_memory
    available_cpu                    = "1"
    max_instance_request_concurrency = 4
    min_instance_count               = 0
    max_instance_count               = var.report_max_instances
    timeout_seconds                  = 120

    environment_variables = local.report_env
  }

  depends_on = [
    google_project_iam_member.firestore_viewer,
    google_project_iam_member.log_writer,
    google_project_iam_member.build_staged_sources,
    google_storage_bucket_iam_member.build_source_reader,
    google_artifact_registry_repository_iam_member.build_writer,
  ]
}

# Only the identities in var.report_viewers may open it (with a Google identity token:
# `gcloud run services proxy`, or curl with `gcloud auth print-identity-token`).
resource "google_cloud_run_v2_service_iam_member" "report_viewers" {
  for_each = toset(var.report_viewers)

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.report.service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value
}
