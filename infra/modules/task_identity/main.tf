# What every ECS task of the stack has: its log group, an execution role (pull its own
# image, write its own logs) and a task role the caller gives its permissions to.
resource "aws_cloudwatch_log_group" "this" {
  # checkov:skip=CKV_AWS_158:log groups are encrypted by CloudWatch Logs by default; pass kms_key_arn for a customer key
  # checkov:skip=CKV_AWS_338:retention is a variable (log_retention_days, default 30): a year of service logs is a cost choice, not a default
  name              = "/brandlens/${var.stack_name}/${var.service}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.stack_name}-${var.service}-execution"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "PullImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [var.repository_arn]
  }
  statement {
    sid       = "EcrToken"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "start-task"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "task" {
  name               = "${var.stack_name}-${var.service}-task"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}
