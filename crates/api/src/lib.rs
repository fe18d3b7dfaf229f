//! Code generated from `proto/` at build time (protox + tonic-prost-build, no protoc).
//!
//! - [`common::v1`]: shared messages (dates, field violations).
//! - [`events::v1`]: the event envelope and every event payload.
//! - [`claims::v1`]: the claims service.
//! - [`scheduler::v1`]: durable timers and cron jobs.
//! - [`assignment::v1`]: specialists, follow-up tasks and queues.
//! - [`wire`]: the proto <-> domain conversions every service shares (dates, timestamps,
//!   claim statuses, denial categories) and [`wire::EventPayload`], each event's type name.
//! - [`FILE_DESCRIPTOR_SET`]: all of the above, for gRPC server reflection.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod common {
    pub mod v1 {
        tonic::include_proto!("arflow.common.v1");
    }
}

pub mod events {
    pub mod v1 {
        tonic::include_proto!("arflow.events.v1");
    }
}

pub mod claims {
    pub mod v1 {
        tonic::include_proto!("arflow.claims.v1");
    }
}

pub mod scheduler {
    pub mod v1 {
        tonic::include_proto!("arflow.scheduler.v1");
    }
}

pub mod assignment {
    pub mod v1 {
        tonic::include_proto!("arflow.assignment.v1");
    }
}

pub mod wire;

/// Encoded `FileDescriptorSet` of every arflow proto, for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/arflow_descriptor.bin"));
