#![no_main]
//! Parse arbitrary bytes, exercise every typed view and the builders: nothing may panic.

use bytes::Bytes;
use edgesim::sip::{Message, ResponseBuilder, SipError, bad_request_from_raw};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Message::parse(Bytes::copy_from_slice(data)) {
        Ok(m) => {
            let _ = m.validate();
            let _ = (
                m.vias(),
                m.from(),
                m.to(),
                m.cseq(),
                m.call_id(),
                m.max_forwards(),
            );
            let _ = (
                m.contacts(),
                m.record_routes(),
                m.p_asserted_identities(),
                m.request_uri(),
            );
            let out = ResponseBuilder::from_request(&m, 504, "Server time-out")
                .top_via_param("received", "192.0.2.1")
                .fill_rport(5061)
                .to_tag("fuzz")
                .build();
            // A response built from a parsed message must itself parse.
            if m.vias().is_ok() {
                assert!(Message::parse(out).is_ok());
            }
            assert_eq!(m.as_bytes(), &data[..m.as_bytes().len()]);
        }
        Err(e) => {
            let _ = (e.status(), e.closes_connection());
            let _ = bad_request_from_raw(data, &e, "fuzz");
        }
    }
    let _ = bad_request_from_raw(data, &SipError::BadStartLine, "fuzz");
});
