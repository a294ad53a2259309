# Plan-mode tests with a mocked AWS provider: they check what this module
# asks AWS for, not AWS itself.
mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { region = "eu-west-1" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

variables {
  bucket_name = "amber-snapshots-test"
}

run "private_versioned_encrypted_bucket" {
  command = plan

  assert {
    condition     = aws_s3_bucket.this.bucket == "amber-snapshots-test" && !aws_s3_bucket.this.force_destroy
    error_message = "the bucket is named after bucket_name and not force-destroyed by default"
  }
  assert {
    condition = alltrue([
      aws_s3_bucket_public_access_block.this.block_public_acls,
      aws_s3_bucket_public_access_block.this.block_public_policy,
      aws_s3_bucket_public_access_block.this.ignore_public_acls,
      aws_s3_bucket_public_access_block.this.restrict_public_buckets,
    ])
    error_message = "all public access must be blocked"
  }
  assert {
    condition     = aws_s3_bucket_ownership_controls.this.rule[0].object_ownership == "BucketOwnerEnforced"
    error_message = "ACLs must be disabled"
  }
  assert {
    condition     = aws_s3_bucket_versioning.this.versioning_configuration[0].status == "Enabled"
    error_message = "versioning must be on so deleted snapshots can be recovered"
  }
  assert {
    condition     = one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "AES256"
    error_message = "without a KMS key the bucket uses SSE-S3"
  }
  assert {
    condition     = output.snapshot_url == "s3://amber-snapshots-test/mainnet/v1?region=eu-west-1"
    error_message = "snapshot_url must name the bucket, prefix and region"
  }
}

run "lifecycle_expires_unreferenced_objects" {
  command = plan

  variables {
    noncurrent_version_days = 30
  }

  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.this.rule : r if r.id == "expire-unreferenced"]).status == "Enabled" && one([for r in aws_s3_bucket_lifecycle_configuration.this.rule : r if r.id == "expire-unreferenced"]).noncurrent_version_expiration[0].noncurrent_days == 30
    error_message = "deleted (noncurrent) snapshot objects must expire after noncurrent_version_days"
  }
  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.this.rule : r if r.id == "expire-unreferenced"]).expiration[0].expired_object_delete_marker
    error_message = "delete markers left after the versions expired must be removed"
  }
  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.this.rule : r if r.id == "abort-incomplete-uploads"]).status == "Enabled" && one([for r in aws_s3_bucket_lifecycle_configuration.this.rule : r if r.id == "abort-incomplete-uploads"]).abort_incomplete_multipart_upload[0].days_after_initiation == 2
    error_message = "multipart uploads of a crashed publish must be aborted"
  }
}

run "kms_encryption" {
  command = plan

  variables {
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }

  assert {
    condition     = one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "aws:kms"
    error_message = "a KMS key switches the bucket to SSE-KMS"
  }
  assert {
    condition     = one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default[0].kms_master_key_id == var.kms_key_arn
    error_message = "the given KMS key is used"
  }
}

run "rejects_invalid_names" {
  command = plan

  variables {
    bucket_name = "Amber_Snapshots"
    prefix      = "/mainnet/"
  }

  expect_failures = [var.bucket_name, var.prefix]
}
