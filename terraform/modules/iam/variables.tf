variable "name" {
  description = "Name prefix for the roles, policies and instance profiles, e.g. amber-mainnet."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,40}$", var.name))
    error_message = "name must be 1-40 characters valid in IAM role names."
  }
}

variable "bucket_arn" {
  description = "ARN of the snapshot bucket."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", var.bucket_arn))
    error_message = "bucket_arn must be an S3 bucket ARN (arn:aws:s3:::name)."
  }
}

variable "prefix" {
  description = "Key prefix of the snapshot line; both roles are limited to it."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.prefix))
    error_message = "prefix must be slash-separated path segments without leading or trailing slashes."
  }
}

variable "kms_key_arn" {
  description = "KMS key the bucket is encrypted with, if any: the builder may encrypt and both roles decrypt with it."
  type        = string
  default     = null
}

variable "create_instance_profiles" {
  description = "Also create EC2 instance profiles for the roles (for nodes run on EC2 instead of ECS)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
