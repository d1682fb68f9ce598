output "queue_url" {
  description = "URL of the service's queue."
  value       = aws_sqs_queue.this.id
}

output "queue_arn" {
  description = "ARN of the service's queue."
  value       = aws_sqs_queue.this.arn
}

output "dlq_url" {
  description = "URL of the service's dead-letter queue (redrive from here)."
  value       = aws_sqs_queue.dlq.id
}

output "dlq_arn" {
  description = "ARN of the service's dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "task_role_arn" {
  description = "ARN of the service's task role."
  value       = module.identity.task_role_arn
}

output "task_role_name" {
  description = "Name of the service's task role."
  value       = module.identity.task_role_id
}

output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}

output "log_group" {
  description = "CloudWatch log group of the service."
  value       = module.identity.log_group_name
}
