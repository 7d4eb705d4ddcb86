# The demo root module tfenv deploys in README.md's quick start. It needs no provider
# download and works with every Terraform from 1.0 on: variables, locals and outputs.

terraform {
  required_version = ">= 1.0"

  # Each environment's backend config (environments/<env>.backend.conf) says where.
  backend "local" {}
}

variable "environment" {
  type        = string
  description = "Environment name, set by environments/<env>.tfvars."
}

variable "instance_count" {
  type    = number
  default = 1
}

variable "feature_flags" {
  type    = map(bool)
  default = {}
}

variable "api_token" {
  type        = string
  description = "A secret: tfenv keeps it out of outputs.json and the terminal."
  default     = "demo-token-not-a-real-secret"
  sensitive   = true
}

locals {
  name_prefix    = "quickstart-${var.environment}"
  enabled_flags  = sort([for name, on in var.feature_flags : name if on])
  instance_names = [for i in range(var.instance_count) : "${local.name_prefix}-${i}"]
}

output "environment" {
  value = var.environment
}

output "instance_names" {
  value = local.instance_names
}

output "enabled_flags" {
  value = local.enabled_flags
}

output "api_token" {
  value     = var.api_token
  sensitive = true
}
