//! The whole guest-frame input path through the in-process attachment.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    passt_fuzz::harness::run_frames(data);
});
