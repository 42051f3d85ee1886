# The five Cloud Functions (gen2, python312) built from the one source archive.
# Entry points are the functions of functions/main.py (tests/infra checks they exist).

locals {
  build_service_account = "projects/${var.project_id}/serviceAccounts/${google_service_account.sa["build"].email}"
  docker_repository     = google_artifact_registry_repository.functions.id

  # Settings shared by every function (names: functions/gridhook/settings.py ENV_VARS):
  # the store, logging, and which sites there are (sites.tf).
  common_env = merge(
    {
      GRIDHOOK_STORE                 = local.store_url
      GRIDHOOK_STORE_TIMEOUT_SECONDS = tostring(var.store_timeout_seconds)
      GRIDHOOK_LOG_LEVEL             = var.log_level
    },
    local.sites_env,
  )

  # The default site of a one-site deployment reads today's variables; a fleet's sites
  # name their files in GRIDHOOK_SITES instead.
  default_site_tokens_env = local.fleet ? {} : {
    GRIDHOOK_WEBHOOK_TOKENS_FILE = local.site_secrets["default/webhook_tokens"].file
  }
  default_site_nvgrid_env = local.fleet ? {} : merge(
    {
      NVGRID_HOST             = var.nvgrid_host
      NVGRID_TLS              = var.nvgrid_tls
      NVGRID_CREDENTIALS_FILE = local.site_secrets["default/nvgrid_credentials"].file
    },
    var.nvgrid_port == null ? {} : { NVGRID_PORT = tostring(var.nvgrid_port) },
    var.nvgrid_custom_ca ? { NVGRID_CA_CERT = local.site_secrets["default/nvgrid_ca"].file } : {},
  )

  receiver_env = merge(local.common_env, local.default_site_tokens_env, {
    # Re-read the mounted secrets: a new version ("latest") is picked up without a redeploy.
    GRIDHOOK_WEBHOOK_TOKENS_RELOAD_SECONDS = tostring(var.webhook_tokens_reload_seconds)
    # Explicitly off: the receiver refuses to start without a token.
    GRIDHOOK_ALLOW_UNAUTHENTICATED = "0"
    GRIDHOOK_MAX_BODY_BYTES        = tostring(var.max_body_bytes)
    GRIDHOOK_QUARANTINE_TTL_DAYS   = tostring(var.quarantine_ttl_days)
  })

  jobs_env = merge(
    local.common_env,
    local.default_site_tokens_env,
    local.default_site_nvgrid_env,
    {
      GRIDHOOK_WEBHOOK_TOKENS_RELOAD_SECONDS = tostring(var.webhook_tokens_reload_seconds)
      # The URL DPS is told to call (a site other than "default" adds /<site>); the
      # site's current token is added when registering.
      GRIDHOOK_WEBHOOK_URL                = local.webhook_base_url
      GRIDHOOK_EVENTS                     = join(",", var.webhook_events)
      GRIDHOOK_RECONCILE_DEADLINE_SECONDS = tostring(var.reconcile_deadline_seconds)
      GRIDHOOK_RECONCILE_CONCURRENCY      = tostring(var.reconcile_concurrency)
      GRIDHOOK_DRIFT_GRACE_SECONDS        = tostring(var.drift_grace_seconds)
      GRIDHOOK_RAMP_DEADLINE_SECONDS      = tostring(var.ramp_deadline_seconds)
    },
  )

  # sample_load: the store, each site's DPS, and how long samples are kept. No webhook
  # token: it registers nothing.
  sample_env = merge(
    local.common_env,
    local.default_site_nvgrid_env,
    {
      # Bounds its DPS calls as it bounds reconcile's (a quarter of it per call).
      GRIDHOOK_RECONCILE_DEADLINE_SECONDS = tostring(var.reconcile_deadline_seconds)
      GRIDHOOK_SAMPLE_RETENTION_DAYS      = tostring(var.sample_retention_days)
      GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS  = tostring(var.raw_sample_retention_days)
    },
  )

  # power_report reads the store and nothing else: no webhook token, no DPS, no secret.
  report_env = merge(
    {
      GRIDHOOK_STORE                 = local.store_url
      GRIDHOOK_STORE_TIMEOUT_SECONDS = tostring(var.store_timeout_seconds)
      GRIDHOOK_LOG_LEVEL             = var.log_level
      # Episodes open longer than this are shown as stalled (the same deadline as reconcile's).
      GRIDHOOK_RAMP_DEADLINE_SECONDS = tostring(var.ramp_deadline_seconds)
      GRIDHOOK_INTERVAL_MIN_COVERAGE = tostring(var.interval_min_coverage)
      GRIDHOOK_BASELINE_METHOD       = var.baseline_method
    },
    # Its sites' names and time zones (a site's days are its local days).
    local.sites_env,
  )

  # Secret volumes by runtime account: key of local.site_secrets => mount directory, each
  # a secret whose kind local.secret_readers lets that account read.
  secret_mounts = {
    for account in distinct(flatten(values(local.secret_readers))) : account => {
      for key, secret in local.site_secrets : key => secret.mount_dir
      if contains(local.secret_readers[secret.kind], account)
    }
  }

  # Per-site scheduled calls may overlap across sites: one instance takes up to 16 at once.
  site_job_concurrency = min(length(local.sites), 16)
  site_job_instances   = ceil(length(local.sites) / local.site_job_concurrency)

  jobs = {
    reconcile = {
      entry_point = "reconcile_subscriptions"
      description = "gridhook: make DPS's webhook registrations match the desired ones and record drift, per site (scheduled)."
      concurrency = local.site_job_concurrency
      instances   = local.site_job_instances
    }
    teardown = {
      entry_point = "teardown_subscriptions"
      description = "gridhook: unregister every webhook this deployment registered (on demand)."
      # One run at a time: a teardown is not meant to overlap itself.
      concurrency = 1
      instances   = 1
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
      for_each = local.secret_mounts["receiver"]
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
    google_secret_manager_secret_version.site_values,
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
# reconcile_subscriptions and teardown_subscriptions: private, called with OIDC tokens
# (reconcile by each site's Scheduler job, with ?site=).
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
    max_instance_request_concurrency = each.value.concurrency
    min_instance_count               = 0
    max_instance_count               = each.value.instances
    # The run's own deadline plus time to start and to report.
    timeout_seconds = var.reconcile_deadline_seconds + 60

    environment_variables = local.jobs_env

    dynamic "secret_volumes" {
      for_each = local.secret_mounts["jobs"]
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
    google_secret_manager_secret_version.site_values,
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
# sample_load: private, called with OIDC tokens by each site's sample job (?site=).
# ---------------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "sampler" {
  #checkov:skip=CKV_GCP_124:Private by IAM (run.invoker only for the scheduler account, OIDC); network ingress is var.jobs_ingress_settings, ALLOW_ALL by default so Cloud Scheduler and an operator's gcloud reach it.
  project     = var.project_id
  location    = var.region
  name        = local.function_names.sample
  description = "gridhook: sample DPS's load per site, one GetStatus per run, kept as load samples (scheduled)."

  build_config {
    runtime           = "python312"
    entry_point       = "sample_load"
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
    # Its own account: Firestore and the NvGrid secrets, no webhook token.
    service_account_email          = google_service_account.sa["sampler"].email
    ingress_settings               = var.jobs_ingress_settings
    all_traffic_on_latest_revision = true

    available_memory                 = var.jobs_memory
    available_cpu                    = "1"
    max_instance_request_concurrency = local.site_job_concurrency
    min_instance_count               = 0
    max_instance_count               = local.site_job_instances
    # One GetStatus, bounded to a quarter of the reconcile deadline, then the writes.
    timeout_seconds = local.sample_timeout_seconds

    environment_variables = local.sample_env

    dynamic "secret_volumes" {
      for_each = local.secret_mounts["sampler"]
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
    google_secret_manager_secret_version.nvgrid_credentials,
    google_secret_manager_secret_version.nvgrid_ca,
    google_secret_manager_secret_version.site_values,
  ]
}

locals {
  sample_timeout_seconds = ceil(var.reconcile_deadline_seconds / 4) + 60
}

# Only the scheduler account may invoke sample_load.
resource "google_cloud_run_v2_service_iam_member" "sampler_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.sampler.service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.sa["scheduler"].member
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
