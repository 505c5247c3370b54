//! The QEMU stream framing (4-byte lengths, partial frames) through a real socketpair.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    passt_fuzz::harness::run_stream(data);
});
