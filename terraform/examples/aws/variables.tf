variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name prefix for every resource."
  type        = string
  default     = "amber"
}

variable "network" {
  description = "Bitcoin network the deployment indexes (NET)."
  type        = string
  default     = "mainnet"
}

variable "bucket_name" {
  description = "Globally unique name for the snapshot bucket."
  type        = string
}

variable "snapshot_prefix" {
  description = "Snapshot line inside the bucket; bump the suffix (v2, v3) when a release changes the index schema."
  type        = string
  default     = "mainnet/v1"
}

variable "vpc_id" {
  description = "Existing VPC to deploy into."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR block of that VPC."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (with NAT or VPC endpoints for S3, ECR and Secrets Manager) for the builder and server tasks."
  type        = list(string)
}

variable "public_subnet_ids" {
  description = "Public subnets for the network load balancer."
  type        = list(string)
}

variable "image" {
  description = "amber container image built from infra/Dockerfile and pushed to a registry the tasks can pull from."
  type        = string
}

variable "public_hostname" {
  description = "DNS name clients connect to; create a record pointing at the lb_dns_name output."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for public_hostname."
  type        = string
}

variable "trusted_keys" {
  description = "Public keys of the builder's signing key(s), from amber snapshot keygen: the servers' SNAPSHOT_TRUSTED_KEYS. Required: unsigned snapshots are refused."
  type        = list(string)
  validation {
    condition     = length(var.trusted_keys) > 0
    error_message = "trusted_keys needs the public key amber snapshot keygen printed: servers accept only signed snapshots."
  }
}


variable "min_nodes" {
  description = "Fewest server nodes."
  type        = number
  default     = 2
}

variable "max_nodes" {
  description = "Most server nodes."
  type        = number
  default     = 6
}
