# The same stack against a local AWS emulation: the moto server (`brandlens up` runs
# one; tests start their own) or LocalStack. Every endpoint is var.endpoint_url.
provider "aws" {
  region                      = var.region
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = false
  s3_use_path_style           = true

  endpoints {
    applicationautoscaling = var.endpoint_url
    cloudwatch             = var.endpoint_url
    cloudwatchlogs         = var.endpoint_url
    dynamodb               = var.endpoint_url
    ec2                    = var.endpoint_url
    ecr                    = var.endpoint_url
    ecs                    = var.endpoint_url
    events                 = var.endpoint_url
    iam                    = var.endpoint_url
    s3                     = var.endpoint_url
    servicediscovery       = var.endpoint_url
    sqs                    = var.endpoint_url
    sts                    = var.endpoint_url
  }
}

# A network of its own for the (emulated) tasks.
resource "aws_vpc" "this" {
  # checkov:skip=CKV2_AWS_11:flow logs for an emulated local VPC record nothing
  # checkov:skip=CKV2_AWS_12:the default security group of an emulated local VPC carries no traffic
  cidr_block = "10.42.0.0/16"
}

resource "aws_subnet" "this" {
  vpc_id     = aws_vpc.this.id
  cidr_block = "10.42.1.0/24"
}

module "brandlens" {
  source = "../../modules/stack"

  stack_name       = var.stack_name
  image_tag        = "local"
  vpc_id           = aws_vpc.this.id
  subnet_ids       = [aws_subnet.this.id]
  use_model_server = var.use_model_server
  force_destroy    = true  # a throw-away stack
  require_tls      = false # the emulation speaks plain HTTP (and moto enforces bucket policies)
  autoscaling      = false # moto answers Application Auto Scaling's ListTagsForResource with an error
}
