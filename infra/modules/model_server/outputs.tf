output "task_role_arn" {
  description = "ARN of the model-server's task role."
  value       = module.identity.task_role_arn
}

output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}
