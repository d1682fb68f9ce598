# A whole brandlens stack: buckets, bus, tables, cluster, repositories, the six
# queue-fed services (each with exactly the permissions it uses), and optionally the
# model-server. Names and shapes match brandlens_core.stack.define(); the parity test
# (tests/integration/test_infra.py) compares an applied stack with it.
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition
  services  = ["ingest", "framer", "labeler", "trainer", "model-manager", "inferer"]

  media     = module.storage.media_bucket_arn
  artifacts = module.storage.artifacts_bucket_arn
  table     = module.tables.arns
  queue_arn = { for s in local.services : s => "arn:${local.partition}:sqs:${local.region}:${local.account}:${var.stack_name}-${s}" }
  bus_arn   = module.bus.arn

  # Rekognition Custom Labels resources of this stack (the trainer names projects
  # brandlens-<stack>-<project>).
  rek_project = "arn:${local.partition}:rekognition:${local.region}:${local.account}:project/brandlens-${var.stack_name}-*/*"
  rek_version = "arn:${local.partition}:rekognition:${local.region}:${local.account}:project/brandlens-${var.stack_name}-*/version/*/*"

  images = {
    for s in concat(local.services, ["model-server"]) :
    s => "${module.ecr.repository_urls[s]}:${var.image_tag}"
  }

  # What every service's settings need beyond its own.
  common_env = merge(
    {
      "BRANDLENS_AWS_REGION"    = local.region
      "BRANDLENS_STACK_NAME"    = var.stack_name
      "BRANDLENS_BUCKET_SUFFIX" = var.bucket_suffix
      "BRANDLENS_LOG_JSON"      = "true"
    },
    var.use_model_server ? { "BRANDLENS_AWS_REKOGNITION_ENDPOINT_URL" = "http://model-server.${var.service_namespace}:9321" } : {},
    var.service_environment,
  )

  tables = {
    jobs = {
      hash_key   = "job_id"
      attributes = { job_id = "S", project = "S", created_at = "S" }
      indexes    = [{ name = "by-project", hash_key = "project", range_key = "created_at" }]
    }
    projects = {
      hash_key   = "project"
      range_key  = "item"
      attributes = { project = "S", item = "S" }
    }
    runtime = {
      hash_key      = "model"
      range_key     = "item"
      ttl_attribute = "ttl"
      attributes    = { model = "S", item = "S" }
    }
    apikeys = {
      hash_key   = "key_hash"
      attributes = { key_hash = "S" }
    }
    idempotency = {
      hash_key      = "id"
      ttl_attribute = "expiration"
      attributes    = { id = "S" }
    }
  }

  s3_created = {
    source      = ["aws.s3"]
    detail-type = ["Object Created"]
  }

  # Per service: queue shape, rules, permissions. The rules are define()'s.
  workers = {
    ingest = {
      visibility = 60
      receives   = 5
      ports      = [8080]
      env        = { "BRANDLENS_INGEST_API_HOST" = "0.0.0.0", "BRANDLENS_INGEST_API_PORT" = "8080" }
      rules = {
        "ingest-media-created" = {
          bus           = "default"
          event_pattern = jsonencode(merge(local.s3_created, { detail = { bucket = { name = [module.storage.media_bucket] } } }))
        }
      }
      statements = [
        { sid = "ReadMedia", actions = ["s3:GetObject", "s3:GetObjectVersion"], resources = ["${local.media}/training/*", "${local.media}/analysis/*"] },
        # presigned POSTs for uploads through the REST API
        { sid = "SignUploads", actions = ["s3:PutObject"], resources = ["${local.media}/training/*", "${local.media}/analysis/*"] },
        # a missing object answers 404 (not 403) only with ListBucket
        { sid = "ListBuckets", actions = ["s3:ListBucket"], resources = [local.media, local.artifacts] },
        { sid = "ReadResults", actions = ["s3:GetObject"], resources = ["${local.artifacts}/results/*", "${local.artifacts}/detections/*"] },
        { sid = "Jobs", actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], resources = [local.table["jobs"]] },
        { sid = "JobsByProject", actions = ["dynamodb:Query"], resources = ["${local.table["jobs"]}/index/by-project"] },
        { sid = "Projects", actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan"], resources = [local.table["projects"]] },
        { sid = "ApiKeys", actions = ["dynamodb:GetItem"], resources = [local.table["apikeys"]] },
      ]
    }
    framer = {
      visibility = 120
      receives   = 5
      ports      = []
      env        = {}
      rules = {
        "framer-media-accepted" = {
          bus           = "project"
          event_pattern = jsonencode({ source = ["brandlens.ingest"], detail-type = ["MediaAccepted"] })
        }
      }
      statements = [
        { sid = "ReadMedia", actions = ["s3:GetObject", "s3:GetObjectVersion"], resources = ["${local.media}/training/*", "${local.media}/analysis/*"] },
        { sid = "ListMedia", actions = ["s3:ListBucket"], resources = [local.media] },
        { sid = "WriteFrames", actions = ["s3:PutObject"], resources = ["${local.artifacts}/frames/*"] },
        { sid = "SendBatches", actions = ["sqs:SendMessage", "sqs:GetQueueUrl"], resources = [local.queue_arn["inferer"]] },
        { sid = "Jobs", actions = ["dynamodb:GetItem", "dynamodb:UpdateItem"], resources = [local.table["jobs"]] },
      ]
    }
    labeler = {
      visibility = 120
      receives   = 5
      ports      = []
      env        = {}
      rules = {
        "labeler-frames-extracted" = {
          bus           = "project"
          event_pattern = jsonencode({ source = ["brandlens.framer"], detail-type = ["FramesExtracted"], detail = { purpose = ["training"] } })
        }
        "labeler-annotations-created" = {
          bus = "default"
          event_pattern = jsonencode(merge(local.s3_created, {
            detail = {
              bucket = { name = [module.storage.media_bucket] }
              object = { key = [{ wildcard = "training/*/annotations/*" }] }
            }
          }))
        }
        "labeler-labeling-job-state" = {
          bus = "default"
          # only the labeler's own jobs (named brandlens-<hash>), not every job of the account
          event_pattern = jsonencode({
            source      = ["aws.sagemaker"]
            detail-type = ["SageMaker Ground Truth Labeling Job State Change"]
            resources   = [{ wildcard = "arn:aws*:sagemaker:*:*:labeling-job/brandlens-*" }]
          })
        }
      }
      statements = concat([
        { sid = "ReadFrames", actions = ["s3:GetObject"], resources = ["${local.artifacts}/frames/*", "${local.artifacts}/labeling/*"] },
        { sid = "WriteLabeling", actions = ["s3:PutObject"], resources = ["${local.artifacts}/labeling/*", "${local.artifacts}/datasets/*"] },
        { sid = "ReadAnnotations", actions = ["s3:GetObject"], resources = ["${local.media}/training/*/annotations/*"] },
        { sid = "ListAnnotations", actions = ["s3:ListBucket"], resources = [local.media], conditions = [{ test = "StringLike", variable = "s3:prefix", values = ["training/*/annotations/*"] }] },
        { sid = "ModelAssisted", actions = ["rekognition:DetectCustomLabels"], resources = [local.rek_version] },
        { sid = "GroundTruth", actions = ["sagemaker:CreateLabelingJob", "sagemaker:AddTags", "sagemaker:DescribeLabelingJob"], resources = ["arn:${local.partition}:sagemaker:${local.region}:${local.account}:labeling-job/brandlens-*"] },
        { sid = "Jobs", actions = ["dynamodb:GetItem", "dynamodb:UpdateItem"], resources = [local.table["jobs"]] },
        { sid = "JobsByProject", actions = ["dynamodb:Query"], resources = ["${local.table["jobs"]}/index/by-project"] },
        { sid = "Projects", actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"], resources = [local.table["projects"]] },
        ], length(var.ground_truth_role_arns) == 0 ? [] : [
        { sid = "PassGroundTruthRole", actions = ["iam:PassRole"], resources = var.ground_truth_role_arns, conditions = [{ test = "StringEquals", variable = "iam:PassedToService", values = ["sagemaker.amazonaws.com"] }] },
      ])
    }
    trainer = {
      visibility = 60
      receives   = 5
      ports      = []
      env        = {}
      rules = {
        "trainer-dataset-ready" = {
          bus           = "project"
          event_pattern = jsonencode({ source = ["brandlens.labeler"], detail-type = ["DatasetReady"] })
        }
      }
      statements = [
        { sid = "Projects", actions = ["rekognition:CreateProject", "rekognition:CreateProjectVersion", "rekognition:DescribeProjectVersions", "rekognition:TagResource"], resources = [local.rek_project] },
        { sid = "FindProjects", actions = ["rekognition:DescribeProjects"], resources = ["*"] }, # DescribeProjects has no resource-level permissions
        # Rekognition reads the dataset and writes the model with the caller's rights
        { sid = "TrainingData", actions = ["s3:GetObject"], resources = ["${local.artifacts}/datasets/*", "${local.artifacts}/frames/*", "${local.artifacts}/models/*"] },
        { sid = "TrainingOutput", actions = ["s3:PutObject"], resources = ["${local.artifacts}/models/*"] },
        { sid = "BucketLocation", actions = ["s3:GetBucketLocation", "s3:ListBucket"], resources = [local.artifacts] },
        { sid = "ProjectsTable", actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"], resources = [local.table["projects"]] },
      ]
    }
    model-manager = {
      visibility = 60
      receives   = 5
      ports      = []
      env        = {}
      rules      = {}
      statements = [
        { sid = "RunModels", actions = ["rekognition:StartProjectVersion", "rekognition:StopProjectVersion"], resources = [local.rek_version] },
        { sid = "DescribeVersions", actions = ["rekognition:DescribeProjectVersions"], resources = [local.rek_project] },
        { sid = "FindProjects", actions = ["rekognition:DescribeProjects"], resources = ["*"] }, # no resource-level permissions
        { sid = "Runtime", actions = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Scan", "dynamodb:Query"], resources = [local.table["runtime"]] },
      ]
    }
    inferer = {
      visibility = 120
      receives   = 8
      ports      = []
      env        = {}
      rules = {
        "inferer-frames-extracted" = {
          bus           = "project"
          event_pattern = jsonencode({ source = ["brandlens.framer"], detail-type = ["FramesExtracted"], detail = { purpose = ["analysis"] } })
        }
      }
      statements = [
        { sid = "Detect", actions = ["rekognition:DetectCustomLabels"], resources = [local.rek_version] },
        { sid = "ReadFrames", actions = ["s3:GetObject"], resources = ["${local.artifacts}/frames/*", "${local.artifacts}/detections/*"] },
        { sid = "WriteResults", actions = ["s3:PutObject"], resources = ["${local.artifacts}/detections/*", "${local.artifacts}/results/*"] },
        { sid = "EnsureModel", actions = ["sqs:SendMessage", "sqs:GetQueueUrl"], resources = [local.queue_arn["model-manager"]] },
        { sid = "Jobs", actions = ["dynamodb:GetItem", "dynamodb:UpdateItem"], resources = [local.table["jobs"]] },
        { sid = "Projects", actions = ["dynamodb:GetItem"], resources = [local.table["projects"]] },
        { sid = "Leases", actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], resources = [local.table["runtime"]] },
      ]
    }
  }

  # Every service publishes its own events on the bus and keeps idempotency records
  # (the inferer keys none, so it gets no idempotency rights).
  shared_statements = {
    for s in local.services : s => concat(
      [{
        sid        = "PublishEvents"
        actions    = ["events:PutEvents"]
        resources  = [local.bus_arn]
        conditions = [{ test = "StringEquals", variable = "events:source", values = ["brandlens.${s}"] }]
      }],
      s == "inferer" ? [] : [{
        sid        = "Idempotency"
        actions    = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
        resources  = [local.table["idempotency"]]
        conditions = []
      }],
    )
  }
}

module "storage" {
  source                     = "../storage"
  stack_name                 = var.stack_name
  bucket_suffix              = var.bucket_suffix
  kms_key_arn                = var.kms_key_arn
  frames_expiration_days     = var.frames_expiration_days
  detections_expiration_days = var.detections_expiration_days
  force_destroy              = var.force_destroy
  require_tls                = var.require_tls
  tags                       = var.tags
}

module "bus" {
  source = "../bus"
  name   = var.stack_name
  tags   = var.tags
}

module "tables" {
  source              = "../tables"
  stack_name          = var.stack_name
  tables              = local.tables
  kms_key_arn         = var.kms_key_arn
  deletion_protection = !var.force_destroy
  tags                = var.tags
}

module "cluster" {
  source = "../cluster"
  name   = var.stack_name
  tags   = var.tags
}

module "ecr" {
  source       = "../ecr"
  prefix       = var.stack_name
  services     = concat(local.services, ["model-server"])
  force_delete = var.force_destroy
  tags         = var.tags
}

resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = var.service_namespace
  description = "brandlens ${var.stack_name}: services reach the model-server here"
  vpc         = var.vpc_id
  tags        = var.tags
}

module "worker" {
  source   = "../queue_worker"
  for_each = local.workers

  stack_name                 = var.stack_name
  service                    = each.key
  bus_name                   = module.bus.name
  rules                      = each.value.rules
  visibility_timeout_seconds = each.value.visibility
  max_receive_count          = each.value.receives
  kms_key_arn                = var.kms_key_arn
  policy_statements = [
    for st in concat(each.value.statements, local.shared_statements[each.key]) : {
      sid        = st.sid
      actions    = st.actions
      resources  = st.resources
      conditions = try(st.conditions, [])
    }
  ]

  image          = local.images[each.key]
  repository_arn = module.ecr.repository_arns[each.key]
  environment    = merge(local.common_env, each.value.env)
  ports          = each.value.ports
  health_command = each.key == "ingest" ? ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=5)"] : null
  cpu            = lookup(var.task_cpu, each.key, 512)
  memory         = lookup(var.task_memory, each.key, 1024)

  cluster_arn        = module.cluster.arn
  cluster_name       = module.cluster.name
  subnet_ids         = var.subnet_ids
  security_group_ids = [aws_security_group.services.id]
  assign_public_ip   = var.assign_public_ip
  autoscaling        = var.autoscaling
  min_tasks          = lookup(var.min_tasks, each.key, 1)
  max_tasks          = lookup(var.max_tasks, each.key, 4)
  backlog_per_task   = lookup(var.backlog_per_task, each.key, 10)
  log_retention_days = var.log_retention_days
  tags               = var.tags
}

module "model_server" {
  source = "../model_server"
  count  = var.use_model_server ? 1 : 0

  stack_name           = var.stack_name
  image                = local.images["model-server"]
  repository_arn       = module.ecr.repository_arns["model-server"]
  artifacts_bucket_arn = local.artifacts
  account_id           = local.account
  namespace_id         = aws_service_discovery_private_dns_namespace.this.id
  environment          = merge(local.common_env, var.model_server_environment)
  cpu                  = var.model_server_cpu
  memory               = var.model_server_memory
  cluster_arn          = module.cluster.arn
  subnet_ids           = var.subnet_ids
  security_group_ids   = [aws_security_group.services.id]
  assign_public_ip     = var.assign_public_ip
  kms_key_arn          = var.kms_key_arn
  log_retention_days   = var.log_retention_days
  tags                 = var.tags
}

# The services' network: outbound HTTPS to AWS APIs (and to each other inside the
# group: the model-server's port, the ingest API).
resource "aws_security_group" "services" {
  name        = "${var.stack_name}-services"
  description = "brandlens ${var.stack_name} services"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.services.id
  description       = "AWS APIs and image pulls over HTTPS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "internal" {
  security_group_id            = aws_security_group.services.id
  description                  = "to the model-server and the ingest API inside the group"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 9321
  referenced_security_group_id = aws_security_group.services.id
}

resource "aws_vpc_security_group_ingress_rule" "internal" {
  security_group_id            = aws_security_group.services.id
  description                  = "the model-server and the ingest API, from inside the group"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 9321
  referenced_security_group_id = aws_security_group.services.id
}

resource "aws_vpc_security_group_ingress_rule" "api" {
  for_each          = toset(var.api_allowed_cidrs)
  security_group_id = aws_security_group.services.id
  description       = "the REST API (ingest, port 8080)"
  ip_protocol       = "tcp"
  from_port         = 8080
  to_port           = 8080
  cidr_ipv4         = each.value
}
