#![no_main]
//! Feed arbitrary bytes to the framer in chunks chosen by the first byte: nothing may panic and
//! the chunking must not change the frames.

use bytes::BytesMut;
use edgesim::sip::{Framer, Limits};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], chunk: usize) -> Vec<String> {
    let limits = Limits {
        max_head: 4096,
        max_body: 4096,
        max_headers: 64,
    };
    let mut f = Framer::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for part in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(part);
        loop {
            match f.decode(&mut buf) {
                Ok(Some(frame)) => out.push(format!("{frame:?}")),
                Ok(None) => break,
                Err(e) => {
                    out.push(format!("fatal {e:?}"));
                    return out;
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    assert_eq!(run(rest, usize::from(first)), run(rest, rest.len()));
});
