# A queue-fed worker service: its queue and DLQ (redrive), the EventBridge rules that
# feed it (targets with a retry policy and the DLQ), its ECS Fargate service, scaling
# on queue backlog per task, its logs, and a task role that reaches only what it needs.
locals {
  queue_name = "${var.stack_name}-${var.service}"
  family     = "${var.stack_name}-${var.service}"
  heartbeat  = "/tmp/heartbeat"
  env_prefix = "BRANDLENS_${upper(replace(var.service, "-", "_"))}"
  environment = merge(var.environment, {
    "BRANDLENS_STACK_NAME"                      = var.stack_name
    "${local.env_prefix}_WORKER_HEARTBEAT_FILE" = local.heartbeat
  })
}

data "aws_region" "current" {}

resource "aws_sqs_queue" "dlq" {
  name                      = "${local.queue_name}-dlq"
  message_retention_seconds = var.dlq_message_retention_seconds
  sqs_managed_sse_enabled   = var.kms_key_arn == null
  kms_master_key_id         = var.kms_key_arn
  tags                      = var.tags
}

resource "aws_sqs_queue" "this" {
  name                       = local.queue_name
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = var.kms_key_arn == null
  kms_master_key_id          = var.kms_key_arn
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = var.tags
}

# -- the rules that feed the queue ----------------------------------------------------------

resource "aws_cloudwatch_event_rule" "this" {
  for_each       = var.rules
  name           = "${var.stack_name}-${each.key}"
  description    = "brandlens ${var.service}: ${each.key}"
  event_bus_name = each.value.bus == "default" ? "default" : var.bus_name
  event_pattern  = each.value.event_pattern
  tags           = var.tags
}

resource "aws_cloudwatch_event_target" "this" {
  for_each       = var.rules
  rule           = aws_cloudwatch_event_rule.this[each.key].name
  event_bus_name = aws_cloudwatch_event_rule.this[each.key].event_bus_name
  target_id      = "${var.service}-queue"
  arn            = aws_sqs_queue.this.arn

  retry_policy {
    maximum_event_age_in_seconds = var.event_max_age_seconds
    maximum_retry_attempts       = var.event_retry_attempts
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

# EventBridge may send to the queue (and to the DLQ, for events it could not deliver),
# only for this worker's rules.
data "aws_iam_policy_document" "queue" {
  for_each = { main = aws_sqs_queue.this.arn, dlq = aws_sqs_queue.dlq.arn }
  statement {
    sid       = "EventBridgeRules"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [each.value]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = length(var.rules) > 0 ? [for r in aws_cloudwatch_event_rule.this : r.arn] : ["arn:aws:events:::rule/none"]
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  queue_url = aws_sqs_queue.this.id
  policy    = data.aws_iam_policy_document.queue["main"].json
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.queue["dlq"].json
}

# -- roles ----------------------------------------------------------------------------------

module "identity" {
  source             = "../task_identity"
  stack_name         = var.stack_name
  service            = var.service
  repository_arn     = var.repository_arn
  kms_key_arn        = var.kms_key_arn
  log_retention_days = var.log_retention_days
  tags               = var.tags
}

# What the service itself may do: its own queue, and what the caller lists.
data "aws_iam_policy_document" "task" {
  statement {
    sid = "OwnQueue"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:SendMessage", # delayed follow-ups to itself
    ]
    resources = [aws_sqs_queue.this.arn]
  }

  dynamic "statement" {
    for_each = var.policy_statements
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
      dynamic "condition" {
        for_each = statement.value.conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "service"
  role   = module.identity.task_role_id
  policy = data.aws_iam_policy_document.task.json
}

# -- the service ----------------------------------------------------------------------------

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
    cpu_architecture        = var.cpu_architecture
  }

  # the root file system is read-only; the service writes only to /tmp (heartbeat,
  # scratch files), a task volume
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = var.service
    image                  = var.image
    essential              = true
    readonlyRootFilesystem = true
    user                   = "10001"
    environment            = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
    portMappings           = [for p in var.ports : { containerPort = p, protocol = "tcp" }]
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    healthCheck = {
      command     = var.health_command != null ? var.health_command : ["CMD", "python", "-m", "brandlens_core.health", "--file", local.heartbeat, "--max-age-seconds", "120"]
      interval    = 30
      timeout     = 10
      retries     = 3
      startPeriod = 30
    }
    stopTimeout = 60
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = module.identity.log_group_name
        "awslogs-region"        = data.aws_region.current.name
        "awslogs-stream-prefix" = var.service
      }
    }
  }])

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  name                   = var.service
  cluster                = var.cluster_arn
  task_definition        = aws_ecs_task_definition.this.arn
  desired_count          = var.min_tasks
  launch_type            = "FARGATE"
  enable_execute_command = false
  propagate_tags         = "SERVICE"

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = var.assign_public_ip
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  dynamic "service_registries" {
    for_each = var.service_discovery_arn == null ? [] : [var.service_discovery_arn]
    content {
      registry_arn = service_registries.value
    }
  }

  lifecycle {
    ignore_changes = [desired_count] # the autoscaler owns it
  }

  tags = var.tags
}

# -- scaling on backlog per task ------------------------------------------------------------

resource "aws_appautoscaling_target" "this" {
  count              = var.autoscaling ? 1 : 0
  service_namespace  = "ecs"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
}

# Target tracking on (visible messages) / (running tasks): each task is asked to hold
# about backlog_per_task messages; more backlog adds tasks, less removes them.
resource "aws_appautoscaling_policy" "backlog" {
  count              = var.autoscaling ? 1 : 0
  name               = "${local.family}-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  resource_id        = aws_appautoscaling_target.this[0].resource_id
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.backlog_per_task
    scale_in_cooldown  = var.scale_in_cooldown_seconds
    scale_out_cooldown = var.scale_out_cooldown_seconds

    customized_metric_specification {
      metrics {
        id          = "visible"
        return_data = false
        metric_stat {
          stat = "Sum"
          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"
            dimensions {
              name  = "QueueName"
              value = aws_sqs_queue.this.name
            }
          }
        }
      }
      metrics {
        id          = "tasks"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = var.cluster_name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.this.name
            }
          }
        }
      }
      metrics {
        id          = "backlog_per_task"
        label       = "visible messages per running task"
        expression  = "visible / IF(tasks > 0, tasks, 1)"
        return_data = true
      }
    }
  }
}
