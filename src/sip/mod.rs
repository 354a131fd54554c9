//! SIP messages: tolerant parser, serializer, stream framing with limits, response builder.
//!
//! Owned by the sip work.
