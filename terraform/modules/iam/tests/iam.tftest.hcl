# Plan-mode tests with a mocked AWS provider: the policies are checked as
# the JSON this module sends.
mock_provider "aws" {}

variables {
  name       = "amber-test"
  bucket_arn = "arn:aws:s3:::amber-snapshots-test"
  prefix     = "mainnet/v1"
}

run "builder_reads_and_writes_only_its_line" {
  command = plan

  assert {
    condition = alltrue([
      for s in jsondecode(aws_iam_role_policy.builder.policy).Statement :
      s.Resource == "arn:aws:s3:::amber-snapshots-test/mainnet/v1/*" if s.Sid == "ReadWriteSnapshotLine"
    ])
    error_message = "the builder's object access must be limited to the bucket's prefix"
  }
  assert {
    condition = contains(flatten([
      for s in jsondecode(aws_iam_role_policy.builder.policy).Statement : s.Action if s.Sid == "ReadWriteSnapshotLine"
    ]), "s3:PutObject")
    error_message = "the builder must be able to publish"
  }
  assert {
    condition = alltrue([
      for s in jsondecode(aws_iam_role_policy.builder.policy).Statement :
      s.Resource == "arn:aws:s3:::amber-snapshots-test" && s.Condition.StringLike["s3:prefix"] == ["mainnet/v1", "mainnet/v1/*"]
      if s.Sid == "ListSnapshotLine"
    ])
    error_message = "listing must be limited to the prefix"
  }
  assert {
    condition     = length(jsondecode(aws_iam_role_policy.builder.policy).Statement) == 2
    error_message = "without a KMS key the builder has exactly the list and object statements"
  }
}

run "servers_only_read" {
  command = plan

  assert {
    condition     = toset(flatten([for s in jsondecode(aws_iam_role_policy.server.policy).Statement : s.Action])) == toset(["s3:ListBucket", "s3:GetObject"])
    error_message = "servers may only list and read"
  }
  assert {
    condition = alltrue([
      for s in jsondecode(aws_iam_role_policy.server.policy).Statement :
      startswith(s.Resource, "arn:aws:s3:::amber-snapshots-test")
    ])
    error_message = "servers' access must be limited to the snapshot bucket"
  }
  assert {
    condition     = aws_iam_role.server.name == "amber-test-server" && aws_iam_role.builder.name == "amber-test-builder"
    error_message = "roles are named after name"
  }
  assert {
    condition     = jsondecode(aws_iam_role.server.assume_role_policy).Statement[0].Principal.Service == ["ecs-tasks.amazonaws.com"]
    error_message = "by default only ECS tasks assume the roles"
  }
  assert {
    condition     = length(aws_iam_instance_profile.server) == 0 && output.server_instance_profile == null
    error_message = "no instance profiles unless asked for"
  }
}

run "kms_and_instance_profiles" {
  command = plan

  variables {
    kms_key_arn              = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    create_instance_profiles = true
  }

  assert {
    condition = toset(flatten([
      for s in jsondecode(aws_iam_role_policy.server.policy).Statement : s.Action if s.Sid == "DecryptWithBucketKey"
    ])) == toset(["kms:Decrypt"])
    error_message = "servers may decrypt with the bucket key, nothing more"
  }
  assert {
    condition     = length(aws_iam_instance_profile.builder) == 1 && aws_iam_instance_profile.builder[0].role == "amber-test-builder"
    error_message = "the builder's instance profile carries the builder role"
  }
  assert {
    condition     = contains(jsondecode(aws_iam_role.builder.assume_role_policy).Statement[0].Principal.Service, "ec2.amazonaws.com")
    error_message = "with instance profiles EC2 may assume the roles"
  }
}

run "rejects_a_bucket_name_for_an_arn" {
  command = plan

  variables {
    bucket_arn = "amber-snapshots-test"
  }

  expect_failures = [var.bucket_arn]
}
