output "stack_name" {
  description = "BRANDLENS_STACK_NAME of every service."
  value       = var.stack_name
}

output "media_bucket" {
  description = "Producers upload to s3://<media_bucket>/<analysis|training>/<project>/<file>."
  value       = module.storage.media_bucket
}

output "artifacts_bucket" {
  description = "Frames, datasets, models, detections, summaries and reports."
  value       = module.storage.artifacts_bucket
}

output "event_bus" {
  description = "The stack's EventBridge bus (brandlens.* events)."
  value       = module.bus.name
}

output "tables" {
  description = "DynamoDB table names by logical name."
  value       = module.tables.names
}

output "queue_urls" {
  description = "Each service's queue."
  value       = { for k, w in module.worker : k => w.queue_url }
}

output "dlq_urls" {
  description = "Each service's dead-letter queue."
  value       = { for k, w in module.worker : k => w.dlq_url }
}

output "repository_urls" {
  description = "ECR repository per service image (push <url>:<image_tag>)."
  value       = module.ecr.repository_urls
}

output "cluster_name" {
  description = "ECS cluster of the services."
  value       = module.cluster.name
}

output "task_role_arns" {
  description = "Each service's task role (its permissions)."
  value       = merge({ for k, w in module.worker : k => w.task_role_arn }, { for m in module.model_server : "model-server" => m.task_role_arn })
}

output "log_groups" {
  description = "Each service's CloudWatch log group."
  value       = { for k, w in module.worker : k => w.log_group }
}
