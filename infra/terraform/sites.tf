# The sites this deployment serves. var.sites names them; without it, today's one-site
# variables (nvgrid_host, nvgrid_tls, nvgrid_custom_ca, timezone) describe one site named
# "default", exactly as before sites existed. Everything per site (secrets, their grants
# and mounts, Scheduler jobs, GRIDHOOK_SITES) is derived from local.sites.

locals {
  fleet = length(var.sites) > 0

  sites = local.fleet ? {
    for name, site in var.sites : name => {
      timezone         = site.timezone
      nvgrid_host      = site.nvgrid_host
      nvgrid_tls       = site.nvgrid_tls
      nvgrid_custom_ca = site.nvgrid_custom_ca
    }
    } : {
    default = {
      timezone         = var.timezone
      nvgrid_host      = var.nvgrid_host
      nvgrid_tls       = var.nvgrid_tls
      nvgrid_custom_ca = var.nvgrid_custom_ca
    }
  }

  # What per-site resource names add: nothing for the site named "default", so a one-site
  # deployment keeps its secrets and jobs when it moves to var.sites = { default = … }.
  site_suffix = { for name in keys(local.sites) : name => name == "default" ? "" : "-${name}" }

  # The non-secret part of each site, as functions/gridhook/sites.py parses GRIDHOOK_SITES:
  # {"sites": {NAME: {timezone, nvgrid_host, nvgrid_tls, [nvgrid_ca_cert],
  # nvgrid_credentials_file, webhook_tokens_file}}}. The files are the secrets' mounts.
  sites_json = jsonencode({
    sites = {
      for name, site in local.sites : name => merge(
        {
          timezone                = site.timezone
          nvgrid_host             = site.nvgrid_host
          nvgrid_tls              = site.nvgrid_tls
          nvgrid_credentials_file = local.site_secrets["${name}/nvgrid_credentials"].file
          webhook_tokens_file     = local.site_secrets["${name}/webhook_tokens"].file
        },
        site.nvgrid_custom_ca ? { nvgrid_ca_cert = local.site_secrets["${name}/nvgrid_ca"].file } : {},
      )
    }
  })

  # How every function learns its sites: GRIDHOOK_SITES for a fleet; for one site, the
  # default site's time zone (its NvGrid and token settings are the functions' own below).
  sites_env = local.fleet ? { GRIDHOOK_SITES = local.sites_json } : { GRIDHOOK_TIMEZONE = var.timezone }

  # Where each site's DPS delivers: the default site at webhook_url, any other at
  # webhook_url/<site> (reconcile adds the site's current token when it registers).
  webhook_base_url = "${google_cloudfunctions2_function.receiver.url}${var.webhook_path}"
  site_webhook_urls = {
    for name in keys(local.sites) : name => name == "default" ? local.webhook_base_url : "${local.webhook_base_url}/${name}"
  }
}
