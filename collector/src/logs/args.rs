//! The cloud-log source flags, shared by `ward-collector scan` (read once) and `serve` (read
//! continuously): where the logs are, how S3 and SQS are reached, and the reader limits.

use std::path::PathBuf;

use super::s3::{AwsConfig, Endpoint};
use super::{Limits, ReadOptions};
use crate::event::flow::FlowFormat;

#[derive(clap::Args, Debug, Clone)]
pub struct LogSourceArgs {
    /// CloudTrail log file or directory, or s3://bucket/prefix (repeatable).
    #[arg(long = "cloudtrail", value_name = "PATH")]
    pub cloudtrail: Vec<PathBuf>,
    /// VPC Flow Logs file or directory, or s3://bucket/prefix (repeatable).
    #[arg(long = "vpc-flow", value_name = "PATH")]
    pub vpc_flow: Vec<PathBuf>,
    /// Route 53 Resolver query-log file or directory, or s3://bucket/prefix (repeatable).
    #[arg(long = "dns", value_name = "PATH")]
    pub dns: Vec<PathBuf>,
    #[command(flatten)]
    pub s3: S3Args,
    /// Flow-log format for files without a header line, e.g.
    /// '${version} ${vpc-id} ${srcaddr} ...' or 'version vpc-id srcaddr ...' (default: v2).
    #[arg(long = "vpc-flow-format", value_name = "FORMAT")]
    pub vpc_flow_format: Option<String>,
    /// Longest accepted line / JSON record in bytes; longer ones are counted as malformed.
    #[arg(long, default_value_t = Limits::default().max_line)]
    pub max_line_bytes: usize,
    /// Largest whole-document object ({"Records":[...]} or JSON array) in bytes.
    #[arg(long, default_value_t = Limits::default().max_document)]
    pub max_document_bytes: usize,
}

/// Where s3:// sources are read from. Credentials and region come from the usual AWS_* variables.
#[derive(clap::Args, Debug, Clone)]
pub struct S3Args {
    /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 (default: AWS S3 in the region).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Bucket in the path instead of the host name (implied for IP-address/localhost endpoints).
    #[arg(long)]
    pub s3_path_style: bool,
    /// Region for signing and the default endpoint (default: AWS_REGION, AWS_DEFAULT_REGION, us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Read the s3:// objects announced by S3 event notifications on this SQS queue (directly or
    /// through SNS) instead of listing the prefixes (`scan` drains the queue, then exits).
    #[arg(long, value_name = "QUEUE_URL")]
    pub sqs_queue: Option<String>,
    /// SQS endpoint (default: the queue URL's host).
    #[arg(long, value_name = "URL")]
    pub sqs_endpoint: Option<String>,
    /// Checkpoint journal: objects recorded there are not read again (`scan`: none by default,
    /// for s3:// sources only). `serve` keeps its checkpoint in the findings store and only
    /// imports this journal once (default DATA_DIR/cloud-logs.checkpoint).
    #[arg(long, value_name = "PATH")]
    pub checkpoint: Option<PathBuf>,
}

impl LogSourceArgs {
    pub fn is_empty(&self) -> bool {
        self.cloudtrail.is_empty() && self.vpc_flow.is_empty() && self.dns.is_empty()
    }

    pub fn read_options(&self) -> Result<ReadOptions, String> {
        let flow_format = match &self.vpc_flow_format {
            Some(f) => Some(FlowFormat::parse(f).map_err(|e| format!("--vpc-flow-format: {e}"))?),
            None => None,
        };
        Ok(ReadOptions {
            limits: Limits {
                max_line: self.max_line_bytes,
                max_document: self.max_document_bytes,
            },
            flow_format,
        })
    }
}

impl S3Args {
    /// The AWS configuration from the environment, with these flags applied.
    pub fn aws_config(&self) -> Result<AwsConfig, String> {
        let mut cfg = AwsConfig::from_env()?;
        if let Some(r) = &self.region {
            cfg.region.clone_from(r);
        }
        if let Some(e) = &self.s3_endpoint {
            cfg = cfg
                .with_s3_endpoint(e)
                .map_err(|e| format!("--s3-endpoint: {e}"))?;
        }
        cfg.path_style |= self.s3_path_style;
        if let Some(e) = &self.sqs_endpoint {
            cfg.sqs_endpoint =
                Some(Endpoint::parse(e).map_err(|e| format!("--sqs-endpoint: {e}"))?);
        }
        Ok(cfg)
    }
}
