# The media bucket (producers drop files; versioned; sends Object Created events to
# EventBridge) and the artifacts bucket (frames, manifests, datasets, models,
# detections, results). Both encrypted, public access blocked, TLS only.
locals {
  buckets = {
    media     = "${var.stack_name}-media${var.bucket_suffix}"
    artifacts = "${var.stack_name}-artifacts${var.bucket_suffix}"
  }
}

resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV2_AWS_6:the public access block is aws_s3_bucket_public_access_block.this, per bucket (checkov does not follow for_each)
  # checkov:skip=CKV_AWS_18:access logging needs a separate log bucket the operator owns; enable it there (documented in infra/README.md)
  # checkov:skip=CKV_AWS_144:cross-region replication is a disaster-recovery choice, not a default
  # checkov:skip=CKV_AWS_145:SSE-S3 by default; pass kms_key_arn for SSE-KMS
  # checkov:skip=CKV2_AWS_62:only the media bucket sends events (to EventBridge); artifacts are written by the services themselves
  # checkov:skip=CKV2_AWS_61:lifecycle rules are declared in aws_s3_bucket_lifecycle_configuration.this (checkov does not follow for_each)
  # checkov:skip=CKV_AWS_21:versioning is declared in aws_s3_bucket_versioning.this (media on; artifacts use deterministic keys that a retry overwrites on purpose)
  for_each      = local.buckets
  bucket        = each.value
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { "brandlens:bucket" = each.key })
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each                = aws_s3_bucket.this
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = aws_s3_bucket.this
  bucket   = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this
  bucket   = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this
  bucket   = each.value.id
  versioning_configuration {
    # media: each upload is its own object version (and job); artifacts: keys are
    # deterministic and a retried step overwrites on purpose
    status = each.key == "media" ? "Enabled" : "Suspended"
  }
}

data "aws_iam_policy_document" "tls_only" {
  for_each = var.require_tls ? aws_s3_bucket.this : {}
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      each.value.arn,
      "${each.value.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = var.require_tls ? aws_s3_bucket.this : {}
  bucket   = each.value.id
  policy   = data.aws_iam_policy_document.tls_only[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "media" {
  bucket = aws_s3_bucket.this["media"].id

  rule {
    id     = "old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.media_noncurrent_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.this["artifacts"].id

  # Frames are intermediate: once a job is analysed or its dataset built they are only
  # needed to re-run it.
  rule {
    id     = "frames"
    status = "Enabled"
    filter {
      prefix = "frames/"
    }
    expiration {
      days = var.frames_expiration_days
    }
  }

  rule {
    id     = "detections"
    status = "Enabled"
    filter {
      prefix = "detections/"
    }
    expiration {
      days = var.detections_expiration_days
    }
  }

  rule {
    id     = "incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

# The media bucket sends every event to EventBridge (the default bus); the rules
# pick Object Created for their keys.
resource "aws_s3_bucket_notification" "media" {
  bucket      = aws_s3_bucket.this["media"].id
  eventbridge = true
}
