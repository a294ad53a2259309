# The modules wired together, planned against a mocked AWS provider.
# ARNs the mock makes up must still pass the modules' validation.
mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { region = "eu-west-1" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::amber-snapshots-example" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:amber-example" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/amber-example" }
  }
  mock_resource "aws_ecs_cluster" {
    defaults = { arn = "arn:aws:ecs:eu-west-1:123456789012:cluster/amber" }
  }
}

variables {
  bucket_name        = "amber-snapshots-example"
  vpc_id             = "vpc-0123456789abcdef0"
  vpc_cidr           = "10.0.0.0/16"
  private_subnet_ids = ["subnet-aaaa", "subnet-bbbb"]
  public_subnet_ids  = ["subnet-cccc", "subnet-dddd"]
  image              = "example.invalid/amber:v1"
  public_hostname    = "electrum.example.org"
  certificate_arn    = "arn:aws:acm:eu-west-1:123456789012:certificate/abcd"
  trusted_keys       = ["3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"]
}

# Secret ARNs are only known after apply: apply against the mock.
run "wired_together" {
  command = apply

  assert {
    condition     = output.snapshot_url == "s3://amber-snapshots-example/mainnet/v1?region=eu-west-1"
    error_message = "builder and servers share one snapshot URL built from the bucket"
  }
  assert {
    condition     = output.endpoints.tcp == "electrum.example.org:50001:t"
    error_message = "endpoints come from the server group"
  }
  assert {
    condition     = module.servers.environment.SNAPSHOT_URL == output.snapshot_url && module.builder.environment.SNAPSHOT_URL == output.snapshot_url
    error_message = "servers bootstrap from the line the builder publishes to"
  }
  assert {
    condition     = module.servers.environment.SNAPSHOT_TRUSTED_KEYS == var.trusted_keys[0]
    error_message = "servers only accept snapshots signed with the trusted keys"
  }
  assert {
    condition     = module.builder.environment.SNAPSHOT_SIGNING_KEY_FILE == "/keys/signing.key"
    error_message = "the builder signs every snapshot"
  }
}

run "unsigned_refused" {
  command = plan

  variables {
    trusted_keys = []
  }

  expect_failures = [var.trusted_keys]
}
