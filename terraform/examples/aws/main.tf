# A complete Amber deployment in an existing VPC: the snapshot bucket,
# roles, a scheduled builder and an autoscaled server group behind an NLB.
# Secrets are created empty: put their values in with the AWS CLI (see
# README.md) before the first build runs.

resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_secretsmanager_secret" "daemon_url" {
  name        = "${var.name}/daemon-url"
  description = "DAEMON_URL of the Bitcoin daemon: http://user:pass@host:port/"
}

# Every snapshot is signed; servers trust only var.trusted_keys.
resource "aws_secretsmanager_secret" "signing_key" {
  name        = "${var.name}/snapshot-signing-key"
  description = "hex ed25519 seed from amber snapshot keygen"
}

module "bucket" {
  source      = "../../modules/snapshot_bucket"
  bucket_name = var.bucket_name
  prefix      = var.snapshot_prefix
}

module "iam" {
  source     = "../../modules/iam"
  name       = var.name
  bucket_arn = module.bucket.bucket_arn
  prefix     = module.bucket.prefix
}

module "builder" {
  source                 = "../../modules/builder"
  name                   = var.name
  cluster_arn            = aws_ecs_cluster.this.arn
  vpc_id                 = var.vpc_id
  subnet_ids             = var.private_subnet_ids
  image                  = var.image
  task_role_arn          = module.iam.builder_role_arn
  network                = var.network
  snapshot_url           = module.bucket.snapshot_url
  daemon_url_secret_arn  = aws_secretsmanager_secret.daemon_url.arn
  signing_key_secret_arn = aws_secretsmanager_secret.signing_key.arn
}

module "servers" {
  source                = "../../modules/server_group"
  name                  = var.name
  cluster_name          = aws_ecs_cluster.this.name
  vpc_id                = var.vpc_id
  vpc_cidr              = var.vpc_cidr
  task_subnet_ids       = var.private_subnet_ids
  lb_subnet_ids         = var.public_subnet_ids
  image                 = var.image
  task_role_arn         = module.iam.server_role_arn
  network               = var.network
  snapshot_url          = module.bucket.snapshot_url
  trusted_keys          = var.trusted_keys
  daemon_url_secret_arn = aws_secretsmanager_secret.daemon_url.arn
  public_hostname       = var.public_hostname
  certificate_arn       = var.certificate_arn
  min_nodes             = var.min_nodes
  max_nodes             = var.max_nodes
}
