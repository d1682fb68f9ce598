output "log_group_name" {
  description = "The task's CloudWatch log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "execution_role_arn" {
  description = "ARN of the execution role (ECS starts the task with it)."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "ARN of the task role (the service's own permissions)."
  value       = aws_iam_role.task.arn
}

output "task_role_id" {
  description = "Name of the task role, to attach policies to."
  value       = aws_iam_role.task.id
}
