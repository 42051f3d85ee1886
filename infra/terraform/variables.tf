# ---------------------------------------------------------------------------------------
# Project and naming
# ---------------------------------------------------------------------------------------

variable "project_id" {
  type        = string
  description = "ID of the Google Cloud project to deploy into (it must exist, with billing enabled)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID: 6-30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  type        = string
  description = "Region of the functions, the source bucket, the scheduler jobs and the Artifact Registry repository (e.g. europe-west1)."
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west1."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (functions, service accounts, jobs, metrics), so that several deployments can share a project."
  default     = "gridhook"

  validation {
    # Service account IDs are at most 30 characters; the longest suffix is "-scheduler".
    condition     = can(regex("^[a-z][a-z0-9-]{2,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 4-20 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every resource that takes labels."
  default     = {}

  validation {
    condition = alltrue([
      for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))
    ])
    error_message = "Label keys must start with a lowercase letter; keys and values may hold only lowercase letters, digits, '_' and '-' (at most 63 characters)."
  }
}

# ---------------------------------------------------------------------------------------
# Firestore
# ---------------------------------------------------------------------------------------

variable "firestore_database" {
  type        = string
  description = "Name of the Firestore (native mode) database that holds events, quarantine, subscriptions and drift records."
  default     = "gridhook"

  validation {
    condition     = var.firestore_database == "(default)" || can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.firestore_database))
    error_message = "firestore_database must be \"(default)\" or 4-63 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "firestore_location" {
  type        = string
  description = "Firestore location: a multi-region (nam5, eur3) or a region. Null uses var.region."
  default     = null

  validation {
    condition     = var.firestore_location == null || can(regex("^([a-z]+-[a-z]+[0-9]+|nam[0-9]+|eur[0-9]+)$", var.firestore_location))
    error_message = "firestore_location must be a region (europe-west1) or a multi-region (nam5, eur3)."
  }
}

variable "firestore_point_in_time_recovery" {
  type        = bool
  description = "Keep 7 days of point-in-time recovery versions of the Firestore database."
  default     = true
}

variable "firestore_delete_protection" {
  type        = bool
  description = "Refuse to delete the Firestore database (it holds the only record of the power events) until this is turned off."
  default     = true
}

variable "firestore_deletion_policy" {
  type        = string
  description = "What `terraform destroy` does to the Firestore database: ABANDON leaves it (and the events) in place, DELETE deletes it (only when delete protection is off)."
  default     = "ABANDON"

  validation {
    condition     = contains(["ABANDON", "DELETE"], var.firestore_deletion_policy)
    error_message = "firestore_deletion_policy must be ABANDON or DELETE."
  }
}

variable "quarantine_ttl_days" {
  type        = number
  description = "Days a rejected payload is kept in the quarantine collection before the TTL policy deletes it (GRIDHOOK_QUARANTINE_TTL_DAYS)."
  default     = 7

  validation {
    condition     = var.quarantine_ttl_days >= 1 && var.quarantine_ttl_days <= 365 && floor(var.quarantine_ttl_days) == var.quarantine_ttl_days
    error_message = "quarantine_ttl_days must be a whole number of days from 1 to 365."
  }
}

variable "store_timeout_seconds" {
  type        = number
  description = "How long one store operation may take, retries included, before the receiver answers 503 (GRIDHOOK_STORE_TIMEOUT_SECONDS)."
  default     = 10

  validation {
    condition     = var.store_timeout_seconds >= 0.1 && var.store_timeout_seconds <= 55
    error_message = "store_timeout_seconds must be between 0.1 and 55 (below the receiver's timeout)."
  }

  # The receiver must still be running to answer 503 when the store gives up.
  validation {
    condition     = var.store_timeout_seconds < var.receiver_timeout_seconds
    error_message = "store_timeout_seconds must be shorter than receiver_timeout_seconds."
  }
}

# ---------------------------------------------------------------------------------------
# Receiver (receive_power_event)
# ---------------------------------------------------------------------------------------

variable "receiver_memory" {
  type        = string
  description = "Memory of each receiver instance."
  default     = "512Mi"

  validation {
    condition     = contains(["256Mi", "512Mi", "1Gi", "2Gi"], var.receiver_memory)
    error_message = "receiver_memory must be one of 256Mi, 512Mi, 1Gi, 2Gi."
  }
}

variable "receiver_cpu" {
  type        = string
  description = "vCPUs of each receiver instance; at least 1, which gen2 requires to serve more than one request at a time."
  default     = "1"

  validation {
    condition     = contains(["1", "2", "4"], var.receiver_cpu)
    error_message = "receiver_cpu must be 1, 2 or 4 (concurrency above 1 needs at least one whole vCPU)."
  }

  # Cloud Run (which serves gen2 functions) needs at least 2 GiB of memory for 4 vCPUs.
  validation {
    condition     = var.receiver_cpu != "4" || var.receiver_memory == "2Gi"
    error_message = "receiver_cpu = \"4\" needs receiver_memory = \"2Gi\" (Cloud Run's minimum for 4 vCPUs)."
  }
}

variable "receiver_concurrency" {
  type        = number
  description = "Requests one receiver instance serves at once. Each request spends its time waiting on one Firestore write, so a few dozen fit one vCPU."
  default     = 16

  validation {
    condition     = var.receiver_concurrency >= 1 && var.receiver_concurrency <= 1000 && floor(var.receiver_concurrency) == var.receiver_concurrency
    error_message = "receiver_concurrency must be a whole number from 1 to 1000."
  }
}

variable "receiver_min_instances" {
  type        = number
  description = "Receiver instances kept warm. 0 costs nothing when idle; 1 removes the cold start DPS otherwise waits for on the first event after a quiet spell."
  default     = 0

  validation {
    condition     = var.receiver_min_instances >= 0 && var.receiver_min_instances <= 10 && floor(var.receiver_min_instances) == var.receiver_min_instances
    error_message = "receiver_min_instances must be a whole number from 0 to 10."
  }
}

variable "receiver_max_instances" {
  type        = number
  description = "Upper bound on receiver instances: caps cost and the load a flood of requests can put on Firestore."
  default     = 10

  validation {
    condition     = var.receiver_max_instances >= 1 && var.receiver_max_instances <= 1000 && floor(var.receiver_max_instances) == var.receiver_max_instances
    error_message = "receiver_max_instances must be a whole number from 1 to 1000."
  }
}

variable "receiver_timeout_seconds" {
  type        = number
  description = "Request timeout of the receiver. DPS gives up on a webhook call after one minute, so longer buys nothing."
  default     = 60

  validation {
    condition     = var.receiver_timeout_seconds >= 10 && var.receiver_timeout_seconds <= 300
    error_message = "receiver_timeout_seconds must be between 10 and 300."
  }
}

variable "max_body_bytes" {
  type        = number
  description = "Largest webhook body the receiver reads; larger ones are answered 413 (GRIDHOOK_MAX_BODY_BYTES)."
  default     = 65536

  validation {
    condition     = var.max_body_bytes >= 256 && var.max_body_bytes <= 10485760 && floor(var.max_body_bytes) == var.max_body_bytes
    error_message = "max_body_bytes must be a whole number from 256 to 10485760."
  }
}

variable "webhook_tokens_reload_seconds" {
  type        = number
  description = "How often the functions re-read the mounted webhook token secret, so that a rotation takes effect without a redeploy (GRIDHOOK_WEBHOOK_TOKENS_RELOAD_SECONDS; 0 reads it once at cold start)."
  default     = 30

  validation {
    condition     = var.webhook_tokens_reload_seconds >= 0 && var.webhook_tokens_reload_seconds <= 3600
    error_message = "webhook_tokens_reload_seconds must be a number of seconds from 0 to 3600."
  }
}

variable "log_level" {
  type        = string
  description = "Log level of all five functions (GRIDHOOK_LOG_LEVEL)."
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

# ---------------------------------------------------------------------------------------
# Sites: the DPS installations this deployment serves
# ---------------------------------------------------------------------------------------

variable "sites" {
  type = map(object({
    timezone         = string
    nvgrid_host      = string
    nvgrid_tls       = optional(string, "verify")
    nvgrid_custom_ca = optional(bool, false)
  }))
  description = "The DPS sites this deployment serves, by site name (GRIDHOOK_SITES): each site's IANA time zone, its NvGrid endpoint (host[:port]), TLS mode (verify, skip-verify, plaintext) and whether DPS's certificate is signed by a private CA (then a CA secret is created and mounted). Each site gets its own secrets, mounted under /secrets/<site>/, its own reconcile and sample Scheduler jobs (?site=<name>) and receives at <webhook_url>/<site>. Empty (default): one site named \"default\", described by nvgrid_host, nvgrid_port, nvgrid_tls, nvgrid_custom_ca and timezone."
  default     = {}

  validation {
    condition     = alltrue([for name in keys(var.sites) : can(regex("^[a-z0-9][a-z0-9-]{0,62}$", name))])
    error_message = "Each site name must be 1-63 lowercase letters, digits or hyphens, starting with a letter or digit (it is a URL path segment and part of resource names)."
  }

  validation {
    condition     = alltrue([for site in values(var.sites) : can(regex("^(UTC|(Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific|Etc)/[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)?)$", site.timezone))])
    error_message = "Each site's timezone must be an IANA time zone such as America/Phoenix, Europe/Paris or UTC."
  }

  validation {
    condition     = alltrue([for site in values(var.sites) : length(trimspace(site.nvgrid_host)) > 0 && !can(regex("[/\\s]", site.nvgrid_host))])
    error_message = "Each site's nvgrid_host must be a host name or address, optionally with :port, without a scheme or path."
  }

  validation {
    condition     = alltrue([for site in values(var.sites) : contains(["verify", "skip-verify", "plaintext"], site.nvgrid_tls)])
    error_message = "Each site's nvgrid_tls must be verify, skip-verify or plaintext."
  }
}

variable "timezone" {
  type        = string
  description = "One-site deployments (var.sites empty): the IANA time zone of the default site, in which its days are counted (GRIDHOOK_TIMEZONE). With var.sites, each site names its own."
  default     = "UTC"

  validation {
    condition     = can(regex("^(UTC|(Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific|Etc)/[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)?)$", var.timezone))
    error_message = "timezone must be an IANA time zone such as America/Phoenix, Europe/Paris or UTC."
  }
}

# ---------------------------------------------------------------------------------------
# Subscription jobs (reconcile_subscriptions, teardown_subscriptions) and DPS NvGrid
# ---------------------------------------------------------------------------------------

variable "nvgrid_host" {
  type        = string
  description = "One-site deployments (var.sites empty): host name or address of the DPS NvGrid gRPC API as seen from Google Cloud; may carry \":port\" (NVGRID_HOST). With var.sites, each site names its own and this stays null."
  default     = null

  validation {
    # try(): a null host is judged by the validations below, not here.
    condition     = var.nvgrid_host == null || try(length(trimspace(var.nvgrid_host)) > 0 && !can(regex("[/\\s]", var.nvgrid_host)), false)
    error_message = "nvgrid_host must be a host name or address, optionally with :port, without a scheme or path."
  }

  validation {
    condition     = var.nvgrid_host != null || length(var.sites) > 0
    error_message = "Set nvgrid_host (one DPS site) or var.sites (one entry per site)."
  }

  validation {
    condition     = var.nvgrid_host == null || length(var.sites) == 0
    error_message = "With var.sites, each site names its own nvgrid_host: leave the one-site nvgrid_host unset."
  }
}

variable "nvgrid_port" {
  type        = number
  description = "Port of the NvGrid API when nvgrid_host carries none (NVGRID_PORT). Null leaves the code's default (443)."
  default     = null

  validation {
    condition     = var.nvgrid_port == null || (var.nvgrid_port >= 1 && var.nvgrid_port <= 65535)
    error_message = "nvgrid_port must be between 1 and 65535."
  }
}

variable "nvgrid_tls" {
  type        = string
  description = "How the jobs secure the gRPC connection to DPS (NVGRID_TLS): verify (production), skip-verify or plaintext (test set-ups only)."
  default     = "verify"

  validation {
    condition     = contains(["verify", "skip-verify", "plaintext"], var.nvgrid_tls)
    error_message = "nvgrid_tls must be verify, skip-verify or plaintext."
  }
}

variable "nvgrid_custom_ca" {
  type        = bool
  description = "DPS's certificate is signed by a private CA: create the CA certificate secret and mount it as NVGRID_CA_CERT. False trusts the system roots."
  default     = true
}

variable "webhook_events" {
  type        = list(string)
  description = "Power events the subscription asks DPS to deliver (GRIDHOOK_EVENTS)."
  default     = ["start_ramp_up", "end_ramp_up", "start_ramp_down", "end_ramp_down"]

  validation {
    condition = length(var.webhook_events) > 0 && alltrue([
      for e in var.webhook_events : contains(["start_ramp_up", "end_ramp_up", "start_ramp_down", "end_ramp_down"], e)
    ])
    error_message = "webhook_events must list one or more of start_ramp_up, end_ramp_up, start_ramp_down, end_ramp_down."
  }
}

variable "webhook_path" {
  type        = string
  description = "Path appended to the receiver's URL in the URL registered with DPS (the receiver answers on any path)."
  default     = "/nvgrid/webhook"

  validation {
    condition     = can(regex("^/[A-Za-z0-9/_.-]*$", var.webhook_path))
    error_message = "webhook_path must start with / and hold only letters, digits, '/', '_', '.' and '-' (no query string: the token is added when registering)."
  }
}

variable "jobs_memory" {
  type        = string
  description = "Memory of the reconcile, teardown and sample_load functions."
  default     = "512Mi"

  validation {
    condition     = contains(["256Mi", "512Mi", "1Gi", "2Gi"], var.jobs_memory)
    error_message = "jobs_memory must be one of 256Mi, 512Mi, 1Gi, 2Gi."
  }
}

variable "reconcile_deadline_seconds" {
  type        = number
  description = "Time budget of one reconcile or teardown run, DPS calls included (GRIDHOOK_RECONCILE_DEADLINE_SECONDS)."
  default     = 120

  validation {
    condition     = var.reconcile_deadline_seconds >= 1 && var.reconcile_deadline_seconds <= 1500
    error_message = "reconcile_deadline_seconds must be between 1 and 1500 (the jobs' timeout adds a margin and Cloud Scheduler waits at most 30 minutes)."
  }
}

variable "drift_grace_seconds" {
  type        = number
  description = "How long after a change on DPS's side reconcile waits for the matching webhook before recording drift (GRIDHOOK_DRIFT_GRACE_SECONDS)."
  default     = 120

  validation {
    condition     = var.drift_grace_seconds >= 0 && var.drift_grace_seconds <= 86400
    error_message = "drift_grace_seconds must be between 0 and 86400."
  }
}

variable "ramp_deadline_seconds" {
  type        = number
  description = "How long a ramp may stay open (a start_ramp_* without its end_ramp_*) before reconcile logs it once as a stalled ramp and power_report shows its episode as stalled (GRIDHOOK_RAMP_DEADLINE_SECONDS)."
  default     = 1800

  validation {
    condition     = var.ramp_deadline_seconds >= 1 && var.ramp_deadline_seconds <= 604800
    error_message = "ramp_deadline_seconds must be between 1 and 604800 (7 days)."
  }
}

variable "reconcile_concurrency" {
  type        = number
  description = "Sites one all-sites reconcile or teardown run (no ?site=) works on at once (GRIDHOOK_RECONCILE_CONCURRENCY)."
  default     = 8

  validation {
    condition     = var.reconcile_concurrency >= 1 && var.reconcile_concurrency <= 64 && floor(var.reconcile_concurrency) == var.reconcile_concurrency
    error_message = "reconcile_concurrency must be a whole number from 1 to 64."
  }
}

variable "sample_retention_days" {
  type        = number
  description = "Days a load sample (DPS's calculated load and target, kept by each sample_load run) is kept before it expires (GRIDHOOK_SAMPLE_RETENTION_DAYS)."
  default     = 400

  validation {
    condition     = var.sample_retention_days >= 1 && var.sample_retention_days <= 3650 && floor(var.sample_retention_days) == var.sample_retention_days
    error_message = "sample_retention_days must be a whole number of days from 1 to 3650."
  }
}

variable "raw_sample_retention_days" {
  type        = number
  description = "Days raw load samples are kept once hourly rollups hold them (GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS); the rollups keep sample_retention_days."
  default     = 35

  validation {
    condition     = var.raw_sample_retention_days >= 1 && var.raw_sample_retention_days <= 3650 && floor(var.raw_sample_retention_days) == var.raw_sample_retention_days
    error_message = "raw_sample_retention_days must be a whole number of days from 1 to 3650."
  }

  validation {
    condition     = var.raw_sample_retention_days <= var.sample_retention_days
    error_message = "raw_sample_retention_days must not be longer than sample_retention_days (raw samples are the short-lived copy)."
  }
}

variable "sample_schedule" {
  type        = string
  description = "Cron schedule of each site's sample_load job: how often DPS's load is sampled (an interval's load is the mean of its samples)."
  default     = "* * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.sample_schedule))) == 5
    error_message = "sample_schedule must be a five-field cron expression, e.g. \"* * * * *\" (every minute)."
  }
}

variable "sample_failure_threshold" {
  type        = number
  description = "The sampling alert fires when one site's sample_load fails more often than this within alert_window_seconds (a missed minute now and then only leaves a gap that interval coverage tolerates)."
  default     = 3

  validation {
    condition     = var.sample_failure_threshold >= 0 && floor(var.sample_failure_threshold) == var.sample_failure_threshold
    error_message = "sample_failure_threshold must be a whole number of at least 0."
  }
}

variable "interval_min_coverage" {
  type        = number
  description = "Share of an interval its samples must cover for its load to count; less is a missing interval, never filled in (GRIDHOOK_INTERVAL_MIN_COVERAGE)."
  default     = 0.8

  validation {
    condition     = var.interval_min_coverage >= 0.01 && var.interval_min_coverage <= 1
    error_message = "interval_min_coverage must be between 0.01 and 1."
  }
}

variable "baseline_method" {
  type        = string
  description = "Default customer-baseline method of reports and settlement (GRIDHOOK_BASELINE_METHOD)."
  default     = "caiso-10-in-10"

  validation {
    condition     = contains(["caiso-10-in-10", "pjm-high-4-of-5", "pjm-same-day", "meter-before"], var.baseline_method)
    error_message = "baseline_method must be caiso-10-in-10, pjm-high-4-of-5, pjm-same-day or meter-before."
  }
}

variable "jobs_ingress_settings" {
  type        = string
  description = "Network ingress of the private job functions. IAM (roles/run.invoker) is what keeps them private; ALLOW_INTERNAL_ONLY also closes the network path, but then only callers inside the project's VPC (and Google services that count as internal) reach them."
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.jobs_ingress_settings)
    error_message = "jobs_ingress_settings must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

# ---------------------------------------------------------------------------------------
# power_report (private, read-only)
# ---------------------------------------------------------------------------------------

variable "report_viewers" {
  type        = list(string)
  description = "IAM members who may open power_report (roles/run.invoker on its Cloud Run service only), e.g. [\"group:grid-ops@example.com\", \"user:ana@example.com\"]. Empty: nobody but project owners."
  default     = []

  validation {
    condition = alltrue([
      for m in var.report_viewers : can(regex("^(user|group|serviceAccount):[^@\\s]+@[^@\\s]+$|^domain:[a-z0-9.-]+$|^principal(Set)?://\\S+$", m))
    ])
    error_message = "Each report viewer must be an IAM member: user:EMAIL, group:EMAIL, serviceAccount:EMAIL, domain:DOMAIN, principal://… or principalSet://…."
  }

  validation {
    condition     = !anytrue([for m in var.report_viewers : contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "power_report is private: allUsers and allAuthenticatedUsers may not be report viewers."
  }
}

variable "report_memory" {
  type        = string
  description = "Memory of each power_report instance (charts are drawn in memory)."
  default     = "1Gi"

  validation {
    condition     = contains(["512Mi", "1Gi", "2Gi"], var.report_memory)
    error_message = "report_memory must be one of 512Mi, 1Gi, 2Gi."
  }
}

variable "report_max_instances" {
  type        = number
  description = "Upper bound on power_report instances: a few people look at it, and each page reads Firestore."
  default     = 2

  validation {
    condition     = var.report_max_instances >= 1 && var.report_max_instances <= 20 && floor(var.report_max_instances) == var.report_max_instances
    error_message = "report_max_instances must be a whole number from 1 to 20."
  }
}

variable "report_ingress_settings" {
  type        = string
  description = "Network ingress of power_report. IAM (report_viewers) is what keeps it private; ALLOW_INTERNAL_ONLY also closes the network path, but then `gcloud run services proxy` from outside the VPC cannot reach it."
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.report_ingress_settings)
    error_message = "report_ingress_settings must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

# ---------------------------------------------------------------------------------------
# Cloud Scheduler
# ---------------------------------------------------------------------------------------

variable "reconcile_schedule" {
  type        = string
  description = "Cron schedule of reconcile_subscriptions (re-registers a lost subscription and records drift)."
  default     = "*/15 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.reconcile_schedule))) == 5
    error_message = "reconcile_schedule must be a five-field cron expression, e.g. \"*/15 * * * *\"."
  }
}

variable "scheduler_time_zone" {
  type        = string
  description = "Time zone (tz database name) of reconcile_schedule."
  default     = "Etc/UTC"

  validation {
    condition     = can(regex("^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$", var.scheduler_time_zone))
    error_message = "scheduler_time_zone must be a tz database name such as Etc/UTC or Europe/Paris."
  }
}

variable "scheduler_retry_count" {
  type        = number
  description = "How often Cloud Scheduler retries a failed reconcile run before waiting for the next one."
  default     = 3

  validation {
    condition     = var.scheduler_retry_count >= 0 && var.scheduler_retry_count <= 5 && floor(var.scheduler_retry_count) == var.scheduler_retry_count
    error_message = "scheduler_retry_count must be a whole number from 0 to 5."
  }
}

variable "scheduler_min_backoff" {
  type        = string
  description = "Shortest wait before retrying a failed scheduled run (a duration such as \"30s\")."
  default     = "30s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.scheduler_min_backoff))
    error_message = "scheduler_min_backoff must be a duration in seconds such as \"30s\"."
  }
}

variable "scheduler_max_backoff" {
  type        = string
  description = "Longest wait between retries of a failed scheduled run (a duration such as \"300s\")."
  default     = "300s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.scheduler_max_backoff))
    error_message = "scheduler_max_backoff must be a duration in seconds such as \"300s\"."
  }

  validation {
    # try(): a malformed duration is reported by the validation above, not here.
    condition     = try(tonumber(trimsuffix(var.scheduler_max_backoff, "s")) >= tonumber(trimsuffix(var.scheduler_min_backoff, "s")), true)
    error_message = "scheduler_max_backoff must not be shorter than scheduler_min_backoff."
  }
}

# ---------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------

variable "manage_secret_values" {
  type        = bool
  description = "Let Terraform add the first version of each secret from the ephemeral variables below (write-only: never in the plan or the state). False (default): add versions with `gcloud secrets versions add` (see README)."
  default     = false
}

variable "secret_values_version" {
  type        = number
  description = "Bump to make Terraform write the ephemeral secret values again (only with manage_secret_values)."
  default     = 1

  validation {
    condition     = var.secret_values_version >= 1 && floor(var.secret_values_version) == var.secret_values_version
    error_message = "secret_values_version must be a whole number of at least 1."
  }
}

variable "webhook_tokens" {
  type        = string
  description = "Webhook tokens, comma- or newline-separated, the current one first (only with manage_secret_values; pass as TF_VAR_webhook_tokens)."
  default     = null
  sensitive   = true
  ephemeral   = true

  validation {
    condition     = var.webhook_tokens == null || alltrue([for t in split(",", replace(coalesce(var.webhook_tokens, ""), "\n", ",")) : length(trimspace(t)) == 0 || length(trimspace(t)) >= 16])
    error_message = "Each webhook token must be at least 16 characters (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')."
  }
}

variable "nvgrid_credentials" {
  type        = string
  description = "DPS credentials as \"username:password\" or {\"username\": ..., \"password\": ...} (only with manage_secret_values)."
  default     = null
  sensitive   = true
  ephemeral   = true

  validation {
    condition     = var.nvgrid_credentials == null || can(regex("^(\\{|[^:]+:)", coalesce(var.nvgrid_credentials, "")))
    error_message = "nvgrid_credentials must be \"username:password\" or a JSON object with username and password."
  }
}

variable "site_secret_values" {
  type = map(object({
    webhook_tokens     = string
    nvgrid_credentials = string
    nvgrid_ca_cert_pem = optional(string)
  }))
  description = "With var.sites and manage_secret_values: each site's secret values, by site name (pass as TF_VAR_site_secret_values, JSON). Write-only: never in the plan or the state."
  default     = null
  sensitive   = true
  ephemeral   = true

  validation {
    condition     = alltrue([for name in try(keys(var.site_secret_values), []) : contains(keys(var.sites), name)])
    error_message = "site_secret_values may only name sites of var.sites."
  }

  validation {
    condition     = !var.manage_secret_values || length(var.sites) == 0 || try(alltrue([for name in keys(var.sites) : contains(keys(var.site_secret_values), name)]), false)
    error_message = "With var.sites and manage_secret_values, site_secret_values must hold the values of every site."
  }

  validation {
    condition     = alltrue([for name, site in var.sites : !site.nvgrid_custom_ca || try(var.site_secret_values[name].nvgrid_ca_cert_pem != null, true)])
    error_message = "A site with nvgrid_custom_ca needs its nvgrid_ca_cert_pem in site_secret_values."
  }
}

variable "nvgrid_ca_cert_pem" {
  type        = string
  description = "PEM of the CA that signed DPS's certificate (only with manage_secret_values and nvgrid_custom_ca)."
  default     = null
  ephemeral   = true

  validation {
    condition     = var.nvgrid_ca_cert_pem == null || strcontains(coalesce(var.nvgrid_ca_cert_pem, ""), "-----BEGIN CERTIFICATE-----")
    error_message = "nvgrid_ca_cert_pem must be a PEM certificate (-----BEGIN CERTIFICATE-----)."
  }
}

# ---------------------------------------------------------------------------------------
# Monitoring
# ---------------------------------------------------------------------------------------

variable "notification_channels" {
  type        = list(string)
  description = "Monitoring notification channels (projects/PROJECT/notificationChannels/ID) told about reconcile and sampling failures, drift, targets not met and stalled ramps."
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "Each notification channel must be a full name: projects/PROJECT/notificationChannels/ID."
  }
}

variable "alert_window_seconds" {
  type        = number
  description = "Window over which the alerted log lines (reconcile failures, drift, targets not met, stalled ramps) are counted."
  default     = 900

  validation {
    condition     = var.alert_window_seconds >= 60 && var.alert_window_seconds <= 86400
    error_message = "alert_window_seconds must be between 60 and 86400."
  }
}
