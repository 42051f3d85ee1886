# Provider pins. The google constraint must admit the provider release whose schema
# tests/infra checks the stack against (tools/provider-schema: @cdktf/provider-google
# 16.12.1 = hashicorp/google 6.50.0); tests/infra/test_provider_schema.py keeps them in step.
terraform {
  # 1.11: ephemeral variables and write-only arguments (secret_data_wo), so secret values
  # handed to Terraform never reach the plan or the state.
  required_version = ">= 1.11"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
  }
}
