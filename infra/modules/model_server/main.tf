# The self-hosted model runtime (Rekognition Custom Labels API over HTTP), optional:
# one ECS service registered in Cloud Map as model-server.<namespace>, reached by the
# services through BRANDLENS_AWS_REKOGNITION_ENDPOINT_URL. Fargate has no GPU: for
# one, run this task on an EC2 capacity provider with GPU instances (infra/README.md).
locals {
  family = "${var.stack_name}-model-server"
}

data "aws_region" "current" {}

resource "aws_service_discovery_service" "this" {
  name = "model-server"

  dns_config {
    namespace_id   = var.namespace_id
    routing_policy = "MULTIVALUE"
    dns_records {
      ttl  = 10
      type = "A"
    }
  }

  health_check_custom_config {
    failure_threshold = 1
  }

  tags = var.tags
}

# Reads what it trains on and analyses (datasets, manifests, frames), keeps its state
# and models under model-server/, writes evaluation results.
data "aws_iam_policy_document" "task" {
  statement {
    sid       = "ReadInputs"
    actions   = ["s3:GetObject"]
    resources = ["${var.artifacts_bucket_arn}/*"]
  }
  statement {
    sid     = "OwnState"
    actions = ["s3:PutObject", "s3:DeleteObject"]
    resources = [
      "${var.artifacts_bucket_arn}/model-server/*",
    ]
  }
  statement {
    sid       = "ListState"
    actions   = ["s3:ListBucket"]
    resources = [var.artifacts_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["model-server/*"]
    }
  }
}

module "identity" {
  source             = "../task_identity"
  stack_name         = var.stack_name
  service            = "model-server"
  repository_arn     = var.repository_arn
  kms_key_arn        = var.kms_key_arn
  log_retention_days = var.log_retention_days
  tags               = var.tags
}

resource "aws_iam_role_policy" "task" {
  name   = "model-server"
  role   = module.identity.task_role_id
  policy = data.aws_iam_policy_document.task.json
}

resource "aws_ecs_task_definition" "this" {
  family                   = local.family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = module.identity.execution_role_arn
  task_role_arn            = module.identity.task_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  ephemeral_storage {
    size_in_gib = var.ephemeral_storage_gib
  }

  volume {
    name = "cache"
  }

  container_definitions = jsonencode([{
    name                   = "model-server"
    image                  = var.image
    essential              = true
    readonlyRootFilesystem = true
    user                   = "10001"
    environment = [for k, v in merge(var.environment, {
      "BRANDLENS_STACK_NAME"              = var.stack_name
      "BRANDLENS_MODEL_SERVER_HOST"       = "0.0.0.0"
      "BRANDLENS_MODEL_SERVER_PORT"       = tostring(var.port)
      "BRANDLENS_MODEL_SERVER_CACHE_DIR"  = "/cache"
      "BRANDLENS_MODEL_SERVER_ACCOUNT_ID" = var.account_id
      "TMPDIR"                            = "/cache/tmp"
    }) : { name = k, value = v }]
    portMappings = [{ containerPort = var.port, protocol = "tcp" }]
    mountPoints  = [{ sourceVolume = "cache", containerPath = "/cache", readOnly = false }]
    healthCheck = {
      command     = ["CMD", "python", "-c", "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:${var.port}/health', timeout=5)"]
      interval    = 30
      timeout     = 10
      retries     = 3
      startPeriod = 60
    }
    stopTimeout = 120
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = module.identity.log_group_name
        "awslogs-region"        = data.aws_region.current.name
        "awslogs-stream-prefix" = "model-server"
      }
    }
  }])

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  name            = "model-server"
  cluster         = var.cluster_arn
  task_definition = aws_ecs_task_definition.this.arn
  desired_count   = var.tasks
  launch_type     = "FARGATE"
  propagate_tags  = "SERVICE"

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = var.assign_public_ip
  }

  service_registries {
    registry_arn = aws_service_discovery_service.this.arn
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags
}
