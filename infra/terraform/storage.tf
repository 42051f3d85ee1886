# The functions' source: functions/ zipped as Terraform sees it, uploaded under a name
# that carries the archive's hash, so any code change makes a new object and redeploys
# every function (and the old object is deleted).

data "archive_file" "functions" {
  type        = "zip"
  source_dir  = "${path.module}/../../functions"
  output_path = "${path.module}/.terraform/tmp/gridhook-functions.zip"

  # functions/schemas is a symlink to ../schemas (the one copy of the payload schema).
  # hashicorp/archive >= 2.5 follows symlinked directories unless told otherwise, so the
  # zip holds schemas/power-event.schema.json as a plain file; tests/infra checks it.
  exclude_symlink_directories = false

  # Nothing the functions do not run: caches, packaging metadata, tests.
  excludes = [
    "**/__pycache__",
    "**/*.pyc",
    "**/*.egg-info",
    "**/.pytest_cache",
    "**/.ruff_cache",
    "**/.mypy_cache",
    "**/tests",
    "**/.DS_Store",
  ]
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only build inputs that are reproducible from git; Cloud Audit Logs record who changes them, access logs would add a second bucket for nothing.
  project  = var.project_id
  name     = "${var.project_id}-${var.name_prefix}-source"
  location = var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Build inputs only (reproducible from git): destroying the stack empties it.
  force_destroy = true

  versioning {
    enabled = true
  }

  # Replaced archives become noncurrent; keep them a while for forensics, then delete.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket_object" "functions" {
  bucket       = google_storage_bucket.source.name
  name         = "functions/gridhook-${data.archive_file.functions.output_sha256}.zip"
  source       = data.archive_file.functions.output_path
  content_type = "application/zip"
}

# The images Cloud Build makes of the functions, in a repository of our own so that the
# build service account may write here and nowhere else; old images are cleaned up.
resource "google_artifact_registry_repository" "functions" {
  #checkov:skip=CKV_GCP_84:Images are rebuilt from public code on every deploy; Google-managed encryption is enough and a CMEK key would be one more thing to keep alive.
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name_prefix}-functions"
  format        = "DOCKER"
  description   = "Container images of the gridhook Cloud Functions (written by Cloud Build)."

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.apis]
}
