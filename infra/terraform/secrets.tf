# Secret Manager secrets, per site, created empty: their values never pass through
# Terraform unless manage_secret_values is on, and even then only as write-only arguments
# that are kept neither in the plan nor in the state. Add versions out of band:
#
#   printf '%s' "$TOKEN" | gcloud secrets versions add gridhook-phx1-webhook-tokens --data-file=-
#
# (the default site's secrets keep the names of before sites: gridhook-webhook-tokens, …).
# The functions mount each secret as a file at version "latest", under
# /secrets/<site>/<secret>/value, and re-read it: a new version takes effect without a
# redeploy (see README, rotation).

locals {
  secret_kinds = {
    webhook_tokens = {
      id          = "webhook-tokens"
      description = "Webhook tokens DPS must present, comma- or newline-separated, current first."
    }
    nvgrid_credentials = {
      id          = "nvgrid-credentials"
      description = "DPS NvGrid credentials: username:password or {\"username\": ..., \"password\": ...}."
    }
    nvgrid_ca = {
      id          = "nvgrid-ca"
      description = "PEM of the CA that signed DPS NvGrid's TLS certificate."
    }
  }

  # Which runtime account reads which kind of secret: the one statement of it. Both the
  # grants (iam.tf) and the mounts (functions.tf) are derived from it, and tests/infra holds
  # it to least privilege: the receiver reads webhook tokens only (it authenticates DPS);
  # the subscription jobs read the NvGrid secrets and the tokens (they register URLs that
  # carry them); sample_load reads the NvGrid secrets only; power_report reads none.
  secret_readers = {
    webhook_tokens     = ["receiver", "jobs"]
    nvgrid_credentials = ["jobs", "sampler"]
    nvgrid_ca          = ["jobs", "sampler"]
  }

  # One secret per site and kind, keyed "<site>/<kind>"; the CA only for a site that has one.
  site_secrets = merge([
    for name, site in local.sites : {
      for kind, spec in local.secret_kinds : "${name}/${kind}" => {
        site        = name
        kind        = kind
        secret_id   = "${var.name_prefix}${local.site_suffix[name]}-${spec.id}"
        description = "${spec.description} Site ${name}."
        mount_dir   = "${local.secret_mount_root}/${name}/${spec.id}"
        file        = "${local.secret_mount_root}/${name}/${spec.id}/${local.secret_file}"
      } if kind != "nvgrid_ca" || site.nvgrid_custom_ca
    }
  ]...)
}

resource "google_secret_manager_secret" "secrets" {
  for_each = local.site_secrets

  project   = var.project_id
  secret_id = each.value.secret_id

  annotations = {
    description = each.value.description
    site        = each.value.site
  }

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

# Optional first versions, from ephemeral variables through write-only arguments: the
# one-site variables (webhook_tokens, nvgrid_credentials, nvgrid_ca_cert_pem) for the
# default site of a one-site deployment ...
resource "google_secret_manager_secret_version" "webhook_tokens" {
  count = var.manage_secret_values && !local.fleet ? 1 : 0

  secret                 = google_secret_manager_secret.secrets["default/webhook_tokens"].id
  secret_data_wo         = var.webhook_tokens
  secret_data_wo_version = var.secret_values_version
}

resource "google_secret_manager_secret_version" "nvgrid_credentials" {
  count = var.manage_secret_values && !local.fleet ? 1 : 0

  secret                 = google_secret_manager_secret.secrets["default/nvgrid_credentials"].id
  secret_data_wo         = var.nvgrid_credentials
  secret_data_wo_version = var.secret_values_version
}

resource "google_secret_manager_secret_version" "nvgrid_ca" {
  count = var.manage_secret_values && !local.fleet && var.nvgrid_custom_ca ? 1 : 0

  secret                 = google_secret_manager_secret.secrets["default/nvgrid_ca"].id
  secret_data_wo         = var.nvgrid_ca_cert_pem
  secret_data_wo_version = var.secret_values_version
}

# ... and var.site_secret_values for each site of var.sites.
locals {
  site_value_keys = { webhook_tokens = "webhook_tokens", nvgrid_credentials = "nvgrid_credentials", nvgrid_ca = "nvgrid_ca_cert_pem" }
}

resource "google_secret_manager_secret_version" "site_values" {
  for_each = var.manage_secret_values && local.fleet ? local.site_secrets : {}

  secret                 = google_secret_manager_secret.secrets[each.key].id
  secret_data_wo         = var.site_secret_values[each.value.site][local.site_value_keys[each.value.kind]]
  secret_data_wo_version = var.secret_values_version
}
