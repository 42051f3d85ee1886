# Secret Manager secrets, created empty: their values never pass through Terraform
# unless manage_secret_values is on, and even then only as write-only arguments that
# are kept neither in the plan nor in the state. Add versions out of band:
#
#   printf '%s' "$TOKEN" | gcloud secrets versions add gridhook-webhook-tokens --data-file=-
#
# The functions mount each secret as a file at version "latest", and read it at cold
# start: a new version reaches new instances without a redeploy (see README, rotation).

locals {
  secrets = merge(
    {
      webhook_tokens = {
        id          = "${var.name_prefix}-webhook-tokens"
        description = "Webhook tokens DPS must present, comma- or newline-separated, current first."
      }
      nvgrid_credentials = {
        id          = "${var.name_prefix}-nvgrid-credentials"
        description = "DPS NvGrid credentials: username:password or {\"username\": ..., \"password\": ...}."
      }
    },
    var.nvgrid_custom_ca ? {
      nvgrid_ca = {
        id          = "${var.name_prefix}-nvgrid-ca"
        description = "PEM of the CA that signed DPS NvGrid's TLS certificate."
      }
    } : {},
  )
}

resource "google_secret_manager_secret" "secrets" {
  for_each = local.secrets

  project   = var.project_id
  secret_id = each.value.id

  annotations = {
    description = each.value.description
  }

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

# Optional first versions, from ephemeral variables through write-only arguments.
resource "google_secret_manager_secret_version" "webhook_tokens" {
  count = var.manage_secret_values ? 1 : 0

  secret                 = google_secret_manager_secret.secrets["webhook_tokens"].id
  secret_data_wo         = var.webhook_tokens
  secret_data_wo_version = var.secret_values_version
}

resource "google_secret_manager_secret_version" "nvgrid_credentials" {
  count = var.manage_secret_values ? 1 : 0

  secret                 = google_secret_manager_secret.secrets["nvgrid_credentials"].id
  secret_data_wo         = var.nvgrid_credentials
  secret_data_wo_version = var.secret_values_version
}

resource "google_secret_manager_secret_version" "nvgrid_ca" {
  count = var.manage_secret_values && var.nvgrid_custom_ca ? 1 : 0

  secret                 = google_secret_manager_secret.secrets["nvgrid_ca"].id
  secret_data_wo         = var.nvgrid_ca_cert_pem
  secret_data_wo_version = var.secret_values_version
}
