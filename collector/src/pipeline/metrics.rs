//! The detection pipelines' counters in Prometheus text (the shared encoder of
//! `crate::ingest::metrics`), for the query API's `/metrics`.

use std::sync::atomic::Ordering::Relaxed;

use super::PipelineStats;
use super::cloud::CloudStats;
use crate::ingest::metrics::write_scalar;

impl PipelineStats {
    /// Appends `ward_pipeline_*`: agent batches and events through the runtime detections.
    pub fn render(&self, out: &mut String) {
        let counters = [
            (
                "ward_pipeline_batches_total",
                "Agent batches read from the batch log by the runtime detections.",
                &self.batches,
            ),
            (
                "ward_pipeline_events_total",
                "Agent events run through the runtime detections.",
                &self.events,
            ),
            (
                "ward_pipeline_malformed_total",
                "Agent events or stored batches that could not be decoded (logged, skipped).",
                &self.malformed,
            ),
            (
                "ward_pipeline_finding_changes_total",
                "Findings created or updated by the runtime detections.",
                &self.finding_changes,
            ),
        ];
        for (name, help, counter) in counters {
            write_scalar(out, name, help, "counter", counter.load(Relaxed));
        }
        write_scalar(
            out,
            "ward_pipeline_log_offset_bytes",
            "Position in the batch log up to which batches are processed and committed.",
            "gauge",
            self.log_offset.load(Relaxed),
        );
    }
}

impl CloudStats {
    /// Appends `ward_cloud_*`: cloud-log objects and records read by `serve`.
    pub fn render(&self, out: &mut String) {
        let counters = [
            (
                "ward_cloud_objects_total",
                "Cloud-log objects (files, S3 objects) read.",
                &self.objects,
            ),
            (
                "ward_cloud_records_total",
                "Cloud-log records handed to the foundational detections.",
                &self.records,
            ),
            (
                "ward_cloud_malformed_total",
                "Cloud-log records or objects that could not be parsed.",
                &self.malformed,
            ),
            (
                "ward_cloud_skipped_total",
                "Cloud-log objects or records deliberately not read (digests, control messages).",
                &self.skipped,
            ),
            (
                "ward_cloud_passes_total",
                "Passes over every cloud-log source.",
                &self.passes,
            ),
        ];
        for (name, help, counter) in counters {
            write_scalar(out, name, help, "counter", counter.load(Relaxed));
        }
    }
}
