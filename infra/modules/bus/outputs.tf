output "name" {
  description = "Name of the event bus."
  value       = aws_cloudwatch_event_bus.this.name
}

output "arn" {
  description = "ARN of the event bus (PutEvents resource)."
  value       = aws_cloudwatch_event_bus.this.arn
}
