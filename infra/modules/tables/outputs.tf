output "names" {
  description = "Table name per logical name."
  value       = { for k, t in aws_dynamodb_table.this : k => t.name }
}

output "arns" {
  description = "Table ARN per logical name."
  value       = { for k, t in aws_dynamodb_table.this : k => t.arn }
}
