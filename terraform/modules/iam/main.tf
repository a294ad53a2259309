# Two roles: the builder reads and writes the snapshot line, servers only
# read it. Both are limited to the bucket and prefix, and may be assumed by
# ECS tasks and, when instance profiles are wanted, EC2 instances.

locals {
  objects = "${var.bucket_arn}/${var.prefix}/*"
  # s3:prefix as Amber lists it: the line's keys and the line itself.
  list_prefixes = [var.prefix, "${var.prefix}/*"]
  principals    = var.create_instance_profiles ? ["ecs-tasks.amazonaws.com", "ec2.amazonaws.com"] : ["ecs-tasks.amazonaws.com"]
}

# Policies are written with jsonencode so plans (and the tests) show them.
locals {
  assume_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = local.principals }
    }]
  })

  list_line = {
    Sid       = "ListSnapshotLine"
    Effect    = "Allow"
    Action    = "s3:ListBucket"
    Resource  = var.bucket_arn
    Condition = { StringLike = { "s3:prefix" = local.list_prefixes } }
  }

  builder_policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      local.list_line,
      {
        Sid    = "ReadWriteSnapshotLine"
        Effect = "Allow"
        Action = [
          "s3:GetObject",
          "s3:PutObject",
          "s3:DeleteObject",
          "s3:AbortMultipartUpload",
          "s3:ListMultipartUploadParts",
        ]
        Resource = local.objects
      },
      ], var.kms_key_arn == null ? [] : [{
        Sid      = "UseBucketKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = var.kms_key_arn
    }])
  })

  server_policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      local.list_line,
      {
        Sid      = "ReadSnapshotLine"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = local.objects
      },
      ], var.kms_key_arn == null ? [] : [{
        Sid      = "DecryptWithBucketKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = var.kms_key_arn
    }])
  })
}

resource "aws_iam_role" "builder" {
  name               = "${var.name}-builder"
  assume_role_policy = local.assume_policy
  tags               = var.tags
}

resource "aws_iam_role_policy" "builder" {
  name   = "snapshot-read-write"
  role   = aws_iam_role.builder.id
  policy = local.builder_policy
}

resource "aws_iam_role" "server" {
  name               = "${var.name}-server"
  assume_role_policy = local.assume_policy
  tags               = var.tags
}

resource "aws_iam_role_policy" "server" {
  name   = "snapshot-read-only"
  role   = aws_iam_role.server.id
  policy = local.server_policy
}

resource "aws_iam_instance_profile" "builder" {
  count = var.create_instance_profiles ? 1 : 0
  name  = "${var.name}-builder"
  role  = aws_iam_role.builder.name
  tags  = var.tags
}

resource "aws_iam_instance_profile" "server" {
  count = var.create_instance_profiles ? 1 : 0
  name  = "${var.name}-server"
  role  = aws_iam_role.server.name
  tags  = var.tags
}
